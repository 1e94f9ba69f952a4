/* The async core (PERF.md "Async core"): the loop, its callbacks and
 * timers, coroutine tasks, and a coroutine woken by a thread. The twin is
 * bench_aio.py, run with asyncio's own loop and, where Debian's
 * python3-uvloop is installed, with uvloop's.
 *
 * Rows:
 *   aio_switch        ns per task switch: two tasks take turns through the
 *                     scheduler, each calling conc_aio_sleep(0)
 *   aio_call_soon     ns per callback scheduled with conc_aio_call_soon
 *                     and run by the loop
 *   aio_create_await  ns to create a task that returns at once and await
 *                     it (its stack from the pool after the first)
 *   aio_gather        tasks per second through conc_aio_gather of batches
 *                     of 200k tasks, creation included
 *   aio_idle_mem      resident bytes per idle task, 100k tasks asleep
 *   aio_timers        ns per conc_aio_call_later + conc_aio_handle_cancel
 *                     while 1M other timers are armed
 *   aio_threadsafe    callbacks per second that another thread hands to
 *                     the loop with conc_aio_call_soon_threadsafe
 *   aio_lock_wake     ns from a thread's conc_lock_release to the return of
 *                     the conc_lock_acquire a task is suspended in
 *   aio_queue_wake    the same with a thread's conc_queue_put and the
 *                     task's conc_queue_get */
#include <unistd.h>

#include "bench_common.h"

#include "conc.h"

#define GATHER_BATCH    200000L  /* PERF.md: gather of 200k tasks */
#define IDLE_TASKS      100000L  /* PERF.md: 100k sleeping tasks */
#define ARMED_TIMERS    1000000L /* PERF.md: 1M armed timers */
#define SMOKE_BATCH     2000L    /* each of the three above in a smoke run */
#define LONG_SLEEP      3600.0   /* an idle task never wakes during a run */
#define TIMER_SPAN      1000.0   /* armed timers fall due over this many s */
#define MAX_WAKE_ROUNDS 100000L  /* rounds of a wake row per measurement */

static conc_aio_loop *g_loop; /* the loop every task row runs on */
static int g_smoke;

/* Runs fn as a task on g_loop until it returns; the task gets `ctx` (a
 * pointer, copied) and stores its measured seconds there. */
static void
run_task(conc_task_fn fn, void *ctx)
{
    conc_future *f;
    BENCH_CHECK(
        conc_aio_loop_create_task(g_loop, fn, &ctx, sizeof ctx, NULL, &f));
    BENCH_CHECK(conc_aio_loop_run_until_complete(g_loop, f));
    conc_future_free(f);
}

/* The context pointer a task of run_task was given. */
static void *
task_ctx(const void *arg, size_t len)
{
    void *ctx;
    BENCH_ASSERT(len == sizeof ctx);
    memcpy(&ctx, arg, sizeof ctx);
    return ctx;
}

typedef struct measure {
    long n;
    double secs;
} measure;

/* ---- aio_switch ------------------------------------------------------------
 */

static int
sleeper(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    long n;
    BENCH_ASSERT(len == sizeof n);
    memcpy(&n, arg, sizeof n);
    for (long i = 0; i < n; i++)
        BENCH_CHECK(conc_aio_sleep(0));
    return 0;
}

static int
switch_main(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    measure *m = task_ctx(arg, len);
    conc_future *fs[2];
    long long t0 = bench_now_ns();
    for (int i = 0; i < 2; i++)
        BENCH_CHECK(
            conc_aio_create_task(sleeper, &m->n, sizeof m->n, NULL, &fs[i]));
    BENCH_CHECK(conc_aio_gather(fs, 2, 0));
    m->secs = bench_seconds_since(t0);
    for (int i = 0; i < 2; i++)
        conc_future_free(fs[i]);
    return 0;
}

static double
aio_switch(void *ctx, long n, long *ops)
{
    (void)ctx;
    measure m = {.n = n};
    run_task(switch_main, &m);
    *ops = 2 * n; /* each of the two tasks switches n times */
    return m.secs;
}

/* ---- aio_call_soon ---------------------------------------------------------
 */

static void
count_cb(void *arg)
{
    ++*(long *)arg;
}

static void
stop_cb(void *arg)
{
    BENCH_CHECK(conc_aio_loop_stop(arg));
}

static double
aio_call_soon(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    long count = 0;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        BENCH_CHECK(conc_aio_call_soon(g_loop, count_cb, &count, NULL));
    BENCH_CHECK(conc_aio_call_soon(g_loop, stop_cb, g_loop, NULL));
    BENCH_CHECK(conc_aio_loop_run_forever(g_loop));
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(count == n);
    return s;
}

/* ---- aio_create_await ------------------------------------------------------
 */

static int
noop_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return 0;
}

static int
create_await_main(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    measure *m = task_ctx(arg, len);
    long long t0 = bench_now_ns();
    for (long i = 0; i < m->n; i++) {
        conc_future *f;
        BENCH_CHECK(conc_aio_create_task(noop_task, NULL, 0, NULL, &f));
        BENCH_CHECK(conc_aio_await(f));
        conc_future_free(f);
    }
    m->secs = bench_seconds_since(t0);
    return 0;
}

static double
aio_create_await(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    measure m = {.n = n};
    run_task(create_await_main, &m);
    return m.secs;
}

/* ---- aio_gather ------------------------------------------------------------
 */

static int
gather_main(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    measure *m = task_ctx(arg, len);
    long batch = g_smoke ? SMOKE_BATCH : GATHER_BATCH;
    conc_future **fs = malloc((size_t)batch * sizeof *fs);
    BENCH_ASSERT(fs != NULL);
    long long t0 = bench_now_ns();
    for (long done = 0; done < m->n;) {
        long k = m->n - done < batch ? m->n - done : batch;
        for (long i = 0; i < k; i++)
            BENCH_CHECK(conc_aio_create_task(noop_task, NULL, 0, NULL, &fs[i]));
        BENCH_CHECK(conc_aio_gather(fs, (size_t)k, 0));
        for (long i = 0; i < k; i++)
            conc_future_free(fs[i]);
        done += k;
    }
    m->secs = bench_seconds_since(t0);
    free(fs);
    return 0;
}

static double
aio_gather(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    measure m = {.n = n};
    run_task(gather_main, &m);
    return m.secs;
}

/* ---- aio_idle_mem ----------------------------------------------------------
 */

/* Resident bytes of this process (/proc/self/statm, second field). */
static long long
resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    BENCH_ASSERT(f != NULL);
    BENCH_ASSERT(fscanf(f, "%lld %lld", &size, &resident) == 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static int
idle_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return conc_aio_sleep(LONG_SLEEP); /* CONC_ECANCELED when cancelled */
}

typedef struct idle_measure {
    long n, alive;     /* tasks made; tasks asleep when measured */
    int failure;       /* the failure of the first task that ended early */
    char message[128]; /* and its message */
    long long before, after;
} idle_measure;

/* Cancels the tasks still asleep and notes the first that ended early (a
 * task whose stack could not be made fails when it first runs). */
static void
idle_cancel(idle_measure *m, conc_future **fs)
{
    for (long i = 0; i < m->n; i++) {
        if (!conc_future_done(fs[i])) {
            m->alive++;
            BENCH_ASSERT(conc_aio_task_cancel(fs[i], NULL) == 1);
        } else if (m->failure == 0) {
            BENCH_CHECK(conc_future_exception(fs[i], 0, &m->failure));
            snprintf(m->message, sizeof m->message, "%s",
                     conc_future_message(fs[i]));
        }
    }
}

static int
idle_main(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    idle_measure *m = task_ctx(arg, len);
    conc_future **fs = malloc((size_t)m->n * sizeof *fs);
    BENCH_ASSERT(fs != NULL);
    m->before = resident_bytes();
    for (long i = 0; i < m->n; i++)
        BENCH_CHECK(conc_aio_create_task(idle_task, NULL, 0, NULL, &fs[i]));
    BENCH_CHECK(conc_aio_sleep(0)); /* every task runs up to its sleep */
    m->after = resident_bytes();
    idle_cancel(m, fs);
    BENCH_CHECK(conc_aio_gather(fs, (size_t)m->n, 1));
    for (long i = 0; i < m->n; i++)
        conc_future_free(fs[i]);
    free(fs);
    return 0;
}

/* Measured once, outside bench_row: memory is not a time. The row is
 * printed only when every task was asleep: a figure over fewer tasks would
 * answer another question. */
static void
aio_idle_mem(void)
{
    idle_measure m = {.n = g_smoke ? SMOKE_BATCH : IDLE_TASKS};
    run_task(idle_main, &m);
    long long grown = m.after - m.before;
    if (m.alive == m.n) {
        printf("RESULT aio_idle_mem conc %.6g bytes\n",
               (double)grown / (double)m.n);
        printf("INFO aio_idle_mem conc %ld idle tasks: %.1f MiB resident "
               "more\n",
               m.n, (double)grown / (1024.0 * 1024.0));
    } else {
        printf("INFO aio_idle_mem conc only %ld of %ld tasks could sleep, "
               "the others failed: %s (%s); %.0f bytes resident per "
               "sleeping task\n",
               m.alive, m.n, conc_strerror(m.failure), m.message,
               m.alive ? (double)grown / (double)m.alive : 0.0);
    }
    fflush(stdout);
}

/* ---- aio_timers ------------------------------------------------------------
 */

static void
never_cb(void *arg)
{
    (void)arg;
    BENCH_ASSERT(!"a timer set far ahead fired");
}

typedef struct timers {
    conc_aio_loop *loop; /* a loop of its own, never run */
    unsigned seed;
} timers;

/* A delay spread over TIMER_SPAN seconds, so that inserts land all over the
 * heap (a linear congruential generator: cheap and the same every run). */
static double
spread_delay(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return TIMER_SPAN + TIMER_SPAN * (double)(*seed >> 8) / (double)(1u << 24);
}

static double
aio_timers(void *ctx, long n, long *ops)
{
    (void)ops;
    timers *t = ctx;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_aio_handle *h;
        BENCH_CHECK(conc_aio_call_later(t->loop, spread_delay(&t->seed),
                                        never_cb, NULL, &h));
        BENCH_CHECK(conc_aio_handle_cancel(h));
        conc_aio_handle_free(h);
    }
    return bench_seconds_since(t0);
}

static void
arm_timers(timers *t, long armed)
{
    BENCH_CHECK(conc_aio_loop_new(NULL, &t->loop));
    t->seed = 1;
    for (long i = 0; i < armed; i++)
        BENCH_CHECK(conc_aio_call_later(t->loop, spread_delay(&t->seed),
                                        never_cb, NULL, NULL));
}

/* ---- aio_threadsafe --------------------------------------------------------
 */

typedef struct threadsafe {
    long n, count;
    bench_gate gate;
} threadsafe;

/* Counts in the loop's thread; the n-th stops the loop. */
static void
ts_count_cb(void *arg)
{
    threadsafe *t = arg;
    if (++t->count == t->n)
        BENCH_CHECK(conc_aio_loop_stop(g_loop));
}

static void *
ts_sender(void *arg)
{
    threadsafe *t = arg;
    bench_gate_wait(&t->gate);
    for (long i = 0; i < t->n; i++)
        BENCH_CHECK(
            conc_aio_call_soon_threadsafe(g_loop, ts_count_cb, t, NULL));
    return NULL;
}

static double
aio_threadsafe(void *ctx, long n, long *ops)
{
    (void)ctx;
    (void)ops;
    threadsafe t = {.n = n};
    pthread_t th = bench_spawn(ts_sender, &t);
    bench_gate_open(&t.gate);
    long long t0 = bench_now_ns();
    BENCH_CHECK(conc_aio_loop_run_forever(g_loop));
    double s = bench_seconds_since(t0);
    bench_join(th);
    BENCH_ASSERT(t.count == n);
    return s;
}

/* ---- aio_lock_wake, aio_queue_wake -----------------------------------------
 *
 * A task and a raw thread pass the turn back and forth, n rounds. For the
 * lock: `ping` and `pong` start held; the task releases ping and suspends
 * in acquiring pong; the thread acquires ping, stamps the clock and
 * releases pong. (A Lock, as Python's, may be released by a thread that
 * did not acquire it.) For the queue: the task puts into `ping` and
 * suspends in getting from `pong`; the thread gets from ping, stamps the
 * clock and puts into pong. The row is the mean time from the stamp to the
 * return of the task's acquire or get: the wake of a suspended task by a
 * thread. The lock or queue orders the stamp before the task reads it. */

typedef struct wake {
    int use_queue;
    long n;
    conc_lock *ping_lock, *pong_lock;
    conc_queue *ping_q, *pong_q;
    long long stamp_ns; /* written by the thread before it hands over */
    long long total_ns; /* summed by the task */
} wake;

static void *
wake_thread(void *arg)
{
    wake *w = arg;
    for (long i = 0; i < w->n; i++) {
        if (w->use_queue) {
            void *item;
            BENCH_CHECK(conc_queue_get(w->ping_q, CONC_FOREVER, &item));
            BENCH_ASSERT((long)(intptr_t)item == i + 1);
            w->stamp_ns = bench_now_ns();
            BENCH_CHECK(conc_queue_put(w->pong_q, item, CONC_FOREVER));
        } else {
            BENCH_CHECK(conc_lock_acquire(w->ping_lock, CONC_FOREVER));
            w->stamp_ns = bench_now_ns();
            BENCH_CHECK(conc_lock_release(w->pong_lock));
        }
    }
    return NULL;
}

static int
wake_main(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    wake *w = task_ctx(arg, len);
    for (long i = 0; i < w->n; i++) {
        if (w->use_queue) {
            void *item;
            BENCH_CHECK(
                conc_queue_put(w->ping_q, (void *)(intptr_t)(i + 1), 0));
            BENCH_CHECK(conc_queue_get(w->pong_q, CONC_FOREVER, &item));
            BENCH_ASSERT((long)(intptr_t)item == i + 1);
        } else {
            BENCH_CHECK(conc_lock_release(w->ping_lock));
            BENCH_CHECK(conc_lock_acquire(w->pong_lock, CONC_FOREVER));
        }
        w->total_ns += bench_now_ns() - w->stamp_ns;
    }
    return 0;
}

/* Runs up to MAX_WAKE_ROUNDS rounds (a round costs microseconds at least,
 * so calibration would otherwise ask for minutes); returns their summed
 * wake time, which is what the row reports per round. */
static double
wake_run(void *ctx, long n, long *ops)
{
    int use_queue = *(const int *)ctx; /* 0: two Locks, 1: two Queues */
    wake w = {.use_queue = use_queue,
              .n = n < MAX_WAKE_ROUNDS ? n : MAX_WAKE_ROUNDS};
    if (use_queue) {
        BENCH_CHECK(conc_queue_new(NULL, &w.ping_q));
        BENCH_CHECK(conc_queue_new(NULL, &w.pong_q));
    } else {
        BENCH_CHECK(conc_lock_new(NULL, &w.ping_lock));
        BENCH_CHECK(conc_lock_new(NULL, &w.pong_lock));
        BENCH_CHECK(conc_lock_acquire(w.ping_lock, 0));
        BENCH_CHECK(conc_lock_acquire(w.pong_lock, 0));
    }
    pthread_t th = bench_spawn(wake_thread, &w);
    run_task(wake_main, &w);
    bench_join(th);
    conc_queue_free(w.ping_q);
    conc_queue_free(w.pong_q);
    conc_lock_free(w.ping_lock);
    conc_lock_free(w.pong_lock);
    *ops = w.n;
    return (double)w.total_ns / 1e9;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    g_smoke = o.smoke;
    BENCH_CHECK(conc_aio_loop_new(NULL, &g_loop));

    bench_impl sw[] = {{"conc", aio_switch, NULL}};
    bench_row(&o, "aio_switch", sw, 1, 0, 1000);
    bench_impl cs[] = {{"conc", aio_call_soon, NULL}};
    bench_row(&o, "aio_call_soon", cs, 1, 0, 1000);
    bench_impl ca[] = {{"conc", aio_create_await, NULL}};
    bench_row(&o, "aio_create_await", ca, 1, 0, 1000);
    bench_impl ga[] = {{"conc", aio_gather, NULL}};
    bench_row(&o, "aio_gather", ga, 1, 1, SMOKE_BATCH);
    aio_idle_mem();

    timers t;
    arm_timers(&t, o.smoke ? SMOKE_BATCH : ARMED_TIMERS);
    bench_impl ti[] = {{"conc", aio_timers, &t}};
    bench_row(&o, "aio_timers", ti, 1, 0, 1000);
    conc_aio_loop_free(t.loop);

    bench_impl ts[] = {{"conc", aio_threadsafe, NULL}};
    bench_row(&o, "aio_threadsafe", ts, 1, 1, 1000);
    static int by_lock = 0, by_queue = 1;
    bench_impl lw[] = {{"conc", wake_run, &by_lock}};
    bench_row(&o, "aio_lock_wake", lw, 1, 0, 100);
    bench_impl qw[] = {{"conc", wake_run, &by_queue}};
    bench_row(&o, "aio_queue_wake", qw, 1, 0, 100);

    BENCH_CHECK(conc_aio_loop_close(g_loop));
    conc_aio_loop_free(g_loop);
    return 0;
}
