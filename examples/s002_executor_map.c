/* s002_executor_map: seed 002, section 5.2.2, Executor.map.
 *
 * The Python runs executor.map(get_html, urls) on
 * ThreadPoolExecutor(max_workers=2) with urls = [3, 2, 4] and prints
 * 'get N page' for each result. map yields in input order: although page 2
 * is fetched first, 'get 3 page' comes before 'get 2 page'.
 *
 * conc_executor_map takes a C array (CONC_ITEMS) or a generator, and
 * conc_map_next yields the results in input order (CONC_ECLOSED after the
 * last). Unlike Python's map, which submits every item at once, conc's
 * submits a bounded number ahead of the reader. A second is 20 ms; the
 * lines always come in the same order: 'get page 2 success',
 * 'get page 3 success', 'get 3 page', 'get 2 page', 'get page 4 success',
 * 'get 4 page'.
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
    static const int64_t urls[] = {3, 2, 4};
    conc_map_iter *it;
    check(
        conc_executor_map(executor, get_html, &CONC_ITEMS(urls, 3), NULL, &it),
        "conc_executor_map");
    const void *data;
    size_t len;
    int rc;
    while ((rc = conc_map_next(it, CONC_FOREVER, &data, &len)) == 0) {
        int64_t page;
        check(len == sizeof page ? 0 : CONC_EVALUE, "result size");
        memcpy(&page, data, sizeof page);
        printf("get %" PRId64 " page\n", page);
    }
    check(rc == CONC_ECLOSED ? 0 : rc, "conc_map_next");
    conc_map_free(it);
    conc_executor_free(executor);
    return 0;
}
