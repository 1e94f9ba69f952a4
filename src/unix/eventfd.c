/* eventfd: a counter that wakes a sleeper in poll. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "unix/platform.h"

int
conc__eventfd_new(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

void
conc__eventfd_signal(int fd)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: readable already. */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

void
conc__eventfd_drain(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof v);
    (void)n;
}
