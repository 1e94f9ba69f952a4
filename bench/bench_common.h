/* What every C benchmark shares: the clock, the command line, running each
 * implementation of a row interleaved with the others, and the output.
 *
 * A benchmark program measures one or more rows. Each row has several
 * implementations ("conc", "pthread", ...), each a function that performs
 * n operations and returns the seconds they took. The runner calibrates n
 * so that one implementation's measurement lasts about --time seconds
 * (calibration doubles as warm-up), then splits that measurement into
 * slices and runs the implementations in turn, slice by slice, so that a
 * noisy moment on a shared machine hurts them alike.
 *
 * Output, one line per implementation, for bench/run.py:
 *     RESULT <row> <impl> <value> <unit>
 * where unit is "ns" (nanoseconds per operation) or "per_s" (operations
 * per second). INFO lines carry remarks that are not results.
 *
 * Usage of every program: bench_x [--smoke] [--time SECONDS] [--iters N].
 * --smoke runs each implementation once on a tiny size to prove it works. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conc/error.h"

#define BENCH_SLICES 6

typedef struct bench_opts {
    int smoke;     /* one tiny run per implementation */
    double time_s; /* seconds per implementation and row */
    long iters;    /* fixed operation count; 0 calibrates */
} bench_opts;

/* One implementation of a row. `run` performs n operations (or fewer,
 * storing the count in *ops, which starts at n) and returns the seconds
 * that the measured part took. */
typedef struct bench_impl {
    const char *name;
    double (*run)(void *ctx, long n, long *ops);
    void *ctx;
} bench_impl;

/* Nanoseconds on the monotonic clock. */
static inline long long
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline double
bench_seconds_since(long long start_ns)
{
    return (double)(bench_now_ns() - start_ns) / 1e9;
}

/* Tells the compiler that memory may have been read and written here, so
 * it can neither drop nor merge the work around it. */
static inline void
bench_clobber(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Stops the benchmark when a call that cannot fail here does: a wrong
 * result must never be reported as a fast one. */
#define BENCH_CHECK(expr)                                                      \
    do {                                                                       \
        int bench_r_ = (expr);                                                 \
        if (bench_r_ != 0) {                                                   \
            fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", __FILE__, __LINE__, \
                    #expr, bench_r_, conc_strerror(bench_r_));                 \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

#define BENCH_ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

static inline void
bench_usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--smoke] [--time SECONDS] [--iters N]\n", prog);
    exit(2);
}

static inline bench_opts
bench_parse(int argc, char **argv)
{
    bench_opts o = {.smoke = 0, .time_s = 0.3, .iters = 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            o.smoke = 1;
        else if (strcmp(argv[i], "--time") == 0 && i + 1 < argc)
            o.time_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            o.iters = atol(argv[++i]);
        else
            bench_usage(argv[0]);
    }
    if (o.time_s <= 0 || o.iters < 0)
        bench_usage(argv[0]);
    return o;
}

/* Finds n such that one call of im->run lasts about `slice_s` seconds,
 * growing n from 1 until a run lasts a quarter of that. */
static inline long
bench_calibrate(const bench_impl *im, double slice_s)
{
    long n = 1;
    for (;;) {
        long ops = n;
        double t = im->run(im->ctx, n, &ops);
        if (t >= slice_s / 4 || n > LONG_MAX / 64) {
            double scaled = (double)n * slice_s / (t > 0 ? t : 1e-9);
            return scaled < 1 ? 1 : (long)scaled;
        }
        n *= t < slice_s / 100 ? 8 : 2;
    }
}

static inline void
bench_print(const char *row, const char *impl, double secs, long ops,
            int per_second)
{
    if (per_second)
        printf("RESULT %s %s %.6g per_s\n", row, impl, (double)ops / secs);
    else
        printf("RESULT %s %s %.6g ns\n", row, impl, secs * 1e9 / ops);
    fflush(stdout);
}

/* Measures every implementation of `row` and prints one RESULT line for
 * each: time per operation, or operations per second if `per_second`.
 * `smoke_n` is the operation count of a smoke run. */
static inline void
bench_row(const bench_opts *o, const char *row, const bench_impl *impls,
          int nimpl, int per_second, long smoke_n)
{
    long n[8];
    double secs[8] = {0};
    long ops[8] = {0};
    int slices = o->smoke ? 1 : BENCH_SLICES;
    BENCH_ASSERT(nimpl <= 8);
    for (int i = 0; i < nimpl; i++) {
        if (o->smoke)
            n[i] = smoke_n;
        else if (o->iters)
            n[i] = o->iters / slices > 0 ? o->iters / slices : 1;
        else
            n[i] = bench_calibrate(&impls[i], o->time_s / slices);
    }
    for (int s = 0; s < slices; s++) {
        for (int i = 0; i < nimpl; i++) {
            long done = n[i];
            secs[i] += impls[i].run(impls[i].ctx, n[i], &done);
            ops[i] += done;
        }
    }
    for (int i = 0; i < nimpl; i++)
        bench_print(row, impls[i].name, secs[i], ops[i], per_second);
}

/* Starts a plain POSIX thread for the helper side of a two-thread
 * benchmark, so that only the primitive under test is conc's. */
static inline pthread_t
bench_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int r = pthread_create(&t, NULL, fn, arg);
    if (r != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(r));
        exit(2);
    }
    return t;
}

static inline void
bench_join(pthread_t t)
{
    int r = pthread_join(t, NULL);
    if (r != 0) {
        fprintf(stderr, "pthread_join: %s\n", strerror(r));
        exit(2);
    }
}

/* A start line: the helper thread waits on it (yielding, not sleeping, since
 * it is released within microseconds) so the clock starts with both sides
 * running. */
typedef struct bench_gate {
    atomic_int open;
    atomic_int ready;
} bench_gate;

static inline void
bench_gate_wait(bench_gate *g)
{
    atomic_store(&g->ready, 1);
    while (!atomic_load_explicit(&g->open, memory_order_acquire))
        sched_yield();
}

/* Waits for the helper to arrive, then lets it go; the caller starts its
 * clock right after. */
static inline void
bench_gate_open(bench_gate *g)
{
    while (!atomic_load_explicit(&g->ready, memory_order_acquire))
        sched_yield();
    atomic_store_explicit(&g->open, 1, memory_order_release);
}

/* Where the two sides of a request-reply benchmark run. Left to the
 * scheduler, a server and its client share one CPU in some runs and not
 * in others, and a round trip's rate moves threefold with it (a wake-up
 * that crosses CPUs waits for an idle CPU to come out of its halt): the
 * rows that measure round trips between processes place the server on
 * the first allowed CPU and the client on the second, in the C program
 * and its twin alike, the usual case of two busy processes. */
enum { BENCH_SERVER_CPU = 0, BENCH_CLIENT_CPU = 1 };

/* Moves the calling thread (and what it forks later) to the nth CPU the
 * program was allowed at its first call. Returns 0, or -1 (nothing
 * changed) when there are fewer than two CPUs to choose from or the
 * system refuses. The program's main thread calls it. */
static inline int
bench_place(int nth)
{
    static cpu_set_t all;
    static int known;
    cpu_set_t one;
    if (!known && sched_getaffinity(0, sizeof all, &all) != 0)
        return -1;
    known = 1;
    if (CPU_COUNT(&all) < 2)
        return -1;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &all) || seen++ != nth)
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        return sched_setaffinity(0, sizeof one, &one) == 0 ? 0 : -1;
    }
    return -1;
}

#endif
