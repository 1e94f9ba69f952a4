/* s003_lock: seed 003, 全局锁 (Lock).
 *
 * The Python starts 50 threads that each add 1 to a global num between
 * lock.acquire() and lock.release() of one threading.Lock, joins them, and
 * prints "----------all threads has finished...", the main thread,
 * threading.active_count() (1 again) and "num: 50". conc_lock is the Lock;
 * the output is the seed's, with the main thread printed as Python's repr()
 * does (only its ident differs from run to run). Without a GIL the 50
 * increments really run in parallel, which is why the lock is needed, not
 * merely "needed in 2.7" as the seed's comment has it.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define N_THREADS 50

static conc_lock *lock;
static int num; /* guarded by lock */

/* Prints a thread as Python's repr() does: <Thread(Thread-1, stopped 42)>. */
static void
print_thread(const conc_thread *t)
{
    printf("<%s(%s, %s%s %lu)>",
           t == conc_thread_main() ? "_MainThread" : "Thread",
           conc_thread_name(t), conc_thread_is_alive(t) ? "started" : "stopped",
           conc_thread_daemon(t) ? " daemon" : "", conc_thread_ident(t));
}

static int
run(void *n)
{
    (void)n;
    check(conc_lock_acquire(lock, CONC_FOREVER), "conc_lock_acquire");
    num += 1;
    check(conc_lock_release(lock), "conc_lock_release");
    return 0;
}

int
main(void)
{
    static char names[N_THREADS][8];
    conc_thread *t_objs[N_THREADS];
    check(conc_lock_new(NULL, &lock), "conc_lock_new");
    for (int i = 0; i < N_THREADS; i++) {
        snprintf(names[i], sizeof names[i], "t-%d", i);
        check(conc_thread_start(run, names[i], NULL, &t_objs[i]),
              "conc_thread_start");
    }
    for (int i = 0; i < N_THREADS; i++) {
        int status;
        check(conc_thread_join(t_objs[i], CONC_FOREVER, &status),
              "conc_thread_join");
        check(status, names[i]);
        conc_thread_free(t_objs[i]);
    }
    conc_thread *self = conc_thread_current();
    if (!self)
        check(CONC_ENOMEM, "conc_thread_current");
    printf("----------all threads has finished... ");
    print_thread(self);
    printf(" %zu\n", conc_active_count());
    printf("num: %d\n", num);
    conc_lock_free(lock);
    return 0;
}
