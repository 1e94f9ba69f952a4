/* s002_imap: seed 002, section 6.6, Pool.imap and imap_unordered.
 *
 * The Python creates Pool(multiprocessing.cpu_count()) and iterates
 * pool.imap(get_html, [1, 5, 3]), then pool.imap_unordered over the same
 * list; get_html sleeps n seconds, prints 'sub_progress success' and
 * returns n, and main prints 'N sleep success' for each result. imap
 * yields in input order (1, 5, 3), imap_unordered in completion order
 * (1, 3, 5).
 *
 * conc_pool_imap and conc_pool_imap_unordered return a conc_map_iter read
 * with conc_map_next (CONC_ECLOSED after the last result); conc_map_index
 * tells which input an unordered result belongs to. Both are lazy: at most
 * a bounded number of items is queued ahead. A second is 20 ms; with two
 * CPUs or more the 'N sleep success' lines always come in the seed's order
 * (on one, the unordered run also yields 1, 5, 3: the tasks run in turn).
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
    const int64_t *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep((double)*n * SECOND);
    if (rc != 0)
        return rc;
    printf("sub_progress success\n");
    return conc_buf_append(result, n, sizeof *n);
}

/* for result in it: print("{} sleep success".format(result)) */
static void
print_all(conc_map_iter *it)
{
    const void *data;
    size_t len;
    int rc;
    while ((rc = conc_map_next(it, CONC_FOREVER, &data, &len)) == 0) {
        int64_t result;
        check(len == sizeof result ? 0 : CONC_EVALUE, "result size");
        memcpy(&result, data, sizeof result);
        printf("%" PRId64 " sleep success (input %zu)\n", result,
               conc_map_index(it));
    }
    check(rc == CONC_ECLOSED ? 0 : rc, "conc_map_next");
    conc_map_free(it);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_pool *pool;
    check(conc_pool_new(NULL, &pool), "conc_pool_new");
    static const int64_t sleeps[] = {1, 5, 3};
    conc_map_iter *it;
    check(conc_pool_imap(pool, get_html, &CONC_ITEMS(sleeps, 3), NULL, &it),
          "conc_pool_imap");
    print_all(it);
    check(conc_pool_imap_unordered(pool, get_html, &CONC_ITEMS(sleeps, 3), NULL,
                                   &it),
          "conc_pool_imap_unordered");
    print_all(it);
    conc_pool_free(pool);
    return 0;
}
