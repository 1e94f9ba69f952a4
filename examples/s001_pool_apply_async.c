/* s001_pool_apply_async: seed 001, 五 进程池, 进程池的异步调用 (apply_async).
 *
 * The Python creates Pool(3) and hands it ten work(i) with apply_async,
 * which returns at once with an AsyncResult; at most three tasks run at a
 * time, and a worker that finishes one takes the next. Each prints
 * '<pid> run', sleeps random.random() seconds and returns n**2. Main calls
 * close() and join(), then prints each result with get().
 *
 * conc_pool_apply_async gives a conc_async_result, read with
 * conc_async_result_get: its bytes are borrowed from the result, valid
 * until conc_async_result_free. The random sleeps are fixed here (0.0 to
 * 0.9 of a second) and a second is 20 ms. The squares come out in order,
 * as get() is called in order; the pids vary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    printf("%d run\n", (int)getpid());
    /* random.random(), fixed: 0.7, 0.4, 0.1, 0.8, ... */
    int rc = conc_sleep((double)((*n * 7 + 7) % 10) / 10 * SECOND);
    if (rc != 0)
        return rc;
    int64_t square = *n * *n;
    return conc_buf_append(result, &square, sizeof square);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 3}, &p),
          "conc_pool_new");
    conc_async_result *res_l[N_TASKS];
    for (int64_t i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(p, work, &i, sizeof i, NULL, &res_l[i]),
              "conc_pool_apply_async");
    /* No new tasks, then wait until the queued ones are done. */
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    for (int i = 0; i < N_TASKS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res_l[i], CONC_FOREVER, &data, &len),
              "conc_async_result_get");
        int64_t square;
        check(len == sizeof square ? 0 : CONC_EVALUE, "result size");
        memcpy(&square, data, sizeof square);
        printf("%" PRId64 "\n", square);
        conc_async_result_free(res_l[i]);
    }
    conc_pool_free(p);
    return 0;
}
