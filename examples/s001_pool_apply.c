/* s001_pool_apply: seed 001, 五 进程池, 进程池的同步调用 (apply).
 *
 * The Python creates Pool(3) and calls p.apply(work, args=(i,)) ten times:
 * each call waits for its task, which prints '<pid> run', sleeps a second
 * and returns n**2, so the tasks run one after the other although three
 * workers are there. It then prints the list of the results.
 *
 * conc_pool_apply appends the task's result bytes (here an int64_t) to a
 * buffer. A second is 20 ms here, so the ten calls take about 0.2 s; the
 * list is always [0, 1, 4, 9, 16, 25, 36, 49, 64, 81], the pids vary.
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
    int rc = conc_sleep(SECOND);
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
    int64_t res_l[N_TASKS];
    conc_buf res = CONC_BUF_INIT;
    for (int64_t i = 0; i < N_TASKS; i++) {
        conc_buf_consume(&res, res.len); /* empty it, keep its memory */
        /* Synchronous: returns once this task is done. */
        check(conc_pool_apply(p, work, &i, sizeof i, CONC_FOREVER, &res),
              "conc_pool_apply");
        check(res.len == sizeof res_l[i] ? 0 : CONC_EVALUE, "result size");
        memcpy(&res_l[i], res.data, sizeof res_l[i]);
    }
    conc_buf_free(&res);
    printf("[");
    for (int i = 0; i < N_TASKS; i++)
        printf("%s%" PRId64, i ? ", " : "", res_l[i]);
    printf("]\n");
    conc_pool_free(p);
    return 0;
}
