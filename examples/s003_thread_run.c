/* s003_thread_run: seed 003, threading模块, the first program (普通写法).
 *
 * The Python starts two threads on run("t1") and run("t2"), each printing
 * "task..... n" and sleeping 2 s, and never joins them: the interpreter
 * waits for them at exit. conc does the same for C: the threads are started
 * without a handle (`out` NULL), main returns, and exit() first joins every
 * non-daemon thread conc started, so the process lives until both have
 * slept. The seed's seconds are 20 ms here.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
run(void *n)
{
    printf("task..... %s\n", (const char *)n);
    check(conc_sleep(2 * SECOND), "conc_sleep");
    return 0;
}

int
main(void)
{
    check(conc_thread_start(run, "t1", NULL, NULL), "conc_thread_start");
    check(conc_thread_start(run, "t2", NULL, NULL), "conc_thread_start");
    return 0; /* exit() waits for t1 and t2 */
}
