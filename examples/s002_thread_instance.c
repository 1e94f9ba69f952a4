/* s002_thread_instance: seed 002, section 2.1 (通过Thread类实例化).
 *
 * The Python passes two functions to threading.Thread(target=...,
 * args=('',)): one "gets the detail html" (sleeps 2 s), the other "the
 * detail url" (sleeps 4 s). The main thread joins both and prints the time
 * taken, which is the longer of the two, not their sum, because the threads
 * wait side by side. conc_thread_start takes the function and its one
 * argument the same way. The seed's seconds are 20 ms here, so "last time"
 * prints about 0.08 instead of 4.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static int
get_detail_html(void *url)
{
    (void)url;
    printf("get detail html started\n");
    check(conc_sleep(2 * SECOND), "conc_sleep");
    printf("get detail html end\n");
    return 0;
}

static int
get_detail_url(void *url)
{
    (void)url;
    printf("get detail url started\n");
    check(conc_sleep(4 * SECOND), "conc_sleep");
    printf("get detail url end\n");
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
    conc_thread *thread1, *thread2;
    double start_time = conc_monotonic();
    check(conc_thread_start(get_detail_html, "", NULL, &thread1),
          "conc_thread_start");
    check(conc_thread_start(get_detail_url, "", NULL, &thread2),
          "conc_thread_start");
    /* The main thread waits max(2, 4) seed seconds, not 2 + 4. */
    join(thread1);
    join(thread2);
    printf("last time: %f\n", conc_monotonic() - start_time);
    return 0;
}
