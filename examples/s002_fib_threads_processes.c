/* s002_fib_threads_processes: seed 002, section 6.1, CPU work on threads
 * and on processes.
 *
 * The Python submits fib(25) ... fib(39) to ThreadPoolExecutor(3) and then
 * to ProcessPoolExecutor(3), each in a `with` block, prints
 * 'exe result: N' for each future from as_completed and
 * 'last time is: T'. With the GIL the threads take turns on one core, so
 * processes win: the seed's lesson is "CPU work wants processes".
 *
 * C has no GIL: threads run fib in parallel as well as processes do. To
 * show it, each kind runs with one worker and then with two (the machine
 * may have only two cores), and the program prints how much faster two
 * workers were. fib(35) ... fib(25) keep each run short, and go largest
 * first: the last of the seed's ascending order is over a third of all the
 * work and would run alone at the end, which caps any speed-up at about
 * 1.5. The same task function runs in both executors, which differ by one
 * call. The `with` block is CONC_EXECUTOR_SCOPED: the executor is shut down
 * and freed when the block ends. The results come in nearly the same order
 * every time; the times vary, and a loaded machine shows less speed-up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define FIRST 25
#define LAST  35
#define N_FIB (LAST - FIRST + 1)

static int64_t
fib(int n)
{
    if (n <= 2)
        return 1;
    return fib(n - 1) + fib(n - 2);
}

static int
fib_task(const void *arg, size_t len, conc_buf *result)
{
    const int *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int64_t r = fib(*n);
    return conc_buf_append(result, &r, sizeof r);
}

/* The seed's with-block on `workers` threads or processes: returns the
 * time from the first submit to the last result. */
static double
run(int processes, size_t workers)
{
    CONC_EXECUTOR_SCOPED conc_executor *executor = NULL;
    conc_executor_opts opts = {.max_workers = workers};
    if (processes)
        check(conc_process_executor_new(&opts, &executor),
              "conc_process_executor_new");
    else
        check(conc_thread_executor_new(&opts, &executor),
              "conc_thread_executor_new");
    double start_time = conc_monotonic();
    conc_future *all_task[N_FIB];
    for (int num = LAST; num >= FIRST; num--)
        check(conc_executor_submit(executor, fib_task, &num, sizeof num,
                                   &all_task[LAST - num]),
              "conc_executor_submit");
    conc_as_completed_iter *it;
    check(conc_as_completed(all_task, N_FIB, CONC_FOREVER, &it),
          "conc_as_completed");
    conc_future *future;
    for (int i = 0; i < N_FIB; i++) {
        check(conc_as_completed_next(it, &future), "conc_as_completed_next");
        const void *data;
        size_t len;
        check(conc_future_result(future, 0, &data, &len), "fib");
        int64_t r;
        check(len == sizeof r ? 0 : CONC_EVALUE, "result size");
        memcpy(&r, data, sizeof r);
        printf("exe result: %" PRId64 "\n", r);
    }
    double t = conc_monotonic() - start_time;
    printf("last time is: %.3f\n", t);
    conc_as_completed_free(it);
    for (int i = 0; i < N_FIB; i++)
        conc_future_free(all_task[i]);
    return t;
} /* the executor is shut down here */

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    static const char *const kind[] = {"threads", "processes"};
    double one[2], two[2];
    for (int processes = 0; processes < 2; processes++) {
        printf("--- %s, 1 worker ---\n", kind[processes]);
        one[processes] = run(processes, 1);
        printf("--- %s, 2 workers ---\n", kind[processes]);
        two[processes] = run(processes, 2);
    }
    for (int k = 0; k < 2; k++)
        printf("%s: 2 workers ran %.2f times as fast as 1\n", kind[k],
               one[k] / two[k]);
    return 0;
}
