/* s001_pool_apply_vs_async: seed 001, 五 进程池, 详解:apply_async和apply,
 * and the time each way of submitting takes.
 *
 * The seed's two programs run func(msg) on Pool(processes=3) for the ten
 * messages 'hello 0' ... 'hello 9'; func prints 'msg: MSG', sleeps and
 * returns msg. 一 uses apply_async (sleeping a second): main prints the
 * arrow line at once, then close() and join(), prints the list of
 * AsyncResult objects and each get(). 二 uses apply (sleeping 0.1 s): the
 * tasks run one by one, so the arrow line comes after every 'msg:' line,
 * and the list printed holds the results themselves.
 *
 * The list of AsyncResults prints here as their addresses, as Python prints
 * objects. A last part, not in the seed, times the same ten one-second
 * tasks submitted with apply, with apply_async and with map on Pool(3):
 * apply waits for each in turn (ten seconds), the others keep the three
 * workers busy (four). A second is 20 ms; the times vary a little.
 */
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_TASKS 10

typedef struct msg_arg {
    char msg[16];
    double sleep; /* in the seed's seconds */
} msg_arg;

static int
func(const void *arg, size_t len, conc_buf *result)
{
    const msg_arg *a = arg;
    if (len != sizeof *a)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("msg: %s\n", a->msg);
    int rc = conc_sleep(a->sleep * SECOND);
    if (rc != 0)
        return rc;
    return conc_buf_append(result, a->msg, strlen(a->msg));
}

static msg_arg
message(int i, double sleep)
{
    msg_arg a = {.sleep = sleep};
    snprintf(a.msg, sizeof a.msg, "hello %d", i);
    return a;
}

static conc_pool *
pool_of_three(void)
{
    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 3}, &pool),
          "conc_pool_new");
    return pool;
}

/* 一: apply_async. */
static void
with_apply_async(void)
{
    conc_pool *pool = pool_of_three();
    conc_async_result *res_l[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        msg_arg a = message(i, 1);
        check(conc_pool_apply_async(pool, func, &a, sizeof a, NULL, &res_l[i]),
              "conc_pool_apply_async");
    }
    printf("==============================>\n");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    printf("[");
    for (int i = 0; i < N_TASKS; i++)
        printf("%s<AsyncResult %p>", i ? ", " : "", (void *)res_l[i]);
    printf("]\n");
    for (int i = 0; i < N_TASKS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res_l[i], CONC_FOREVER, &data, &len),
              "conc_async_result_get");
        printf("%.*s\n", (int)len, (const char *)data);
        conc_async_result_free(res_l[i]);
    }
    conc_pool_free(pool);
}

/* 二: apply. */
static void
with_apply(void)
{
    conc_pool *pool = pool_of_three();
    conc_buf res_l[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        msg_arg a = message(i, 0.1);
        conc_buf_init(&res_l[i]);
        check(
            conc_pool_apply(pool, func, &a, sizeof a, CONC_FOREVER, &res_l[i]),
            "conc_pool_apply");
    }
    printf("==============================>\n");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    printf("[");
    for (int i = 0; i < N_TASKS; i++)
        printf("%s'%.*s'", i ? ", " : "", (int)res_l[i].len,
               (const char *)res_l[i].data);
    printf("]\n");
    for (int i = 0; i < N_TASKS; i++) {
        printf("%.*s\n", (int)res_l[i].len, (const char *)res_l[i].data);
        conc_buf_free(&res_l[i]);
    }
    conc_pool_free(pool);
}

/* A one-second task that says nothing and returns nothing. */
static int
quiet(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return conc_sleep(SECOND);
}

/* The same ten tasks on Pool(3), three ways; prints how long each took. */
static void
timings(void)
{
    static const int numbers[N_TASKS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    conc_pool *pool = pool_of_three();
    double start = conc_monotonic();
    for (int i = 0; i < N_TASKS; i++)
        check(conc_pool_apply(pool, quiet, &i, sizeof i, CONC_FOREVER, NULL),
              "conc_pool_apply");
    double t_apply = conc_monotonic() - start;

    start = conc_monotonic();
    conc_async_result *res[N_TASKS];
    for (int i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(pool, quiet, &i, sizeof i, NULL, &res[i]),
              "conc_pool_apply_async");
    for (int i = 0; i < N_TASKS; i++) {
        check(conc_async_result_get(res[i], CONC_FOREVER, NULL, NULL),
              "conc_async_result_get");
        conc_async_result_free(res[i]);
    }
    double t_async = conc_monotonic() - start;

    start = conc_monotonic();
    check(conc_pool_map(pool, quiet, &CONC_ITEMS(numbers, N_TASKS), NULL, 0,
                        &(conc_map_opts){.chunksize = 1}, CONC_FOREVER),
          "conc_pool_map");
    double t_map = conc_monotonic() - start;
    conc_pool_free(pool);
    printf("ten %.0f ms tasks on Pool(3): apply %.3f s, apply_async %.3f s, "
           "map %.3f s\n",
           SECOND * 1000, t_apply, t_async, t_map);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    with_apply_async();
    with_apply();
    timings();
    return 0;
}
