/* Executors, submit + result of tiny tasks: tasks per second through a
 * thread executor and a process executor (concurrent.futures'
 * ThreadPoolExecutor and ProcessPoolExecutor), and, beside the thread
 * executor, GLib's GThreadPool and libuv's uv_queue_work where they were
 * found at build time. The twin is bench_executor.py.
 *
 * Rows:
 *   executor_thread    thread executor, tasks per second; impls conc,
 *                      glib (GThreadPool) and libuv (uv_queue_work)
 *   executor_process   process executor, tasks per second
 *
 * The work is batched, as a program with many tiny tasks would do it:
 * submit a batch of 10000 tasks, keeping their futures, then take every
 * result in submission order; the clock runs over the submits and the
 * results. Each task gets an int64 and returns it plus one, and the
 * results' sum is checked.
 *
 * The baselines do the same work by their own idiom. GLib's pool has no
 * futures: its n tasks are pushed fire-and-forget, each adds its number to
 * one atomic sum, and the measurement ends when the sum is complete (the
 * task that completes it wakes the waiter). libuv runs each batch as
 * uv_queue_work requests whose after-work callbacks collect the results in
 * the loop's thread; uv_run returns when all are in.
 *
 * conc runs at its default number of workers (min(32, CPUs + 4), as in
 * Python). The baselines have no such default worth keeping here (GLib's
 * is unlimited, libuv's is 4), and both slow down by several times with
 * more threads than CPUs when the tasks are tiny, so they get their best
 * setting: one thread per CPU, GLib's started at once (an exclusive pool),
 * libuv's through UV_THREADPOOL_SIZE. Each implementation runs a warm-up
 * batch first, which starts its workers. */
#include "bench_common.h"

#include <stdint.h>
#include <unistd.h>

#include "conc/executor.h"

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif
#ifdef BENCH_HAVE_LIBUV
#include <uv.h>
#endif

#define BATCH  10000
#define WARMUP 1000

/* The tiny task: the argument is an int64, the result that plus one. */
static int
tiny_task(const void *arg, size_t len, conc_buf *result)
{
    int64_t x;
    if (len != sizeof x)
        return CONC_EINVAL;
    memcpy(&x, arg, sizeof x);
    x += 1;
    return conc_buf_append(result, &x, sizeof x);
}

/* ---- conc --------------------------------------------------------------- */

typedef struct exbench {
    conc_executor *ex;
    conc_future **fs; /* one batch of futures */
} exbench;

/* Submits k tasks on 0..k-1, then takes their results in order. */
static void
conc_batch(exbench *b, long k)
{
    int64_t sum = 0;
    for (long i = 0; i < k; i++) {
        int64_t x = i;
        BENCH_CHECK(
            conc_executor_submit(b->ex, tiny_task, &x, sizeof x, &b->fs[i]));
    }
    for (long i = 0; i < k; i++) {
        const void *data;
        size_t len;
        int64_t y;
        BENCH_CHECK(conc_future_result(b->fs[i], CONC_FOREVER, &data, &len));
        BENCH_ASSERT(len == sizeof y);
        memcpy(&y, data, sizeof y);
        sum += y;
        conc_future_free(b->fs[i]);
    }
    BENCH_ASSERT(sum == (int64_t)k * (k + 1) / 2);
}

static double
conc_run(void *ctx, long n, long *ops)
{
    long long t0 = bench_now_ns();
    for (long done = 0; done < n; done += BATCH)
        conc_batch(ctx, n - done < BATCH ? n - done : BATCH);
    return bench_seconds_since(t0);
}

/* ---- GLib's GThreadPool ------------------------------------------------- */

#ifdef BENCH_HAVE_GLIB
typedef struct glib_bench {
    GThreadPool *pool;
    atomic_llong sum;     /* the tasks' numbers added up */
    atomic_llong target;  /* the measurement's complete sum */
    pthread_mutex_t lock; /* guards `complete` */
    pthread_cond_t cond;
    int complete;
} glib_bench;

/* A task reads the target before it adds its number: once the sum is
 * complete the waiter may start the next measurement, which changes the
 * target under a task that has added but not yet compared. */
static void
glib_task(gpointer data, gpointer user)
{
    glib_bench *b = user;
    long long v = (long long)(uintptr_t)data;
    long long target = atomic_load(&b->target);
    if (atomic_fetch_add(&b->sum, v) + v == target) {
        pthread_mutex_lock(&b->lock);
        b->complete = 1;
        pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
}

/* Pushes n tasks numbered 1..n (GLib takes no NULL data) and waits for the
 * last to finish. */
static double
glib_run(void *ctx, long n, long *ops)
{
    glib_bench *b = ctx;
    atomic_store(&b->sum, 0);
    atomic_store(&b->target, (long long)n * (n + 1) / 2);
    pthread_mutex_lock(&b->lock);
    b->complete = 0;
    pthread_mutex_unlock(&b->lock);
    long long t0 = bench_now_ns();
    for (long i = 1; i <= n; i++) {
        GError *err = NULL;
        g_thread_pool_push(b->pool, (gpointer)(uintptr_t)i, &err);
        BENCH_ASSERT(err == NULL);
    }
    pthread_mutex_lock(&b->lock);
    while (!b->complete)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
    return bench_seconds_since(t0);
}

static glib_bench *
glib_new(size_t workers)
{
    static glib_bench b = {.lock = PTHREAD_MUTEX_INITIALIZER,
                           .cond = PTHREAD_COND_INITIALIZER};
    GError *err = NULL;
    b.pool = g_thread_pool_new(glib_task, &b, (gint)workers, TRUE, &err);
    BENCH_ASSERT(b.pool != NULL && err == NULL);
    return &b;
}

static void
glib_free(glib_bench *b)
{
    g_thread_pool_free(b->pool, FALSE, TRUE);
}
#endif

/* ---- libuv's uv_queue_work ---------------------------------------------- */

#ifdef BENCH_HAVE_LIBUV
typedef struct libuv_slot {
    uv_work_t req;
    int64_t in, out;
} libuv_slot;

typedef struct libuv_bench {
    uv_loop_t loop;
    libuv_slot *slots; /* one batch of requests */
    int64_t sum;       /* results collected, in the loop's thread */
} libuv_bench;

static void
libuv_task(uv_work_t *req)
{
    libuv_slot *s = req->data;
    s->out = s->in + 1;
}

static void
libuv_collect(uv_work_t *req, int status)
{
    libuv_slot *s = req->data;
    libuv_bench *b = s->req.loop->data;
    BENCH_ASSERT(status == 0);
    b->sum += s->out;
}

static void
libuv_batch(libuv_bench *b, long k)
{
    b->sum = 0;
    for (long i = 0; i < k; i++) {
        libuv_slot *s = &b->slots[i];
        s->in = i;
        s->req.data = s;
        BENCH_ASSERT(
            uv_queue_work(&b->loop, &s->req, libuv_task, libuv_collect) == 0);
    }
    BENCH_ASSERT(uv_run(&b->loop, UV_RUN_DEFAULT) == 0);
    BENCH_ASSERT(b->sum == (int64_t)k * (k + 1) / 2);
}

static double
libuv_bench_run(void *ctx, long n, long *ops)
{
    long long t0 = bench_now_ns();
    for (long done = 0; done < n; done += BATCH)
        libuv_batch(ctx, n - done < BATCH ? n - done : BATCH);
    return bench_seconds_since(t0);
}

/* libuv reads its pool size once, at the first uv_queue_work of the
 * process, from UV_THREADPOOL_SIZE. */
static libuv_bench *
libuv_bench_new(size_t workers)
{
    static libuv_bench b;
    char size[32];
    snprintf(size, sizeof size, "%zu", workers);
    BENCH_ASSERT(setenv("UV_THREADPOOL_SIZE", size, 1) == 0);
    BENCH_ASSERT(uv_loop_init(&b.loop) == 0);
    b.loop.data = &b;
    b.slots = calloc(BATCH, sizeof *b.slots);
    BENCH_ASSERT(b.slots != NULL);
    return &b;
}

static void
libuv_bench_free(libuv_bench *b)
{
    BENCH_ASSERT(uv_loop_close(&b->loop) == 0);
    free(b->slots);
}
#endif

/* ---- Rows --------------------------------------------------------------- */

/* Every implementation starts its workers on demand (the process executor
 * has them already, but not yet warm): a first batch starts them all, or
 * the calibration would time the start-up. */
static void
warm_up(const bench_opts *o, const bench_impl *impls, int n)
{
    for (int i = 0; i < n; i++) {
        long ops = o->smoke ? 100 : WARMUP;
        impls[i].run(impls[i].ctx, ops, &ops);
    }
}

static void
thread_row(const bench_opts *o, exbench *b)
{
    bench_impl impls[3] = {{"conc", conc_run, b}};
    int n = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    BENCH_ASSERT(cpus > 0);
    printf("INFO executor_thread conc %zu workers, batches of %d\n",
           conc_executor_max_workers(b->ex), BATCH);
#ifdef BENCH_HAVE_GLIB
    glib_bench *g = glib_new((size_t)cpus);
    impls[n++] = (bench_impl){"glib", glib_run, g};
    printf("INFO executor_thread glib %ld threads (exclusive pool), all "
           "tasks pushed, then one wait\n",
           cpus);
#else
    printf("INFO executor_thread glib not built: GLib was not found\n");
#endif
#ifdef BENCH_HAVE_LIBUV
    libuv_bench *u = libuv_bench_new((size_t)cpus);
    impls[n++] = (bench_impl){"libuv", libuv_bench_run, u};
    printf("INFO executor_thread libuv %ld threads, batches of %d\n", cpus,
           BATCH);
#else
    printf("INFO executor_thread libuv not built: libuv was not found\n");
#endif
    warm_up(o, impls, n);
    bench_row(o, "executor_thread", impls, n, 1, 100);
#ifdef BENCH_HAVE_GLIB
    glib_free(g);
#endif
#ifdef BENCH_HAVE_LIBUV
    libuv_bench_free(u);
#endif
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    exbench b = {.fs = calloc(BATCH, sizeof *b.fs)};
    BENCH_ASSERT(b.fs != NULL);

    BENCH_CHECK(conc_thread_executor_new(NULL, &b.ex));
    thread_row(&o, &b);
    BENCH_CHECK(conc_executor_shutdown(b.ex, 1, 0, CONC_FOREVER));
    conc_executor_free(b.ex);

    BENCH_CHECK(conc_process_executor_new(NULL, &b.ex));
    printf("INFO executor_process conc %zu worker processes, batches of %d\n",
           conc_executor_max_workers(b.ex), BATCH);
    bench_impl proc = {"conc", conc_run, &b};
    warm_up(&o, &proc, 1);
    bench_row(&o, "executor_process", &proc, 1, 1, 100);
    BENCH_CHECK(conc_executor_shutdown(b.ex, 1, 0, CONC_FOREVER));
    conc_executor_free(b.ex);
    free(b.fs);
    return 0;
}
