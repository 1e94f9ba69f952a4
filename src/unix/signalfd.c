/* signalfd: signals as readable records, for a single-threaded process
 * that waits in poll (the fork server's SIGCHLD). */
#include <errno.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "unix/platform.h"

int
conc__signalfd_new(const sigset_t *mask)
{
    int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

int
conc__signalfd_drain(int fd)
{
    struct signalfd_siginfo si;
    int n = 0;
    for (;;) {
        ssize_t r = read(fd, &si, sizeof si);
        if (r == (ssize_t)sizeof si)
            n++;
        else if (!(r < 0 && errno == EINTR))
            return n;
    }
}
