/* SimpleQueue: an unbounded many-producer many-consumer FIFO whose
 * producers never wait for each other and whose consumers pass a tiny spin
 * lock.
 *
 * Design. Items live in a linked list of segments, each holding SEG_CAP
 * items. Two 64-bit positions count through them: `tail`, the next slot a
 * producer will claim, and `head`, the next slot a consumer will take.
 * Position p lies in lap p / LAP at offset p % LAP, where LAP is
 * SEG_CAP + 1: offset SEG_CAP is never a slot but marks "this segment is
 * full and the next one is being linked in"; a producer that reads it
 * waits a few cycles for the tail to move on.
 *
 * Producers are lock-free. A producer claims position t with a CAS on
 * `tail`, stores the item, then sets the slot's `written` flag with a plain
 * release store (nobody else writes it). Positions only grow, so no CAS is
 * fooled by a value that came back (no ABA problem). The producer that
 * claims a segment's last slot allocates the next segment before its CAS
 * (so a failed allocation claims nothing and the caller keeps the item),
 * then publishes it (tail_seg, tail past the marker, the old segment's
 * `next`) before it writes its item. Writing the item is a put's last
 * touch of the queue (a sleeping getter is woken just before), so the
 * thread that gets the last item may free the queue at once.
 *
 * Consumers take `glock`, a spin lock held for a few dozen instructions. It
 * buys three things. A get needs one atomic read-modify-write (the lock's
 * acquire; the release is a plain store) where a lock-free consumer needs
 * two (its claim, and a count that tells when a segment may be freed).
 * Under the lock the head segment cannot vanish, so the consumer may look
 * at the head slot's `written` flag and read the producers' `tail` only
 * when that flag stays clear. And the consumer that moves the head past a
 * segment knows every item in it was taken, and that every producer
 * finished with it (each item was written before it could be taken), so it
 * recycles the segment at once. A consumer that finds the head slot
 * claimed but not yet written waits for it; that, and a blocking get's
 * brief watch of the head slot (below), are the only waits under the lock,
 * each as short as a producer's store.
 *
 * Recycled segments wait in a small pool of spares, so a steady flow calls
 * no allocator (cross-thread malloc/free contend on the allocator's lock).
 *
 * Speed. The producers' line (tail), the consumers' line (glock, head) and
 * the sleepers' line are apart; an item and its flag share a line. When
 * the consumer keeps up with the producer, every line they share moves
 * between their cores for each item, and a consumer polling `tail` takes
 * that line from the producer just when the producer's CAS needs it. So a
 * blocking get that finds the head slot unwritten watches that slot for a
 * moment first, at doubling gaps: the next item usually lands there within
 * a few hundred nanoseconds, and `tail` stays with the producers. This
 * lifted a one-producer one-consumer run from about 5 to about 60 million
 * items a second on the machine it was tuned on. A put makes a system call
 * only when a getter sleeps (queue_internal.h). */
#include <math.h>
#include <stdatomic.h>

#include "queue/queue_internal.h"
#include "unix/coro.h"

#define LAP     128
#define SEG_CAP (LAP - 1)

_Static_assert(SEG_CAP == CONC__SIMPLEQUEUE_SEGMENT, "segment size");

/* Segments kept for reuse: one cache line of pointers. */
#define SPARES 8

/* An item and its flag share a cache line, so that while the consumer
 * keeps up with the producer each item moves one line between them (in
 * separate arrays the flags would add a second). */
struct slot {
    void *item;
    _Atomic uint32_t written; /* 1 once item holds its value */
};

struct segment {
    _Atomic(struct segment *) next; /* set once, by a producer */
    struct slot slots[SEG_CAP];
};

struct conc_simplequeue {
    conc_queue_drop_fn drop; /* fixed at creation */
    char pad0[CONC__QUEUE_LINE];

    /* Consumers' line. */
    _Atomic uint32_t glock;   /* 1 while a consumer holds it */
    _Atomic uint64_t head;    /* written under glock, read anywhere */
    struct segment *head_seg; /* guarded by glock */
    char pad1[CONC__QUEUE_LINE];

    /* Producers' line. */
    _Atomic uint64_t tail;
    _Atomic(struct segment *) tail_seg;
    char pad2[CONC__QUEUE_LINE];

    struct conc__qwait getters; /* read by every put */
    char pad3[CONC__QUEUE_LINE];

    /* Recycled segments; each entry is exchanged atomically, NULL when
     * empty. Eight let one side run a few segments ahead for a while
     * without a call to the allocator. */
    _Atomic(struct segment *) spares[SPARES];
};

/* A cleared segment: a spare if there is one, else a new one. */
static struct segment *
segment_new(conc_simplequeue *q)
{
    struct segment *seg = NULL;
    for (unsigned i = 0; i < SPARES && !seg; i++)
        if (atomic_load_explicit(&q->spares[i], memory_order_relaxed))
            seg = atomic_exchange_explicit(&q->spares[i], NULL,
                                           memory_order_acquire);
    if (!seg)
        return conc__calloc(1, sizeof(struct segment));
    atomic_store_explicit(&seg->next, NULL, memory_order_relaxed);
    for (unsigned i = 0; i < SEG_CAP; i++)
        atomic_store_explicit(&seg->slots[i].written, 0, memory_order_relaxed);
    return seg;
}

/* Keeps `seg` as a spare, or frees it if there are enough. */
static void
segment_recycle(conc_simplequeue *q, struct segment *seg)
{
    for (unsigned i = 0; i < SPARES; i++) {
        struct segment *none = NULL;
        if (!atomic_load_explicit(&q->spares[i], memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(&q->spares[i], &none, seg,
                                                    memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
    conc__free(seg);
}

int
conc_simplequeue_new(conc_queue_drop_fn drop, conc_simplequeue **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_simplequeue *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    struct segment *seg = conc__calloc(1, sizeof(struct segment));
    if (!seg) {
        conc__free(q);
        return CONC_ENOMEM;
    }
    q->drop = drop;
    q->head_seg = seg;
    atomic_init(&q->tail_seg, seg);
    *out = q;
    return 0;
}

void
conc_simplequeue_free(conc_simplequeue *q)
{
    if (!q)
        return;
    uint64_t pos = atomic_load(&q->head);
    uint64_t end = atomic_load(&q->tail);
    struct segment *seg = q->head_seg;
    for (; pos != end; pos++) {
        unsigned off = (unsigned)(pos % LAP);
        if (off == SEG_CAP) {
            struct segment *next = atomic_load(&seg->next);
            conc__free(seg);
            seg = next;
        } else if (q->drop) {
            q->drop(seg->slots[off].item);
        }
    }
    conc__free(seg);
    for (unsigned i = 0; i < SPARES; i++)
        conc__free(atomic_load(&q->spares[i]));
    conc__free(q);
}

/* Claims the tail slot, wakes a sleeping getter if there is one, and fills
 * the slot. Returns 0 or CONC_ENOMEM. */
int
conc_simplequeue_put(conc_simplequeue *q, void *item)
{
    if (!q)
        return CONC_EINVAL;
    struct segment *spare = NULL;
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    for (;;) {
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        struct segment *seg =
            atomic_load_explicit(&q->tail_seg, memory_order_acquire);
        unsigned off = (unsigned)(t % LAP);
        if (off == SEG_CAP) {
            conc__spin_step(&sp); /* another producer links the next segment */
            continue;
        }
        if (off + 1 == SEG_CAP && !spare && !(spare = segment_new(q)))
            return CONC_ENOMEM;
        /* Sequentially consistent: pairs with a sleeping getter's check. */
        if (!atomic_compare_exchange_weak(&q->tail, &t, t + 1))
            continue;
        if (off + 1 == SEG_CAP) {
            atomic_store_explicit(&q->tail_seg, spare, memory_order_release);
            atomic_store_explicit(&q->tail, t + 2, memory_order_release);
            atomic_store_explicit(&seg->next, spare, memory_order_release);
        } else if (spare) {
            segment_recycle(q, spare); /* allocated for a lost race */
        }
        /* The claim is the change a sleeping getter looks for, so it may be
         * woken now; it waits the moment until the item is written. */
        conc__qwait_notify(&q->getters, 1);
        /* Handing the item over is the last touch of the queue: whoever
         * takes it may free the queue. */
        seg->slots[off].item = item;
        atomic_store_explicit(&seg->slots[off].written, 1,
                              memory_order_release);
        return 0;
    }
}

static void
glock_acquire(conc_simplequeue *q)
{
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    while (atomic_exchange_explicit(&q->glock, 1, memory_order_acquire))
        while (atomic_load_explicit(&q->glock, memory_order_relaxed))
            conc__spin_step(&sp);
}

static void
glock_release(conc_simplequeue *q)
{
    atomic_store_explicit(&q->glock, 0, memory_order_release);
}

/* Watches `s`, by the spin policy of core/wait.h, for it to be written.
 * Returns whether it was. */
static int
slot_wait(struct slot *s, int64_t deadline)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&s->written, memory_order_acquire))
            return 1;
    return 0;
}

/* Takes the oldest item into *item. Returns 0 or CONC_EEMPTY. A consumer
 * that finds the head slot unwritten first watches that slot for a spin
 * (none if `deadline` is CONC__POLL): while it keeps up with a producer,
 * the next item is usually a moment away, and reading the slot rather than
 * `tail` leaves the producers' line alone. */
static int
pop(conc_simplequeue *q, void **item, int64_t deadline)
{
    glock_acquire(q);
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    struct segment *seg = q->head_seg;
    unsigned off = (unsigned)(h % LAP);
    if (!atomic_load_explicit(&seg->slots[off].written, memory_order_acquire) &&
        !slot_wait(&seg->slots[off], deadline)) {
        if (h >= atomic_load(&q->tail)) {
            glock_release(q);
            return CONC_EEMPTY;
        }
        /* Claimed by a producer that has yet to store the item. */
        struct conc__spin sp = CONC__SPIN_STEP_INIT;
        while (!atomic_load_explicit(&seg->slots[off].written,
                                     memory_order_acquire))
            conc__spin_step(&sp);
    }
    *item = seg->slots[off].item;
    if (off + 1 == SEG_CAP) {
        /* Linked before this item was written, so already visible. */
        q->head_seg = atomic_load_explicit(&seg->next, memory_order_acquire);
        atomic_store_explicit(&q->head, h + 2, memory_order_release);
        segment_recycle(q, seg);
    } else {
        atomic_store_explicit(&q->head, h + 1, memory_order_release);
    }
    glock_release(q);
    return 0;
}

static int
nonempty(const void *arg)
{
    conc_simplequeue *q = (conc_simplequeue *)arg;
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    return h < atomic_load(&q->tail);
}

/* The waiting half of conc_simplequeue_get. */
static int
get_waiting_body(conc_simplequeue *q, int64_t deadline, void **item)
{
    for (;;) {
        int timed_out =
            conc__qwait_until(&q->getters, NULL, nonempty, q, deadline);
        if (pop(q, item, CONC__POLL) == 0)
            return 0;
        if (timed_out)
            return CONC_EEMPTY; /* after a last look at the deadline */
    }
}

/* get_waiting_body as a cancellation point in a coroutine, out of line. */
static __attribute__((noinline)) int
get_waiting(conc_simplequeue *q, int64_t deadline, void **item)
{
    CONC__CANCEL_POINT(get_waiting_body(q, deadline, item));
}

int
conc_simplequeue_get(conc_simplequeue *q, double timeout, void **item)
{
    if (!q)
        return CONC_EINVAL;
    if (!item || isnan(timeout))
        return CONC_EINVAL;
    if (pop(q, item, timeout == 0 ? CONC__POLL : CONC__FOREVER) == 0)
        return 0;
    if (timeout == 0)
        return CONC_EEMPTY;
    int64_t deadline; /* only now: a get that need not wait reads no clock */
    conc__deadline(timeout, &deadline);
    return get_waiting(q, deadline, item);
}

int
conc_simplequeue_get_nowait(conc_simplequeue *q, void **item)
{
    if (!q)
        return CONC_EINVAL;
    return conc_simplequeue_get(q, 0, item);
}

/* Items before position p: SEG_CAP per full lap plus the offset. */
static uint64_t
items_before(uint64_t p)
{
    uint64_t off = p % LAP;
    return (p / LAP) * SEG_CAP + (off < SEG_CAP ? off : SEG_CAP);
}

size_t
conc_simplequeue_qsize(conc_simplequeue *q)
{
    if (!q)
        return 0;
    for (;;) {
        uint64_t t = atomic_load(&q->tail);
        uint64_t h = atomic_load(&q->head);
        if (atomic_load(&q->tail) != t)
            continue; /* take a snapshot in which tail held still */
        uint64_t n = items_before(t) - items_before(h);
        return h > t ? 0 : (size_t)n;
    }
}

int
conc_simplequeue_empty(conc_simplequeue *q)
{
    if (!q)
        return CONC_EINVAL;
    return !nonempty(q);
}

unsigned
conc__simplequeue_waiters(conc_simplequeue *q)
{
    return (unsigned)atomic_load(&q->getters.sleepers);
}
