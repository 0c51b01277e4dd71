// Outputs: events on their way out (outbox, rules, sinks).
