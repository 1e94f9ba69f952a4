/* The loop's timers: an intrusive 4-ary min-heap ordered by (when, seq).
 *
 * Each handle knows its index in the heap, so a cancelled timer leaves the
 * heap at once in O(log n) instead of lingering until it comes due (what
 * asyncio does, with a periodic compaction). Four children per node make
 * the heap shallower than a binary one and keep a node's children in one
 * cache line of pointers; sift-down compares four keys per level, which
 * costs less than the cache misses of the extra levels it saves. The
 * sequence number makes timers for the same instant fire in the order
 * they were scheduled, as asyncio's heap of (when, seq) tuples does. */
#include <stdint.h>

#include "aio/aio_internal.h"

#define ARITY 4

static int
before(const conc_aio_handle *a, const conc_aio_handle *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
place(struct conc__aio_timers *t, size_t i, conc_aio_handle *h)
{
    t->heap[i] = h;
    h->heap_index = i;
}

static void
sift_up(struct conc__aio_timers *t, size_t i, conc_aio_handle *h)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(h, t->heap[parent]))
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, h);
}

static void
sift_down(struct conc__aio_timers *t, size_t i, conc_aio_handle *h)
{
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= t->n)
            break;
        size_t last = first + ARITY < t->n ? first + ARITY : t->n;
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (before(t->heap[c], t->heap[best]))
                best = c;
        if (!before(t->heap[best], h))
            break;
        place(t, i, t->heap[best]);
        i = best;
    }
    place(t, i, h);
}

int
conc__aio_timer_add(struct conc__aio_timers *t, conc_aio_handle *h)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        conc_aio_handle **heap = conc__realloc(t->heap, cap * sizeof *heap);
        if (!heap)
            return CONC_ENOMEM;
        t->heap = heap;
        t->cap = cap;
    }
    h->seq = t->seq++;
    sift_up(t, t->n++, h);
    return 0;
}

void
conc__aio_timer_remove(struct conc__aio_timers *t, conc_aio_handle *h)
{
    size_t i = h->heap_index;
    if (i == SIZE_MAX)
        return;
    CONC__ASSERT(i < t->n && t->heap[i] == h);
    h->heap_index = SIZE_MAX;
    conc_aio_handle *last = t->heap[--t->n];
    if (i == t->n)
        return;
    if (i > 0 && before(last, t->heap[(i - 1) / ARITY]))
        sift_up(t, i, last);
    else
        sift_down(t, i, last);
}

void
conc__aio_timers_free(struct conc__aio_timers *t)
{
    conc__free(t->heap);
    t->heap = NULL;
    t->n = t->cap = 0;
}
