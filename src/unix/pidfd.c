/* pidfds, and the one decision whether this process has them.
 *
 * The answer is probed at the first call by opening a pidfd of the process
 * itself and cached in `state`; threads that race to probe all reach the
 * same answer, so no lock is needed. A failed probe means no pidfd for
 * the life of the process: a kernel that refused once (ENOSYS, or EPERM
 * from a seccomp filter) refuses again. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conc_config.h"
#include "unix/platform.h"

/* 0 not probed yet, 1 pidfds work, -1 they do not. */
static _Atomic int state;

/* Whether the testing knob CONC_NO_PIDFD asks to do without pidfds. */
static int
knob_says_no(void)
{
    const char *v = getenv("CONC_NO_PIDFD");
    return v && v[0] && strcmp(v, "0") != 0;
}

static int
raw_open(int pid)
{
#ifdef HAVE_SYS_PIDFD_OPEN
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? fd : -errno;
#else
    (void)pid;
    return -ENOSYS;
#endif
}

static int
probe(void)
{
    int yes = 0;
    if (!knob_says_no()) {
        int fd = raw_open((int)getpid());
        if (fd >= 0) {
            close(fd);
            yes = 1;
        }
    }
    atomic_store_explicit(&state, yes ? 1 : -1, memory_order_relaxed);
    return yes;
}

int
conc__pidfd_available(void)
{
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    return s ? s > 0 : probe();
}

int
conc__pidfd_of(int pid)
{
    if (!conc__pidfd_available())
        return CONC__NO_PIDFD;
    int fd = raw_open(pid);
    if (fd != -ENOSYS)
        return fd;
    /* A filter installed after the probe (in a forked child, which
     * inherited the answer): from now on, no. */
    atomic_store_explicit(&state, -1, memory_order_relaxed);
    return CONC__NO_PIDFD;
}

int
conc__pidfd_send_signal(int pidfd, int sig)
{
#ifdef HAVE_SYS_PIDFD_SEND_SIGNAL
    if (!conc__pidfd_available())
        return CONC__NO_PIDFD;
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
        return 0;
    return -errno;
#else
    (void)pidfd;
    (void)sig;
    return CONC__NO_PIDFD;
#endif
}

int
conc__pidfd_getfd_of(int pid, int fd)
{
#ifdef HAVE_SYS_PIDFD_GETFD
    int pidfd = conc__pidfd_of(pid);
    if (pidfd < 0)
        return pidfd;
    int r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int e = r < 0 ? -errno : r;
    close(pidfd);
    if (e == -ENOSYS) /* pidfd_open without pidfd_getfd (Linux 5.3-5.5) */
        return CONC__NO_PIDFD;
    return e;
#else
    (void)pid;
    (void)fd;
    return CONC__NO_PIDFD;
#endif
}
