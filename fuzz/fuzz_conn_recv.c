/* Fuzzes the receiving half of connections (src/ipc/recv.c): the framing
 * of byte and descriptor messages that another process writes into a
 * pipe or a Unix socket. The input says which descriptor, the largest
 * message the connection accepts, a program of receives (recv_bytes,
 * recv_bytes_into with a buffer of some size, poll, recv_fd), whether
 * descriptors travel with the bytes, and the bytes themselves, which may
 * be followed by a long filler so that messages larger than the
 * connection's input buffer occur. Everything is written and the writing
 * end closed before the first receive, so each answer is determined: a
 * model that walks the frames as the format says predicts it (skipping
 * the RING and WAKE markers, as an end without a shared ring does), and
 * every message received must be the model's next one, byte for byte. At
 * the end every descriptor that travelled must be closed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "ipc/ipc_internal.h"

#define MAX_STREAM (256u << 10)
#define MAX_OPS    32

static const size_t max_messages[4] = {16, 4096, 100000, 1u << 20};
static const size_t caps[8] = {0, 1, 7, 8, 64, 4096, 70000, 1u << 20};

static uint8_t stream[MAX_STREAM];

/* The model: the written bytes, how far receives have consumed them, and
 * whether the receiving side is shut. */
struct model {
    size_t n, at;
    int shut, sock;
    size_t max;
};

enum { END, PARTIAL_HDR, BAD_KIND, FD, BYTES };

/* Whether a whole RING or WAKE marker is at the model's position. The
 * ends of a conc_pipe send them on the descriptor about their shared ring;
 * an end without a ring (from conc_conn_from_fd, or handed on by
 * conc_conn_share) skips them, since nothing reaches it by a ring. */
static int
marker_at(const struct model *m)
{
    if (m->n - m->at < CONC__FRAME_HDR)
        return 0;
    unsigned kind;
    uint64_t len;
    conc__frame_get(stream + m->at, &kind, &len);
    return len == 0 && (kind == CONC__KIND_RING || kind == CONC__KIND_WAKE);
}

/* Classifies the frame at the model's position, after moving past the
 * markers before it (every receive takes them before looking further). */
static int
frame_at(struct model *m, uint64_t *len)
{
    while (marker_at(m))
        m->at += CONC__FRAME_HDR;
    size_t rem = m->n - m->at;
    *len = 0;
    if (rem == 0)
        return END;
    if (rem < CONC__FRAME_HDR)
        return PARTIAL_HDR;
    unsigned kind;
    conc__frame_get(stream + m->at, &kind, len);
    if (kind == CONC__KIND_FD)
        return *len == 0 && m->sock ? FD : BAD_KIND;
    return kind == CONC__KIND_BYTES ? BYTES : BAD_KIND;
}

static int
complete(const struct model *m, uint64_t len)
{
    return len <= m->n - m->at - CONC__FRAME_HDR;
}

/* Checks a receive of bytes (cap: SIZE_MAX for recv_bytes) that returned
 * r with `got` bytes at `out` (or, after EMSGSIZE, the length there), and
 * moves the model on. */
static void
check_bytes(struct model *m, size_t cap, int r, const uint8_t *out, size_t got)
{
    uint64_t len;
    int f = m->shut ? END : frame_at(m, &len);
    int want;
    if (f == END)
        want = CONC_ECLOSED;
    else if (f == FD)
        want = CONC_EPROTO; /* stays for recv_fd */
    else if (f != BYTES)
        want = CONC_EPROTO, m->shut = 1;
    else if (len > m->max)
        want = CONC_EMSGSIZE, m->shut = 1;
    else if (len > cap)
        want = CONC_EMSGSIZE; /* stays for a larger buffer */
    else if (!complete(m, len))
        want = CONC_EPROTO, m->shut = 1;
    else
        want = 0;
    FUZZ_CHECK(r == want);
    if (r == CONC_EMSGSIZE && !m->shut)
        FUZZ_CHECK(got == len);
    if (r != 0)
        return;
    FUZZ_CHECK(got == len);
    FUZZ_CHECK(got == 0 ||
               memcmp(out, stream + m->at + CONC__FRAME_HDR, got) == 0);
    m->at += CONC__FRAME_HDR + got;
}

/* Checks a recv_fd. A descriptor frame may come without its descriptor
 * (the bytes can say anything), which shuts the receiving side. */
static void
check_fd(struct model *m, int r, int fd)
{
    uint64_t len;
    if (!m->sock) {
        FUZZ_CHECK(r == CONC_EINVAL);
        return;
    }
    int f = m->shut ? END : frame_at(m, &len);
    if (f == END) {
        FUZZ_CHECK(r == CONC_ECLOSED);
    } else if (f == BYTES) {
        FUZZ_CHECK(r == CONC_EPROTO); /* stays for a receive of bytes */
    } else if (f == FD && r == 0) {
        FUZZ_CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
        close(fd);
        m->at += CONC__FRAME_HDR;
    } else {
        FUZZ_CHECK(r == CONC_EPROTO);
        m->shut = 1;
    }
}

static void
run_op(conc_conn *c, struct model *m, unsigned op, conc_buf *buf)
{
    int r;
    switch (op % 4) {
    case 0: {
        /* A failed receive leaves the buffer as it was (conc_buf's rule). */
        size_t before = buf->len;
        uint8_t *copy = before ? malloc(before) : NULL;
        FUZZ_CHECK(copy || !before);
        if (before)
            memcpy(copy, buf->data, before);
        r = conc_conn_recv_bytes(c, 0, buf);
        FUZZ_CHECK(r == 0 || (buf->len == before &&
                              (!before || !memcmp(buf->data, copy, before))));
        free(copy);
        check_bytes(m, SIZE_MAX, r, buf->data, r == 0 ? buf->len : 0);
        break;
    }
    case 1: {
        size_t cap = caps[(op >> 2) % 8], len = 0;
        uint8_t *dst = cap ? malloc(cap) : NULL; /* exact size */
        FUZZ_CHECK(dst || !cap);
        r = conc_conn_recv_bytes_into(c, dst, cap, 0, &len);
        check_bytes(m, cap, r, dst, len);
        free(dst);
        break;
    }
    case 2:
        /* Everything was written and the other end closed: a receive
         * always answers at once. */
        FUZZ_CHECK(conc_conn_poll(c, 0) == 1);
        break;
    default: {
        int fd = -1;
        r = conc_conn_recv_fd(c, 0, &fd);
        check_fd(m, r, fd);
        break;
    }
    }
}

/* Writes `n` bytes of the stream from `off` without blocking, the first
 * piece with descriptor `fd` attached if fd >= 0. Returns how many went. */
static size_t
send_part(int w, int sock, size_t off, size_t n, int fd)
{
    size_t done = 0;
    while (done < n) {
        struct iovec iov = {stream + off + done, n - done};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cb;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (fd >= 0 && done == 0) {
            mh.msg_control = cb.buf;
            mh.msg_controllen = sizeof cb.buf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        }
        ssize_t k = sock ? sendmsg(w, &mh, MSG_DONTWAIT)
                         : write(w, iov.iov_base, iov.iov_len);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    return done;
}

/* Makes the descriptor pair, writes the stream into it in two parts
 * (each possibly carrying `probe`), and closes the writing end. Returns
 * the reading end, and in m->n how much was written. */
static int
set_up(struct model *m, size_t n, size_t split, unsigned attach, int probe)
{
    int fds[2];
    if (m->sock) {
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) ==
                   0);
        int sz = MAX_STREAM * 2;
        setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    } else {
        FUZZ_CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        fcntl(fds[1], F_SETPIPE_SZ, MAX_STREAM);
    }
    size_t a = send_part(fds[1], m->sock, 0, split,
                         m->sock && (attach & 1) ? probe : -1);
    m->n = a;
    if (a == split)
        m->n += send_part(fds[1], m->sock, split, n - split,
                          m->sock && (attach & 2) ? probe : -1);
    close(fds[1]);
    return fds[0];
}

/* Fills the stream with the rest of the input and `filler` bytes of
 * pattern after it. Returns its length. */
static size_t
make_stream(const struct fuzz_in *in, size_t filler, unsigned seed)
{
    size_t n = in->left < MAX_STREAM ? in->left : MAX_STREAM;
    memcpy(stream, in->p, n);
    if (filler > MAX_STREAM - n)
        filler = MAX_STREAM - n;
    fuzz_fill(stream + n, filler, seed, 0);
    return n + filler;
}

/* Receives the rest, taking each frame the way it asks to be taken: each
 * call consumes a frame or ends the stream, so this reaches its end. */
static void
drain(conc_conn *c, struct model *m, conc_buf *buf)
{
    uint64_t len;
    for (size_t i = 0; i < m->n / CONC__FRAME_HDR + 3; i++) {
        if (m->shut || frame_at(m, &len) == END)
            break;
        run_op(c, m, frame_at(m, &len) == FD ? 3 : 0, buf);
    }
    FUZZ_CHECK(m->shut || frame_at(m, &len) == END);
    FUZZ_CHECK(conc_conn_recv_bytes(c, 0, buf) == CONC_ECLOSED);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    signal(SIGPIPE, SIG_IGN);
    struct fuzz_in in = {data, size};
    unsigned cfg = (unsigned)fuzz_take(&in, 1);
    struct model m = {.sock = cfg & 1, .max = max_messages[(cfg >> 1) % 4]};
    uint8_t ops[MAX_OPS];
    size_t nops = 1 + (size_t)fuzz_take(&in, 1) % MAX_OPS;
    for (size_t i = 0; i < nops; i++)
        ops[i] = (uint8_t)fuzz_take(&in, 1);
    size_t filler = (size_t)fuzz_take(&in, 2) * 8 * ((cfg >> 3) & 1);
    unsigned split_at = (unsigned)fuzz_take(&in, 1);
    size_t n = make_stream(&in, filler, cfg);

    /* A pipe whose read end travels as the descriptor: once every copy
     * is closed, writing to it fails with EPIPE. */
    int probe[2];
    FUZZ_CHECK(pipe2(probe, O_CLOEXEC | O_NONBLOCK) == 0);
    int rd = set_up(&m, n, n * split_at / 255, cfg >> 4, probe[0]);
    close(probe[0]);
    conc_conn *c;
    conc_conn_opts opts = {.max_message = m.max};
    FUZZ_CHECK(conc_conn_from_fd(rd, &opts, &c) == 0);
    conc_buf buf = CONC_BUF_INIT;
    for (size_t i = 0; i < nops; i++)
        run_op(c, &m, ops[i], &buf);
    drain(c, &m, &buf);
    conc_buf_free(&buf);
    conc_conn_free(c);
    FUZZ_CHECK(fcntl(rd, F_GETFD) == -1 && errno == EBADF);
    FUZZ_CHECK(write(probe[1], "x", 1) == -1 && errno == EPIPE);
    close(probe[1]);
    return 0;
}
