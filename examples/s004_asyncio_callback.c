/* s004_asyncio_callback: seed 004, 四 协程异步IO(asyncio), 通过callback获取
 * 返回值: a done callback reads the task's result.
 *
 * The Python creates a task from a coroutine that sleeps 1 s and returns
 * 'ok', adds my_callback to it with add_done_callback, runs the loop until
 * the task is done and closes it. The callback prints:
 *
 *     返回值: ok
 *
 * A task is a conc_future, so conc_future_add_done_callback works on it as
 * on a thread pool's future; the callback runs in the loop's thread when
 * the task completes, before run_until_complete returns. Its result is
 * done, so conc_future_result with timeout 0 never waits. One second is
 * 20 ms here.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
my_callback(void *arg, conc_future *future)
{
    (void)arg;
    const void *data;
    size_t len;
    int rc = conc_future_result(future, 0, &data, &len);
    if (rc != 0)
        return rc; /* reported on stderr, as Python logs it */
    printf("返回值: %.*s\n", (int)len, (const char *)data);
    return 0;
}

static int
coroutine_example(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    int rc = conc_aio_sleep(1 * SECOND);
    if (rc != 0)
        return rc;
    return conc_buf_append(result, "ok", 2);
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
    check(conc_future_add_done_callback(task, my_callback, NULL),
          "conc_future_add_done_callback");

    check(conc_aio_loop_run_until_complete(loop, task),
          "conc_aio_loop_run_until_complete");
    conc_future_free(task);
    check(conc_aio_loop_close(loop), "conc_aio_loop_close");
    conc_aio_loop_free(loop);
    return 0;
}
