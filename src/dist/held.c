/* A Redis worker's held tasks: those a serving thread took from the stream
 * in a batch (XREADGROUP COUNT n) and that have not started yet. They wait
 * in one queue per worker, not per thread, so a task held behind a long
 * one runs on whichever thread of the worker is free first (worker.c);
 * the monitor renews their claims (monitor.c), and a stop hands them back
 * (worker.c).
 *
 * Each is a copy of its decoded entry in one block, so it outlives the
 * reply it came in and any thread may run it.
 *
 * Lock order: w->held_lock is a leaf; nothing else is taken under it. */
#include <string.h>

#include "core/internal.h"
#include "dist/worker_internal.h"

struct conc__dist_held *
conc__dist_held_new(size_t owner, const char *entry, size_t entry_len,
                    const struct conc__dist_task *t, int64_t checked_ns)
{
    if (entry_len >= CONC__DIST_ENTRY_MAX || t->id_len > CONC__DIST_NAME_MAX ||
        t->fn_len > CONC__DIST_NAME_MAX || t->sub_len > CONC__DIST_NAME_MAX)
        return NULL; /* decoded names are at most NAME_MAX */
    struct conc__dist_held *h = conc__malloc(sizeof *h + t->arg_len);
    if (!h)
        return NULL;
    h->next = NULL;
    h->owner = owner;
    h->checked_ns = checked_ns;
    memcpy(h->entry, entry, entry_len);
    h->entry[entry_len] = '\0';
    memcpy(h->id, t->id, t->id_len);
    memcpy(h->fn, t->fn, t->fn_len);
    memcpy(h->sub, t->sub, t->sub_len);
    if (t->arg_len)
        memcpy(h->arg, t->arg, t->arg_len);
    h->t = *t;
    h->t.id = h->id;
    h->t.fn = h->fn;
    h->t.sub = h->sub;
    h->t.arg = t->arg_len ? h->arg : NULL;
    return h;
}

void
conc__dist_held_free(struct conc__dist_held *h)
{
    while (h) {
        struct conc__dist_held *next = h->next;
        conc__free(h);
        h = next;
    }
}

/* Links hs[0..n) in order; returns the last. */
static struct conc__dist_held *
link_all(struct conc__dist_held **hs, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        hs[i]->next = hs[i + 1];
    hs[n - 1]->next = NULL;
    return hs[n - 1];
}

void
conc__dist_held_push(conc_dist_worker *w, struct conc__dist_held **hs, size_t n,
                     int front)
{
    if (!n)
        return;
    struct conc__dist_held *last = link_all(hs, n);
    conc__lockword_acquire(&w->held_lock, CONC__FOREVER, 0);
    if (front) {
        last->next = w->held_head;
        w->held_head = hs[0];
        if (!w->held_tail)
            w->held_tail = last;
    } else {
        if (w->held_tail)
            w->held_tail->next = hs[0];
        else
            w->held_head = hs[0];
        w->held_tail = last;
    }
    w->held_n += n;
    conc__lockword_release(&w->held_lock, 0);
}

/* Unlinks the head; the lock is held. */
static struct conc__dist_held *
pop_locked(conc_dist_worker *w)
{
    struct conc__dist_held *h = w->held_head;
    w->held_head = h->next;
    if (!w->held_head)
        w->held_tail = NULL;
    w->held_n--;
    h->next = NULL;
    return h;
}

size_t
conc__dist_held_take(conc_dist_worker *w, struct conc__dist_held **out,
                     size_t max, int64_t stale_before)
{
    size_t n = 0;
    conc__lockword_acquire(&w->held_lock, CONC__FOREVER, 0);
    if (w->held_head && max) {
        out[n++] = pop_locked(w);
        /* A stale head is checked again with those stale behind it, in
         * one round trip. */
        while (out[0]->checked_ns < stale_before && n < max && w->held_head &&
               w->held_head->checked_ns < stale_before)
            out[n++] = pop_locked(w);
    }
    conc__lockword_release(&w->held_lock, 0);
    return n;
}

int
conc__dist_held_any(conc_dist_worker *w)
{
    conc__lockword_acquire(&w->held_lock, CONC__FOREVER, 0);
    int any = w->held_head != NULL;
    conc__lockword_release(&w->held_lock, 0);
    return any;
}

struct conc__dist_held *
conc__dist_held_take_all(conc_dist_worker *w)
{
    conc__lockword_acquire(&w->held_lock, CONC__FOREVER, 0);
    struct conc__dist_held *all = w->held_head;
    w->held_head = w->held_tail = NULL;
    w->held_n = 0;
    conc__lockword_release(&w->held_lock, 0);
    return all;
}

size_t
conc__dist_held_ids(conc_dist_worker *w, size_t owner,
                    char (**ids)[CONC__DIST_ENTRY_MAX])
{
    size_t n = 0;
    *ids = NULL;
    conc__lockword_acquire(&w->held_lock, CONC__FOREVER, 0);
    if (w->held_n)
        *ids = conc__malloc(w->held_n * sizeof **ids);
    for (struct conc__dist_held *h = w->held_head; *ids && h; h = h->next)
        if (h->owner == owner)
            memcpy((*ids)[n++], h->entry, CONC__DIST_ENTRY_MAX);
    conc__lockword_release(&w->held_lock, 0);
    return n;
}
