/* s000_balance_lock: seed 000, section 6 (Lock), the second program.
 *
 * The same two threads as s000_balance_nolock, but each change_it() runs
 * between lock.acquire() and lock.release() of one threading.Lock, so the
 * balance printed is always 0, as in the seed. conc_lock is the Lock; with no
 * GIL the two threads contend for it from two cores, and conc's lock spins
 * briefly before it sleeps, so the four million acquisitions take a fraction
 * of a second. Python's try/finally becomes a checked release.
 */
#include <stdint.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

static long balance; /* guarded by lock */
static conc_lock *lock;

static void
change_it(long n)
{
    balance = balance + n;
    balance = balance - n;
}

static int
run_thread(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < 2000000; i++) {
        check(conc_lock_acquire(lock, CONC_FOREVER), "conc_lock_acquire");
        change_it(n);
        check(conc_lock_release(lock), "conc_lock_release");
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
    check(conc_lock_new(NULL, &lock), "conc_lock_new");
    conc_thread *thread1, *thread2;
    check(conc_thread_start(run_thread, (void *)(intptr_t)5, NULL, &thread1),
          "conc_thread_start");
    check(conc_thread_start(run_thread, (void *)(intptr_t)8, NULL, &thread2),
          "conc_thread_start");
    join(thread1);
    join(thread2);
    printf("%ld\n", balance);
    conc_lock_free(lock);
    return 0;
}
