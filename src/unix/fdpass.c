/* Descriptor passing over Unix sockets: the one place that builds and
 * parses SCM_RIGHTS messages.
 *
 * Sending checks the descriptors before the system call: sendmsg with a
 * bad descriptor fails and sends nothing, and a peer that expected a
 * message then waits for it forever, so a caller must learn of the failure
 * before anything goes out. Receiving closes whatever it cannot hand over
 * whole (more descriptors than the caller has room for, or control data
 * the kernel cut short), so that a hostile or confused peer can make a
 * receive fail but never leak descriptors into this process. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "unix/platform.h"

/* Control room for the most descriptors a message can carry. */
union fd_control {
    char buf[CMSG_SPACE(CONC__FDPASS_MAX * sizeof(int))];
    struct cmsghdr align;
};

ssize_t
conc__fd_send(int sock, const struct iovec *iov, int iovcnt, const int *fds,
              size_t nfds, int flags)
{
    if (nfds > CONC__FDPASS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] < 0)
            return -EBADF;
    union fd_control ctl;
    struct msghdr m = {.msg_iov = (struct iovec *)iov,
                       .msg_iovlen = (size_t)iovcnt};
    if (nfds) {
        memset(&ctl, 0, CMSG_SPACE(nfds * sizeof(int)));
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &m, flags | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* Moves the descriptors of `m` into fds. Returns 0, or -EPROTO after
 * closing all of them (fds untouched) when they do not fit or some were
 * cut off. */
static int
take_fds(struct msghdr *m, int *fds, size_t max, size_t *nfds)
{
    int got[CONC__FDPASS_MAX];
    size_t n = 0;
    int over = (m->msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            if (n < max && n < CONC__FDPASS_MAX) {
                got[n++] = fd;
            } else {
                close(fd);
                over = 1;
            }
        }
    }
    if (over) {
        while (n)
            close(got[--n]);
        return -EPROTO;
    }
    if (n)
        memcpy(fds, got, n * sizeof *fds);
    *nfds = n;
    return 0;
}

ssize_t
conc__fd_recv(int sock, struct iovec *iov, int iovcnt, int *fds, size_t max,
              size_t *nfds, int flags)
{
    *nfds = 0;
    union fd_control ctl;
    /* One more slot than asked for, so that a surplus descriptor arrives
     * (and is closed) rather than being cut off silently. */
    size_t room = max < CONC__FDPASS_MAX ? max + 1 : CONC__FDPASS_MAX;
    struct msghdr m = {.msg_iov = iov,
                       .msg_iovlen = (size_t)iovcnt,
                       .msg_control = ctl.buf,
                       .msg_controllen = CMSG_SPACE(room * sizeof(int))};
    ssize_t n;
    do
        n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    int r = take_fds(&m, fds, max, nfds);
    return r ? r : n;
}
