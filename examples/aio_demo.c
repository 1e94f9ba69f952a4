/* aio_demo: coroutines await a process pool, a thread executor and a
 * queue fed by threads, all at once on one loop, and the watchdog catches
 * a coroutine that computes without ever suspending.
 *
 * Four tasks run on one loop:
 *   - "process" submits fib(27) to a process executor and awaits it: the
 *     answer comes from a worker process, while the loop runs the others;
 *   - "thread" submits a sum to a thread executor and awaits it;
 *   - "queue" takes the items two feeder threads put into a conc_queue,
 *     with the same conc_queue_get a thread would call: inside a
 *     coroutine it suspends only the coroutine;
 *   - "busy" computes in a loop that never suspends, which stalls every
 *     other task of the loop. The loop's watchdog (50 ms here) reports it
 *     by name; the report goes to watchdog_fn, which prints the name
 *     rather than the addresses of the backtrace, so the output is stable.
 *
 * In Python the first two would be loop.run_in_executor with a
 * ProcessPoolExecutor and a ThreadPoolExecutor, and the queue a
 * queue.Queue read through to_thread (an asyncio.Queue cannot be fed by
 * threads); asyncio's "slow callback" report exists only in debug mode
 * and names no task. Output:
 *
 *     watchdog: task "busy" ran 50 ms or more without suspending
 *     process: fib(27) = 196418, computed in another process
 *     thread: sum(1..1000) = 500500
 *     queue: 20 items from 2 threads, sum 210
 *     busy: stopped after the watchdog's report
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define WATCHDOG        0.05 /* seconds a task may run without suspending */
#define FIB_N           27
#define SUM_N           1000
#define FEEDERS         2
#define ITEMS_PER_FEED  10
#define BUSY_LIMIT_S    30.0 /* the watchdog must have spoken by then */
#define BUSY_CHUNK      100000
#define RESULT_TEXT_MAX 128
/* A linear congruential step (Knuth's MMIX constants): work to burn. */
#define LCG_MUL 6364136223846793005ul
#define LCG_ADD 1442695040888963407ul

static atomic_int busy_reported;
static pid_t parent_pid;

/* The watchdog's report, in the watchdog's thread while "busy" still
 * runs. Other tasks may be reported too on a loaded machine (a task the
 * system did not schedule for 50 ms looks the same); those go to stderr
 * so that the output stays the same from run to run. */
static void
on_watchdog(void *arg, const char *task, double seconds, void *const *pcs,
            int npcs)
{
    (void)arg, (void)pcs, (void)npcs;
    if (strcmp(task, "busy") != 0) {
        fprintf(stderr, "watchdog: task \"%s\" ran %.3f s without suspending\n",
                task, seconds);
        return;
    }
    printf("watchdog: task \"%s\" ran %d ms or more without suspending\n", task,
           (int)(WATCHDOG * 1000));
    atomic_store(&busy_reported, 1);
}

static long
fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* Runs in a worker process of the process executor. */
static int
fib_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    long v = fib(FIB_N);
    int other = getpid() != parent_pid;
    char text[RESULT_TEXT_MAX];
    int n = snprintf(text, sizeof text, "fib(%d) = %ld, computed in %s", FIB_N,
                     v, other ? "another process" : "this process");
    return conc_buf_append(result, text, (size_t)n);
}

/* Runs in a thread of the thread executor. */
static int
sum_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    long s = 0;
    for (long i = 1; i <= SUM_N; i++)
        s += i;
    char text[RESULT_TEXT_MAX];
    int n = snprintf(text, sizeof text, "sum(1..%d) = %ld", SUM_N, s);
    return conc_buf_append(result, text, (size_t)n);
}

/* Awaits fn in executor `ex` and hands on its result bytes. */
static int
await_in(conc_executor *ex, conc_task_fn fn, conc_buf *result)
{
    conc_future *f;
    int rc = conc_aio_run_in_executor(ex, fn, NULL, 0, &f);
    if (rc != 0)
        return rc;
    rc = conc_aio_await(f); /* suspends this task only */
    const void *data;
    size_t len;
    if (rc == 0)
        rc = conc_future_result(f, 0, &data, &len);
    if (rc == 0)
        rc = conc_buf_append(result, data, len);
    conc_future_free(f);
    return rc;
}

/* The argument of the "process" and "thread" tasks: the executor. */
static int
executor_coro(const void *arg, size_t len, conc_buf *result)
{
    conc_executor *ex;
    conc_task_fn fn;
    if (len != sizeof ex + sizeof fn)
        return CONC_EINVAL;
    memcpy(&ex, arg, sizeof ex);
    memcpy(&fn, (const char *)arg + sizeof ex, sizeof fn);
    return await_in(ex, fn, result);
}

struct feeder {
    conc_queue *q;
    intptr_t first;
};

/* A feeder thread: puts ITEMS_PER_FEED numbers, then NULL for "done". */
static int
feed(void *arg)
{
    struct feeder *f = arg;
    for (intptr_t i = 0; i < ITEMS_PER_FEED; i++) {
        int rc = conc_queue_put(f->q, (void *)(f->first + i), CONC_FOREVER);
        if (rc != 0)
            return rc;
    }
    return conc_queue_put(f->q, NULL, CONC_FOREVER);
}

/* Takes items until every feeder said "done". */
static int
queue_coro(const void *arg, size_t len, conc_buf *result)
{
    conc_queue *q;
    if (len != sizeof q)
        return CONC_EINVAL;
    memcpy(&q, arg, sizeof q);
    int done = 0, items = 0;
    intptr_t sum = 0;
    while (done < FEEDERS) {
        void *item;
        int rc = conc_queue_get(q, CONC_FOREVER, &item);
        if (rc != 0)
            return rc;
        if (item == NULL) {
            done++;
            continue;
        }
        items++;
        sum += (intptr_t)item;
    }
    char text[RESULT_TEXT_MAX];
    int n = snprintf(text, sizeof text, "%d items from %d threads, sum %ld",
                     items, FEEDERS, (long)sum);
    return conc_buf_append(result, text, (size_t)n);
}

/* Computes without suspending until the watchdog has reported it: a
 * coroutine that forgot to yield. */
static int
busy_coro(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    double give_up = conc_monotonic() + BUSY_LIMIT_S;
    volatile unsigned long x = 1;
    while (!atomic_load(&busy_reported)) {
        for (int i = 0; i < BUSY_CHUNK; i++)
            x = x * LCG_MUL + LCG_ADD;
        if (conc_monotonic() > give_up)
            return conc_fail(CONC_ETIMEDOUT, "the watchdog never reported");
    }
    static const char text[] = "stopped after the watchdog's report";
    return conc_buf_append(result, text, sizeof text - 1);
}

struct demo {
    conc_executor *procs, *threads;
    conc_queue *q;
};

static const char *const names[] = {"process", "thread", "queue", "busy"};
#define N_TASKS (sizeof names / sizeof *names)

/* Starts the four tasks, waits for all, and prints what each received. */
static int
main_coro(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    const struct demo *d = arg;
    if (len != sizeof *d)
        return CONC_EINVAL;
    unsigned char pa[sizeof(void *) * 2], ta[sizeof(void *) * 2];
    conc_task_fn fib_fn = fib_task, sum_fn = sum_task;
    memcpy(pa, &d->procs, sizeof d->procs);
    memcpy(pa + sizeof d->procs, &fib_fn, sizeof fib_fn);
    memcpy(ta, &d->threads, sizeof d->threads);
    memcpy(ta + sizeof d->threads, &sum_fn, sizeof sum_fn);
    conc_future *fs[N_TASKS] = {0};
    int rc = 0;
    for (size_t i = 0; i < N_TASKS && rc == 0; i++) {
        conc_aio_task_opts o = {.name = names[i]};
        rc =
            i == 0
                ? conc_aio_create_task(executor_coro, pa, sizeof pa, &o, &fs[i])
            : i == 1
                ? conc_aio_create_task(executor_coro, ta, sizeof ta, &o, &fs[i])
            : i == 2 ? conc_aio_create_task(queue_coro, &d->q, sizeof d->q, &o,
                                            &fs[i])
                     : conc_aio_create_task(busy_coro, NULL, 0, &o, &fs[i]);
    }
    if (rc == 0)
        rc = conc_aio_gather(fs, N_TASKS, 0);
    for (size_t i = 0; i < N_TASKS && rc == 0; i++) {
        const void *data;
        size_t n;
        rc = conc_future_result(fs[i], 0, &data, &n);
        if (rc == 0)
            printf("%s: %.*s\n", names[i], (int)n, (const char *)data);
    }
    for (size_t i = 0; i < N_TASKS; i++)
        conc_future_free(fs[i]);
    return rc;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    parent_pid = getpid();
    struct demo d;
    /* The process workers are forked first, before any thread exists. */
    conc_executor_opts po = {.max_workers = 2};
    check(conc_process_executor_new(&po, &d.procs),
          "conc_process_executor_new");
    conc_executor_opts to = {.max_workers = 2};
    check(conc_thread_executor_new(&to, &d.threads),
          "conc_thread_executor_new");
    check(conc_queue_new(NULL, &d.q), "conc_queue_new");

    struct feeder feeders[FEEDERS];
    conc_thread *th[FEEDERS];
    for (int i = 0; i < FEEDERS; i++) {
        feeders[i] = (struct feeder){d.q, 1 + i * ITEMS_PER_FEED};
        check(conc_thread_start(feed, &feeders[i], NULL, &th[i]),
              "conc_thread_start");
    }

    conc_aio_loop *loop;
    conc_aio_loop_opts lo = {.watchdog = WATCHDOG, .watchdog_fn = on_watchdog};
    check(conc_aio_loop_new(&lo, &loop), "conc_aio_loop_new");
    conc_future *m;
    check(conc_aio_loop_create_task(loop, main_coro, &d, sizeof d, NULL, &m),
          "conc_aio_loop_create_task");
    check(conc_aio_loop_run_until_complete(loop, m), "the demo");
    conc_future_free(m);
    check(conc_aio_loop_close(loop), "conc_aio_loop_close");
    conc_aio_loop_free(loop);

    for (int i = 0; i < FEEDERS; i++) {
        int status;
        check(conc_thread_join(th[i], CONC_FOREVER, &status),
              "conc_thread_join");
        check(status, "a feeder");
        conc_thread_free(th[i]);
    }
    conc_queue_free(d.q);
    conc_executor_free(d.threads);
    conc_executor_free(d.procs);
    return 0;
}
