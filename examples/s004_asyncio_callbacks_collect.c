/* s004_asyncio_callbacks_collect: seed 004, 四 协程异步IO(asyncio), 通过
 * callback获取返回值: done callbacks collect the results of three tasks.
 *
 * The Python creates three tasks of coroutine_example('Zarten_0'..'Zarten_2')
 * (print 'doing_name:', sleep 2 s, print 'done_name:', return "wzy"), adds
 * to each a callback that prints "111111" and the result and appends it to
 * the list a, runs the loop until asyncio.wait(tasks) is done, closes it
 * and prints the list:
 *
 *     doing_name: Zarten_0
 *     doing_name: Zarten_1
 *     doing_name: Zarten_2
 *     done_name: Zarten_0
 *     done_name: Zarten_1
 *     done_name: Zarten_2
 *     111111 wzy
 *     111111 wzy
 *     111111 wzy
 *     a: ['wzy', 'wzy', 'wzy']
 *
 * The C prints the same lines, in one other order: asyncio hands a done
 * callback to call_soon, so in Python the three '111111' lines come in the
 * loop's next turn, after all three 'done_name' lines; conc runs a done
 * callback at once, in the thread that completes the future (here the
 * loop's), so each '111111 wzy' follows its own 'done_name' line. The
 * callbacks all run in the loop's thread, so the list needs no lock, as in
 * Python. asyncio.wait is a task calling conc_wait, which suspends only
 * that task (see s004_asyncio_wait). Two seconds are 40 ms here.
 */
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND     0.02 /* one second of the seed, scaled down */
#define N_TASKS    3
#define RESULT_MAX 16

/* The list a: the results, in the order the callbacks ran. */
struct results {
    char item[N_TASKS][RESULT_MAX];
    int n;
};

static int
callback(void *arg, conc_future *future)
{
    struct results *a = arg;
    const void *data;
    size_t len;
    int rc = conc_future_result(future, 0, &data, &len);
    if (rc != 0)
        return rc;
    if (len >= RESULT_MAX || a->n == N_TASKS)
        return conc_fail(CONC_EVALUE, "unexpected result");
    printf("111111 %.*s\n", (int)len, (const char *)data);
    memcpy(a->item[a->n], data, len);
    a->item[a->n++][len] = '\0';
    return 0;
}

static int
coroutine_example(const void *arg, size_t len, conc_buf *result)
{
    printf("doing_name: %.*s\n", (int)len, (const char *)arg);
    int rc = conc_aio_sleep(2 * SECOND);
    if (rc != 0)
        return rc;
    printf("done_name: %.*s\n", (int)len, (const char *)arg);
    return conc_buf_append(result, "wzy", 3);
}

/* asyncio.wait(tasks): the argument is the array of futures, copied. */
static int
wait_all(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    return conc_wait(arg, len / sizeof(conc_future *), CONC_ALL_COMPLETED,
                     CONC_FOREVER, NULL);
}

/* print("a:", a), as Python prints a list of strings. */
static void
print_list(const struct results *a)
{
    printf("a: [");
    for (int i = 0; i < a->n; i++)
        printf("%s'%s'", i ? ", " : "", a->item[i]);
    printf("]\n");
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    struct results a = {.n = 0};
    conc_aio_loop *loop;
    check(conc_aio_loop_new(NULL, &loop), "conc_aio_loop_new");
    conc_future *tasks[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "Zarten_%d", i);
        check(conc_aio_loop_create_task(loop, coroutine_example, name,
                                        (size_t)n, NULL, &tasks[i]),
              "conc_aio_loop_create_task");
        check(conc_future_add_done_callback(tasks[i], callback, &a),
              "conc_future_add_done_callback");
    }
    conc_future *wait_coro;
    check(conc_aio_loop_create_task(loop, wait_all, tasks, sizeof tasks, NULL,
                                    &wait_coro),
          "conc_aio_loop_create_task");
    check(conc_aio_loop_run_until_complete(loop, wait_coro),
          "conc_aio_loop_run_until_complete");
    for (int i = 0; i < N_TASKS; i++)
        conc_future_free(tasks[i]);
    conc_future_free(wait_coro);
    check(conc_aio_loop_close(loop), "conc_aio_loop_close");
    conc_aio_loop_free(loop);
    print_list(&a);
    return a.n == N_TASKS ? 0 : 1;
}
