/* Fuzzes the frame reader of a conc_pipe's shared ring (src/ipc/ring.c):
 * the positions and frames that the other process writes into the shared
 * mapping. The input says whether the pipe is simplex, the largest
 * message the connection accepts, the reader's position, how far the
 * writer's position is past it, a program of receives with timeout 0
 * (recv_bytes, recv_bytes_into with a buffer of some size, poll, recv_fd)
 * and the ring's bytes from the reader's position on, wrapping at the
 * ring's end. The receiving end is put on its ring by hand. A model walks
 * the frames as ring.c's trust rules say and predicts every answer: a
 * message received must be the model's next one, byte for byte, and
 * anything the rules reject must fail with CONC_EBROKEN, then
 * CONC_ECLOSED. Nothing may hang: every receive has timeout 0. */
#include <errno.h>
#include <unistd.h>

#include "fuzz.h"
#include "ipc/ipc_internal.h"

#define MAX_OPS 32
#define CAP     CONC__RING_CAP

static const size_t max_messages[4] = {0, 16, 4096, 100000};
static const size_t caps[8] = {0, 1, 7, 8, 64, 4096, 16384, 70000};

static uint8_t img[CAP];       /* the ring's bytes, as the model sees them */
static uint8_t out_buf[70000]; /* recv_bytes_into's buffer */

struct model {
    uint64_t head, tail, pos; /* pos: bytes consumed past head */
    size_t max;
    int shut, diverted, simplex;
};

enum { BROKEN, EMPTY, DIVERT, BYTES };

static uint64_t
frame_size(uint64_t len)
{
    return CONC__FRAME_HDR + ((len + 7) & ~(uint64_t)7);
}

/* Classifies what the reader finds at the model's position. */
static int
frame_at(const struct model *m, uint64_t *len)
{
    uint64_t h = m->head + m->pos, t = m->tail;
    *len = 0;
    if (t < h || t - h > CAP || (t - h) % 8 || h % 8)
        return BROKEN;
    if (t == h)
        return EMPTY;
    uint8_t hdr[CONC__FRAME_HDR];
    for (int i = 0; i < CONC__FRAME_HDR; i++)
        hdr[i] = img[(h + (uint64_t)i) % CAP];
    unsigned kind;
    conc__frame_get(hdr, &kind, len);
    int ok = (kind == CONC__KIND_DIVERT && *len == 0) ||
             (kind == CONC__KIND_BYTES && *len <= CONC__RING_MSG_MAX);
    if (!ok || frame_size(*len) > t - h)
        return BROKEN;
    return kind == CONC__KIND_DIVERT ? DIVERT : BYTES;
}

static int
same_as_ring(const struct model *m, const uint8_t *got, uint64_t len)
{
    uint64_t at = m->head + m->pos + CONC__FRAME_HDR;
    for (uint64_t i = 0; i < len; i++)
        if (got[i] != img[(at + i) % CAP])
            return 0;
    return 1;
}

/* Checks a receive of bytes (cap: SIZE_MAX for recv_bytes) that returned
 * r with `got` bytes at `out` (or, after EMSGSIZE, the length there). */
static void
check_bytes(struct model *m, size_t cap, int r, const uint8_t *out, size_t got)
{
    if (m->shut) {
        FUZZ_CHECK(r == CONC_ECLOSED);
        return;
    }
    uint64_t len;
    int f = m->diverted ? EMPTY : frame_at(m, &len);
    if (f == DIVERT) { /* taken; the descriptor has nothing */
        m->diverted = 1;
        f = EMPTY;
    }
    if (f == BROKEN) {
        FUZZ_CHECK(r == CONC_EBROKEN);
        m->shut = 1;
    } else if (f == EMPTY) {
        FUZZ_CHECK(r == CONC_ETIMEDOUT);
    } else if (m->max && len > m->max) {
        FUZZ_CHECK(r == CONC_EMSGSIZE);
        m->shut = 1;
    } else if (len > cap) {
        FUZZ_CHECK(r == CONC_EMSGSIZE && got == len);
    } else {
        FUZZ_CHECK(r == 0 && got == len);
        FUZZ_CHECK(same_as_ring(m, out, len));
        m->pos += frame_size(len);
    }
}

static void
check_poll(struct model *m, int r)
{
    uint64_t len;
    if (m->shut) {
        FUZZ_CHECK(r == 1);
        return;
    }
    int f = m->diverted ? EMPTY : frame_at(m, &len);
    if (f == DIVERT)
        m->diverted = 1;
    if (f == BROKEN)
        m->shut = 1;
    FUZZ_CHECK(r == (f == BROKEN || f == BYTES));
}

static void
check_fd(struct model *m, int r)
{
    uint64_t len;
    if (m->simplex) {
        FUZZ_CHECK(r == CONC_EINVAL);
        return;
    }
    if (m->shut) {
        FUZZ_CHECK(r == CONC_ECLOSED);
        return;
    }
    int f = m->diverted ? EMPTY : frame_at(m, &len);
    if (f == DIVERT) {
        m->diverted = 1;
        f = EMPTY;
    }
    if (f == BROKEN)
        m->shut = 1;
    FUZZ_CHECK(r == (f == BROKEN  ? CONC_EBROKEN
                     : f == EMPTY ? CONC_ETIMEDOUT
                                  : CONC_EPROTO));
}

/* Runs one receive of the program on `c` and checks it against the
 * model. */
static void
run_op(conc_conn *c, struct model *m, unsigned op)
{
    size_t got = 0;
    switch (op % 4) {
    case 0: {
        conc_buf b = CONC_BUF_INIT;
        int r = conc_conn_recv_bytes(c, 0, &b);
        check_bytes(m, SIZE_MAX, r, b.data, b.len);
        conc_buf_free(&b);
        break;
    }
    case 1: {
        size_t cap = caps[(op >> 2) % 8];
        int r = conc_conn_recv_bytes_into(c, out_buf, cap, 0, &got);
        check_bytes(m, cap, r, out_buf, got);
        break;
    }
    case 2:
        check_poll(m, conc_conn_poll(c, 0));
        break;
    default: {
        int fd = -1;
        check_fd(m, conc_conn_recv_fd(c, 0, &fd));
        FUZZ_CHECK(fd == -1);
        break;
    }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    unsigned flags = (unsigned)fuzz_take(&in, 1);
    struct model m = {.simplex = flags & 1,
                      .max = max_messages[flags >> 1 & 3]};
    m.head = fuzz_take(&in, 8);
    uint64_t delta = fuzz_take(&in, 4);
    unsigned nops = (unsigned)fuzz_take(&in, 1) % (MAX_OPS + 1);
    uint8_t ops[MAX_OPS];
    for (unsigned i = 0; i < nops; i++)
        ops[i] = (uint8_t)fuzz_take(&in, 1);
    size_t n = in.left < CAP ? in.left : CAP;
    if (flags & 8) /* the writer's position: just past the given bytes */
        delta = n;
    m.tail = m.head + delta;
    memset(img, 0, sizeof img);
    for (size_t i = 0; i < n; i++)
        img[(m.head + i) % CAP] = in.p[i];

    conc_conn *a, *b;
    conc_pipe_opts o = {.simplex = m.simplex, .max_message = m.max};
    FUZZ_CHECK(conc_pipe(&o, &a, &b) == 0);
    FUZZ_CHECK(a->rx != NULL); /* a receives in both kinds of pipe */
    struct conc__ring_side *r = a->rx;
    memcpy(r->data, img, sizeof img);
    atomic_store(&r->head, m.head);
    atomic_store(&r->tail, m.tail);
    a->rx_ring = 1; /* as if a RING frame had come */
    for (unsigned i = 0; i < nops; i++)
        run_op(a, &m, ops[i]);
    conc_conn_free(a);
    conc_conn_free(b);
    return 0;
}
