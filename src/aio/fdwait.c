/* A coroutine waiting for descriptors: the platform's descriptor wait
 * (conc__poll_until), done by the loop instead of by a blocking ppoll.
 *
 * Each descriptor is registered with the loop's epoll for the events asked,
 * one-shot, for the length of the wait, and removed before the wait
 * returns, so the waiter owns nothing afterwards. A descriptor that is
 * already registered (another coroutine waits on it, or the loop watches
 * it for a stream) is registered through a duplicate, which epoll treats
 * as a separate entry; a descriptor epoll refuses (a regular file) is
 * ready at once, as poll says it is. A look that must not block
 * (CONC__POLL) is a plain poll: it cannot block anything. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "aio/aio_internal.h"

/* Waits of more descriptors than this block the thread (none in conc
 * waits on more than a handful). */
#define MAX_FDS 16

struct watch {
    struct conc__aio_io io;
    struct conc__aio_task *task;
    struct pollfd *pfd;
    int dup; /* io.fd is our duplicate, closed at the end */
    int registered;
};

static uint32_t
to_epoll(short events)
{
    uint32_t e = 0;
    if (events & POLLIN)
        e |= EPOLLIN;
    if (events & POLLOUT)
        e |= EPOLLOUT;
    if (events & POLLPRI)
        e |= EPOLLPRI;
    return e;
}

static short
to_poll(uint32_t events)
{
    short r = 0;
    if (events & EPOLLIN)
        r |= POLLIN;
    if (events & EPOLLOUT)
        r |= POLLOUT;
    if (events & EPOLLPRI)
        r |= POLLPRI;
    if (events & EPOLLERR)
        r |= POLLERR;
    if (events & EPOLLHUP)
        r |= POLLHUP;
    return r;
}

static void
fd_ready(struct conc__aio_io *io, uint32_t events)
{
    struct watch *w = (struct watch *)io;
    w->pfd->revents = to_poll(events);
    conc__aio_wake(w->task, 0);
}

/* Registers w; returns 1 if its descriptor is ready without waiting (epoll
 * refused it), 0 if registered, or a negated errno. */
static int
watch_add(conc_aio_loop *loop, struct watch *w)
{
    uint32_t ev = to_epoll(w->pfd->events) | EPOLLONESHOT;
    int r = conc__aio_io_add(loop, &w->io, ev, 0);
    if (r == -EEXIST) {
        int d = fcntl(w->io.fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0)
            return -errno;
        w->io.fd = d;
        w->dup = 1;
        r = conc__aio_io_add(loop, &w->io, ev, 0);
    }
    if (r == -EPERM) {
        w->pfd->revents = w->pfd->events & (POLLIN | POLLOUT);
        return 1;
    }
    if (r == 0)
        w->registered = 1;
    return r;
}

static void
watch_del(conc_aio_loop *loop, struct watch *w)
{
    if (w->registered)
        conc__aio_io_del(loop, &w->io);
    if (w->dup)
        close(w->io.fd);
}

int
conc__aio_poll(struct conc__aio_task *t, struct pollfd *fds, unsigned n,
               int64_t deadline, int cancellable)
{
    if (deadline == CONC__POLL || n > MAX_FDS)
        return -ENOTSUP; /* the caller polls the plain way */
    struct watch w[MAX_FDS];
    int ready = 0, r = 0;
    unsigned added = 0;
    for (unsigned i = 0; i < n; i++)
        fds[i].revents = 0;
    for (; added < n; added++) {
        w[added] =
            (struct watch){.io = {.fd = fds[added].fd, .ready = fd_ready},
                           .task = t,
                           .pfd = &fds[added]};
        if (fds[added].fd < 0)
            continue; /* poll ignores negative descriptors */
        if ((r = watch_add(t->loop, &w[added])) < 0)
            break;
        ready += r;
    }
    if (r >= 0 && !ready)
        r = conc__aio_suspend(t, deadline, cancellable);
    for (unsigned i = 0; i < added; i++)
        watch_del(t->loop, &w[i]);
    if (r == CONC_ETIMEDOUT)
        r = 0;
    if (r < 0)
        return r;
    int count = 0;
    for (unsigned i = 0; i < n; i++)
        count += fds[i].revents != 0;
    return count;
}
