/* s003_process_lock: seed 003, 进程锁 (a process Lock).
 *
 * The Python starts 100 processes on f(lock, num), which prints
 * "hello world num" between lock.acquire() and lock.release() (commented
 * out in the seed; used here), and never joins them: the main process
 * waits for them at its end. The conc_lock lives in the shared arena, so
 * all the processes share it, and conc's exit waits for the children as
 * Python's does. Each line is written whole; their order varies.
 *
 * As in the seed, the lock is an argument (args=(lock, num)): the struct
 * carries the arena's ref and the lock's pointer, and each child opens
 * the arena first, which finds the inherited mapping after a fork and
 * would map it at the same address under the fork server.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define N_PROCESSES 100

struct f_args {
    conc_arena_ref arena;
    conc_lock *lock; /* in the arena */
    int num;
};

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

/* def f(lock, num) */
static int
f(const void *arg, size_t len)
{
    (void)len;
    const struct f_args *a = arg;
    conc_arena *arena;
    check(conc_arena_open(&a->arena, &arena), "conc_arena_open");
    check(conc_lock_acquire(a->lock, CONC_FOREVER), "conc_lock_acquire");
    printf("hello world %d\n", a->num);
    check(conc_lock_release(a->lock), "conc_lock_release");
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    struct f_args a;
    check(conc_arena_share(arena, &a.arena), "conc_arena_share");
    check(conc_lock_new(&shared, &a.lock), "conc_lock_new");
    for (a.num = 0; a.num < N_PROCESSES; a.num++)
        conc_process_free(start(f, &a, sizeof a, NULL));
    return 0; /* exit waits for the 100 processes */
}
