/* s001_pool_no_callback: seed 001, 五 进程池, 无需回调函数的示例 (collect
 * every result after join, without callbacks).
 *
 * The Python gives Pool() (one worker per CPU) ten work(i) with
 * apply_async; work sleeps a second and returns n**2. After close() and
 * join() main gets every result and prints the list: when the parent
 * handles the results all together at the end, no callback is needed.
 *
 * conc_pool_new with NULL options starts one worker per CPU, as Python's
 * Pool() does. A second is 20 ms; the list is always
 * [0, 1, 4, 9, 16, 25, 36, 49, 64, 81].
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 10

static int
work(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep(SECOND);
    if (rc != 0)
        return rc;
    int64_t square = *n * *n;
    return conc_buf_append(result, &square, sizeof square);
}

int
main(void)
{
    conc_pool *p;
    check(conc_pool_new(NULL, &p), "conc_pool_new");
    conc_async_result *res_l[N_TASKS];
    for (int64_t i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(p, work, &i, sizeof i, NULL, &res_l[i]),
              "conc_pool_apply_async");
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");

    int64_t nums[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res_l[i], CONC_FOREVER, &data, &len),
              "conc_async_result_get");
        check(len == sizeof nums[i] ? 0 : CONC_EVALUE, "result size");
        memcpy(&nums[i], data, sizeof nums[i]);
        conc_async_result_free(res_l[i]);
    }
    printf("[");
    for (int i = 0; i < N_TASKS; i++)
        printf("%s%" PRId64, i ? ", " : "", nums[i]);
    printf("]\n");
    conc_pool_free(p);
    return 0;
}
