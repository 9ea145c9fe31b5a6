/* An LD_PRELOAD fault injector for redlock-run's own system calls: real
 * failures at the libc boundary, in the real binary, for the error paths
 * no outside fault reaches.
 *
 *   RR_FAULT_TIMERFD_SETTIME=N  the N-th timerfd_settime call of a process,
 *                               and every later one, fails with ENOMEM
 *   RR_FAULT_KILLPG=EPERM       killpg with a real signal fails with EPERM
 *                               (as for a setuid program in the group);
 *                               the existence probe (signal 0) still works
 *   RR_FAULT_FORK=fail          the first fork of the process fails (EAGAIN):
 *                               redlock-run's guardian cannot start
 *   RR_FAULT_FORK_STALL_MS=N    the second fork (the command's) stalls the
 *                               caller N ms before forking and N ms after,
 *                               as a SIGSTOP of redlock-run alone would
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int settime_calls;

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
                    struct itimerspec *old_value) {
    static int (*real)(int, int, const struct itimerspec *, struct itimerspec *);
    const char *n = getenv("RR_FAULT_TIMERFD_SETTIME");
    if (n && ++settime_calls >= atoi(n)) {
        errno = ENOMEM;
        return -1;
    }
    if (!real)
        real = dlsym(RTLD_NEXT, "timerfd_settime");
    return real(fd, flags, new_value, old_value);
}

int killpg(pid_t pgrp, int sig) {
    static int (*real)(pid_t, int);
    const char *e = getenv("RR_FAULT_KILLPG");
    if (sig != 0 && e && strcmp(e, "EPERM") == 0) {
        errno = EPERM;
        return -1;
    }
    if (!real)
        real = dlsym(RTLD_NEXT, "killpg");
    return real(pgrp, sig);
}

static int fork_calls;

static void stall_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

pid_t fork(void) {
    static pid_t (*real)(void);
    const char *f = getenv("RR_FAULT_FORK");
    const char *s = getenv("RR_FAULT_FORK_STALL_MS");
    int n = ++fork_calls;
    if (!real)
        real = dlsym(RTLD_NEXT, "fork");
    if (f && strcmp(f, "fail") == 0 && n == 1) {
        errno = EAGAIN;
        return -1;
    }
    if (s && n == 2)
        stall_ms(atol(s));
    pid_t pid = real();
    if (s && n == 2 && pid > 0)
        stall_ms(atol(s));
    return pid;
}
