/* s001_producer_consumer: seed 001, 基于队列的生产者消费者模型.
 *
 * The Python starts three producers, producer('包子'), producer('骨头') and
 * producer('泔水'), that each put two items ('包子0', '包子1', ...) on a
 * multiprocessing.Queue, sleeping 1 to 3 seconds before each and printing
 * 'PID 生产了 ITEM'; consumers loop on q.get(), sleep 1 to 3 seconds and
 * print 'PID 吃 ITEM', and end when they get None. Main joins the producers,
 * then puts one None per consumer, and prints '主'.
 *
 * Messages are bytes here, so None becomes the agreed end message, an empty
 * one. The seed creates two consumers but starts only c1, so its second
 * None is never read; both are started here, and main joins them too. The
 * random sleeps are fixed: (1 + i % 3) * 10 ms. The colours (ANSI escapes)
 * are the seed's; the order of the lines varies from run to run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND      0.01 /* one second of the seed, scaled down */
#define N_ITEMS     2
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
    for (int i = 0;; i++) {
        check(conc_mpqueue_get(q, CONC_FOREVER, &res), "conc_mpqueue_get");
        if (res.len == 0)
            break; /* the end message: None in the seed */
        check(conc_sleep((1 + i % 3) * SECOND), "conc_sleep");
        printf("\033[45m%d 吃 %.*s\033[0m\n", (int)getpid(), (int)res.len,
               (const char *)res.data);
    }
    conc_buf_free(&res);
    return 0;
}

static int
producer(const void *arg, size_t len)
{
    (void)len;
    const char *name = arg;
    for (int i = 0; i < N_ITEMS; i++) {
        check(conc_sleep((1 + i % 3) * SECOND), "conc_sleep");
        char res[64];
        snprintf(res, sizeof res, "%s%d", name, i);
        check(conc_mpqueue_put(q, res, strlen(res), CONC_FOREVER),
              "conc_mpqueue_put");
        printf("\033[44m%d 生产了 %s\033[0m\n", (int)getpid(), res);
    }
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    static const char *const names[] = {"包子", "骨头", "泔水"};
    check(conc_mpqueue_new(NULL, &q), "conc_mpqueue_new");
    conc_process *p[3], *c[N_CONSUMERS];
    for (int i = 0; i < 3; i++)
        p[i] = start(producer, names[i], strlen(names[i]) + 1, NULL);
    for (int i = 0; i < N_CONSUMERS; i++)
        c[i] = start(consumer, NULL, 0, NULL);
    /* Every producer must be done before the end messages go in. */
    for (int i = 0; i < 3; i++)
        join(p[i]);
    for (int i = 0; i < N_CONSUMERS; i++) /* one per consumer */
        check(conc_mpqueue_put(q, NULL, 0, CONC_FOREVER), "conc_mpqueue_put");
    printf("主\n");
    for (int i = 0; i < N_CONSUMERS; i++)
        join(c[i]);
    conc_mpqueue_free(q);
    return 0;
}
