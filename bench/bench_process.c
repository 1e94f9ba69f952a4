/* Process start + join: how many processes per second one process can
 * start with the fork method and wait for, one after the other, with conc
 * and with raw fork + waitpid. The twin is bench_process.py.
 *
 * Row:
 *   process_start   processes started and joined per second
 *
 * Each child adds one to a counter in a shared page and exits with 0, so
 * the loop checks that every child really ran and ended well. */
#include "bench_common.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/process.h"

static atomic_long *ran;

static int
conc_body(const void *arg, size_t len)
{
    atomic_fetch_add_explicit(ran, 1, memory_order_relaxed);
    return 0;
}

/* conc_process_free is part of the cycle: a program that starts a process
 * and joins it also drops its handle. */
static double
conc_start_join(void *ctx, long n, long *ops)
{
    conc_process_opts opts = {.method = CONC_START_FORK};
    long before = atomic_load(ran);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_process *p;
        int code = -1;
        BENCH_CHECK(conc_process_new(conc_body, NULL, 0, &opts, &p));
        BENCH_CHECK(conc_process_start(p));
        BENCH_CHECK(conc_process_join(p, CONC_FOREVER));
        BENCH_ASSERT(conc_process_exitcode(p, &code) == 1 && code == 0);
        conc_process_free(p);
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(atomic_load(ran) - before == n);
    return s;
}

static double
raw_fork_wait(void *ctx, long n, long *ops)
{
    long before = atomic_load(ran);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        int status;
        pid_t pid = fork();
        BENCH_ASSERT(pid >= 0);
        if (pid == 0) {
            atomic_fetch_add_explicit(ran, 1, memory_order_relaxed);
            _exit(0);
        }
        BENCH_ASSERT(waitpid(pid, &status, 0) == pid);
        BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(atomic_load(ran) - before == n);
    return s;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    ran = mmap(NULL, sizeof *ran, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_ASSERT(ran != MAP_FAILED);
    bench_impl impls[] = {
        {"pthread", raw_fork_wait, NULL},
        {"conc", conc_start_join, NULL},
    };
    bench_row(&o, "process_start", impls, 2, 1, 5);
    munmap(ran, sizeof *ran);
    return 0;
}
