/* s004_asyncio_task: seed 004, 四 协程异步IO(asyncio), 基础实例: a task run
 * to completion, and its result.
 *
 * The Python makes a coroutine (sleep 1 s, print 'ok', return "ok"), wraps
 * it in a task with loop.create_task, prints the task before it has run,
 * runs the loop until the task is done, prints its result and closes the
 * loop:
 *
 *     运行情况: <Task pending name='Task-1' coro=<coroutine_example() running
 * at s.py:4>> ok 再看下运行情况: ok
 *
 * A coroutine is a conc_task_fn, the task signature of every pool and
 * executor, run on a stack of its own; `await asyncio.sleep(1)` is the call
 * conc_aio_sleep(1), which suspends only this task. The task is a
 * conc_future, so its result is read as any future's. C has no coroutine
 * object to print, so the first line shows the task's state and name:
 * "<Task pending name='Task-1'>". One second is 20 ms here.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
coroutine_example(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    int rc = conc_aio_sleep(1 * SECOND); /* await asyncio.sleep(1) */
    if (rc != 0)
        return rc;
    printf("ok\n");
    return conc_buf_append(result, "ok", 2); /* return "ok" */
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_aio_loop *loop;
    check(conc_aio_loop_new(NULL, &loop), "conc_aio_loop_new");
    conc_future *task;
    check(conc_aio_loop_create_task(loop, coroutine_example, NULL, 0, NULL,
                                    &task),
          "conc_aio_loop_create_task");
    printf("运行情况: <Task %s name='%s'>\n",
           conc_future_done(task) ? "finished" : "pending",
           conc_aio_task_name(task));

    check(conc_aio_loop_run_until_complete(loop, task),
          "conc_aio_loop_run_until_complete");
    const void *data;
    size_t len;
    check(conc_future_result(task, 0, &data, &len), "conc_future_result");
    printf("再看下运行情况: %.*s\n", (int)len, (const char *)data);

    conc_future_free(task);
    check(conc_aio_loop_close(loop), "conc_aio_loop_close");
    conc_aio_loop_free(loop);
    return 0;
}
