// Preloaded before libfaketime by ClockSkewEndToEndTests: keeps timers on the monotonic clocks on the real time.
//
// libfaketime (0.9.10, Debian 12) moves every absolute timer by its offset, including timers on CLOCK_MONOTONIC and
// CLOCK_BOOTTIME, although FAKETIME_DONT_FAKE_MONOTONIC leaves those clocks' readings alone: a process a year behind
// arms a timer for "now + 1 s" on the real monotonic clock and libfaketime moves it a year later, so it never fires
// (Swift's Task.sleep, libdispatch's timers: the agent hangs); an hour ahead, every timer fires at once (busy loops).
// A box whose real-time clock is wrong has neither problem, so this shim gives the monotonic timers back to the
// kernel and leaves the real-time ones to libfaketime.
//
//   cc -shared -fPIC -O2 -o libmonotonic-timers.so monotonic-timers.c -ldl
//   LD_PRELOAD="libmonotonic-timers.so libfaketime.so.1" …
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FDS 65536
// Per file descriptor: 1 when it is a timerfd on a monotonic clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME…).
static atomic_uchar monotonic[FDS];

static int is_monotonic(clockid_t clock) { return clock != CLOCK_REALTIME && clock != CLOCK_REALTIME_ALARM; }

int timerfd_create(int clock, int flags) {
    int fd = (int)syscall(SYS_timerfd_create, clock, flags);
    if (fd >= 0 && fd < FDS) atomic_store(&monotonic[fd], is_monotonic(clock));
    return fd;
}

int timerfd_settime(int fd, int flags, const struct itimerspec *value, struct itimerspec *old) {
    if (fd >= 0 && fd < FDS && atomic_load(&monotonic[fd])) {
        return (int)syscall(SYS_timerfd_settime, fd, flags, value, old);
    }
    static int (*next)(int, int, const struct itimerspec *, struct itimerspec *);
    if (!next) next = (int (*)(int, int, const struct itimerspec *, struct itimerspec *))dlsym(RTLD_NEXT, "timerfd_settime");
    if (!next) return (int)syscall(SYS_timerfd_settime, fd, flags, value, old);
    return next(fd, flags, value, old);
}

int timerfd_gettime(int fd, struct itimerspec *value) { return (int)syscall(SYS_timerfd_gettime, fd, value); }

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remain) {
    if (is_monotonic(clock)) {
        // clock_nanosleep answers the error number rather than setting errno.
        return syscall(SYS_clock_nanosleep, clock, flags, request, remain) == 0 ? 0 : errno;
    }
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (!next) next = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "clock_nanosleep");
    return next ? next(clock, flags, request, remain) : ENOSYS;
}
