/* A thread's state and start time, from /proc: what tells a live thread
 * from a dead one whose id was reused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unix/platform.h"

/* The stat line's field that holds the start time (proc(5)). */
#define STAT_FIELD_STARTTIME 22

/* Parses a stat line: the command name, in parentheses, may hold spaces
 * and ')', so fields are counted from the last ')'. */
static int
parse_stat(char *buf, char *state, uint64_t *start)
{
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -EPROTO;
    *state = p[2];
    p += 3;
    for (int field = 4; field < STAT_FIELD_STARTTIME; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EPROTO;
    }
    *start = strtoull(p + 1, NULL, 10);
    return 0;
}

int
conc__thread_stat(uint32_t tid, char *state, uint64_t *start)
{
    char path[64];
    if (tid == 0)
        snprintf(path, sizeof path, "/proc/thread-self/stat");
    else
        snprintf(path, sizeof path, "/proc/%u/task/%u/stat", tid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[1024];
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (n <= 0)
        return err ? err : -ESRCH; /* the thread ended after the open */
    buf[n] = '\0';
    return parse_stat(buf, state, start);
}

int64_t
conc__thread_cpu_ns(uint32_t tid)
{
    /* Linux's clock id for a thread's CPU time (MAKE_THREAD_CPUCLOCK with
     * CPUCLOCK_SCHED), as glibc and musl compute it for
     * pthread_getcpuclockid; harmless to ask once the thread is gone. */
    clockid_t c = (clockid_t)((~tid << 3) | 6); /* in unsigned bits */
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -errno;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
