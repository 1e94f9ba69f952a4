/* asyncio.run: a loop for one main task, closed and freed after it. */
#include "aio/aio_internal.h"

int
conc_aio_run(conc_task_fn main, const void *arg, size_t len, conc_buf *result)
{
    if (!main || (!arg && len))
        return CONC_EINVAL;
    if (conc__aio_running)
        return conc_fail(CONC_ESTATE,
                         "conc_aio_run cannot be called from a running loop");
    conc_aio_loop *loop;
    int r = conc_aio_loop_new(NULL, &loop);
    if (r < 0)
        return r;
    conc_future *f;
    if ((r = conc_aio_loop_create_task(loop, main, arg, len, NULL, &f)) < 0) {
        conc_aio_loop_free(loop);
        return r;
    }
    r = conc_aio_loop_run_until_complete(loop, f);
    conc_aio_loop_free(loop); /* cancels and finishes what main left */
    const void *data;
    size_t n;
    /* Main's failure message becomes the caller's, as the result does. */
    if (conc_future_result(f, 0, &data, &n) == 0 && result && n &&
        conc_buf_append(result, data, n) < 0)
        r = CONC_ENOMEM;
    conc_future_free(f);
    return r;
}
