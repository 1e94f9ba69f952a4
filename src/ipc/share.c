/* Handing a connection's end to another process (conc_conn_share,
 * conc_conn_open): Python's Process(target=f, args=(conn,)).
 *
 * The ref names the sharing process and its descriptor, and the identity
 * (device and inode) of the file behind it, which the opener checks on
 * the descriptor it obtains: a wrong pid, a descriptor closed and reused
 * for another file, or bytes that are not a ref all fail with an error
 * instead of wrapping some unrelated file.
 *
 * The opener takes the descriptor it inherited when it is a forked child
 * of the sharing process (found by that identity, at the same number), and
 * otherwise asks the kernel for a copy of the sharer's (pidfd_getfd, in
 * unix/platform.h); /proc/<pid>/fd cannot open a socket. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/ipc_internal.h"
#include "unix/platform.h"

#define REF_MAGIC 0x436f6e6eu /* "Conn" */
#define REF_FLAGS                                                              \
    (CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET | CONC__CONN_FDS | \
     CONC__CONN_PYWIRE)

/* Whether the open file behind `fd` is the one `ref` names. */
static int
same_file(int fd, const conc_conn_ref *ref)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == ref->dev &&
           (uint64_t)st.st_ino == ref->ino;
}

int
conc_conn_share(conc_conn *c, conc_conn_ref *ref)
{
    if (!c || !ref)
        return CONC_EINVAL;
    if (c->closed)
        return CONC_ECLOSED;
    if (c->in_tail > c->in_head || c->big || c->nfds)
        return conc_fail(CONC_ESTATE, "conc_conn_share: messages sent to the "
                                      "end wait in its buffer; receive them "
                                      "first");
    if (c->rshut || c->wshut)
        return conc_fail(CONC_ESTATE, "conc_conn_share: the stream was cut "
                                      "by an earlier error");
    struct stat st;
    if (fstat(c->fd, &st) != 0)
        return -errno;
    if (c->map) {
        int r = conc__ring_hand_over(c);
        if (r)
            return r;
    }
    *ref = (conc_conn_ref){.magic = REF_MAGIC,
                           .pid = (int32_t)getpid(),
                           .fd = c->fd,
                           .flags = c->flags,
                           .max_message = c->max_message,
                           .dev = (uint64_t)st.st_dev,
                           .ino = (uint64_t)st.st_ino};
    return 0;
}

/* Why pidfd_getfd failed with `err`, in words for the failure message. */
static const char *
why_not_copied(int err)
{
    switch (err) {
    case -ESRCH:
        return "it has ended";
    case -EBADF:
        return "it has no such descriptor";
    case -EPERM:
        return "not allowed to trace it (see Yama's ptrace_scope)";
    default:
        return conc_strerror(err);
    }
}

/* A descriptor of this process's own for the file `ref` names, or a
 * negated error with a failure message. */
static int
obtain_fd(const conc_conn_ref *ref)
{
    int mine = ref->pid == (int32_t)getpid() || ref->pid == (int32_t)getppid();
    if (mine && same_file(ref->fd, ref)) { /* this process's or inherited */
        int fd = fcntl(ref->fd, F_DUPFD_CLOEXEC, 0);
        return fd >= 0 ? fd : conc_fail(-errno, "conc_conn_open: dup failed");
    }
    int fd = conc__pidfd_getfd_of(ref->pid, ref->fd);
    if (fd == CONC__NO_PIDFD)
        return conc_fail(fd,
                         "conc_conn_open: descriptor %d of process %d "
                         "was not inherited from this process's parent, "
                         "and this system has no pidfd_getfd to copy it",
                         (int)ref->fd, (int)ref->pid);
    if (fd < 0)
        return conc_fail(fd,
                         "conc_conn_open: cannot copy descriptor %d of "
                         "process %d: %s",
                         (int)ref->fd, (int)ref->pid, why_not_copied(fd));
    if (!same_file(fd, ref)) {
        close(fd);
        return conc_fail(CONC_EBADF,
                         "conc_conn_open: descriptor %d of "
                         "process %d is another file now",
                         (int)ref->fd, (int)ref->pid);
    }
    return fd;
}

int
conc_conn_open(const conc_conn_ref *ref, conc_conn **out)
{
    if (!ref || !out)
        return CONC_EINVAL;
    unsigned rw = CONC__CONN_READ | CONC__CONN_WRITE;
    if (ref->magic != REF_MAGIC || ref->pid <= 0 || ref->fd < 0 ||
        (ref->flags & ~(uint32_t)REF_FLAGS) || !(ref->flags & rw))
        return conc_fail(CONC_EINVAL, "conc_conn_open: the bytes are not a "
                                      "connection's ref");
    int fd = obtain_fd(ref);
    if (fd < 0)
        return fd;
    conc_conn *c;
    conc_conn_opts opts = {.max_message = (size_t)ref->max_message};
    int r = conc_conn_from_fd(fd, &opts, &c);
    if (r == 0 && (ref->flags & CONC__CONN_PYWIRE)) /* speaks CPython's */
        c->flags = (c->flags & ~CONC__CONN_FDS) | CONC__CONN_PYWIRE;
    if (r == 0 && c->flags != ref->flags) {
        conc_conn_free(c); /* closes fd */
        return conc_fail(CONC_EINVAL, "conc_conn_open: the descriptor is "
                                      "not the kind of end the ref names");
    }
    if (r) {
        close(fd);
        return r;
    }
    *out = c;
    return 0;
}
