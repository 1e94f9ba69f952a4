/* The exit sequence: one atexit handler that runs the stages of
 * core/internal.h in their order. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/internal.h"

typedef void (*stage_fn)(void);

/* Each written once, by the stage's first registration. */
static _Atomic(stage_fn) stages[CONC__EXIT_NSTAGES];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Runs the stages in order. Each is read when its turn comes, so that one
 * registered by an earlier stage runs too. */
static void
run_stages(void)
{
    for (int i = 0; i < CONC__EXIT_NSTAGES; i++) {
        stage_fn fn = atomic_load(&stages[i]);
        if (fn)
            fn();
    }
}

static void
register_handler(void)
{
    /* It fails only without memory at start-up; the stages are then
     * skipped, as after _exit. */
    atexit(run_stages);
}

void
conc__at_exit(enum conc__exit_stage stage, void (*fn)(void))
{
    CONC__ASSERT(stage >= 0 && stage < CONC__EXIT_NSTAGES && fn);
    stage_fn none = NULL;
    atomic_compare_exchange_strong(&stages[stage], &none, fn);
    pthread_once(&once, register_handler);
}
