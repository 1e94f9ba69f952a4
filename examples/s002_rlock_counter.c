/* s002_rlock_counter: seed 002, section 4.1 (Lock 和 RLock).
 *
 * The seed's GIL counter again, add() and desc() a million times each, now
 * with every change made while holding one threading.RLock; it prints 0.
 * conc_rlock is the RLock. The seed's comment stresses that the owning
 * thread may acquire an RLock again, as long as it releases it as many
 * times; add() here takes it twice per step to show that (a plain Lock
 * would wait for itself forever), desc() once as in the seed. Without a GIL
 * both threads contend for the lock from two cores, and the total is still
 * exactly 0.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

static long total; /* guarded by lock */
static conc_rlock *lock;

static int
add(void *arg)
{
    (void)arg;
    for (long i = 0; i < 1000000; i++) {
        check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
        check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
        total += 1;
        check(conc_rlock_release(lock), "conc_rlock_release");
        check(conc_rlock_release(lock), "conc_rlock_release");
    }
    return 0;
}

static int
desc(void *arg)
{
    (void)arg;
    for (long i = 0; i < 1000000; i++) {
        check(conc_rlock_acquire(lock, CONC_FOREVER), "conc_rlock_acquire");
        total -= 1;
        check(conc_rlock_release(lock), "conc_rlock_release");
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
    check(conc_rlock_new(NULL, &lock), "conc_rlock_new");
    conc_thread *thread1, *thread2;
    check(conc_thread_start(add, NULL, NULL, &thread1), "conc_thread_start");
    check(conc_thread_start(desc, NULL, NULL, &thread2), "conc_thread_start");
    join(thread1);
    join(thread2);
    printf("%ld\n", total);
    conc_rlock_free(lock);
    return 0;
}
