/* s002_queue_producer_consumer: seed 002, section 3.2 (通过 queue 的方式).
 *
 * The Python hands urls from one producer, get_detail_url (sleeps 4 s, then
 * puts 20 urls), to ten consumers, get_detail_html (get a url, "fetch" it for
 * 2 s), through a queue.Queue(maxsize=1000). conc_queue is that Queue. Its
 * items are pointers: the producer allocates each url string, ownership
 * moves with the item, and the consumer frees it.
 *
 * Differences: the seed loops forever (and never starts its producer); here
 * the producer makes two rounds of 20 urls. Each consumer calls task_done()
 * per url, the main thread waits with the queue's join() until every url is
 * processed (the seed calls task_done() from main by mistake), then shuts the
 * queue down (Python 3.13's Queue.shutdown), which ends the consumers' get()
 * with CONC_ECLOSED, Python's ShutDown. The seed's seconds are 20 ms here.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define SECOND      0.02 /* one second of the seed, scaled down */
#define URL_LEN     40
#define N_ROUNDS    2
#define N_URLS      20 /* per round */
#define N_CONSUMERS 10

static int
get_detail_html(void *arg)
{
    conc_queue *queue = arg;
    for (;;) {
        void *item;
        int rc = conc_queue_get(queue, CONC_FOREVER, &item);
        if (rc == CONC_ECLOSED)
            return 0; /* shut down and empty: no more work */
        check(rc, "conc_queue_get");
        char *url = item; /* ours now */
        printf("get detail html started (%s)\n", url);
        check(conc_sleep(2 * SECOND), "conc_sleep");
        printf("get detail html end\n");
        free(url);
        check(conc_queue_task_done(queue), "conc_queue_task_done");
    }
}

static int
get_detail_url(void *arg)
{
    conc_queue *queue = arg;
    for (int round = 0; round < N_ROUNDS; round++) {
        printf("get detail url started\n");
        check(conc_sleep(4 * SECOND), "conc_sleep");
        for (int i = 0; i < N_URLS; i++) {
            char *url = malloc(URL_LEN);
            if (!url)
                check(CONC_ENOMEM, "malloc");
            snprintf(url, URL_LEN, "http://projectsedu.com/%d", i);
            int rc = conc_queue_put(queue, url, CONC_FOREVER);
            if (rc != 0)
                free(url); /* a failed put leaves the item with us */
            check(rc, "conc_queue_put");
        }
        printf("get detail url end\n");
    }
    return 0;
}

static void
join(conc_thread *t)
{
    int status;
    check(conc_thread_join(t, CONC_FOREVER, &status), "conc_thread_join");
    check(status, conc_thread_name(t));
    conc_thread_free(t);
}

int
main(void)
{
    conc_queue *detail_url_queue;
    /* .drop frees any url still queued when the queue is freed. */
    conc_queue_opts qopts = {.maxsize = 1000, .drop = free};
    check(conc_queue_new(&qopts, &detail_url_queue), "conc_queue_new");

    conc_thread *producer, *consumers[N_CONSUMERS];
    double start_time = conc_monotonic();
    check(conc_thread_start(get_detail_url, detail_url_queue, NULL, &producer),
          "conc_thread_start");
    for (int i = 0; i < N_CONSUMERS; i++)
        check(conc_thread_start(get_detail_html, detail_url_queue, NULL,
                                &consumers[i]),
              "conc_thread_start");

    join(producer);
    check(conc_queue_join(detail_url_queue, CONC_FOREVER), "conc_queue_join");
    printf("last time: %f\n", conc_monotonic() - start_time);

    check(conc_queue_shutdown(detail_url_queue, 0), "conc_queue_shutdown");
    for (int i = 0; i < N_CONSUMERS; i++)
        join(consumers[i]);
    conc_queue_free(detail_url_queue);
    return 0;
}
