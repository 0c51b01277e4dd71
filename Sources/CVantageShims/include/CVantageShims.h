// Small C helpers for what Swift cannot reach in Glibc's headers (GNU-only declarations).
#ifndef CVANTAGESHIMS_H
#define CVANTAGESHIMS_H

/// Exchanges two paths atomically (renameat2 with RENAME_EXCHANGE): both must exist. 0, or -1 with errno set.
int vantage_exchange_paths(const char *first, const char *second);

/// Asks the kernel to send `signal` to this process when its parent dies (prctl PR_SET_PDEATHSIG). 0, or -1 with
/// errno set.
int vantage_set_parent_death_signal(int signal);

/// Gives the free memory of every malloc arena back to the system (malloc_trim(0)). 1 when some was released.
int vantage_release_free_memory(void);

#endif
