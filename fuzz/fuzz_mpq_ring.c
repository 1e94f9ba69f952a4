/* Fuzzes the framing of process queues (src/mpqueue/ring.c): the frames
 * that producers in one process write into a shared ring and consumers in
 * another read back. The input is a program of puts and gets on a small
 * ring, run in one thread with the side locks' work taken as done, from
 * any starting position (so frames wrap around the ring and the packed
 * 32-bit byte and message counters wrap too), with or without a maxsize.
 * Messages up to the ring's size are single frames (streamed ones from a
 * quarter of the ring); larger ones go in pieces, which in one thread can
 * never all fit, so the put gives up and takes its pieces back. A model
 * predicts every answer: EFULL, EEMPTY, EMSGSIZE with the message's length,
 * or the message's exact bytes.
 *
 * Another process may write anything over the ring, so an operation also
 * scribbles bytes over it. From then on the model no longer predicts: a
 * get must return a message (of a length it could have), a plain failure
 * or CONC_EBROKEN, never crash or hang, and once the queue is broken every
 * call must say so. */
#include "fuzz.h"
#include "mpqueue/mpqueue_internal.h"

#define HDR      8u
#define EXT      16u
#define MAX_CAP  4096u
#define MAX_MSG  (4 * MAX_CAP)
#define MAX_ENTS (MAX_CAP / 8)
#define MAX_OPS  1024

/* A message in the ring. */
struct entry {
    uint32_t len, seed;
    uint32_t bytes; /* ring bytes it takes */
};

static struct entry model[MAX_ENTS];
static size_t first, count, msgs;
static uint32_t used;
static int scribbled; /* the model no longer holds */
static uint8_t scratch[MAX_MSG + 64];

static uint32_t
pad8(size_t n)
{
    return (uint32_t)((n + 7) & ~(size_t)7);
}

/* What a put of `len` bytes leaves in the model, and what it returns. */
static int
predict_put(const struct conc__mpq_shared *s, uint32_t len, uint32_t seed)
{
    uint32_t room = s->cap - used;
    int slot = !s->maxsize || msgs < s->maxsize;
    struct entry e = {len, seed, 0};
    if (len <= s->cap - HDR) {
        e.bytes = HDR + pad8(len);
        if (room < e.bytes || !slot)
            return CONC_EFULL;
    } else {
        /* In one thread the pieces never all fit: the put gives up and
         * takes back those it wrote. */
        return CONC_EFULL;
    }
    FUZZ_CHECK(count < MAX_ENTS);
    model[(first + count++) % MAX_ENTS] = e;
    used += e.bytes;
    msgs++;
    return 0;
}

static void
op_put(struct conc__mpq_shared *s, struct fuzz_in *in)
{
    uint32_t len = (uint32_t)fuzz_take(in, 2) % (MAX_MSG + 1);
    uint32_t seed = (uint32_t)fuzz_take(in, 1);
    fuzz_fill(scratch, len, seed, 0);
    int r = conc__mpq_check(s, s->cap);
    if (!r)
        r = conc__mpq_put_locked(s, len ? scratch : NULL, len, CONC__POLL);
    if (scribbled)
        FUZZ_CHECK(r == 0 || r == CONC_EFULL || r == CONC_EBROKEN);
    else
        FUZZ_CHECK(r == predict_put(s, len, seed));
}

/* What a get returns: the model's first message, unless it is larger
 * than the caller's buffer. */
static int
predict_get(const struct conc__mpq_sink *k, struct entry *out)
{
    if (count == 0)
        return CONC_EEMPTY;
    *out = model[first];
    if (!k->buf && out->len > k->cap)
        return CONC_EMSGSIZE;
    used -= out->bytes;
    msgs--;
    first = (first + 1) % MAX_ENTS;
    count--;
    return 0;
}

/* After a scribble: whatever a get returns must be one of its answers,
 * and a message must fit what the caller gave. */
static void
check_get_scribbled(const struct conc__mpq_sink *k, int r, const conc_buf *buf)
{
    FUZZ_CHECK(r == 0 || r == CONC_EEMPTY || r == CONC_EMSGSIZE ||
               r == CONC_ENOMEM || r == CONC_EBROKEN);
    if (r == 0 && !k->buf)
        FUZZ_CHECK(k->len <= k->cap);
    if (r == 0 && k->buf)
        FUZZ_CHECK(buf->len == k->len);
}

static void
op_get(struct conc__mpq_shared *s, struct fuzz_in *in, unsigned op,
       conc_buf *buf)
{
    struct conc__mpq_sink k = {NULL, NULL, 0, 0};
    uint8_t *dst = NULL;
    if (op & 1) {
        k.cap = (size_t)fuzz_take(in, 2) % (MAX_MSG + 64);
        dst = malloc(k.cap ? k.cap : 1); /* exact size: overruns are seen */
        FUZZ_CHECK(dst);
        k.dst = k.cap ? dst : NULL;
    } else {
        k.buf = buf;
    }
    struct entry e = {0, 0, 0};
    int r = conc__mpq_check(s, s->cap);
    if (!r)
        r = conc__mpq_get_locked(s, &k, CONC__POLL);
    if (scribbled) {
        check_get_scribbled(&k, r, buf);
        free(dst);
        return;
    }
    FUZZ_CHECK(r == predict_get(&k, &e));
    if (r == CONC_EMSGSIZE)
        FUZZ_CHECK(k.len == e.len);
    if (r == 0) {
        FUZZ_CHECK(k.len == e.len);
        if (k.buf)
            FUZZ_CHECK(buf->len == e.len);
        FUZZ_CHECK(fuzz_matches(k.buf ? buf->data : dst, e.len, e.seed, 0));
    }
    free(dst);
}

/* Writes bytes over the ring, as a stray process might. */
static void
op_scribble(struct conc__mpq_shared *s, struct fuzz_in *in)
{
    uint32_t at = (uint32_t)fuzz_take(in, 2) % s->cap;
    uint32_t n = 1 + (uint32_t)fuzz_take(in, 1) % 16;
    for (uint32_t i = 0; i < n; i++)
        s->ring[(at + i) % s->cap] = (uint8_t)fuzz_take(in, 1);
    scribbled = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint32_t cap = 1024u << (fuzz_take(&in, 1) % 3);
    struct conc__mpq_shared *s = calloc(1, sizeof *s + cap);
    FUZZ_CHECK(s);
    s->magic = CONC__MPQ_MAGIC;
    s->cap = cap;
    s->maxsize = fuzz_take(&in, 1) % 8;
    uint64_t start = fuzz_take(&in, 8);
    atomic_store(&s->head, start);
    atomic_store(&s->tail, start);
    s->head_seen = s->tail_seen = start;
    first = count = msgs = 0;
    used = 0;
    scribbled = 0;
    conc_buf buf = CONC_BUF_INIT;
    for (int ops = 0; ops < MAX_OPS && !fuzz_done(&in); ops++) {
        unsigned op = (unsigned)fuzz_take(&in, 1);
        if (op % 16 == 15)
            op_scribble(s, &in);
        else if (op % 2)
            op_put(s, &in);
        else
            op_get(s, &in, op >> 1, &buf);
        int broken = atomic_load(&s->broken);
        if (broken)
            FUZZ_CHECK(conc__mpq_check(s, s->cap) == CONC_EBROKEN);
        if (scribbled)
            continue;
        uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail);
        FUZZ_CHECK(conc__mpq_bytes(tail) - conc__mpq_bytes(head) == used);
        FUZZ_CHECK(conc__mpq_msgs(tail) - conc__mpq_msgs(head) == msgs);
    }
    conc_buf_free(&buf);
    free(s);
    return 0;
}
