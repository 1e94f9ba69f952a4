/* s002_wait_first_completed: seed 002, section 5.3, wait(FIRST_COMPLETED).
 *
 * The Python submits get_html(3), get_html(2) and get_html(4) to
 * ThreadPoolExecutor(max_workers=2), then calls
 * wait(all_task, return_when=FIRST_COMPLETED), which returns as soon as one
 * future is done: 'get page 2 success' and then 'main'. The other two
 * finish before the interpreter exits: 'get page 3 success',
 * 'get page 4 success'.
 *
 * conc_wait takes the futures, a timeout and the condition, and fills one
 * "done" flag per future (Python's done and not_done sets); here the flags
 * are printed as the done set. The executor is freed at the end, which
 * waits for the tasks still running as Python's exit does. A second is
 * 20 ms; the output is always the same.
 */
#include <inttypes.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */
#define N_URLS 3

static int
get_html(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *times = arg;
    if (len != sizeof *times)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep((double)*times * SECOND);
    if (rc != 0)
        return rc;
    printf("get page %" PRId64 " success\n", *times);
    return conc_buf_append(result, times, sizeof *times);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_executor *executor;
    check(conc_thread_executor_new(&(conc_executor_opts){.max_workers = 2},
                                   &executor),
          "conc_thread_executor_new");
    static const int64_t urls[N_URLS] = {3, 2, 4};
    conc_future *all_task[N_URLS];
    for (int i = 0; i < N_URLS; i++)
        check(conc_executor_submit(executor, get_html, &urls[i], sizeof urls[i],
                                   &all_task[i]),
              "conc_executor_submit");

    unsigned char done[N_URLS];
    check(conc_wait(all_task, N_URLS, CONC_FIRST_COMPLETED, CONC_FOREVER, done),
          "conc_wait");
    printf("main (done: get_html(");
    for (int i = 0, n = 0; i < N_URLS; i++)
        if (done[i])
            printf("%s%" PRId64, n++ ? "), get_html(" : "", urls[i]);
    printf("))\n");

    for (int i = 0; i < N_URLS; i++)
        conc_future_free(all_task[i]);
    conc_executor_free(executor); /* waits for pages 3 and 4 */
    return 0;
}
