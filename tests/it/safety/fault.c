/* An LD_PRELOAD fault injector for redlock-run's own system calls: real
 * failures at the libc boundary, in the real binary, for the error paths
 * no outside fault reaches.
 *
 *   RR_FAULT_TIMERFD_SETTIME=N  the N-th timerfd_settime call of a process,
 *                               and every later one, fails with ENOMEM
 *   RR_FAULT_KILLPG=EPERM       killpg with a real signal fails with EPERM
 *                               (as for a setuid program in the group);
 *                               the existence probe (signal 0) still works
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>

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
