/* Fibers (src/unix/fiber.h): switching, what a switch preserves, stacks
 * and their pool, slab stacks past the budget of guarded ones, the zeroed
 * base frame that ends a backtrace, stacks freed at thread exit, and the
 * stack-overflow reports (guard page and canary) of a forked child.
 *
 * Every test ends with no stack left mapped (the thread's pool is drained
 * and the count of mapped stacks checked) besides the leak guard's
 * descriptors, threads and allocations. */
#include <errno.h>
#include <limits.h>
#include <fenv.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "core/internal.h"
#include "unix/fiber.h"

/* A bound for the child of the overflow tests to finish. */
#define CHILD_WAIT_MS 20000

static void
end_clean(void)
{
    assert_ptr_equal(conc__fiber_self(), conc__fiber_thread());
    conc__fiber_thread_cleanup();
    assert_int_equal(conc__fiber_stacks_mapped(), 0);
}

static conc__fiber *
new_fiber(size_t size, conc__fiber_fn fn, void *arg)
{
    conc__fiber *f = NULL;
    assert_conc_ok(conc__fiber_new(size, fn, arg, &f));
    assert_non_null(f);
    return f;
}

/* ---- Switching ------------------------------------------------------------
 */

struct pingpong {
    conc__fiber *base;
    conc__fiber *self;
    int rounds;
    int seen;
};

static void
pingpong_fn(void *arg)
{
    struct pingpong *p = arg;
    assert_ptr_equal(conc__fiber_self(), p->self);
    assert_ptr_equal(conc__fiber_thread(), p->base);
    for (int i = 0; i < p->rounds; i++) {
        p->seen++;
        conc__fiber_switch(p->base);
    }
    conc__fiber_exit(p->base);
}

static void
test_switch_round_trips(void **state)
{
    (void)state;
    conc__fiber *base = conc__fiber_thread();
    assert_non_null(base);
    assert_ptr_equal(conc__fiber_self(), base);
    struct pingpong p = {.base = base, .rounds = 100};
    p.self = new_fiber(0, pingpong_fn, &p);
    for (int i = 1; i <= p.rounds; i++) {
        conc__fiber_switch(p.self);
        assert_int_equal(p.seen, i);
        assert_ptr_equal(conc__fiber_self(), base);
    }
    conc__fiber_switch(p.self); /* it exits */
    assert_int_equal(p.seen, p.rounds);
    conc__fiber_switch(base); /* to itself: returns at once */
    conc__fiber_free(p.self);
    conc__fiber_free(NULL);
    end_clean();
}

static void
test_new_refuses(void **state)
{
    (void)state;
    conc__fiber *f = NULL;
    assert_conc(conc__fiber_new(0, NULL, NULL, &f), CONC_EINVAL);
    assert_conc(conc__fiber_new(0, pingpong_fn, NULL, NULL), CONC_EINVAL);
    assert_conc(conc__fiber_new(SIZE_MAX, pingpong_fn, NULL, &f), CONC_EINVAL);
    assert_conc(conc__fiber_new(SIZE_MAX / 4, pingpong_fn, NULL, &f),
                CONC_ENOMEM);
    assert_null(f);
    end_clean();
}

/* Many values live across a switch: the compiler keeps them in
 * callee-saved registers, which the other fiber clobbers with its own. */
struct regs {
    conc__fiber *base;
    uint64_t sum;
};

static uint64_t
mix(volatile uint64_t *seed, conc__fiber *to)
{
    uint64_t a = *seed, b = a * 3, c = a ^ 0x55, d = a + 7, e = a * a,
             g = a >> 3, h = ~a, k = a * 11, m = a ^ (a << 5);
    if (to)
        conc__fiber_switch(to);
    return a + b * 2 + c * 3 + d * 5 + e * 7 + g * 11 + h * 13 + k * 17 +
           m * 19;
}

static void
regs_fn(void *arg)
{
    struct regs *r = arg;
    volatile uint64_t seed = 12345;
    for (int i = 0; i < 50; i++) {
        seed = seed * 6364136223846793005u + 1;
        r->sum += mix(&seed, r->base);
    }
    conc__fiber_exit(r->base);
}

static void
test_switch_keeps_callee_saved_registers(void **state)
{
    (void)state;
    struct regs r = {.base = conc__fiber_thread()};
    conc__fiber *f = new_fiber(0, regs_fn, &r);
    volatile uint64_t seed = 999;
    uint64_t mine = 0, want = 0;
    for (int i = 0; i < 50; i++) {
        seed = seed * 2862933555777941757u + 3;
        volatile uint64_t copy = seed;
        want += mix(&copy, NULL);
        mine += mix(&seed, f);
    }
    conc__fiber_switch(f);
    assert_int_equal(mine, want);
    /* The fiber's own sum, computed again without switches. */
    volatile uint64_t seed2 = 12345;
    uint64_t sum = 0;
    for (int i = 0; i < 50; i++) {
        seed2 = seed2 * 6364136223846793005u + 1;
        sum += mix(&seed2, NULL);
    }
    assert_int_equal(r.sum, sum);
    conc__fiber_free(f);
    end_clean();
}

/* Each fiber keeps its own floating-point rounding mode (MXCSR and the
 * x87 control word, or FPCR). */
struct round_ctx {
    conc__fiber *base;
    int seen[2];
};

static void
round_fn(void *arg)
{
    struct round_ctx *c = arg;
    fesetround(FE_UPWARD);
    conc__fiber_switch(c->base);
    c->seen[0] = fegetround();
    /* Rounded up, a third lies above the nearest double to it. */
    volatile double one = 1.0, three = 3.0;
    c->seen[1] = one / three > 0.3333333333333333;
    conc__fiber_exit(c->base);
}

static void
test_switch_keeps_rounding_mode(void **state)
{
    (void)state;
    struct round_ctx c = {.base = conc__fiber_thread()};
    conc__fiber *f = new_fiber(0, round_fn, &c);
    assert_int_equal(fegetround(), FE_TONEAREST);
    conc__fiber_switch(f);
    /* fegetround reads the x87 control word; SSE arithmetic, MXCSR. */
    assert_int_equal(fegetround(), FE_TONEAREST);
    volatile double one = 1.0, three = 3.0;
    assert_true(one / three == 0.3333333333333333);
    conc__fiber_switch(f);
    assert_int_equal(c.seen[0], FE_UPWARD);
    assert_int_equal(c.seen[1], 1);
    assert_int_equal(fegetround(), FE_TONEAREST);
    conc__fiber_free(f);
    end_clean();
}

/* A fiber makes a fiber, runs it, and frees it once it has exited. */
struct nest {
    conc__fiber *base;
    conc__fiber *outer;
    int inner_ran;
};

static void
inner_fn(void *arg)
{
    struct nest *n = arg;
    n->inner_ran = 1;
    conc__fiber_exit(n->outer);
}

static void
outer_fn(void *arg)
{
    struct nest *n = arg;
    conc__fiber *inner = new_fiber(0, inner_fn, n);
    conc__fiber_switch(inner);
    conc__fiber_free(inner);
    conc__fiber_exit(n->base);
}

static void
test_fiber_frees_the_fiber_it_ran(void **state)
{
    (void)state;
    struct nest n = {.base = conc__fiber_thread()};
    n.outer = new_fiber(0, outer_fn, &n);
    conc__fiber_switch(n.outer);
    assert_int_equal(n.inner_ran, 1);
    conc__fiber_free(n.outer);
    /* A fiber that never ran is freed as well. */
    conc__fiber_free(new_fiber(0, inner_fn, &n));
    end_clean();
}

/* ---- Switching among many ------------------------------------------------ */

#define RING      1000
#define RING_LAPS 10

struct ring {
    conc__fiber *base;
    conc__fiber *f[RING];
    int laps[RING];
    int index[RING];
};

static struct ring ring;

static void
ring_fn(void *arg)
{
    int i = *(int *)arg;
    conc__fiber *next = i + 1 < RING ? ring.f[i + 1] : ring.base;
    for (int lap = 0; lap < RING_LAPS; lap++) {
        ring.laps[i]++;
        conc__fiber_switch(next);
    }
    conc__fiber_exit(next);
}

static void
test_switch_among_a_thousand(void **state)
{
    (void)state;
    memset(&ring, 0, sizeof ring);
    ring.base = conc__fiber_thread();
    for (int i = 0; i < RING; i++) {
        ring.index[i] = i;
        ring.f[i] = new_fiber(0, ring_fn, &ring.index[i]);
    }
    assert_true(conc__fiber_stacks_mapped() >= RING);
    for (int lap = 0; lap <= RING_LAPS; lap++)
        conc__fiber_switch(ring.f[0]);
    for (int i = 0; i < RING; i++) {
        assert_int_equal(ring.laps[i], RING_LAPS);
        conc__fiber_free(ring.f[i]);
    }
    end_clean();
}

/* ---- Stacks ----------------------------------------------------------------
 */

#define BIG_BUFFER (192 * 1024)

struct big {
    conc__fiber *base;
    unsigned long sum;
};

static void
big_fn(void *arg)
{
    struct big *b = arg;
    volatile unsigned char buf[BIG_BUFFER];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
    conc__fiber_switch(b->base);
    for (size_t i = 0; i < sizeof buf; i++)
        b->sum += buf[i];
    conc__fiber_exit(b->base);
}

static void
test_large_stack_buffer(void **state)
{
    (void)state;
    struct big b = {.base = conc__fiber_thread()};
    /* Twice the buffer, so that sanitizers' redzones fit too. */
    conc__fiber *f = new_fiber(2 * BIG_BUFFER, big_fn, &b);
    void *lo;
    assert_true(conc__fiber_stack(f, &lo) >= 2 * BIG_BUFFER);
    conc__fiber_switch(f);
    conc__fiber_switch(f);
    unsigned long want = 0;
    for (size_t i = 0; i < BIG_BUFFER; i++)
        want += (unsigned char)i;
    assert_int_equal(b.sum, want);
    conc__fiber_free(f);
    end_clean();
}

static void
test_stack_sizes_are_rounded(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t asks[] = {0, 1, 5000, 300001};
    for (size_t i = 0; i < sizeof asks / sizeof *asks; i++) {
        conc__fiber *f = new_fiber(asks[i], pingpong_fn, NULL);
        void *lo = NULL;
        size_t size = conc__fiber_stack(f, &lo);
        size_t want = asks[i] ? asks[i] : CONC__FIBER_STACK_DEFAULT;
        assert_true(size >= want);
        assert_true(size >= CONC__FIBER_STACK_MIN);
        assert_true(size < want + CONC__FIBER_STACK_MIN + page);
        assert_int_equal((uintptr_t)lo % page, 0);
        conc__fiber_free(f);
    }
    void *lo = (void *)1;
    assert_int_equal(conc__fiber_stack(conc__fiber_thread(), &lo), 0);
    assert_null(lo);
    end_clean();
}

static void quiet_fn(void *arg);

static void
exit_fn(void *arg)
{
    conc__fiber_exit(arg);
}

/* A freed stack serves the next fiber of its size, and the pool keeps at
 * most CONC__FIBER_POOL_MAX of them. */
static void
test_stacks_are_reused(void **state)
{
    (void)state;
    conc__fiber *base = conc__fiber_thread();
    void *first = NULL;
    for (int i = 0; i < 100; i++) {
        conc__fiber *f = new_fiber(0, exit_fn, base);
        void *lo;
        conc__fiber_stack(f, &lo);
        if (i == 0)
            first = lo;
        assert_ptr_equal(lo, first);
        conc__fiber_switch(f);
        conc__fiber_free(f);
        assert_int_equal(conc__fiber_stacks_mapped(), 1);
    }
    /* Another size does not take it. */
    conc__fiber *other = new_fiber(64 * 1024, exit_fn, base);
    assert_int_equal(conc__fiber_stacks_mapped(), 2);
    conc__fiber_free(other);
    enum { MANY = CONC__FIBER_POOL_MAX + 10 };
    conc__fiber *f[MANY];
    for (int i = 0; i < MANY; i++)
        f[i] = new_fiber(0, exit_fn, base);
    for (int i = 0; i < MANY; i++) {
        conc__fiber_switch(f[i]);
        conc__fiber_free(f[i]);
    }
    assert_int_equal(conc__fiber_stacks_mapped(), CONC__FIBER_POOL_MAX);
    end_clean();
}

static void *
thread_makes_fibers(void *arg)
{
    (void)arg;
    conc__fiber *base = conc__fiber_thread();
    for (int i = 0; i < 8; i++) {
        conc__fiber *f = NULL;
        if (conc__fiber_new(0, exit_fn, base, &f) != 0)
            return (void *)1;
        conc__fiber_switch(f);
        conc__fiber_free(f); /* pooled */
    }
    stack_t ss;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE))
        return (void *)2;
    return conc__fiber_stacks_mapped() >= 1 ? NULL : (void *)3;
}

/* The thread-exit path unmaps a thread's pooled stacks. */
static void
test_thread_exit_unmaps_stacks(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_makes_fibers, NULL), 0);
    void *ret = (void *)-1;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    assert_int_equal(conc__fiber_stacks_mapped(), 0);
    end_clean();
}

/* ---- Slab stacks -----------------------------------------------------------
 */

/* A budget of guarded stacks small enough to pass with a few fibers. */
#define SMALL_BUDGET 8
#define PAST_BUDGET  300

/* The process's mappings: lines of /proc/self/maps. */
static long
vma_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Sanitizers map memory of their own as the tests run (shadow, fake
 * stacks, allocator regions), so the count of mappings is compared only
 * without them; the slab stacks' own addresses are checked in every
 * build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VMA_EXACT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VMA_EXACT 0
#endif
#endif
#ifndef VMA_EXACT
#define VMA_EXACT 1
#endif

static void
assert_vmas(long want)
{
    if (VMA_EXACT)
        assert_int_equal(vma_count(), want);
}

/* The slab stacks the last make_run_free saw. */
static void **slab_stacks;
static long nslab_stacks;

/* Every slab stack seen is unmapped: msync fails with ENOMEM on a range
 * that is not mapped. */
static void
assert_slab_stacks_unmapped(void)
{
    for (long i = 0; i < nslab_stacks; i++) {
        errno = 0;
        assert_int_equal(msync(slab_stacks[i], 1, MS_ASYNC), -1);
        assert_int_equal(errno, ENOMEM);
    }
    free(slab_stacks);
    slab_stacks = NULL;
    nslab_stacks = 0;
}

struct once {
    conc__fiber *base;
    int ran;
};

static void
once_fn(void *arg)
{
    struct once *o = arg;
    o->ran++;
    conc__fiber_switch(o->base);
    conc__fiber_exit(o->base);
}

/* Makes n fibers of `size` at once, switches to each (it runs and comes
 * back), then lets each exit and frees it. Returns how many had a slab's
 * stack. */
static long
make_run_free(long n, size_t size, unsigned flags)
{
    struct once o = {.base = conc__fiber_thread()};
    conc__fiber **f = calloc((size_t)n, sizeof *f);
    assert_non_null(f);
    slab_stacks = calloc((size_t)n, sizeof *slab_stacks);
    assert_non_null(slab_stacks);
    for (long i = 0; i < n; i++) {
        assert_conc_ok(conc__fiber_new_flags(size, flags, once_fn, &o, &f[i]));
        if (conc__fiber_is_slab(f[i]))
            conc__fiber_stack(f[i], &slab_stacks[nslab_stacks++]);
        conc__fiber_switch(f[i]);
    }
    assert_int_equal(o.ran, n);
    assert_true(conc__fiber_stacks_mapped() >= n);
    for (long i = 0; i < n; i++) {
        conc__fiber_switch(f[i]);
        conc__fiber_free(f[i]);
    }
    free(f);
    return nslab_stacks;
}

/* Past the budget every fiber still gets a stack, from slabs; the slabs
 * are unmapped once their stacks are free and the pool drained, and the
 * process is back to the mappings it had. */
static void
test_stacks_past_the_budget_come_from_slabs(void **state)
{
    (void)state;
    long vmas = vma_count();
    long before = conc__fiber_guard_budget(SMALL_BUDGET);
    long slab = make_run_free(PAST_BUDGET, CONC__FIBER_STACK_MIN, 0);
    assert_int_equal(slab, PAST_BUDGET - SMALL_BUDGET);
    assert_true(conc__fiber_slabs_mapped() >= 1); /* the pool holds some */
    end_clean();
    assert_int_equal(conc__fiber_slabs_mapped(), 0);
    assert_slab_stacks_unmapped();
    assert_vmas(vmas);
    assert_int_equal(conc__fiber_guard_budget(before), SMALL_BUDGET);
}

/* A slab keeps the kernel's mapping count flat: many fibers past the
 * budget add a few mappings per slab, not two per stack. */
static void
test_slabs_keep_mappings_few(void **state)
{
    (void)state;
    enum { N = 4 * CONC__FIBER_SLAB_STACKS };
    long vmas = vma_count();
    long before = conc__fiber_guard_budget(0);
    struct once o = {.base = conc__fiber_thread()};
    conc__fiber *f[N];
    for (int i = 0; i < N; i++)
        f[i] = new_fiber(CONC__FIBER_STACK_MIN, once_fn, &o);
    assert_int_equal(conc__fiber_slabs_mapped(), N / CONC__FIBER_SLAB_STACKS);
    /* Two mappings a slab (its guard page and its stacks), and room for
     * the heap to grow by one or two; guarded, N stacks would be 2 * N. */
    if (VMA_EXACT)
        assert_true(vma_count() <= vmas + 2 * N / CONC__FIBER_SLAB_STACKS + 2);
    for (int i = 0; i < N; i++)
        conc__fiber_free(f[i]);
    end_clean();
    assert_int_equal(conc__fiber_slabs_mapped(), 0);
    assert_vmas(vmas);
    conc__fiber_guard_budget(before);
}

/* The flag asks for a slab stack within the budget, and a pooled guarded
 * stack does not serve it. */
static void
test_slab_flag(void **state)
{
    (void)state;
    conc__fiber *base = conc__fiber_thread();
    conc__fiber *f = NULL;
    assert_conc(conc__fiber_new_flags(0, 2u, exit_fn, base, &f), CONC_EINVAL);
    assert_null(f);
    conc__fiber_free(new_fiber(0, exit_fn, base)); /* a guarded one pooled */
    f = NULL;
    assert_conc_ok(
        conc__fiber_new_flags(0, CONC__FIBER_SLAB, exit_fn, base, &f));
    assert_true(conc__fiber_is_slab(f));
    void *lo;
    assert_true(conc__fiber_stack(f, &lo) >= CONC__FIBER_STACK_DEFAULT);
    conc__fiber_switch(f);
    conc__fiber_free(f);
    assert_int_equal(conc__fiber_stacks_mapped(), 2);
    /* Both pooled: a fiber without the flag takes either. */
    conc__fiber *g = new_fiber(0, exit_fn, base);
    assert_int_equal(conc__fiber_stacks_mapped(), 2);
    conc__fiber_free(g);
    end_clean();
    assert_int_equal(conc__fiber_slabs_mapped(), 0);
}

/* 100,000 fibers alive at once, each switched to once, as 100,000
 * sleeping tasks need: more than vm.max_map_count allows guarded. TSan
 * counts each fiber as a thread and allows 8,128 of them: there, fewer
 * fibers past a lower budget. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_FIBERS 1
#endif
#endif
#ifdef TSAN_FIBERS
#define HUNDRED_K        4000L
#define HUNDRED_K_BUDGET 1000L
#else
#define HUNDRED_K        100000L
#define HUNDRED_K_BUDGET (-1L) /* the default, from max_map_count */
#endif

static void
test_hundred_thousand_fibers(void **state)
{
    (void)state;
    long vmas = vma_count();
    long before = conc__fiber_guard_budget(HUNDRED_K_BUDGET);
    long budget = conc__fiber_guard_budget(HUNDRED_K_BUDGET);
    long slab = make_run_free(HUNDRED_K, CONC__FIBER_STACK_MIN, 0);
    assert_true(budget < HUNDRED_K);
    assert_true(slab >= HUNDRED_K - budget);
    end_clean();
    assert_int_equal(conc__fiber_slabs_mapped(), 0);
    assert_slab_stacks_unmapped();
    assert_vmas(vmas);
    conc__fiber_guard_budget(before);
}

/* ---- Backtraces ------------------------------------------------------------
 */

#define BT_DEPTH 6

struct bt {
    conc__fiber *base;
    void *where; /* a return address inside bt_fn */
};

static struct bt bt;

static __attribute__((noinline)) void
bt_suspend(void)
{
    bt.where = __builtin_return_address(0);
    conc__fiber_switch(bt.base);
    __asm__ volatile("" ::: "memory"); /* no tail call above */
}

static __attribute__((noinline)) void
bt_recurse(int depth)
{
    if (depth == 0)
        bt_suspend();
    else
        bt_recurse(depth - 1);
    __asm__ volatile("" ::: "memory");
}

static void
bt_fn(void *arg)
{
    (void)arg;
    bt_suspend();
    bt_recurse(BT_DEPTH);
    conc__fiber_exit(bt.base);
}

static int
contains(void **pcs, int n, void *pc)
{
    for (int i = 0; i < n; i++)
        if (pcs[i] == pc)
            return 1;
    return 0;
}

static void
test_backtrace_of_a_suspended_fiber(void **state)
{
    (void)state;
    enum { MAX = 64 };
    void *pcs[MAX];
    bt.base = conc__fiber_thread();
    conc__fiber *f = new_fiber(0, bt_fn, NULL);
    assert_int_equal(conc__fiber_backtrace(f, pcs, MAX), 0); /* new */
    assert_int_equal(conc__fiber_backtrace(bt.base, pcs, MAX), 0);
    conc__fiber_switch(f);
    /* The walk ends at the base frame, well before MAX, and passes through
     * the fiber's function. */
    int n = conc__fiber_backtrace(f, pcs, MAX);
    assert_true(n >= 3);
    assert_true(n < 10);
    assert_true(contains(pcs, n, bt.where));
    assert_int_equal(conc__fiber_backtrace(f, pcs, 1), 1);
    conc__fiber_switch(f);
    int deep = conc__fiber_backtrace(f, pcs, MAX);
    assert_true(deep >= n + BT_DEPTH);
    assert_true(deep < MAX);
    conc__fiber_switch(f);
    assert_int_equal(conc__fiber_backtrace(f, pcs, MAX), 0); /* exited */
    conc__fiber_free(f);
    end_clean();
}

/* ---- Stack overflow --------------------------------------------------------
 */

static volatile sig_atomic_t user_handler_armed;
static struct sigaction before_user;

/* The test's own SIGSEGV handler, installed before any fiber: a user's
 * handler that conc's must chain to. Unarmed, it passes the signal on. */
static void
user_segv(int sig, siginfo_t *si, void *uc)
{
    if (user_handler_armed) {
        static const char msg[] = "user handler\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(42);
    }
    if (before_user.sa_flags & SA_SIGINFO) {
        before_user.sa_sigaction(sig, si, uc);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
}

static void
install_user_segv(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = user_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSEGV, &sa, &before_user), 0);
}

/* Deep enough to leave any stack; volatile, so the compiler cannot prove
 * the recursion endless. */
static volatile long recurse_limit = LONG_MAX;

static __attribute__((noinline)) long
recurse_deep(volatile char *prev, long depth)
{
    volatile char frame[512];
    frame[0] = prev ? (char)(prev[0] + 1) : 0;
    if (depth >= recurse_limit)
        return frame[0];
    return recurse_deep(frame, depth + 1) + frame[1];
}

static void
overflow_fn(void *arg)
{
    (void)arg;
    recurse_deep(NULL, 0);
    conc__fiber_exit(conc__fiber_thread());
}

static void
wild_fn(void *arg)
{
    (void)arg;
    user_handler_armed = 1;
    volatile uintptr_t where = 16; /* below every mapping */
    *(volatile int *)where = 1;
    conc__fiber_exit(conc__fiber_thread());
}

/* SIGSEGV's handler outside cmocka's tests: conc's, chaining to the
 * test's. cmocka installs its own around each test, which a child that
 * is to die like a program puts back. */
static struct sigaction program_segv;

static void
install_handlers(void)
{
    install_user_segv();
    conc__fiber *f = NULL;
    assert_conc_ok(conc__fiber_new(0, exit_fn, NULL, &f));
    conc__fiber_free(f);
    conc__fiber_thread_cleanup();
    assert_int_equal(sigaction(SIGSEGV, NULL, &program_segv), 0);
}

/* The flags the child's fiber is made with. */
static unsigned child_flags;

static int
child_runs(void *arg)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    sigaction(SIGSEGV, &program_segv, NULL);
    conc__fiber *f = NULL;
    if (conc__fiber_new_flags(CONC__FIBER_STACK_MIN, child_flags,
                              (conc__fiber_fn)arg, NULL, &f) != 0)
        return 1;
    conc__fiber_set_name(f, "deep-task");
    conc__fiber_switch(f);
    conc__fiber_free(f);
    return 0;
}

/* Runs child_runs(fn) in a forked child with its stderr into a pipe;
 * returns its wait status and what it wrote (NUL-terminated). */
static int
run_child(conc__fiber_fn fn, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        _exit(child_runs((void *)fn));
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, CHILD_WAIT_MS), 1);
        ssize_t r = read(p[0], out + len, cap - 1 - len);
        assert_true(r >= 0);
        if (r == 0 || len + (size_t)r == cap - 1)
            break;
        len += (size_t)r;
    }
    out[len] = '\0';
    close(p[0]);
    return reap_status(pid);
}

static void
test_overflow_names_the_task(void **state)
{
    (void)state;
    char out[4096];
    int status = run_child(overflow_fn, out, sizeof out);
    assert_non_null(strstr(out, "conc: stack overflow in task 'deep-task'"));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    end_clean();
}

/* A write below a slab stack, into its canary, as an overflow that
 * skipped the last frames makes: the switch away from the fiber reports
 * it with the task's name and aborts. */
static void
canary_fn(void *arg)
{
    (void)arg;
    void *lo;
    conc__fiber_stack(conc__fiber_self(), &lo);
    ((volatile char *)lo)[-200] = 1;
    conc__fiber_switch(conc__fiber_thread());
    conc__fiber_exit(conc__fiber_thread());
}

static void
test_canary_overflow_names_the_task(void **state)
{
    (void)state;
    char out[4096];
    child_flags = CONC__FIBER_SLAB;
    int status = run_child(canary_fn, out, sizeof out);
    child_flags = 0;
    assert_non_null(strstr(out, "conc: stack overflow in task 'deep-task'"));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    end_clean();
}

/* An intact canary is silent: a slab fiber that uses its stack and exits
 * leaves the child's stderr empty. */
static void
test_intact_canary_is_silent(void **state)
{
    (void)state;
    char out[4096];
    child_flags = CONC__FIBER_SLAB;
    int status = run_child(quiet_fn, out, sizeof out);
    child_flags = 0;
    assert_null(strstr(out, "overflow"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    end_clean();
}

/* Endless recursion on the first stack of a slab runs through its canary
 * into the slab's guard page: the fault is reported as an overflow. */
static void
test_slab_overflow_to_its_guard_names_the_task(void **state)
{
    (void)state;
    char out[4096];
    child_flags = CONC__FIBER_SLAB;
    int status = run_child(overflow_fn, out, sizeof out);
    child_flags = 0;
    assert_non_null(strstr(out, "conc: stack overflow in task 'deep-task'"));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    end_clean();
}

/* A fault outside every guard page is not an overflow: it goes to the
 * handler that was installed before conc's. */
static void
test_other_faults_chain(void **state)
{
    (void)state;
    char out[4096];
    int status = run_child(wild_fn, out, sizeof out);
    assert_null(strstr(out, "stack overflow"));
    assert_non_null(strstr(out, "user handler"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    end_clean();
}

static void
quiet_fn(void *arg)
{
    (void)arg;
    volatile char buf[4096];
    memset((char *)buf, 1, sizeof buf);
    conc__fiber_exit(conc__fiber_thread());
}

/* A fiber that calls a function that does not return (conc__fiber_exit)
 * makes ASan unpoison the stack below it: without being told of the
 * switch, ASan warns that the stack pointer is outside the thread's stack
 * and that false reports may follow. The child's stderr stays quiet. */
static void
test_sanitizers_are_told_of_switches(void **state)
{
    (void)state;
    char out[4096];
    int status = run_child(quiet_fn, out, sizeof out);
    assert_null(strstr(out, "WARNING"));
    assert_null(strstr(out, "Sanitizer"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    end_clean();
}

int
main(void)
{
    warm_up_threads();
    install_handlers();
    const struct CMUnitTest tests[] = {
        /* First: ASan warns once per process. */
        conc_unit_test(test_sanitizers_are_told_of_switches),
        conc_unit_test(test_switch_round_trips),
        conc_unit_test(test_new_refuses),
        conc_unit_test(test_switch_keeps_callee_saved_registers),
        conc_unit_test(test_switch_keeps_rounding_mode),
        conc_unit_test(test_fiber_frees_the_fiber_it_ran),
        conc_unit_test(test_switch_among_a_thousand),
        conc_unit_test(test_large_stack_buffer),
        conc_unit_test(test_stack_sizes_are_rounded),
        conc_unit_test(test_stacks_are_reused),
        conc_unit_test(test_thread_exit_unmaps_stacks),
        conc_unit_test(test_stacks_past_the_budget_come_from_slabs),
        conc_unit_test(test_slabs_keep_mappings_few),
        conc_unit_test(test_slab_flag),
        conc_unit_test(test_hundred_thousand_fibers),
        conc_unit_test(test_backtrace_of_a_suspended_fiber),
        conc_unit_test(test_overflow_names_the_task),
        conc_unit_test(test_other_faults_chain),
        conc_unit_test(test_canary_overflow_names_the_task),
        conc_unit_test(test_intact_canary_is_silent),
        conc_unit_test(test_slab_overflow_to_its_guard_names_the_task),
    };
    return conc_run_tests(tests);
}
