/* s002_semaphore: seed 002, section 4.3 (Semaphore).
 *
 * The Python limits a crawler to three fetches at a time with
 * threading.Semaphore(3): a UrlProducer thread acquires the semaphore before
 * starting each of 20 HtmlSpider threads, and each spider releases it after
 * its 2 s "fetch". conc_sem is the Semaphore. Each spider's state is
 * allocated by the producer and freed by the spider.
 *
 * The seed's main thread simply ends and lets the interpreter wait for the
 * threads, and never frees anything. Here the producer keeps the spiders'
 * handles, and main joins the producer and then every spider before it
 * frees the semaphore: an object may be freed only once no thread uses it,
 * and a spider is still inside conc_sem_release until it returns. The
 * seed's seconds are 20 ms here.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define URL_LEN 40
#define N_URLS  20
#define AT_ONCE 3

typedef struct html_spider {
    char url[URL_LEN];
    conc_sem *sem;
} html_spider;

static int
html_spider_run(void *arg)
{
    html_spider *self = arg;
    check(conc_sleep(2 * SECOND), "conc_sleep");
    printf("got html text success\n");
    check(conc_sem_release(self->sem, 1), "conc_sem_release");
    free(self);
    return 0;
}

static conc_thread *spiders[N_URLS]; /* written by the producer */

static int
url_producer_run(void *arg)
{
    conc_sem *sem = arg;
    for (int i = 0; i < N_URLS; i++) {
        check(conc_sem_acquire(sem, CONC_FOREVER), "conc_sem_acquire");
        html_spider *spider = malloc(sizeof *spider);
        if (!spider)
            check(CONC_ENOMEM, "malloc");
        snprintf(spider->url, URL_LEN, "https://baidu.com/%d", i);
        spider->sem = sem;
        int rc = conc_thread_start(html_spider_run, spider, NULL, &spiders[i]);
        if (rc != 0)
            free(spider); /* the thread never started: the spider is ours */
        check(rc, "conc_thread_start");
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
    conc_sem *sem;
    check(conc_sem_new(AT_ONCE, NULL, &sem), "conc_sem_new");
    conc_thread *url_producer;
    check(conc_thread_start(url_producer_run, sem, NULL, &url_producer),
          "conc_thread_start");
    /* Once the producer has ended, every spider's handle is written. */
    join(url_producer);
    for (int i = 0; i < N_URLS; i++)
        join(spiders[i]);
    conc_sem_free(sem);
    return 0;
}
