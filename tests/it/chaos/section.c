/*
 * One critical section, run by redlock-run as its command (see section.rs).
 *
 *   section DIR RUN DURATION_US [term]
 *
 * Stamps its start and end on CLOCK_MONOTONIC (the clock behind the test's
 * own timestamps), writes its REDLOCK_FENCING_TOKEN into the "resource"
 * (DIR/resource.EPOCH, a register under flock that refuses a token not
 * higher than the highest it has seen, except from the section that wrote
 * that token: fencing tokens must strictly increase from one holder to the
 * next, and a holder writes twice) when it begins and when it commits, and
 * holds DIR/fifo-RUN open for writing while it lives: the test's reader
 * sees EOF the moment this process dies, however it dies.
 *
 * DIR/run-RUN gets, one write each (so a killed section leaves whole lines):
 *   start T0 PID FENCING EPOCH TOKEN
 *   begin OK SEEN
 *   end T1 OK SEEN
 * With "term", SIGTERM is ignored: only a SIGKILL stops it early.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static long long mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Accept TOKEN if it is higher than the highest seen, or equal to it and
 * written by the same run (its commit after its begin); report the highest
 * seen. The file holds "TOKEN RUN". */
static int resource_write(const char *dir, long epoch, const char *run,
                          unsigned long long token, unsigned long long *seen) {
    char path[4096], buf[64];
    snprintf(path, sizeof path, "%s/resource.%ld", dir, epoch);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        *seen = 0;
        return 0;
    }
    memset(buf, 0, sizeof buf);
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    unsigned long long max = 0;
    char owner[32] = "";
    if (n > 0 && sscanf(buf, "%llu %31s", &max, owner) < 1) max = 0;
    *seen = max;
    int ok = token > max || (token == max && n > 0 && strcmp(owner, run) == 0);
    if (ok) {
        int len = snprintf(buf, sizeof buf, "%llu %s\n", token, run);
        if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, len, 0) != len) ok = 0;
    }
    close(fd);
    return ok;
}

static void line(int fd, const char *s) {
    size_t len = strlen(s);
    if (write(fd, s, len) != (ssize_t)len) _exit(3);
}

int main(int argc, char **argv) {
    long long t0 = mono_ns();
    if (argc < 4) {
        fprintf(stderr, "usage: section DIR RUN DURATION_US [term]\n");
        return 2;
    }
    const char *dir = argv[1], *run = argv[2];
    long long dur_us = atoll(argv[3]);
    if (argc > 4 && strcmp(argv[4], "term") == 0) signal(SIGTERM, SIG_IGN);

    char path[4096], buf[8192];
    snprintf(path, sizeof path, "%s/fifo-%s", dir, run);
    /* Kept open (no CLOEXEC needed: nothing is exec'd) until death. */
    if (open(path, O_WRONLY) < 0) perror("section: fifo");

    snprintf(path, sizeof path, "%s/epoch", dir);
    long epoch = 0;
    FILE *e = fopen(path, "r");
    if (e) {
        if (fscanf(e, "%ld", &epoch) != 1) epoch = 0;
        fclose(e);
    }

    const char *fence = getenv("REDLOCK_FENCING_TOKEN");
    const char *token = getenv("REDLOCK_TOKEN");
    unsigned long long fencing = fence ? strtoull(fence, NULL, 10) : 0;

    snprintf(path, sizeof path, "%s/run-%s", dir, run);
    int out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) return 3;
    snprintf(buf, sizeof buf, "start %lld %d %llu %ld %s\n", t0, (int)getpid(), fencing,
             epoch, token ? token : "-");
    line(out, buf);

    unsigned long long seen;
    int ok = resource_write(dir, epoch, run, fencing, &seen);
    snprintf(buf, sizeof buf, "begin %d %llu\n", ok, seen);
    line(out, buf);

    struct timespec left = {dur_us / 1000000, (dur_us % 1000000) * 1000};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }

    ok = resource_write(dir, epoch, run, fencing, &seen);
    long long t1 = mono_ns();
    snprintf(buf, sizeof buf, "end %lld %d %llu\n", t1, ok, seen);
    line(out, buf);
    return 0;
}
