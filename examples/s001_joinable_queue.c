/* s001_joinable_queue: seed 001, JoinableQueue队列实现生产者消费者模型.
 *
 * The Python starts three producers that each put ten items ('包子0' ...)
 * on a JoinableQueue, sleeping up to a second (random) before each and
 * printing 'PID 生产了 ITEM', then print 'NAME生产结束', wait in q.join()
 * until every item has been marked done, and print 'NAME生产结束~~~~~~'.
 * Two consumers, daemons, loop for ever: get, sleep up to a second, print
 * 'PID 吃 ITEM', task_done(). Main joins the producers and prints '主';
 * the daemon consumers, whose work is then known to be finished, end with
 * the main process.
 *
 * conc_joinable_new makes the JoinableQueue; conc_joinable_task_done and
 * conc_joinable_join are task_done() and join(). The random sleeps are
 * fixed here: (1 + i % 3) * 2 ms for producers and 3 ms for consumers. At
 * exit conc terminates the daemon consumers, as Python does, so the
 * program ends although their loops never do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define MS          0.001
#define N_ITEMS     10
#define N_CONSUMERS 2

static conc_mpqueue *q; /* made before the fork; inherited */

/* Process(target=fn, args=...) followed by start(). */
static conc_process *
start(conc_process_fn fn, const void *arg, size_t len,
      const conc_process_opts *opts)
{
    conc_process *p;
    check(conc_process_new(fn, arg, len, opts, &p), "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
consumer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_buf res;
    conc_buf_init(&res);
    int rc; /* the loop ends only if a get fails */
    while ((rc = conc_mpqueue_get(q, CONC_FOREVER, &res)) == 0) {
        check(conc_sleep(3 * MS), "conc_sleep");
        printf("\033[45m%d 吃 %.*s\033[0m\n", (int)getpid(), (int)res.len,
               (const char *)res.data);
        check(conc_joinable_task_done(q), "conc_joinable_task_done");
    }
    check(rc, "conc_mpqueue_get");
    return 0;
}

static int
producer(const void *arg, size_t len)
{
    (void)len;
    const char *name = arg;
    for (int i = 0; i < N_ITEMS; i++) {
        check(conc_sleep((1 + i % 3) * 2 * MS), "conc_sleep");
        char res[64];
        snprintf(res, sizeof res, "%s%d", name, i);
        check(conc_mpqueue_put(q, res, strlen(res), CONC_FOREVER),
              "conc_mpqueue_put");
        printf("\033[44m%d 生产了 %s\033[0m\n", (int)getpid(), res);
    }
    printf("%s生产结束\n", name);
    /* Waits until every item put, by anyone, has been marked done. */
    check(conc_joinable_join(q, CONC_FOREVER), "conc_joinable_join");
    printf("%s生产结束~~~~~~\n", name);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    static const char *const names[] = {"包子", "骨头", "泔水"};
    check(conc_joinable_new(NULL, &q), "conc_joinable_new");
    conc_process *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = start(producer, names[i], strlen(names[i]) + 1, NULL);
    conc_process_opts daemon = {.daemon = CONC_DAEMON_YES};
    for (int i = 0; i < N_CONSUMERS; i++)
        conc_process_free(start(consumer, NULL, 0, &daemon));
    for (int i = 0; i < 3; i++)
        join(p[i]);
    printf("主\n");
    /* The queue stays: the daemons may still be waiting on it until exit
     * ends them. */
    return 0;
}
