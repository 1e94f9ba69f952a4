/* s003_process_lock: seed 003, 进程锁 (a process Lock).
 *
 * The Python starts 100 processes on f(lock, num), which prints
 * "hello world num" between lock.acquire() and lock.release() (commented
 * out in the seed; used here), and never joins them: the main process
 * waits for them at its end. The conc_lock lives in the shared arena, so
 * all the processes share it, and conc's exit waits for the children as
 * Python's does. Each line is written whole; their order varies.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define N_PROCESSES 100

static conc_lock *lock; /* process-shared; inherited */

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

static int
f(const void *arg, size_t len)
{
    (void)len;
    int i = *(const int *)arg;
    check(conc_lock_acquire(lock, CONC_FOREVER), "conc_lock_acquire");
    printf("hello world %d\n", i);
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
    for (int num = 0; num < N_PROCESSES; num++)
        conc_process_free(start(f, &num, sizeof num, NULL));
    return 0; /* exit waits for the 100 processes */
}
