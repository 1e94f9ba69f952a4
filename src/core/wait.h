/* Waiting: spin briefly, then sleep. The one way conc waits for another
 * thread or process to act.
 *
 * A wait has two halves. The spin watches the awaited condition for a
 * short while, because on a multicore machine the other side usually acts
 * within a microsecond while a futex sleep and wake-up costs several (two
 * system calls and a trip through the scheduler). The sleep then goes
 * through one of the platform's two blocking calls, conc__futex_wait
 * (unix/futex.h) or the descriptor wait conc__poll_until (unix/fdwait.h),
 * with the caller's absolute deadline: those are the choke points that
 * coroutines will make suspending, so no wait may sleep any other way.
 *
 * How the halves meet is each object's own protocol (who counts itself as
 * a sleeper, which word it sleeps on), so the spin is a loop the caller
 * writes around conc__spin_more:
 *
 *     struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
 *     while (conc__spin_more(&sp))
 *         if (ready())
 *             return 0;
 *     ... announce the sleep, check once more, conc__futex_wait(...) ...
 *
 * and conc__wait_while does the whole wait for the common case of a word
 * that changes when the condition does.
 *
 * The spin policy, the same for every wait:
 *
 *  - The budget is time, not a count of pauses: a pause lasts from about
 *    ten to 140 cycles depending on the CPU (25 ns on the EPYC these
 *    budgets were measured on, 40 ns on Intel since Skylake, a few ns
 *    before), so a count means a different wait on every machine.
 *  - The default budget, CONC__SPIN_NS, is long enough for a hand-off
 *    between two threads that both run (a cache line each way and a few
 *    hundred instructions: a microsecond or two), and shorter than what a
 *    sleep costs the waiter. Spinning longer, up to the cost of the sleep
 *    (which never costs more than twice the best choice made in hindsight:
 *    the ski-rental argument of Karlin, Li, Manasse and Owicki, "Empirical
 *    studies of competitive spinning for a shared-memory multiprocessor",
 *    SOSP 1991), pays only while the other side runs; on a machine with
 *    more runnable threads than CPUs it mostly takes the CPU from the very
 *    thread being waited for.
 *  - The condition is read at growing gaps: 1, 2, 4, ... CONC__SPIN_GAP
 *    pauses. Each read pulls the cache line the other side writes, and
 *    taking it away on every pause slows the very writer being waited for;
 *    the gaps also let a producer put a few items in a row while its
 *    consumer watches. The clock is read about every CONC__SPIN_GAP pauses
 *    once the gaps stop growing, so a short spin never reads it.
 *  - The spin never outlasts the caller's deadline, and a call that must
 *    not block (deadline CONC__POLL) does not spin at all (except for a
 *    lock held for one operation, which even such a call waits for, as it
 *    would for a mutex: the process queue's side locks).
 *
 * What may differ is said where it differs, with its reason, and is
 * expressed through this header: the budget for waiting for a task and
 * the flags (looks at every pause for a word written once per event,
 * sparse looks for a costly look, yielding to a process that may share
 * the CPU) are below; three budgets live beside their only users: a
 * process pool's idle worker spins longer (executor/worker.c), the pool's
 * result thread adapts its budget to how far apart results come
 * (executor/procs_results.c), and a socket connection's receive adapts
 * its own to how soon its messages come and spins only while that pays
 * (ipc/recv_spin.c). There are no others. Waits with nothing to
 * sleep on (a spin lock held for a few instructions, a step another
 * thread has begun and will end in nanoseconds) use conc__spin_step,
 * which follows the same policy and then yields the CPU between looks,
 * since the thread it waits for was probably preempted. */
#ifndef CONC_CORE_WAIT_H
#define CONC_CORE_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/internal.h"
#include "unix/futex.h"

/* The default budget. A futex sleep and wake-up costs the sleeper 10 to
 * 13 us on the 2-CPU EPYC machine conc's figures come from (a futex
 * ping-pong between two threads: 21 to 26 us per round trip, two sleeps
 * and two wakes). A 10 us budget, that cost, was measured there at load 9
 * against the 2.5 and 3 us that Event and Lock spun before this policy:
 * bench_event's event ping-pong ran at 0.56 times their speed (median of
 * 25 paired runs), bench_lock's contended increments at 0.83 (15 runs). */
#define CONC__SPIN_NS 3000

/* Waiting for a task: a future's result, or an idle worker's next job.
 * Longer than the default, about the cost of the sleep, because a sleep
 * there costs two sides: the waiter's wake-up, and a futex wake on the
 * submitter's (or the completer's) hot path for every task, where tiny
 * tasks come a few microseconds apart, a gap longer than a hand-off. */
#define CONC__SPIN_TASK_NS 20000

/* Pauses between two looks, at most. */
#define CONC__SPIN_GAP 16

/* How the spin behaves besides its budget. */
enum {
    /* Yield the CPU at each read of the clock (about every CONC__SPIN_GAP
     * pauses): for a waiter that may share its CPU with the process it
     * waits for. */
    CONC__SPIN_YIELD = 1u << 0,
    /* Look four times less often (gaps grow to 4 * CONC__SPIN_GAP): for a
     * look that takes a lock or scans lines the other side needs. */
    CONC__SPIN_SPARSE = 1u << 1,
    /* Look at every pause: for a word its writer stores once per event
     * (a spin lock's release, a job pushed, a future's state), where the
     * look costs the writer nothing it would not pay anyway, and where the
     * events come a few hundred nanoseconds apart, as close as the gaps
     * would be wide. The thread executor's tiny tasks come that close. */
    CONC__SPIN_EAGER = 1u << 2,
};

/* A spin in progress. Filled by conc__spin_start; read only by this
 * header's functions. */
struct conc__spin {
    int64_t budget;   /* ns to spin for */
    int64_t deadline; /* the caller's; the spin never outlasts it */
    int64_t end;      /* when the spin ends; 0 until the clock is read */
    unsigned gap;     /* pauses before the next look */
    unsigned gap_max; /* where gaps stop growing */
    unsigned looks;   /* looks since the clock was read, once gaps stop */
    unsigned flags;   /* CONC__SPIN_* */
};

/* A spin of `budget` ns (CONC__SPIN_NS or one of the budgets above), for a
 * wait that ends at the absolute `deadline` (CONC__FOREVER for none). */
static inline struct conc__spin
conc__spin_start(int64_t budget, int64_t deadline)
{
    struct conc__spin sp = {budget, deadline, 0, 1, CONC__SPIN_GAP, 0, 0};
    if (deadline == CONC__POLL)
        sp.gap = 0; /* a call that must not block does not spin */
    return sp;
}

/* conc__spin_start with CONC__SPIN_* flags. */
static inline struct conc__spin
conc__spin_start_flags(int64_t budget, int64_t deadline, unsigned flags)
{
    struct conc__spin sp = conc__spin_start(budget, deadline);
    sp.flags = flags;
    if (flags & CONC__SPIN_SPARSE)
        sp.gap_max = 4 * CONC__SPIN_GAP;
    if (flags & CONC__SPIN_EAGER)
        sp.gap_max = 1;
    return sp;
}

/* The part of conc__spin_more that reads the clock. */
int conc__spin_clock(struct conc__spin *sp);

/* Pauses until the next look. Returns 1 if the caller should look at its
 * condition again, 0 when the spin is over (and it should sleep). */
static inline int
conc__spin_more(struct conc__spin *sp)
{
    if (CONC__UNLIKELY(sp->gap == 0))
        return 0;
    for (unsigned k = 0; k < sp->gap; k++)
        conc__cpu_relax();
    if (sp->gap < sp->gap_max) {
        sp->gap <<= 1;
        return 1;
    }
    /* The clock is read about every CONC__SPIN_GAP pauses. */
    if (++sp->looks * sp->gap < CONC__SPIN_GAP)
        return 1;
    sp->looks = 0;
    return conc__spin_clock(sp);
}

/* Waits for a step another thread has begun and ends in a few
 * instructions (a spin lock's release, a claimed slot's write), which has
 * nothing to sleep on: spins by the policy, looking at every pause
 * (CONC__SPIN_EAGER), then yields the CPU at every clock read, since that
 * thread has probably lost its CPU. The caller calls it
 * between looks, with `sp` set to CONC__SPIN_STEP_INIT before the first:
 * a zeroed struct, so that a hot path that never waits pays one store. */
#define CONC__SPIN_STEP_INIT                                                   \
    {                                                                          \
        0                                                                      \
    }
void conc__spin_step(struct conc__spin *sp);

/* The whole wait for the common case: spins, then sleeps on `word` while
 * it holds `value`, until it holds another or the absolute `deadline`
 * passes. `shared` selects a process-shared futex. Returns 0 once `word`
 * was seen to hold another value, or CONC_ETIMEDOUT. */
int conc__wait_while(_Atomic uint32_t *word, uint32_t value, int64_t deadline,
                     int shared);

#endif
