/* s001_pool_callback: seed 001, 五 进程池, 回调函数 (a callback runs in the
 * parent).
 *
 * The Python prints the main process's pid, creates Pool(5) and calls
 * p.apply_async(func1, args=(10,), callback=func2), then close() and
 * join(). func1 prints 'func1>> PID' and 'func1' in a worker and returns
 * n*n; func2 gets that result and prints 'func2>> PID', 'func2' and 100,
 * with the main process's pid: the callback runs in the parent, which is
 * the point of the program.
 *
 * conc_apply_opts.callback is called with the result bytes (and
 * conc_apply_opts.arg) in the pool's result thread, a thread of the parent
 * process. The output is always the same but for the pids; func2's pid is
 * the one main printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

static int
func1(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("func1>> %d\n", (int)getpid());
    printf("func1\n");
    int64_t square = *n * *n;
    return conc_buf_append(result, &square, sizeof square);
}

static void
func2(void *arg, const void *data, size_t len)
{
    (void)arg;
    int64_t nn = 0;
    if (len == sizeof nn)
        memcpy(&nn, data, sizeof nn);
    printf("func2>> %d\n", (int)getpid());
    printf("func2\n");
    printf("%" PRId64 "\n", nn);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    printf("主进程: %d\n", (int)getpid());
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 5}, &p),
          "conc_pool_new");
    int64_t n = 10;
    check(conc_pool_apply_async(p, func1, &n, sizeof n,
                                &(conc_apply_opts){.callback = func2}, NULL),
          "conc_pool_apply_async");
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    conc_pool_free(p);
    return 0;
}
