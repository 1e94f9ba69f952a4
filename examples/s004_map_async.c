/* s004_map_async: seed 004, 一 进程池, map_async over range(20000), and the
 * same work through 20000 apply_async calls.
 *
 * The Python creates Pool(6), calls pool.map_async(run, range(20000)),
 * where run(a) returns a * a, prints future.get() (the whole list), then
 * close(), join() and '总耗时:T' (0.45 s). Its comments time the other way:
 * 20000 apply_async(run, args=(i,), callback=my_callback), the callback
 * appending each result to a list (3.02 s).
 *
 * conc_pool_map_async takes a C array and an output array: each result,
 * exactly out_size bytes, lands at its index, and a process pool moves
 * whole chunks through shared memory. The AsyncResult's data is the output
 * array. Both ways run here, each on a new Pool(6) and timed from its
 * creation; the lists print cut short (the first ten, the last, and for the
 * callbacks, which see results in completion order, their count and sum).
 * The times vary.
 */
#include <inttypes.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define N_ITEMS 20000

static int64_t numbers[N_ITEMS]; /* range(20000) */
static int64_t squares[N_ITEMS]; /* map_async's output */
static int64_t data[N_ITEMS];    /* what my_callback appends to */
static size_t data_len;          /* written only by the result thread */

static int
run(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *a = arg;
    if (len != sizeof *a)
        return conc_fail(CONC_EINVAL, "bad argument");
    int64_t r = *a * *a;
    return conc_buf_append(result, &r, sizeof r);
}

/* Callbacks run one at a time in the pool's result thread. */
static void
my_callback(void *arg, const void *result, size_t len)
{
    (void)arg;
    if (len == sizeof data[0] && data_len < N_ITEMS)
        data[data_len++] = *(const int64_t *)result;
}

static void
print_list(const int64_t *list, size_t n)
{
    printf("[");
    for (size_t i = 0; i < 10 && i < n; i++)
        printf("%s%" PRId64, i ? ", " : "", list[i]);
    printf(", ..., %" PRId64 "] (%zu items)\n", list[n - 1], n);
}

static void
with_map_async(void)
{
    double st = conc_monotonic();
    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 6}, &pool),
          "conc_pool_new");
    conc_async_result *future;
    check(conc_pool_map_async(pool, run, &CONC_ITEMS(numbers, N_ITEMS), squares,
                              sizeof squares[0], NULL, NULL, &future),
          "conc_pool_map_async");
    const void *out;
    size_t len;
    check(conc_async_result_get(future, CONC_FOREVER, &out, &len),
          "conc_async_result_get");
    print_list(out, N_ITEMS);
    conc_async_result_free(future);
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    printf("总耗时:%.4f (map_async)\n", conc_monotonic() - st);
    conc_pool_free(pool);
}

static void
with_apply_async(void)
{
    double st = conc_monotonic();
    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 6}, &pool),
          "conc_pool_new");
    conc_apply_opts cb = {.callback = my_callback};
    for (int64_t i = 0; i < N_ITEMS; i++)
        check(conc_pool_apply_async(pool, run, &i, sizeof i, &cb, NULL),
              "conc_pool_apply_async");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    int64_t sum = 0;
    for (size_t i = 0; i < data_len; i++)
        sum += data[i];
    print_list(data, data_len);
    printf("sum %" PRId64 "\n", sum);
    printf("总耗时:%.4f (apply_async with a callback)\n",
           conc_monotonic() - st);
    conc_pool_free(pool);
    check(data_len == N_ITEMS ? 0 : CONC_EVALUE, "callbacks");
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    for (int64_t i = 0; i < N_ITEMS; i++)
        numbers[i] = i;
    with_map_async();
    with_apply_async();
    return 0;
}
