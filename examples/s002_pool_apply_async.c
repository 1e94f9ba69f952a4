/* s002_pool_apply_async: seed 002, section 6.5, multiprocessing.Pool.
 *
 * The Python creates Pool(multiprocessing.cpu_count()), submits
 * get_html(3) with apply_async, calls close() and join(), and prints
 * result.get(). get_html sleeps n seconds, prints 'sub_progress success'
 * and returns n. The output is 'sub_progress success' and then 3.
 *
 * conc_pool_new with processes 0 (or NULL options) starts one worker per
 * CPU; conc_pool_processes tells how many. A second is 20 ms; the output is
 * always the same.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
get_html(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep((double)*n * SECOND);
    if (rc != 0)
        return rc;
    printf("sub_progress success\n");
    return conc_buf_append(result, n, sizeof *n);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 0}, &pool),
          "conc_pool_new");
    int64_t n = 3;
    conc_async_result *result;
    check(conc_pool_apply_async(pool, get_html, &n, sizeof n, NULL, &result),
          "conc_pool_apply_async");
    /* join() wants close() first, as in Python. */
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    const void *data;
    size_t len;
    check(conc_async_result_get(result, CONC_FOREVER, &data, &len),
          "conc_async_result_get");
    int64_t r;
    check(len == sizeof r ? 0 : CONC_EVALUE, "result size");
    memcpy(&r, data, sizeof r);
    printf("%" PRId64 "\n", r);
    conc_async_result_free(result);
    conc_pool_free(pool);
    return 0;
}
