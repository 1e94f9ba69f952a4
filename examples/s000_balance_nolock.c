/* s000_balance_nolock: seed 000, section 6 (Lock), the first program.
 *
 * The Python has two threads run change_it(5) and change_it(8) two million
 * times each, where change_it adds n to a global balance and takes it away
 * again, with no lock; it prints the balance, which "is not always 0". Under
 * CPython's GIL the threads take turns and the damage is rare. conc has no
 * GIL: both threads really run at once on two cores, so updates are lost
 * nearly every run and the balance printed is usually far from 0. That is
 * the point of the example, so it prints the result and succeeds whatever
 * the value.
 *
 * C runs the loop a hundred times faster than CPython, so with the seed's
 * two million steps one thread could finish before the other has even
 * started. The two threads therefore meet at a barrier first and take
 * twenty million steps each, so that they overlap as Python's do.
 *
 * Each `balance = balance + n` is a read followed by a separate write, as
 * Python's bytecode does it. Relaxed atomic loads and stores keep that race
 * in the logic while making it defined behaviour in C (a plain int would let
 * the compiler fold the loop away, and would be undefined).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define STEPS 20000000 /* the seed's 2000000, times ten */

static atomic_long balance;
static conc_barrier *start_line;

static void
change_it(long n)
{
    long b = atomic_load_explicit(&balance, memory_order_relaxed);
    atomic_store_explicit(&balance, b + n, memory_order_relaxed);
    b = atomic_load_explicit(&balance, memory_order_relaxed);
    atomic_store_explicit(&balance, b - n, memory_order_relaxed);
}

static int
run_thread(void *arg)
{
    long n = (long)(intptr_t)arg;
    /* Both threads leave the barrier together, so their loops overlap. */
    check(conc_barrier_wait(start_line, CONC_FOREVER, NULL),
          "conc_barrier_wait");
    for (long i = 0; i < STEPS; i++)
        change_it(n);
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
    check(conc_thread_start(run_thread, (void *)(intptr_t)5, NULL, &thread1),
          "conc_thread_start");
    check(conc_thread_start(run_thread, (void *)(intptr_t)8, NULL, &thread2),
          "conc_thread_start");
    join(thread1);
    join(thread2);
    printf("%ld\n", atomic_load(&balance));
    conc_barrier_free(start_line);
    return 0;
}
