/* The shared-memory ring between a process pool and a worker (ring.h). */
#include <string.h>

#include "core/internal.h"
#include "core/wait.h"
#include "executor/ring.h"
#include "unix/futex.h"

#define MASK    (CONC__RING_CAP - 1)
#define PAD8(n) (((n) + 7u) & ~(uint64_t)7u)

static void
copy_in(struct conc__ring *r, uint64_t pos, const void *src, size_t n)
{
    if (n == 0)
        return; /* an empty part may come with a NULL pointer */
    size_t at = (size_t)(pos & MASK), first = CONC__RING_CAP - at;
    if (first >= n) {
        memcpy(r->bytes + at, src, n);
        return;
    }
    memcpy(r->bytes + at, src, first);
    memcpy(r->bytes, (const uint8_t *)src + first, n - first);
}

static void
copy_out(struct conc__ring *r, uint64_t pos, void *dst, size_t n)
{
    if (n == 0)
        return; /* an empty part may come with a NULL pointer */
    size_t at = (size_t)(pos & MASK), first = CONC__RING_CAP - at;
    if (first >= n) {
        memcpy(dst, r->bytes + at, n);
        return;
    }
    memcpy(dst, r->bytes + at, first);
    memcpy((uint8_t *)dst + first, r->bytes, n - first);
}

void
conc__ring_reset(struct conc__ring *r, uint64_t pos)
{
    atomic_store(&r->head, pos);
    atomic_store(&r->tail, pos);
    r->head_seen = r->tail_seen = pos;
}

/* Whether `need` bytes fit after `tail`, reading head again only when
 * the producer's copy says they do not. */
static int
room_for(struct conc__ring *r, uint64_t tail, uint64_t need)
{
    if (tail - r->head_seen <= CONC__RING_CAP - need)
        return 1;
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    return tail - r->head_seen <= CONC__RING_CAP - need;
}

/* Whether a frame is at `head`, reading tail again only when the
 * consumer's copy says there is none. */
static int
frame_at(struct conc__ring *r, uint64_t head, memory_order mo)
{
    if (head != r->tail_seen)
        return 1;
    r->tail_seen = atomic_load_explicit(&r->tail, mo);
    return head != r->tail_seen;
}

int
conc__ring_put(struct conc__ring *r, const void *const *parts,
               const size_t *lens, int n)
{
    uint64_t len = 0;
    for (int i = 0; i < n; i++)
        len += lens[i];
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (!room_for(r, tail, 8 + PAD8(len)))
        return 0;
    copy_in(r, tail, &len, 8);
    uint64_t pos = tail + 8;
    for (int i = 0; i < n; i++) {
        copy_in(r, pos, parts[i], lens[i]);
        pos += lens[i];
    }
    atomic_store_explicit(&r->tail, tail + 8 + PAD8(len), memory_order_seq_cst);
    if (atomic_load_explicit(&r->consumer_waiting, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&r->data, 1, memory_order_seq_cst);
        conc__futex_wake(&r->data, 1, 1);
    }
    return 1;
}

int
conc__ring_put_wait(struct conc__ring *r, const void *const *parts,
                    const size_t *lens, int n, int64_t deadline)
{
    for (;;) {
        uint32_t seen = atomic_load_explicit(&r->space, memory_order_seq_cst);
        if (conc__ring_put(r, parts, lens, n))
            return 1;
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline)
            return 0;
        atomic_store_explicit(&r->producer_waiting, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&r->space, memory_order_seq_cst) == seen)
            conc__futex_wait(&r->space, seen, deadline, 1);
        atomic_store_explicit(&r->producer_waiting, 0, memory_order_relaxed);
    }
}

int64_t
conc__ring_peek(struct conc__ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (!frame_at(r, head, memory_order_acquire))
        return -1;
    uint64_t len;
    copy_out(r, head, &len, 8);
    return (int64_t)len;
}

void
conc__ring_read(struct conc__ring *r, size_t off, void *dst, size_t n)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    copy_out(r, head + 8 + off, dst, n);
}

void
conc__ring_pop(struct conc__ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t len;
    copy_out(r, head, &len, 8);
    atomic_store_explicit(&r->head, head + 8 + PAD8(len), memory_order_seq_cst);
    if (atomic_load_explicit(&r->producer_waiting, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&r->space, 1, memory_order_seq_cst);
        conc__futex_wake(&r->space, 1, 1);
    }
}

static int
has_frame(struct conc__ring *r)
{
    return frame_at(r, atomic_load_explicit(&r->head, memory_order_relaxed),
                    memory_order_seq_cst);
}

int
conc__ring_wait(struct conc__ring *r, int64_t deadline, int64_t spin_ns)
{
    if (has_frame(r))
        return 1;
    /* The producer is another process, which may want this CPU. */
    struct conc__spin sp =
        conc__spin_start_flags(spin_ns, deadline, CONC__SPIN_YIELD);
    while (conc__spin_more(&sp))
        if (has_frame(r))
            return 1;
    for (;;) {
        uint32_t seen = atomic_load_explicit(&r->data, memory_order_seq_cst);
        atomic_store_explicit(&r->consumer_waiting, 1, memory_order_seq_cst);
        int rc = 0;
        if (!has_frame(r))
            rc = conc__futex_wait(&r->data, seen, deadline, 1);
        atomic_store_explicit(&r->consumer_waiting, 0, memory_order_relaxed);
        if (has_frame(r))
            return 1;
        if (rc == -ETIMEDOUT)
            return 0;
    }
}
