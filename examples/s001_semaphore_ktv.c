/* s001_semaphore_ktv: seed 001, 信号量 (Semaphore), the KTV rooms.
 *
 * The mall has four mini KTV rooms: the Python makes Semaphore(4) and 13
 * processes go_ktv(sem, 'useri'), each taking the semaphore, printing
 * 'useri 占到一间ktv小屋', staying 0 to 3 seconds (random) and releasing it;
 * after joining them it prints '============》'. The conc_sem is created in
 * the shared arena, so all the processes share it. The stays are fixed
 * here, (i % 4) * 20 ms, instead of random. The program also counts, in a
 * shared conc_array under its lock, how many people are in the rooms at
 * once, and checks that it never passes four. Who gets a room first varies
 * from run to run.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define SECOND  0.02 /* one second of the seed, scaled down */
#define N_USERS 13
#define N_ROOMS 4

static conc_sem *sem;     /* the four rooms, process-shared */
static conc_array *rooms; /* [0]: people inside now, [1]: the most seen */

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

/* Adds `delta` people to the rooms, recording the most ever inside. */
static void
count_people(int64_t delta)
{
    check(conc_array_acquire(rooms, CONC_FOREVER), "conc_array_acquire");
    int64_t *inside = conc_array_ptr(rooms);
    inside[0] += delta;
    if (inside[0] > inside[1])
        inside[1] = inside[0];
    check(conc_array_release(rooms), "conc_array_release");
}

static int
go_ktv(const void *arg, size_t len)
{
    (void)len;
    int i = *(const int *)arg;
    check(conc_sem_acquire(sem, CONC_FOREVER), "conc_sem_acquire");
    count_people(1);
    printf("user%d 占到一间ktv小屋\n", i);
    check(conc_sleep((i % 4) * SECOND), "conc_sleep");
    count_people(-1);
    check(conc_sem_release(sem, 1), "conc_sem_release");
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    check(conc_sem_new(N_ROOMS, &shared, &sem), "conc_sem_new");
    check(conc_array_new(CONC_CTYPE_I64, 2, NULL, NULL, &rooms),
          "conc_array_new");
    conc_process *p_l[N_USERS];
    for (int i = 0; i < N_USERS; i++)
        p_l[i] = start(go_ktv, &i, sizeof i, NULL);
    for (int i = 0; i < N_USERS; i++)
        join(p_l[i]);
    printf("============》\n");
    int64_t most;
    check(conc_array_get_i64(rooms, 1, &most), "conc_array_get_i64");
    conc_array_free(rooms);
    conc_sem_free(sem);
    if (most > N_ROOMS) {
        fprintf(stderr, "%lld people in %d rooms\n", (long long)most, N_ROOMS);
        return EXIT_FAILURE;
    }
    return 0;
}
