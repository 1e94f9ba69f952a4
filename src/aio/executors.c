/* run_in_executor, to_thread, to_process: thread and process executors
 * seen from coroutines. The futures they return are ordinary conc_futures,
 * which a task awaits without blocking its loop (principle 5); each loop
 * owns a default thread executor and a default process executor, made on
 * first use and shut down when it closes. */
#include "aio/aio_internal.h"

static int
default_executor(conc_aio_loop *loop, int processes, conc_executor **out)
{
    conc_executor **slot =
        processes ? &loop->process_executor : &loop->thread_executor;
    if (!*slot) {
        int r = processes ? conc_process_executor_new(NULL, slot)
                          : conc_thread_executor_new(NULL, slot);
        if (r < 0)
            return r;
    }
    *out = *slot;
    return 0;
}

void
conc__aio_executors_close(conc_aio_loop *loop)
{
    if (loop->thread_executor) {
        conc_executor_shutdown(loop->thread_executor, 1, 1, CONC_FOREVER);
        conc_executor_free(loop->thread_executor);
        loop->thread_executor = NULL;
    }
    if (loop->process_executor) {
        conc_executor_shutdown(loop->process_executor, 1, 1, CONC_FOREVER);
        conc_executor_free(loop->process_executor);
        loop->process_executor = NULL;
    }
}

int
conc_aio_run_in_executor(conc_executor *ex, conc_task_fn fn, const void *arg,
                         size_t len, conc_future **out)
{
    if (!fn || !out || (!arg && len))
        return CONC_EINVAL;
    if (!ex) {
        if (!conc__aio_running)
            return conc_fail(CONC_ESTATE, "no running event loop");
        int r = default_executor(conc__aio_running, 0, &ex);
        if (r < 0)
            return r;
    }
    return conc_executor_submit(ex, fn, arg, len, out);
}

static int
run_and_wait(int processes, conc_task_fn fn, const void *arg, size_t len,
             conc_buf *result)
{
    if (!fn || (!arg && len))
        return CONC_EINVAL;
    if (!conc__aio_running)
        return conc_fail(CONC_ESTATE, "no running event loop");
    conc_executor *ex;
    conc_future *f;
    int r = default_executor(conc__aio_running, processes, &ex);
    if (r == 0)
        r = conc_executor_submit(ex, fn, arg, len, &f);
    if (r < 0)
        return r;
    r = conc_aio_await(f); /* cancels f if this task is cancelled */
    const void *data;
    size_t n;
    if (r == 0 && result && conc_future_result(f, 0, &data, &n) == 0 && n &&
        conc_buf_append(result, data, n) < 0)
        r = CONC_ENOMEM;
    else if (r < 0 && r != CONC_ECANCELED)
        conc_future_result(f, 0, NULL, NULL); /* its message becomes ours */
    conc_future_free(f);
    return r;
}

int
conc_aio_to_thread(conc_task_fn fn, const void *arg, size_t len,
                   conc_buf *result)
{
    return run_and_wait(0, fn, arg, len, result);
}

int
conc_aio_to_process(conc_task_fn fn, const void *arg, size_t len,
                    conc_buf *result)
{
    return run_and_wait(1, fn, arg, len, result);
}
