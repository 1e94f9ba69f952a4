/* The floor under the coroutines: the raw fiber switch and a fiber's life
 * on a pooled stack (src/unix/fiber.h), without any scheduler. The twin is
 * bench_fiber.py (generators: what a CPython coroutine switch costs at
 * its cheapest); ucontext's swapcontext is the other C.
 *
 * Rows:
 *   fiber_pingpong  ns per round trip between two fibers (two switches:
 *                   A to B and back)
 *   fiber_create    ns to make a fiber on a pooled stack, run it until it
 *                   exits, and free it */
#include <ucontext.h>

#include "bench_common.h"

#include "unix/fiber.h"

/* ---- Ping-pong ------------------------------------------------------------
 */

typedef struct pingpong {
    conc__fiber *base, *a, *b;
    long n;
    int done;
} pingpong;

static void
ping_fn(void *arg)
{
    pingpong *p = arg;
    for (long i = 0; i < p->n; i++)
        conc__fiber_switch(p->b);
    p->done = 1;
    conc__fiber_exit(p->b);
}

static void
pong_fn(void *arg)
{
    pingpong *p = arg;
    while (!p->done)
        conc__fiber_switch(p->a);
    conc__fiber_exit(p->base);
}

static double
fiber_pingpong(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    pingpong p = {.base = conc__fiber_thread(), .n = n};
    BENCH_CHECK(conc__fiber_new(0, ping_fn, &p, &p.a));
    BENCH_CHECK(conc__fiber_new(0, pong_fn, &p, &p.b));
    long long t0 = bench_now_ns();
    conc__fiber_switch(p.a);
    double s = bench_seconds_since(t0);
    conc__fiber_free(p.a);
    conc__fiber_free(p.b);
    return s;
}

/* swapcontext, the portable switch, in the same ping-pong. */
typedef struct ucpp {
    ucontext_t base, a, b;
    long n;
} ucpp;

static ucpp *uc_run;

static void
uc_ping(void)
{
    for (long i = 0; i < uc_run->n; i++)
        swapcontext(&uc_run->a, &uc_run->b);
    swapcontext(&uc_run->a, &uc_run->base);
}

static void
uc_pong(void)
{
    for (;;)
        swapcontext(&uc_run->b, &uc_run->a);
}

enum { UC_STACK = 64 * 1024 };

static double
ucontext_pingpong(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    static char stack_a[UC_STACK], stack_b[UC_STACK];
    static ucpp r;
    r.n = n;
    uc_run = &r;
    BENCH_ASSERT(getcontext(&r.a) == 0 && getcontext(&r.b) == 0);
    r.a.uc_stack = (stack_t){.ss_sp = stack_a, .ss_size = UC_STACK};
    r.b.uc_stack = (stack_t){.ss_sp = stack_b, .ss_size = UC_STACK};
    r.a.uc_link = r.b.uc_link = NULL;
    makecontext(&r.a, uc_ping, 0);
    makecontext(&r.b, uc_pong, 0);
    long long t0 = bench_now_ns();
    BENCH_ASSERT(swapcontext(&r.base, &r.a) == 0);
    return bench_seconds_since(t0);
}

/* ---- Create, run, exit, free -----------------------------------------------
 */

static void
short_fn(void *arg)
{
    long *count = arg;
    (*count)++;
    conc__fiber_exit(conc__fiber_thread());
}

static double
fiber_create(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    long count = 0;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc__fiber *f;
        BENCH_CHECK(conc__fiber_new(0, short_fn, &count, &f));
        conc__fiber_switch(f);
        conc__fiber_free(f);
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(count == n);
    conc__fiber_thread_cleanup();
    return s;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl pp[] = {{"conc", fiber_pingpong, NULL},
                       {"ucontext", ucontext_pingpong, NULL}};
    bench_row(&o, "fiber_pingpong", pp, 2, 0, 1000);
    bench_impl cr[] = {{"conc", fiber_create, NULL}};
    bench_row(&o, "fiber_create", cr, 1, 0, 1000);
    return 0;
}
