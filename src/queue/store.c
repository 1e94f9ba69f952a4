/* Storage of conc_queue: growable arrays, and the binary heap of a priority
 * queue.
 *
 * The heap orders entries by (priority, sequence number). Sequence numbers
 * are unique and grow with every put, so no two entries compare equal and
 * equal priorities come out first in, first out, which a plain binary heap
 * would not guarantee. The caller holds the queue's lock around every call
 * here. */
#include <stdint.h>

#include "queue/queue_internal.h"

#define FIRST_CAP 16

/* Arrays up to this many elements are kept whatever the queue holds: a
 * burst leaves memory behind only above it. */
#define KEEP_CAP 1024

int
conc__qstore_reserve(struct conc__qstore *s, size_t elem, size_t limit)
{
    if (s->len < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : FIRST_CAP;
    if (cap < s->cap || cap > SIZE_MAX / elem)
        return CONC_ENOMEM;
    if (limit && cap > limit)
        cap = limit > s->len ? limit : s->len + 1;
    void *buf = conc__realloc(s->buf, cap * elem);
    if (!buf)
        return CONC_ENOMEM;
    s->buf = buf;
    s->cap = cap;
    return 0;
}

void
conc__qstore_shrink(struct conc__qstore *s, size_t elem)
{
    if (!conc__qstore_oversized(s->cap, s->len))
        return;
    size_t cap = s->cap / 2;
    void *buf = conc__realloc(s->buf, cap * elem);
    if (buf) { /* else keep the larger array: nothing is lost */
        s->buf = buf;
        s->cap = cap;
    }
}

int
conc__qstore_oversized(size_t cap, size_t len)
{
    return cap > KEEP_CAP && len < cap / 4;
}

/* Whether a leaves before b. */
static int
before(const struct conc__qentry *a, const struct conc__qentry *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

void
conc__qheap_push(struct conc__qstore *s, const struct conc__qentry *e)
{
    struct conc__qentry *h = s->buf;
    size_t i = s->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = *e;
}

void
conc__qheap_pop(struct conc__qstore *s, struct conc__qentry *e)
{
    struct conc__qentry *h = s->buf;
    *e = h[0];
    struct conc__qentry last = h[--s->len];
    size_t n = s->len, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && before(&h[child + 1], &h[child]))
            child++;
        if (!before(&h[child], &last))
            break;
        h[i] = h[child];
        i = child;
    }
    if (n > 0)
        h[i] = last;
}
