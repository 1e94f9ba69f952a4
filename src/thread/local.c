/* Thread-local data (threading.local), without pthread keys' limit.
 *
 * Design. Each local has a small integer id and a generation number that
 * no other local ever had. Each thread has a table of slots indexed by id,
 * growable, reached through one initial-exec TLS block, so that
 * conc_local_get is a TLS load, a bounds check and a generation check: the
 * slot holds a value for this local only if its generation matches, so an
 * id recycled after conc_local_free never shows the old local's value.
 *
 * conc_local_free must reach every thread's value, so a local knows its
 * holders: slot `id` of every thread that holds a value for it is a node
 * of a doubly linked list whose head is in the local and whose links point
 * at the holders' TLS blocks. Linking costs nothing more than the slot
 * itself. A slot is linked exactly when its generation is non-zero.
 *
 * Locking. One lock word guards the lists, the id map and every table's
 * growth. The owning thread reads its own table without it (it is the
 * only writer of its table pointer and size, and writes them under the
 * lock, for the others who read them under it); replacing an existing
 * value touches only that thread's slot and needs no lock either, since
 * conc_local_free may not run on a local that a thread still uses.
 *
 * Destructors never run under the lock. A thread that ends takes its
 * values out one at a time, then runs the destructor unlocked; that may
 * race with conc_local_free of the same local, which takes every other
 * holder's value the same way. `inflight` counts destructors running in
 * ending threads, and conc_local_free waits for it to drop to zero, so
 * that when it returns every destructor has returned. */
#include <string.h>

#include "thread/thread_internal.h"

#define NO_ID UINT32_MAX

/* Rounds of destructors at thread exit; values set by the last round's
 * destructors are dropped, as pthread keys do. */
#define DTOR_ROUNDS 4

struct conc_local {
    uint32_t id;  /* fixed */
    uint64_t gen; /* fixed, never 0 */
    conc_local_dtor_fn dtor;
    struct conc__thread_tls *head; /* holders; guarded by the lock */
    _Atomic uint32_t inflight;     /* futex; written under the lock */
    uint32_t freeing;              /* conc_local_free waits; under lock */
};

struct id_entry {
    conc_local *local; /* NULL when the id is free */
    uint32_t next_free;
};

static struct {
    conc__lockword lock;
    struct id_entry *ids; /* guarded by lock, as are the counts below */
    uint32_t cap;         /* entries allocated */
    uint32_t used;        /* ids handed out at least once */
    uint32_t live;        /* locals not freed */
    uint32_t free_head;   /* recycled ids, a list through next_free */
    uint64_t gen;         /* last generation handed out */
} locals = {.free_head = NO_ID};

static void
lock(void)
{
    conc__lockword_acquire(&locals.lock, CONC__FOREVER, 0);
}

static void
unlock(void)
{
    conc__lockword_release(&locals.lock, 0);
}

/* ---- Lists of holders ---------------------------------------------------- */

static void
link_locked(conc_local *l, struct conc__thread_tls *tab, void *value)
{
    struct conc__local_slot *s = &tab->slots[l->id];
    s->gen = l->gen;
    s->value = value;
    s->prev = NULL;
    s->next = l->head;
    if (l->head)
        l->head->slots[l->id].prev = tab;
    l->head = tab;
    tab->nlinked++;
}

/* Unlinks `tab`'s slot for `l` and returns its value. */
static void *
take_locked(conc_local *l, struct conc__thread_tls *tab)
{
    struct conc__local_slot *s = &tab->slots[l->id];
    if (s->prev)
        s->prev->slots[l->id].next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->slots[l->id].prev = s->prev;
    void *value = s->value;
    memset(s, 0, sizeof *s);
    tab->nlinked--;
    return value;
}

/* ---- Ids ------------------------------------------------------------------
 */

static int
take_id_locked(uint32_t *id)
{
    if (locals.free_head != NO_ID) {
        *id = locals.free_head;
        locals.free_head = locals.ids[*id].next_free;
        return 0;
    }
    if (locals.used == locals.cap) {
        if (locals.cap >= NO_ID / 2)
            return CONC_ENOMEM;
        uint32_t cap = locals.cap ? locals.cap * 2 : 16;
        struct id_entry *ids =
            conc__realloc(locals.ids, cap * sizeof *locals.ids);
        if (!ids)
            return CONC_ENOMEM;
        locals.ids = ids;
        locals.cap = cap;
    }
    *id = locals.used++;
    return 0;
}

/* Returns `l`'s id. When no local is left, the id map and the calling
 * thread's table go too, so that a program (or a test) that frees all its
 * locals holds no memory for them; other threads free their tables when
 * they end. */
static void
release_id_locked(conc_local *l)
{
    locals.ids[l->id].local = NULL;
    locals.ids[l->id].next_free = locals.free_head;
    locals.free_head = l->id;
    if (--locals.live)
        return;
    conc__free(locals.ids);
    locals.ids = NULL;
    locals.cap = locals.used = 0;
    locals.free_head = NO_ID;
    struct conc__thread_tls *me = &conc__tls;
    CONC__ASSERT(me->nlinked == 0);
    conc__free(me->slots);
    me->slots = NULL;
    me->cap = 0;
}

/* ---- The public calls ------------------------------------------------------
 */

int
conc_local_new(conc_local_dtor_fn dtor, conc_local **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_local *l = conc__malloc(sizeof *l);
    if (!l)
        return CONC_ENOMEM;
    memset(l, 0, sizeof *l);
    l->dtor = dtor;
    lock();
    int r = take_id_locked(&l->id);
    if (r) {
        unlock();
        conc__free(l);
        return r;
    }
    locals.ids[l->id].local = l;
    locals.live++;
    l->gen = ++locals.gen;
    unlock();
    *out = l;
    return 0;
}

/* Waits, lock held, until no ending thread runs a destructor for `l`. */
static void
wait_inflight_locked(conc_local *l)
{
    l->freeing = 1;
    for (;;) {
        uint32_t n = atomic_load_explicit(&l->inflight, memory_order_relaxed);
        if (!n)
            return;
        unlock();
        conc__futex_wait(&l->inflight, n, CONC__FOREVER, 0);
        lock();
    }
}

void
conc_local_free(conc_local *l)
{
    if (!l)
        return;
    lock();
    while (l->head) {
        void *v = take_locked(l, l->head);
        if (v && l->dtor) {
            unlock();
            l->dtor(v);
            lock();
        }
    }
    wait_inflight_locked(l);
    release_id_locked(l);
    unlock();
    conc__free(l);
}

void *
conc_local_get(conc_local *l)
{
    if (!l)
        return NULL;
    struct conc__thread_tls *me = &conc__tls;
    uint32_t id = l->id;
    if (CONC__LIKELY(id < me->cap)) {
        struct conc__local_slot *s = &me->slots[id];
        if (s->gen == l->gen)
            return s->value;
    }
    return NULL;
}

/* Makes room for slot `id` in the calling thread's table. */
static int
grow_locked(struct conc__thread_tls *me, uint32_t id)
{
    uint32_t cap = me->cap ? me->cap : 8;
    while (cap <= id)
        cap *= 2;
    struct conc__local_slot *slots =
        conc__realloc(me->slots, cap * sizeof *slots);
    if (!slots)
        return CONC_ENOMEM;
    memset(slots + me->cap, 0, (cap - me->cap) * sizeof *slots);
    me->slots = slots;
    me->cap = cap;
    return 0;
}

/* The first value of this thread for `l`: link the slot. */
static int
set_first(conc_local *l, struct conc__thread_tls *me, void *value)
{
    int r = conc__thread_hook_exit();
    if (r)
        return r;
    lock();
    if (l->id >= me->cap && (r = grow_locked(me, l->id))) {
        unlock();
        return r;
    }
    link_locked(l, me, value);
    unlock();
    return 0;
}

int
conc_local_set(conc_local *l, void *value)
{
    if (!l)
        return CONC_EINVAL;
    struct conc__thread_tls *me = &conc__tls;
    uint32_t id = l->id;
    if (id < me->cap && me->slots[id].gen == l->gen) {
        void *old = me->slots[id].value;
        me->slots[id].value = value;
        if (old && old != value && l->dtor)
            l->dtor(old);
        return 0;
    }
    if (!value)
        return 0;
    return set_first(l, me, value);
}

/* ---- Thread exit ------------------------------------------------------------
 */

/* The first linked slot of `me` from `i` on, or me->cap. Lock held. */
static uint32_t
next_linked_locked(struct conc__thread_tls *me, uint32_t i)
{
    while (i < me->cap && !me->slots[i].gen)
        i++;
    return i;
}

/* Runs `dtor(value)` for a value taken from an ending thread, counted in
 * `inflight` so that conc_local_free of `l` waits for it. */
static void
run_counted(conc_local *l, conc_local_dtor_fn dtor, void *value)
{
    dtor(value);
    lock();
    if (atomic_fetch_sub_explicit(&l->inflight, 1, memory_order_relaxed) == 1 &&
        l->freeing)
        conc__futex_wake(&l->inflight, INT32_MAX, 0);
    unlock();
}

/* One round over the calling thread's slots. Returns whether it found a
 * value. */
static int
exit_round(struct conc__thread_tls *me)
{
    int found = 0;
    for (uint32_t i = 0;; i++) {
        lock();
        i = next_linked_locked(me, i);
        if (i >= me->cap) {
            unlock();
            return found;
        }
        conc_local *l = locals.ids[i].local;
        CONC__ASSERT(l && l->gen == me->slots[i].gen);
        void *v = take_locked(l, me);
        conc_local_dtor_fn dtor = v ? l->dtor : NULL;
        if (dtor)
            atomic_fetch_add_explicit(&l->inflight, 1, memory_order_relaxed);
        unlock();
        found = 1;
        if (dtor)
            run_counted(l, dtor, v);
    }
}

void
conc__local_thread_exit(void)
{
    struct conc__thread_tls *me = &conc__tls;
    if (!me->cap)
        return;
    for (int round = 0; round < DTOR_ROUNDS; round++)
        if (!exit_round(me))
            break;
    lock();
    for (uint32_t i = next_linked_locked(me, 0); i < me->cap;
         i = next_linked_locked(me, i + 1))
        take_locked(locals.ids[i].local, me);
    conc__free(me->slots);
    me->slots = NULL;
    me->cap = 0;
    unlock();
}

/* ---- Fork -------------------------------------------------------------------
 */

void
conc__local_atfork_prepare(void)
{
    lock();
}

void
conc__local_atfork_parent(void)
{
    unlock();
}

/* The child's other threads are gone: none runs a destructor any more.
 * Their tables stay linked (the child has a copy of their memory), so
 * conc_local_free there still destroys the values they held. */
void
conc__local_atfork_child(void)
{
    conc__thread_lock_reset(&locals.lock);
    for (uint32_t i = 0; i < locals.used; i++)
        if (locals.ids[i].local)
            atomic_store_explicit(&locals.ids[i].local->inflight, 0,
                                  memory_order_relaxed);
}
