/* s002_as_completed: seed 002, section 5.2.1, as_completed.
 *
 * The Python submits get_html(3), get_html(2) and get_html(4) to
 * ThreadPoolExecutor(max_workers=2) and reads the futures with
 * as_completed, which yields each as it finishes: 'get page 2 success' and
 * 'get 2 page' come first, then 3 (which ran beside 2), then 4 (which
 * started when 2 finished).
 *
 * conc_as_completed makes the iterator and conc_as_completed_next yields
 * the next future to finish (CONC_ECLOSED after the last: StopIteration).
 * A second is 20 ms; the lines always come in the seed's order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

    conc_as_completed_iter *it;
    check(conc_as_completed(all_task, N_URLS, CONC_FOREVER, &it),
          "conc_as_completed");
    conc_future *future;
    int rc;
    while ((rc = conc_as_completed_next(it, &future)) == 0) {
        const void *data;
        size_t len;
        check(conc_future_result(future, 0, &data, &len), "conc_future_result");
        int64_t page;
        check(len == sizeof page ? 0 : CONC_EVALUE, "result size");
        memcpy(&page, data, sizeof page);
        printf("get %" PRId64 " page\n", page);
    }
    check(rc == CONC_ECLOSED ? 0 : rc, "conc_as_completed_next");
    conc_as_completed_free(it);
    for (int i = 0; i < N_URLS; i++)
        conc_future_free(all_task[i]);
    conc_executor_free(executor);
    return 0;
}
