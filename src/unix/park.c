/* The parking lot: coroutines waiting on futex words.
 *
 * A coroutine that would sleep on a futex word parks here instead, in a
 * bucket chosen by the word's address, and suspends through its loop. The
 * wake call every primitive already makes (conc__futex_wake) looks here
 * after the kernel: one global count of parked coroutines makes that a
 * single load when none is parked, so threads that never meet a coroutine
 * pay nothing but that load on their (already slow) wake path.
 *
 * The check and the park are atomic with respect to wakers, as the
 * kernel's are: the parker takes the bucket's lock, re-reads the word, and
 * links itself only if the word still holds the expected value; a waker
 * changes the word first and then takes the same lock to look for parked
 * coroutines, so it either finds the parker or the parker saw the change.
 * The waker claims (unlinks) a parked coroutine and calls its wake hook
 * under the lock, because the coroutine's record lives on its own stack
 * and may vanish as soon as it is unlinked and running again. A
 * coroutine cancelled after a waker claimed it passes the wake on to the
 * next waiter, so a release is never lost to a cancellation.
 *
 * Process-shared words. A waker in another process wakes only the
 * kernel's waiters, so a coroutine parked on a shared word gets a proxy:
 * a short-lived thread that waits in the kernel on the word and, when it
 * returns, wakes the coroutine as an in-process waker would. The proxy
 * waits with a bitset bit of its own (CONC__FUTEX_PROXY_BIT), so that the
 * coroutine, once resumed by whatever woke it first, can stop its proxy
 * with a wake that reaches proxies only; it then waits until the proxy no
 * longer touches the record on its stack. A wake another process meant for
 * one waiter that reaches a proxy reaches its coroutine, so none is lost.
 * Where no thread can be started the coroutine's thread waits instead.
 *
 * Locks: a bucket's lock is a spin lock that yields, held for a few list
 * operations and the wake hook (a lock-free push and at most one eventfd
 * write); it never calls anything that could park. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/internal.h"
#include "unix/coro.h"
#include "unix/futex.h"

_Thread_local struct conc__coro *conc__coro_self
    __attribute__((tls_model("initial-exec")));

#define NBUCKETS 256 /* a power of two */

struct parked {
    _Atomic uint32_t *word;
    struct conc__coro *coro;
    uint64_t token;
    struct parked *prev, *next;
};

struct bucket {
    atomic_flag lock;
    struct parked *head, *tail;
} __attribute__((aligned(64)));

static struct bucket buckets[NBUCKETS];
static _Atomic uint64_t nparked;

static struct bucket *
bucket_of(_Atomic uint32_t *word)
{
    uintptr_t a = (uintptr_t)word;
    a ^= a >> 17;
    a *= 0x9E3779B97F4A7C15u;
    return &buckets[(a >> 40) & (NBUCKETS - 1)];
}

static void
bucket_lock(struct bucket *b)
{
    unsigned spins = 0;
    while (atomic_flag_test_and_set_explicit(&b->lock, memory_order_acquire)) {
        if (++spins < 64)
            conc__cpu_relax();
        else
            sched_yield(); /* the holder was probably preempted */
    }
}

static void
bucket_unlock(struct bucket *b)
{
    atomic_flag_clear_explicit(&b->lock, memory_order_release);
}

static void
unlink_parked(struct bucket *b, struct parked *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        b->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        b->tail = p->prev;
    p->prev = p->next = NULL;
    p->word = NULL; /* marks it claimed */
}

void
conc__park_fork_lock(int take)
{
    for (int i = 0; i < NBUCKETS; i++) {
        if (take)
            bucket_lock(&buckets[i]);
        else
            bucket_unlock(&buckets[i]);
    }
}

void
conc__park_atfork_child(void)
{
    conc__coro_self = NULL;
    for (int i = 0; i < NBUCKETS; i++) {
        bucket_lock(&buckets[i]);
        buckets[i].head = buckets[i].tail = NULL;
        bucket_unlock(&buckets[i]);
    }
    atomic_store(&nparked, 0);
}

/* ---- Proxies for process-shared words ---------------------------------- */

enum { PROXY_WAITING, PROXY_STOP, PROXY_DONE };

struct proxy {
    _Atomic uint32_t *word;
    uint32_t expected;
    struct bucket *bucket;
    struct parked *parked;
    _Atomic uint32_t state;
};

#define PROXY_STACK (64 * 1024)

static void *
proxy_main(void *arg)
{
    struct proxy *x = arg;
    while (atomic_load_explicit(&x->state, memory_order_acquire) ==
           PROXY_WAITING) {
        int r = conc__futex_wait_bits(x->word, x->expected, CONC__FOREVER, 1,
                                      CONC__FUTEX_PROXY_BIT);
        if (r == -EINTR ||
            atomic_load_explicit(&x->state, memory_order_acquire) !=
                PROXY_WAITING)
            continue;
        /* Woken, or the word moved: wake the coroutine unless someone did. */
        bucket_lock(x->bucket);
        struct parked *p = x->parked;
        if (p->word) {
            unlink_parked(x->bucket, p);
            p->coro->ops->wake(p->coro, p->token);
        }
        bucket_unlock(x->bucket);
        break;
    }
    /* The last touch: the record may be gone right after. */
    atomic_store_explicit(&x->state, PROXY_DONE, memory_order_release);
    return NULL;
}

/* Starts a proxy for x. Returns 0 or a negated errno. */
static int
proxy_start(struct proxy *x)
{
    pthread_attr_t attr;
    pthread_t th;
    if (pthread_attr_init(&attr))
        return -ENOMEM;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, PROXY_STACK);
    int r = pthread_create(&th, &attr, proxy_main, x);
    pthread_attr_destroy(&attr);
    return -r;
}

/* Stops x and waits until it has let go of the record (a few microseconds:
 * it is in the kernel, or about to be, or done). */
static void
proxy_stop(struct proxy *x)
{
    uint32_t s = PROXY_WAITING;
    atomic_compare_exchange_strong(&x->state, &s, PROXY_STOP);
    while (atomic_load_explicit(&x->state, memory_order_acquire) !=
           PROXY_DONE) {
        /* Repeated: a proxy not yet asleep misses a wake, not its state. */
        conc__futex_wake_bits(x->word, INT32_MAX, 1, CONC__FUTEX_PROXY_BIT);
        sched_yield();
    }
}

/* ---- Parking
 * ------------------------------------------------------------------ */

int
conc__park_wait(struct conc__coro *c, _Atomic uint32_t *word, uint32_t expected,
                int64_t deadline, int shared)
{
    if (deadline != CONC__FOREVER && deadline <= conc__now_ns())
        return -ETIMEDOUT;
    if (c->scope && c->cancel_seen)
        return -ETIMEDOUT; /* the call is unwinding after a cancellation */
    struct bucket *b = bucket_of(word);
    struct parked p = {.word = word, .coro = c, .token = conc__coro_token(c)};

    atomic_fetch_add_explicit(&nparked, 1, memory_order_seq_cst);
    bucket_lock(b);
    if (atomic_load_explicit(word, memory_order_seq_cst) != expected) {
        bucket_unlock(b);
        atomic_fetch_sub_explicit(&nparked, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    p.prev = b->tail;
    if (b->tail)
        b->tail->next = &p;
    else
        b->head = &p;
    b->tail = &p;
    bucket_unlock(b);

    struct proxy x = {
        .word = word, .expected = expected, .bucket = b, .parked = &p};
    int proxied = shared && proxy_start(&x) == 0;
    int r;
    if (shared && !proxied) { /* no proxy: this thread waits in the kernel */
        r = conc__futex_wait_bits(word, expected, deadline, 1,
                                  ~CONC__FUTEX_PROXY_BIT);
        r = r == -ETIMEDOUT ? -ETIMEDOUT : 0;
    } else {
        r = c->ops->suspend(c, deadline,
                            c->scope); /* CONC_ETIMEDOUT is -ETIMEDOUT */
    }
    if (proxied)
        proxy_stop(&x);

    bucket_lock(b);
    int claimed = p.word == NULL;
    if (!claimed) /* a timeout or a cancellation */
        unlink_parked(b, &p);
    bucket_unlock(b);
    atomic_fetch_sub_explicit(&nparked, 1, memory_order_relaxed);
    if (r == -ECANCELED) {
        if (claimed) /* pass the wake on, not lose it */
            conc__futex_wake(word, 1, shared);
        /* End the wait as a timeout does; the scope reports the cancel. */
        c->cancel_seen = 1;
        return -ETIMEDOUT;
    }
    if (claimed)
        r = 0; /* woken as well: the caller re-checks its condition */
    return r;
}

int
conc__park_wake(_Atomic uint32_t *word, int n)
{
    /* Pairs with the parker's increment: whoever changed the word before
     * this call is ordered before the load. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&nparked, memory_order_relaxed) == 0)
        return 0;
    struct bucket *b = bucket_of(word);
    int woken = 0;
    bucket_lock(b);
    for (struct parked *p = b->head, *next; p && woken < n; p = next) {
        next = p->next;
        if (p->word != word)
            continue;
        struct conc__coro *c = p->coro;
        uint64_t token = p->token;
        unlink_parked(b, p);
        c->ops->wake(c, token);
        woken++;
    }
    bucket_unlock(b);
    return woken;
}
