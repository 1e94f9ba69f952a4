/* s002_gil_counter: seed 002, section 1 (GIL).
 *
 * The Python runs add() and desc() in two threads, each changing a global
 * total by one a million times with no lock, and prints the total: a
 * different number each run, which the seed uses to show that the GIL is
 * released between bytecodes. conc has no GIL at all: the two threads run
 * at the same time on two cores, so even more updates are lost and the total
 * is rarely 0. The example prints it and succeeds whatever the value; see
 * s002_rlock_counter for the locked version.
 *
 * C runs the loop a hundred times faster than CPython, so with the seed's
 * million steps one thread could finish before the other has even started.
 * The two threads therefore meet at a barrier first and count ten million
 * steps each, so that they overlap as Python's do.
 *
 * `total += 1` is a read followed by a separate write, as in Python's
 * bytecode; relaxed atomic loads and stores keep that race in the logic
 * while making it defined behaviour in C.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define STEPS 10000000 /* the seed's 1000000, times ten */

static atomic_long total;
static conc_barrier *start_line;

static void
change_total(long delta)
{
    long t = atomic_load_explicit(&total, memory_order_relaxed);
    atomic_store_explicit(&total, t + delta, memory_order_relaxed);
}

/* Both threads leave the barrier together, so their loops overlap. */
static void
wait_start(void)
{
    check(conc_barrier_wait(start_line, CONC_FOREVER, NULL),
          "conc_barrier_wait");
}

static int
add(void *arg)
{
    (void)arg;
    wait_start();
    for (long i = 0; i < STEPS; i++)
        change_total(1);
    return 0;
}

static int
desc(void *arg)
{
    (void)arg;
    wait_start();
    for (long i = 0; i < STEPS; i++)
        change_total(-1);
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
    conc_thread *thread1, *thread2;
    check(conc_barrier_new(2, NULL, &start_line), "conc_barrier_new");
    check(conc_thread_start(add, NULL, NULL, &thread1), "conc_thread_start");
    check(conc_thread_start(desc, NULL, NULL, &thread2), "conc_thread_start");
    join(thread1);
    join(thread2);
    printf("%ld\n", atomic_load(&total));
    conc_barrier_free(start_line);
    return 0;
}
