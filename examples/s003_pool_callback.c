/* s003_pool_callback: seed 003, 进程池, apply_async with a callback.
 *
 * The Python creates Pool(processes=5), prints '主进程 PID', and hands it
 * ten Foo(i) with apply_async and callback=Bar, then prints 'end', calls
 * close() and join(). Foo sleeps 2 s, prints 'in process PID' and returns
 * i + 100; Bar, run by the parent for each result as it arrives, prints
 * '-->exec done: RESULT PID' with the parent's pid. Five tasks run at a
 * time, so the lines come in two waves.
 *
 * conc_apply_opts.callback runs in the pool's result thread, in the parent,
 * one result at a time. Two seconds are 40 ms here. The order within a
 * wave and the workers' pids vary; Bar's pid is always main's.
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
Foo(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *i = arg;
    if (len != sizeof *i)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep(2 * SECOND);
    if (rc != 0)
        return rc;
    printf("in process %d\n", (int)getpid());
    int64_t r = *i + 100;
    return conc_buf_append(result, &r, sizeof r);
}

static void
Bar(void *arg, const void *data, size_t len)
{
    (void)arg;
    int64_t r = 0;
    if (len == sizeof r)
        memcpy(&r, data, sizeof r);
    printf("-->exec done: %" PRId64 " %d\n", r, (int)getpid());
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 5}, &pool),
          "conc_pool_new");
    printf("主进程 %d\n", (int)getpid());
    conc_apply_opts callback = {.callback = Bar};
    for (int64_t i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(pool, Foo, &i, sizeof i, &callback, NULL),
              "conc_pool_apply_async");
    printf("end\n");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    conc_pool_free(pool);
    return 0;
}
