/* s002_shared_variable_lock: seed 002, section 3.1 (通过共享变量方式).
 *
 * The Python shares a global list of detail urls between one producer,
 * get_detail_url (sleeps 4 s, then appends 20 urls, backing off 1 s while the
 * list holds 10), and ten consumers, get_detail_html (pop a url under the
 * lock and "fetch" it for 2 s, or sleep 1 s when the list is empty), all
 * guarded by one RLock. Here the list is a fixed array and conc_rlock guards
 * it; threads share memory, so nothing is copied between them.
 *
 * Differences: the seed loops forever and never actually starts its
 * producer; here the producer runs once (20 urls), a url that finds the list
 * full is retried rather than dropped, and the consumers stop when the list
 * is empty and the producer is done, so main can join everyone and print the
 * real time taken. The seed's seconds are 20 ms here.
 */
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND      0.02 /* one second of the seed, scaled down */
#define URL_LEN     40
#define LIST_MAX    10 /* the producer backs off while the list holds 10 */
#define N_URLS      20
#define N_CONSUMERS 10

static conc_rlock *lock;
static char detail_url_list[LIST_MAX][URL_LEN]; /* guarded by lock */
static size_t list_len;                         /* guarded by lock */
static int producing = 1;                       /* guarded by lock */

/* Pops the last url into `url` under the lock, as list.pop(). Returns 1 if
 * it got one, 0 if the list was empty, -1 if it is empty for good. */
static int
pop_url(char url[URL_LEN])
{
    check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
    int got = list_len > 0 ? 1 : producing ? 0 : -1;
    if (got == 1)
        memcpy(url, detail_url_list[--list_len], URL_LEN);
    check(conc_rlock_release(lock), "conc_rlock_release");
    return got;
}

static int
get_detail_html(void *arg)
{
    (void)arg;
    char url[URL_LEN];
    int got;
    while ((got = pop_url(url)) >= 0) {
        if (got == 0) {
            check(conc_sleep(SECOND), "conc_sleep");
            continue;
        }
        printf("get detail html started (%s)\n", url);
        check(conc_sleep(2 * SECOND), "conc_sleep");
        printf("get detail html end\n");
    }
    return 0;
}

/* Appends url number i unless the list is full. Returns whether it did. */
static int
append_url(int i)
{
    check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
    int room = list_len < LIST_MAX;
    if (room)
        snprintf(detail_url_list[list_len++], URL_LEN,
                 "http://projectsedu.com/%d", i);
    check(conc_rlock_release(lock), "conc_rlock_release");
    return room;
}

static int
get_detail_url(void *arg)
{
    (void)arg;
    printf("get detail url started\n");
    check(conc_sleep(4 * SECOND), "conc_sleep");
    for (int i = 0; i < N_URLS;) {
        if (append_url(i))
            i++;
        else
            check(conc_sleep(SECOND), "conc_sleep");
    }
    printf("get detail url end\n");
    check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
    producing = 0;
    check(conc_rlock_release(lock), "conc_rlock_release");
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
    check(conc_rlock_new(NULL, &lock), "conc_rlock_new");
    conc_thread *producer, *consumers[N_CONSUMERS];
    double start_time = conc_monotonic();
    check(conc_thread_start(get_detail_url, NULL, NULL, &producer),
          "conc_thread_start");
    for (int i = 0; i < N_CONSUMERS; i++)
        check(conc_thread_start(get_detail_html, NULL, NULL, &consumers[i]),
              "conc_thread_start");
    join(producer);
    for (int i = 0; i < N_CONSUMERS; i++)
        join(consumers[i]);
    printf("last time: %f\n", conc_monotonic() - start_time);
    conc_rlock_free(lock);
    return 0;
}
