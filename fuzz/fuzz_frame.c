/* Fuzzes CPython's framing (src/ipc/frame.c) and the receiving half of a
 * connection that uses it (src/ipc/recv.c with CONC__CONN_PYWIRE): what a
 * Python peer, or anyone on the network, writes to a conc listener or
 * client. The input gives the largest message the connection accepts, a
 * program of receives (recv_bytes, recv_bytes_into with a buffer of some
 * size, poll) and the bytes of the stream, which may be followed by a
 * long filler so that messages larger than the connection's input buffer
 * occur. Everything is written and the writing end closed before the
 * first receive, so each answer is determined: a model that walks the
 * frames as CPython writes them predicts it, and every message received
 * must be the model's next one, byte for byte. First, every header the
 * input starts with is decoded and encoded again. */
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "ipc/ipc_internal.h"

#define MAX_STREAM (256u << 10)
#define MAX_OPS    32
#define SHORT_MAX  UINT64_C(0x7fffffff)

static const size_t max_messages[4] = {16, 4096, 100000, 1u << 20};
static const size_t caps[8] = {0, 1, 7, 8, 64, 4096, 70000, 1u << 20};

static uint8_t stream[MAX_STREAM];

struct model {
    size_t n, at;
    int shut;
    size_t max;
};

enum { END, PARTIAL, BAD, BYTES };

/* Classifies the frame at the model's position, as CPython reads it. */
static int
frame_at(const struct model *m, uint64_t *len, size_t *hdr)
{
    size_t rem = m->n - m->at;
    const uint8_t *p = stream + m->at;
    *len = 0;
    *hdr = 4;
    if (rem == 0)
        return END;
    if (rem < 4)
        return PARTIAL;
    uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                 (uint32_t)p[2] << 8 | p[3];
    if (n <= SHORT_MAX) {
        *len = n;
        return BYTES;
    }
    if (n != 0xffffffffu)
        return BAD;
    if (rem < 12)
        return PARTIAL;
    for (int i = 4; i < 12; i++)
        *len = *len << 8 | p[i];
    *hdr = 12;
    return BYTES;
}

static void
check_bytes(struct model *m, size_t cap, int r, const uint8_t *out, size_t got)
{
    uint64_t len;
    size_t hdr;
    int f = m->shut ? END : frame_at(m, &len, &hdr);
    int want;
    if (f == END)
        want = CONC_ECLOSED;
    else if (f == BAD)
        want = CONC_EPROTO, m->shut = 1;
    else if (f == PARTIAL)
        want = CONC_EPROTO, m->shut = 1; /* the stream ends in a header */
    else if (len > m->max)
        want = CONC_EMSGSIZE, m->shut = 1;
    else if (len > cap)
        want = CONC_EMSGSIZE; /* stays for a larger buffer */
    else if (len > m->n - m->at - hdr)
        want = CONC_EPROTO, m->shut = 1;
    else
        want = 0;
    FUZZ_CHECK(r == want);
    if (r == CONC_EMSGSIZE && !m->shut)
        FUZZ_CHECK(got == len);
    if (r != 0)
        return;
    FUZZ_CHECK(got == len);
    FUZZ_CHECK(got == 0 || memcmp(out, stream + m->at + hdr, got) == 0);
    m->at += hdr + got;
}

static void
run_op(conc_conn *c, struct model *m, unsigned op, conc_buf *buf)
{
    int r;
    switch (op % 3) {
    case 0:
        r = conc_conn_recv_bytes(c, 0, buf);
        check_bytes(m, SIZE_MAX, r, buf->data, r == 0 ? buf->len : 0);
        break;
    case 1: {
        size_t cap = caps[(op >> 2) % 8], len = 0;
        uint8_t *dst = cap ? malloc(cap) : NULL; /* exact size */
        FUZZ_CHECK(dst || !cap);
        r = conc_conn_recv_bytes_into(c, dst, cap, 0, &len);
        check_bytes(m, cap, r, dst, len);
        free(dst);
        break;
    }
    default:
        FUZZ_CHECK(conc_conn_poll(c, 0) == 1);
        break;
    }
}

/* Decodes the header at the start of the input and writes it again. */
static void
check_codec(const uint8_t *data, size_t size)
{
    uint64_t len;
    size_t hdr;
    int r = conc__pyframe_get(data, size, &len, &hdr);
    FUZZ_CHECK(r == 0 || r == 1 || r == CONC_EPROTO);
    if (r != 0)
        return;
    uint8_t out[CONC__HDR_MAX];
    size_t n = conc__pyframe_put(out, len);
    FUZZ_CHECK(hdr == 4 ? n == 4 : len > SHORT_MAX ? n == 12 : n == 4);
    if (n == hdr)
        FUZZ_CHECK(memcmp(out, data, n) == 0);
}

/* Writes the stream into a socket pair and closes the writing end;
 * returns the reading end, with what was written in m->n. */
static int
set_up(struct model *m, size_t n)
{
    int fds[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    int sz = MAX_STREAM * 2;
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    size_t done = 0;
    while (done < n) {
        ssize_t k = send(fds[1], stream + done, n - done, MSG_DONTWAIT);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    m->n = done;
    close(fds[1]);
    return fds[0];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    signal(SIGPIPE, SIG_IGN);
    check_codec(data, size);
    struct fuzz_in in = {data, size};
    unsigned cfg = (unsigned)fuzz_take(&in, 1);
    struct model m = {.max = max_messages[cfg % 4]};
    uint8_t ops[MAX_OPS];
    size_t nops = 1 + (size_t)fuzz_take(&in, 1) % MAX_OPS;
    for (size_t i = 0; i < nops; i++)
        ops[i] = (uint8_t)fuzz_take(&in, 1);
    size_t filler = (size_t)fuzz_take(&in, 2) * 8 * ((cfg >> 2) & 1);
    size_t n = in.left < MAX_STREAM ? in.left : MAX_STREAM;
    memcpy(stream, in.p, n);
    if (filler > MAX_STREAM - n)
        filler = MAX_STREAM - n;
    fuzz_fill(stream + n, filler, cfg, 0);
    int rd = set_up(&m, n + filler);
    conc_conn *c;
    unsigned flags = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET |
                     CONC__CONN_PYWIRE;
    FUZZ_CHECK(conc__conn_wrap(rd, flags, m.max, &c) == 0);
    conc_buf buf = CONC_BUF_INIT;
    for (size_t i = 0; i < nops; i++)
        run_op(c, &m, ops[i], &buf);
    /* Then the rest, each frame taken whole, to the end of the stream. */
    for (size_t i = 0; i < m.n / 4 + 3 && !m.shut; i++)
        run_op(c, &m, 0, &buf);
    FUZZ_CHECK(conc_conn_recv_bytes(c, 0, &buf) == CONC_ECLOSED);
    conc_buf_free(&buf);
    conc_conn_free(c);
    return 0;
}
