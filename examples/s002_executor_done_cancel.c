/* s002_executor_done_cancel: seed 002, section 5.1, ThreadPoolExecutor:
 * submit, done, cancel and result.
 *
 * The Python submits get_html(3) and get_html(2) to
 * ThreadPoolExecutor(max_workers=2); get_html sleeps that many seconds,
 * prints 'get page N success' and returns N. Main prints task1.done()
 * (False: it runs), task2.cancel() (False: a running task cannot be
 * cancelled), sleeps 3 s, prints task1.done() (True) and task1.result()
 * (3).
 *
 * conc_thread_executor_new is the ThreadPoolExecutor and
 * conc_executor_submit returns a conc_future. A new worker thread needs a
 * moment to pick its task up, and C reaches the cancel sooner than Python
 * does, so main first waits until task2 runs, or cancel could still find it
 * pending (and succeed). After the 3 s sleep main also waits for task1,
 * so that a loaded machine cannot print False. A second is 20 ms. The
 * seed's lines always come out the same.
 *
 * Two parts go beyond the seed: a third task submitted while both workers
 * are busy is pending, so cancel succeeds (True); and cancelling a running
 * task, which returns False as in Python, also raises the task's token
 * (conc_task_cancelled): a task that watches it can stop early, and its
 * future then ends cancelled.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static const char *
py_bool(int b)
{
    return b ? "True" : "False";
}

static int
get_html(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *times = arg;
    if (len != sizeof *times)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep((double)*times * SECOND);
    if (rc != 0)
        return rc;
    printf("get page %" PRId64 " success\n", *times);
    return conc_buf_append(result, times, sizeof *times);
}

/* A slow page that gives up when asked: it sleeps in short slices and
 * looks at its token between them. */
static int
get_html_cancellable(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    const int64_t *times = arg;
    if (len != sizeof *times)
        return conc_fail(CONC_EINVAL, "bad argument");
    for (int64_t slice = 0; slice < *times * 10; slice++) {
        if (conc_task_cancelled()) {
            printf("get page %" PRId64 " stopped early\n", *times);
            return CONC_ECANCELED;
        }
        int rc = conc_sleep(SECOND / 10);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static conc_future *
submit(conc_executor *ex, conc_task_fn fn, int64_t times)
{
    conc_future *f;
    check(conc_executor_submit(ex, fn, &times, sizeof times, &f),
          "conc_executor_submit");
    return f;
}

/* Waits until a worker has picked the task up. */
static void
wait_running(conc_future *f)
{
    while (conc_future_state_of(f) == CONC_FUTURE_PENDING)
        check(conc_sleep(0.001), "conc_sleep");
}

static void
cancel_running_task(conc_executor *executor)
{
    conc_future *task = submit(executor, get_html_cancellable, 10);
    wait_running(task);
    printf("cancel() of a running task: %s\n",
           py_bool(conc_future_cancel(task)));
    int rc = conc_future_result(task, CONC_FOREVER, NULL, NULL);
    printf("its result(): %s, cancelled(): %s\n", conc_err_name(rc),
           py_bool(conc_future_cancelled(task)));
    conc_future_free(task);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_executor *executor;
    check(conc_thread_executor_new(&(conc_executor_opts){.max_workers = 2},
                                   &executor),
          "conc_thread_executor_new");
    conc_future *task1 = submit(executor, get_html, 3);
    conc_future *task2 = submit(executor, get_html, 2);
    wait_running(task2);
    printf("%s\n", py_bool(conc_future_done(task1)));
    printf("%s\n", py_bool(conc_future_cancel(task2)));

    conc_future *task3 = submit(executor, get_html, 4); /* both busy */
    printf("cancel() of a pending task: %s\n",
           py_bool(conc_future_cancel(task3)));

    check(conc_sleep(3 * SECOND), "conc_sleep");
    check(conc_wait(&task1, 1, CONC_ALL_COMPLETED, CONC_FOREVER, NULL),
          "conc_wait");
    printf("%s\n", py_bool(conc_future_done(task1)));
    const void *data;
    size_t len;
    check(conc_future_result(task1, CONC_FOREVER, &data, &len),
          "conc_future_result");
    int64_t result;
    check(len == sizeof result ? 0 : CONC_EVALUE, "result size");
    memcpy(&result, data, sizeof result);
    printf("%" PRId64 "\n", result);

    cancel_running_task(executor);
    conc_future_free(task1);
    conc_future_free(task2);
    conc_future_free(task3);
    conc_executor_free(executor);
    return 0;
}
