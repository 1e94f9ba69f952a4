/* s003_bounded_semaphore: seed 003, 信号量 (BoundedSemaphore).
 *
 * The Python lets at most five of 22 threads past a
 * threading.BoundedSemaphore(5) at a time; each sleeps 1 s and prints "run
 * the thread :i" (plus a blank line, from the "\n" in its format). The main
 * thread keeps no handles and spins until threading.active_count() is 1,
 * then prints "______-all threads done______". conc_bsem is the
 * BoundedSemaphore and conc_active_count() the count; the threads are
 * started without handles, as in the seed. Where the seed spins on a core,
 * this loop sleeps 1 ms between looks. The seed's seconds are 20 ms here.
 *
 * A BoundedSemaphore exists to catch one release too many, which Python
 * reports with ValueError; the example ends by showing that conc refuses it
 * with CONC_EVALUE.
 */
#include <stdint.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND    0.02 /* one second of the seed, scaled down */
#define N_THREADS 22

static conc_bsem *semaphore;

static int
run(void *arg)
{
    int n = (int)(intptr_t)arg;
    check(conc_bsem_acquire(semaphore, CONC_FOREVER), "conc_bsem_acquire");
    check(conc_sleep(SECOND), "conc_sleep");
    printf("run the thread :%d\n\n", n);
    check(conc_bsem_release(semaphore, 1), "conc_bsem_release");
    return 0;
}

int
main(void)
{
    check(conc_bsem_new(5, NULL, &semaphore), "conc_bsem_new");
    for (int i = 0; i < N_THREADS; i++)
        check(conc_thread_start(run, (void *)(intptr_t)i, NULL, NULL),
              "conc_thread_start");
    while (conc_active_count() != 1)
        check(conc_sleep(0.001), "conc_sleep");
    printf("______-all threads done______\n");

    int rc = conc_bsem_release(semaphore, 1);
    printf("one release too many: %s (%s)\n", conc_err_name(rc),
           conc_strerror(rc));
    if (rc != CONC_EVALUE)
        check(rc ? rc : CONC_ESTATE, "conc_bsem_release");
    conc_bsem_free(semaphore);
    return 0;
}
