/* Process pools (multiprocessing.Pool): start-up with a first map, map
 * throughput over a C array, apply_async with a callback, and the parallel
 * speed-up of CPU-bound tasks. The twin is bench_pool.py.
 *
 * Rows:
 *   pool_map_start     one Pool at the default size (the CPU count): start,
 *                      map the square over 0..19999, close, join and free;
 *                      nanoseconds per whole round (shown in ms)
 *   pool_map_1m        map of the square over a C array of 1M int64 on a
 *                      pool started beforehand; items per second
 *   pool_apply_async   apply_async of the square (of i % 1000) with a
 *                      callback, on a pool started beforehand: submit n,
 *                      then wait until the n-th callback has run; tasks
 *                      per second
 *   pool_fib_speedup   map of a recursive fib over fib(32) down to fib(25),
 *                      each twice, chunksize 1, on a 1-worker and a
 *                      2-worker pool; the ratio of their times
 *
 * Every result is checked: the map outputs item by item, the callbacks'
 * results as a sum, fib against a table.
 *
 * The speed-up row runs its two pools in turn, slice by slice, as the
 * runner does with implementations, and prints the ratio of the summed
 * times. The fib inputs come in equal pairs in decreasing size, so that two
 * workers can share them evenly whatever order they take them in: the
 * ratio measures the pool, not the luck of the schedule. */
#include "bench_common.h"

#include <stdint.h>

#include "conc/pool.h"

#define START_ITEMS 20000
#define BIG_ITEMS   1000000
#define FIB_HI      32
#define FIB_LO      25

static int
square_task(const void *arg, size_t len, conc_buf *result)
{
    int64_t x;
    if (len != sizeof x)
        return CONC_EINVAL;
    memcpy(&x, arg, sizeof x);
    x *= x;
    return conc_buf_append(result, &x, sizeof x);
}

/* An array of the numbers 0..n-1 and room for their squares. */
typedef struct squares {
    int64_t *in, *out;
    long n;
} squares;

static squares
squares_new(long n)
{
    squares s = {malloc(n * sizeof(int64_t)), malloc(n * sizeof(int64_t)), n};
    BENCH_ASSERT(s.in != NULL && s.out != NULL);
    for (long i = 0; i < n; i++)
        s.in[i] = i;
    return s;
}

static void
squares_map(conc_pool *p, squares *s)
{
    memset(s->out, 0, s->n * sizeof(int64_t));
    BENCH_CHECK(conc_pool_map(p, square_task, &CONC_ITEMS(s->in, s->n), s->out,
                              sizeof(int64_t), NULL, CONC_FOREVER));
    for (long i = 0; i < s->n; i++)
        BENCH_ASSERT(s->out[i] == (int64_t)i * i);
}

static void
squares_free(squares *s)
{
    free(s->in);
    free(s->out);
}

/* ---- pool_map_start ----------------------------------------------------- */

static double
start_run(void *ctx, long n, long *ops)
{
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_pool *p;
        BENCH_CHECK(conc_pool_new(NULL, &p));
        squares_map(p, ctx);
        BENCH_CHECK(conc_pool_close(p));
        BENCH_CHECK(conc_pool_join(p, CONC_FOREVER));
        conc_pool_free(p);
    }
    return bench_seconds_since(t0);
}

/* ---- pool_map_1m -------------------------------------------------------- */

typedef struct big_map {
    conc_pool *p;
    squares s;
} big_map;

static double
big_run(void *ctx, long n, long *ops)
{
    big_map *b = ctx;
    double secs = 0;
    for (long i = 0; i < n; i++) {
        /* The check of the outputs stays off the clock. */
        memset(b->s.out, 0, b->s.n * sizeof(int64_t));
        long long t0 = bench_now_ns();
        BENCH_CHECK(conc_pool_map(b->p, square_task,
                                  &CONC_ITEMS(b->s.in, b->s.n), b->s.out,
                                  sizeof(int64_t), NULL, CONC_FOREVER));
        secs += bench_seconds_since(t0);
        for (long j = 0; j < b->s.n; j++)
            BENCH_ASSERT(b->s.out[j] == (int64_t)j * j);
    }
    *ops = n * b->s.n;
    return secs;
}

/* ---- pool_apply_async --------------------------------------------------- */

typedef struct applies {
    conc_pool *p;
    atomic_long count;    /* callbacks run */
    atomic_llong sum;     /* their results added up */
    atomic_long target;   /* callbacks expected */
    pthread_mutex_t lock; /* guards `complete` */
    pthread_cond_t cond;
    int complete;
} applies;

static void
apply_done(void *arg, const void *data, size_t len)
{
    applies *a = arg;
    int64_t y;
    BENCH_ASSERT(len == sizeof y);
    memcpy(&y, data, sizeof y);
    atomic_fetch_add(&a->sum, y);
    /* Read before counting: once the count is complete, the next
     * measurement may change the target. */
    long target = atomic_load(&a->target);
    if (atomic_fetch_add(&a->count, 1) + 1 == target) {
        pthread_mutex_lock(&a->lock);
        a->complete = 1;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
    }
}

static void
apply_failed(void *arg, int code, const char *message)
{
    fprintf(stderr, "apply_async task failed: %s: %s\n", conc_err_name(code),
            message);
    exit(2);
}

static double
apply_run(void *ctx, long n, long *ops)
{
    applies *a = ctx;
    conc_apply_opts cb = {
        .callback = apply_done, .error_callback = apply_failed, .arg = a};
    atomic_store(&a->count, 0);
    atomic_store(&a->sum, 0);
    atomic_store(&a->target, n);
    pthread_mutex_lock(&a->lock);
    a->complete = 0;
    pthread_mutex_unlock(&a->lock);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        int64_t x = i % 1000;
        BENCH_CHECK(
            conc_pool_apply_async(a->p, square_task, &x, sizeof x, &cb, NULL));
    }
    pthread_mutex_lock(&a->lock);
    while (!a->complete)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
    double secs = bench_seconds_since(t0);
    long long want = 0;
    for (long i = 0; i < n; i++)
        want += (long long)(i % 1000) * (i % 1000);
    BENCH_ASSERT(atomic_load(&a->sum) == want);
    return secs;
}

/* ---- pool_fib_speedup --------------------------------------------------- */

static int64_t
fib(int64_t n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static int
fib_task(const void *arg, size_t len, conc_buf *result)
{
    int64_t n;
    if (len != sizeof n)
        return CONC_EINVAL;
    memcpy(&n, arg, sizeof n);
    n = fib(n);
    return conc_buf_append(result, &n, sizeof n);
}

typedef struct fibs {
    conc_pool *p;
    int64_t *in, *out, *want; /* rounds of the inputs, their results */
    long per_round;           /* tasks in one round */
    long max_rounds;
} fibs;

/* Fills `rounds` rounds of inputs hi, hi, hi-1, hi-1, ..., lo, lo. */
static void
fibs_init(fibs *f, int lo, int hi, long max_rounds)
{
    f->per_round = 2L * (hi - lo + 1);
    f->max_rounds = max_rounds;
    long total = f->per_round * max_rounds;
    f->in = malloc(total * sizeof(int64_t));
    f->out = malloc(total * sizeof(int64_t));
    f->want = malloc(total * sizeof(int64_t));
    BENCH_ASSERT(f->in && f->out && f->want);
    for (long i = 0; i < total; i++) {
        f->in[i] = hi - (i % f->per_round) / 2;
        f->want[i] =
            i < f->per_round ? fib(f->in[i]) : f->want[i % f->per_round];
    }
}

static double
fib_run(void *ctx, long n, long *ops)
{
    fibs *f = ctx;
    conc_map_opts mo = {.chunksize = 1};
    long count = f->per_round * (n < f->max_rounds ? n : f->max_rounds);
    long long t0 = bench_now_ns();
    BENCH_CHECK(conc_pool_map(f->p, fib_task, &CONC_ITEMS(f->in, count), f->out,
                              sizeof(int64_t), &mo, CONC_FOREVER));
    double secs = bench_seconds_since(t0);
    BENCH_ASSERT(memcmp(f->out, f->want, count * sizeof(int64_t)) == 0);
    return secs;
}

/* Times the same rounds on one and on two workers, in turn, and prints the
 * ratio of the summed times. */
static void
fib_row(const bench_opts *o)
{
    int smoke = o->smoke;
    fibs one, two;
    fibs_init(&one, smoke ? 15 : FIB_LO, smoke ? 20 : FIB_HI, 64);
    two = one;
    BENCH_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 1}, &one.p));
    BENCH_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 2}, &two.p));
    bench_impl im = {"conc", fib_run, &one};
    int slices = smoke ? 1 : BENCH_SLICES;
    long rounds = smoke      ? 1
                  : o->iters ? (o->iters + slices - 1) / slices
                             : bench_calibrate(&im, o->time_s / slices);
    double t1 = 0, t2 = 0;
    for (int s = 0; s < slices; s++) {
        long ops = rounds;
        t1 += fib_run(&one, rounds, &ops);
        t2 += fib_run(&two, rounds, &ops);
    }
    printf("INFO pool_fib_speedup conc %ld x %ld tasks: 1 worker %.1f ms, "
           "2 workers %.1f ms\n",
           (long)slices, one.per_round * (rounds < 64 ? rounds : 64), t1 * 1e3,
           t2 * 1e3);
    printf("RESULT pool_fib_speedup conc %.6g ratio\n", t1 / t2);
    fflush(stdout);
    conc_pool_free(one.p);
    conc_pool_free(two.p);
    free(one.in);
    free(one.out);
    free(one.want);
}

/* ---- main --------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);

    squares small = squares_new(o.smoke ? 2000 : START_ITEMS);
    bench_impl start = {"conc", start_run, &small};
    bench_row(&o, "pool_map_start", &start, 1, 0, 1);
    squares_free(&small);

    big_map big = {.s = squares_new(o.smoke ? 10000 : BIG_ITEMS)};
    BENCH_CHECK(conc_pool_new(NULL, &big.p));
    bench_impl map = {"conc", big_run, &big};
    bench_row(&o, "pool_map_1m", &map, 1, 1, 1);
    conc_pool_free(big.p);
    squares_free(&big.s);

    applies a = {.lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER};
    BENCH_CHECK(conc_pool_new(NULL, &a.p));
    bench_impl apply = {"conc", apply_run, &a};
    bench_row(&o, "pool_apply_async", &apply, 1, 1, 100);
    BENCH_CHECK(conc_pool_close(a.p));
    BENCH_CHECK(conc_pool_join(a.p, CONC_FOREVER));
    conc_pool_free(a.p);

    fib_row(&o);
    return 0;
}
