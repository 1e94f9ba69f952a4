/* s004_add_done_callback: seed 004, 三 concurrent.futures, add_done_callback
 * with a task that fails.
 *
 * The Python submits test(i) for i in range(20) to
 * ProcessPoolExecutor(max_workers=3) inside a `with` block and adds
 * call_back to each future; test raises ZeroDivisionError for even n and
 * returns n * 2 otherwise. call_back prints '异常: division by zero' when
 * future.exception() is set, then prints future.result(), which raises
 * again for a failed task: the executor logs "exception calling callback
 * for <Future ...>" with the traceback, and goes on. Main prints the time
 * taken to submit ('total_time:T'), and the with-block waits for the rest.
 * Its comments show two other ways, as_completed and map, over fib.
 *
 * A task fails by returning a negative code, here with a message:
 * conc_fail(CONC_ETASK, "division by zero"); conc_future_exception gives
 * the code and conc_future_message the message. A callback that fails
 * returns its code, and conc reports it on stderr as Python logs it
 * ("exception calling callback for future 0x...: CONC_ETASK: division by
 * zero"), once per even number. A callback runs in the thread that completes
 * the future, or at once in main when the future is already done. The order of
 * the lines varies; the program exits with 0, as the Python does.
 */
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define N_NUMBERS 20

static int
test(const void *arg, size_t len, conc_buf *result)
{
    const int *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    if (*n % 2 == 0)
        return conc_fail(CONC_ETASK, "division by zero"); /* n / 0 */
    int r = *n * 2;
    return conc_buf_append(result, &r, sizeof r);
}

/* Gets the result and failures too. */
static int
call_back(void *arg, conc_future *future)
{
    (void)arg;
    int worker_exception;
    int rc = conc_future_exception(future, CONC_FOREVER, &worker_exception);
    if (rc != 0)
        return rc;
    if (worker_exception)
        printf("异常: %s\n", conc_future_message(future));
    const void *data;
    size_t len;
    rc = conc_future_result(future, CONC_FOREVER, &data, &len);
    if (rc != 0)
        return rc; /* the task's failure, raised again: reported on stderr */
    int r;
    if (len != sizeof r)
        return conc_fail(CONC_EVALUE, "result of %zu bytes", len);
    memcpy(&r, data, sizeof r);
    printf("%d\n", r);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    double start = conc_monotonic();
    {
        CONC_EXECUTOR_SCOPED conc_executor *executor = NULL;
        check(conc_process_executor_new(&(conc_executor_opts){.max_workers = 3},
                                        &executor),
              "conc_process_executor_new");
        for (int i = 0; i < N_NUMBERS; i++) {
            conc_future *f;
            check(conc_executor_submit(executor, test, &i, sizeof i, &f),
                  "conc_executor_submit");
            check(conc_future_add_done_callback(f, call_back, NULL),
                  "conc_future_add_done_callback");
            conc_future_free(f); /* the executor keeps its own reference */
        }
        printf("total_time:%.4f\n", conc_monotonic() - start);
    } /* the executor is shut down here, after every callback */
    return 0;
}
