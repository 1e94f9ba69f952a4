/* Thread start + join: how many threads per second one thread can start
 * and wait for, one after the other, with conc and with raw
 * pthread_create + pthread_join. The twin is bench_thread.py.
 *
 * Row:
 *   thread_start   threads started and joined per second */
#include "bench_common.h"

#include "conc/thread.h"

static atomic_long ran;

static int
conc_body(void *arg)
{
    atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
    return 0;
}

static void *
pthread_body(void *arg)
{
    atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
    return NULL;
}

/* conc_thread_free is part of the cycle: a program that starts a thread
 * and joins it also drops its handle. */
static double
conc_start_join(void *ctx, long n, long *ops)
{
    long before = atomic_load(&ran);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_thread *t;
        int status = -1;
        BENCH_CHECK(conc_thread_start(conc_body, NULL, NULL, &t));
        BENCH_CHECK(conc_thread_join(t, CONC_FOREVER, &status));
        BENCH_ASSERT(status == 0);
        conc_thread_free(t);
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(atomic_load(&ran) - before == n);
    return s;
}

static double
pthread_start_join(void *ctx, long n, long *ops)
{
    long before = atomic_load(&ran);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t = bench_spawn(pthread_body, NULL);
        bench_join(t);
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(atomic_load(&ran) - before == n);
    return s;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl impls[] = {
        {"pthread", pthread_start_join, NULL},
        {"conc", conc_start_join, NULL},
    };
    bench_row(&o, "thread_start", impls, 2, 1, 20);
    return 0;
}
