/* A thread's state and CPU time; see taskstate.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unix/taskstate.h"

char
conc__task_state(uint32_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name, in parentheses, may hold spaces and ')'. */
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

int64_t
conc__task_cpu_ns(uint32_t tid)
{
    /* Linux's clock id for a thread's CPU time (MAKE_THREAD_CPUCLOCK with
     * CPUCLOCK_SCHED), which glibc and musl compute the same way for
     * pthread_getcpuclockid; it stays harmless after the thread ends. */
    clockid_t c = (clockid_t)((~(clockid_t)tid << 3) | 6);
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
