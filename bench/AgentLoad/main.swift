// The simulated-agents load generator (make bench): being written.
print("agent-load: not written yet")
