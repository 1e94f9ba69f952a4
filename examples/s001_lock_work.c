/* s001_lock_work: seed 001, 六 mulitprocess模块, 进程锁.
 *
 * The Python starts five processes on work(n, lock) with one
 * multiprocessing.Lock: each takes the lock, prints "n: PID is running",
 * sleeps a second, prints "n: PID is done" and releases it, so the five
 * run one after the other ("由并发变成了串行"). The conc_lock here is
 * created in the shared arena (`.arena`), which makes it a process-shared
 * lock that every child inherits. The seconds are 20 ms; the lines always
 * come in running/done pairs, in an order that varies from run to run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND      0.02 /* one second of the seed, scaled down */
#define N_PROCESSES 5

static conc_lock *lock; /* process-shared; the children inherit it */

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
work(const void *arg, size_t len)
{
    (void)len;
    int n = *(const int *)arg;
    /* Only one process at a time runs the code between acquire and
     * release. */
    check(conc_lock_acquire(lock, CONC_FOREVER), "conc_lock_acquire");
    printf("%d: %d is running\n", n, (int)getpid());
    check(conc_sleep(SECOND), "conc_sleep");
    printf("%d:%d is done\n", n, (int)getpid());
    check(conc_lock_release(lock), "conc_lock_release");
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    check(conc_lock_new(&shared, &lock), "conc_lock_new");
    conc_process *p[N_PROCESSES];
    for (int i = 0; i < N_PROCESSES; i++)
        p[i] = start(work, &i, sizeof i, NULL);
    for (int i = 0; i < N_PROCESSES; i++)
        join(p[i]);
    conc_lock_free(lock);
    return 0;
}
