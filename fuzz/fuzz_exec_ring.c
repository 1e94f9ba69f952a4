/* Fuzzes the framing of the process pool's rings (src/executor/ring.c):
 * the shared-memory byte ring that carries task frames to a worker and
 * result frames back. The result thread's reader of those frames
 * (take_frame in procs_results.c) is tied to a running engine and cannot
 * be driven alone, so this target drives the ring under it: the input is
 * a program of puts (one frame in up to three parts), peeks, reads at any
 * offsets and pops, from any starting position, so frames wrap around the
 * end of the ring and the 64-bit positions wrap too. A model of the ring
 * predicts each answer: whether a frame fits, its length, and its bytes,
 * which follow a pattern so that a long frame needs only a few input
 * bytes. */
#include "core/internal.h"
#include "executor/ring.h"
#include "fuzz.h"

#define PAD8(n)    (((uint64_t)(n) + 7u) & ~(uint64_t)7u)
#define MAX_FRAMES (CONC__RING_CAP / 8)
#define MAX_OPS    2048

struct frame {
    uint32_t len, seed;
};

static struct conc__ring ring;
static uint8_t scratch[CONC__RING_MAX_FRAME];

/* The model: frames in the ring, oldest first, in a circular array. */
static struct frame model[MAX_FRAMES];
static size_t first, count;
static uint64_t used; /* ring bytes the frames take */

static void
op_put(struct fuzz_in *in, unsigned op)
{
    int parts = 1 + (int)fuzz_take(in, 1) % 3;
    size_t lens[3] = {0, 0, 0}, total = 0;
    for (int i = 0; i < parts; i++) {
        lens[i] = (size_t)fuzz_take(in, 2) << ((op >> 4) & 1);
        if (lens[i] > CONC__RING_MAX_FRAME - total)
            lens[i] = CONC__RING_MAX_FRAME - total;
        total += lens[i];
    }
    uint32_t seed = (uint32_t)fuzz_take(in, 1);
    fuzz_fill(scratch, total, seed, 0);
    const void *ptrs[3];
    for (int i = 0, at = 0; i < parts; at += (int)lens[i], i++)
        ptrs[i] = lens[i] ? scratch + at : NULL;
    int fits = CONC__RING_CAP - used >= 8 + PAD8(total);
    int r = op & 8 ? conc__ring_put_wait(&ring, ptrs, lens, parts, CONC__POLL)
                   : conc__ring_put(&ring, ptrs, lens, parts);
    FUZZ_CHECK(r == fits);
    if (!r)
        return;
    FUZZ_CHECK(count < MAX_FRAMES);
    model[(first + count++) % MAX_FRAMES] = (struct frame){total, seed};
    used += 8 + PAD8(total);
}

/* Reads the head frame in two pieces split where the input says, checks
 * its bytes, and pops it. */
static void
op_take(struct fuzz_in *in)
{
    int64_t len = conc__ring_peek(&ring);
    if (count == 0) {
        FUZZ_CHECK(len == -1);
        return;
    }
    struct frame f = model[first];
    FUZZ_CHECK(len == (int64_t)f.len);
    size_t split = f.len ? (size_t)fuzz_take(in, 3) % (f.len + 1) : 0;
    conc__ring_read(&ring, split, scratch, f.len - split);
    FUZZ_CHECK(fuzz_matches(scratch, f.len - split, f.seed, split));
    conc__ring_read(&ring, 0, scratch, split);
    FUZZ_CHECK(fuzz_matches(scratch, split, f.seed, 0));
    conc__ring_pop(&ring);
    first = (first + 1) % MAX_FRAMES;
    count--;
    used -= 8 + PAD8(f.len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    memset(&ring, 0, sizeof ring);
    uint64_t start = fuzz_take(&in, 8);
    conc__ring_reset(&ring, start);
    first = count = 0;
    used = 0;
    for (int ops = 0; ops < MAX_OPS && !fuzz_done(&in); ops++) {
        unsigned op = (unsigned)fuzz_take(&in, 1);
        switch (op % 4) {
        case 0:
        case 1:
            op_put(&in, op);
            break;
        case 2:
            FUZZ_CHECK(conc__ring_peek(&ring) ==
                       (count ? (int64_t)model[first].len : -1));
            break;
        default:
            op_take(&in);
            break;
        }
        FUZZ_CHECK(atomic_load(&ring.tail) - atomic_load(&ring.head) == used);
    }
    while (count)
        op_take(&in);
    FUZZ_CHECK(conc__ring_peek(&ring) == -1);
    return 0;
}
