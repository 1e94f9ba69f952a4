/* A test of the fibers without cmocka, for a machine the suite does not
 * build for: tests/cross/fiber_cross.sh builds it with a cross compiler
 * (aarch64) and runs it under an emulator when one is installed. It checks
 * what the assembly does: round trips, callee-saved registers and the
 * rounding mode kept across switches, the zeroed base frame ending a
 * backtrace, and a thousand fibers in a ring. Exits 0, or 1 with the line
 * of the check that failed. */
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "unix/fiber.h"

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #c);                                                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define RING 1000

static conc__fiber *base, *ring[RING];
static int laps[RING], index_of[RING];
static uint64_t fiber_sum;
static int fiber_round;
static void *where;

static __attribute__((noinline)) uint64_t
mix(volatile uint64_t *seed, conc__fiber *to)
{
    uint64_t a = *seed, b = a * 3, c = a ^ 0x55, d = a + 7, e = a * a,
             g = a >> 3, h = ~a, k = a * 11, m = a ^ (a << 5);
    /* Doubles live across the switch: in d8-d15 on aarch64. */
    double x1 = (double)(a & 0xff), x2 = x1 * 1.5, x3 = x1 + 2.25, x4 = x1 * x1,
           x5 = x2 - 7.0, x6 = x3 * 0.5, x7 = x4 + x5, x8 = x6 * 4.0;
    if (to)
        conc__fiber_switch(to);
    return a + b * 2 + c * 3 + d * 5 + e * 7 + g * 11 + h * 13 + k * 17 +
           m * 19 +
           (uint64_t)(x1 + 2 * x2 + 3 * x3 + 5 * x4 + 7 * x5 + 11 * x6 +
                      13 * x7 + 17 * x8);
}

static __attribute__((noinline)) void
suspend_here(void)
{
    where = __builtin_return_address(0);
    conc__fiber_switch(base);
    __asm__ volatile("" ::: "memory");
}

static void
worker(void *arg)
{
    (void)arg;
    volatile uint64_t seed = 12345;
    for (int i = 0; i < 50; i++) {
        seed = seed * 6364136223846793005u + 1;
        fiber_sum += mix(&seed, base);
    }
    fesetround(FE_UPWARD);
    conc__fiber_switch(base);
    volatile double one = 1.0, three = 3.0;
    fiber_round = fegetround() == FE_UPWARD && one / three > 0.3333333333333333;
    suspend_here();
    conc__fiber_exit(base);
}

static void
ring_fn(void *arg)
{
    int i = *(int *)arg;
    conc__fiber *next = i + 1 < RING ? ring[i + 1] : base;
    for (int lap = 0; lap < 3; lap++) {
        laps[i]++;
        conc__fiber_switch(next);
    }
    conc__fiber_exit(next);
}

static void
check_ring(void)
{
    for (int i = 0; i < RING; i++) {
        index_of[i] = i;
        CHECK(conc__fiber_new(0, ring_fn, &index_of[i], &ring[i]) == 0);
    }
    for (int lap = 0; lap <= 3; lap++)
        conc__fiber_switch(ring[0]);
    for (int i = 0; i < RING; i++) {
        CHECK(laps[i] == 3);
        conc__fiber_free(ring[i]);
    }
}

int
main(void)
{
    base = conc__fiber_thread();
    conc__fiber *f;
    CHECK(conc__fiber_new(0, worker, NULL, &f) == 0);
    volatile uint64_t seed = 999;
    uint64_t mine = 0, want = 0;
    for (int i = 0; i < 50; i++) {
        seed = seed * 2862933555777941757u + 3;
        volatile uint64_t copy = seed;
        want += mix(&copy, NULL);
        mine += mix(&seed, f);
    }
    CHECK(mine == want);
    conc__fiber_switch(f); /* sets its rounding mode */
    CHECK(fegetround() == FE_TONEAREST);
    conc__fiber_switch(f); /* suspends in suspend_here */
    CHECK(fiber_round == 1);
    void *pcs[64];
    int n = conc__fiber_backtrace(f, pcs, 64);
    int found = 0;
    for (int i = 0; i < n; i++)
        found |= pcs[i] == where;
    CHECK(n >= 3 && n < 10 && found);
    conc__fiber_switch(f);
    conc__fiber_free(f);
    check_ring();
    conc__fiber_thread_cleanup();
    CHECK(conc__fiber_stacks_mapped() == 0);
    printf("fiber smoke: passed\n");
    return 0;
}
