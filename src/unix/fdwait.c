#include <errno.h>
#include <time.h>

#include "core/internal.h"
#include "unix/coro.h"
#include "unix/fdwait.h"

int
conc__poll_until(struct pollfd *fds, unsigned n, int64_t deadline)
{
    struct conc__coro *c = conc__coro_self;
    if (CONC__UNLIKELY(c != NULL) && c->ops->poll) {
        int r = c->ops->poll(c, fds, n, deadline);
        if (r != -ENOTSUP)
            return r;
    }
    for (;;) {
        struct timespec ts, *tp = NULL;
        if (deadline != CONC__FOREVER) {
            int64_t left = deadline - conc__now_ns();
            if (left < 0)
                left = 0;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tp = &ts;
        }
        int r = ppoll(fds, (nfds_t)n, tp, NULL);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

int
conc__poll_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    return conc__poll_until(&p, 1, deadline);
}
