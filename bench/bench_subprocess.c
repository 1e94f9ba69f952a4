/* Subprocess run of `true`: how many external programs per second one
 * process can run and wait for, with conc_subprocess_run and with raw
 * posix_spawnp + waitpid; and the same from a coroutine, with
 * conc_aio_create_subprocess_exec and a wait that suspends the task on
 * the child's pidfd. The twin is bench_subprocess.py (subprocess.run, and
 * asyncio's create_subprocess_exec on asyncio's loop and on uvloop).
 *
 * Rows:
 *   subprocess_run       runs of `true` per second
 *   aio_subprocess_run   the same, started and awaited in a coroutine
 *
 * Both sides search PATH for `true` on every run, as subprocess.run does,
 * and check that it exited with 0. */
#include "bench_common.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/aio.h"
#include "conc/aio_subprocess.h"
#include "conc/subprocess.h"

extern char **environ;

static char *const true_argv[] = {"true", NULL};

/* conc_completed_process_free is part of the cycle, as a CompletedProcess
 * is dropped in Python. */
static double
conc_run(void *ctx, long n, long *ops)
{
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_completed_process res;
        BENCH_CHECK(conc_subprocess_run(true_argv, NULL, CONC_FOREVER, &res));
        BENCH_ASSERT(res.returncode == 0);
        conc_completed_process_free(&res);
    }
    return bench_seconds_since(t0);
}

static double
raw_spawn_wait(void *ctx, long n, long *ops)
{
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int status;
        int r = posix_spawnp(&pid, "true", NULL, NULL, true_argv, environ);
        BENCH_ASSERT(r == 0);
        BENCH_ASSERT(waitpid(pid, &status, 0) == pid);
        BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return bench_seconds_since(t0);
}

/* The coroutine that starts and awaits `true` n times, as asyncio's
 * `await (await create_subprocess_exec("true")).wait()`; its result is
 * the time taken, without the loop's start and end, as in the twin. */
static int
aio_runs(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    long n = *(const long *)arg;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_aio_subprocess *p;
        int rc = -1;
        BENCH_CHECK(conc_aio_create_subprocess_exec(true_argv, NULL, &p));
        BENCH_CHECK(conc_aio_subprocess_wait(p, CONC_FOREVER, &rc));
        BENCH_ASSERT(rc == 0);
        conc_aio_subprocess_free(p);
    }
    double secs = bench_seconds_since(t0);
    return conc_buf_append(result, &secs, sizeof secs);
}

static double
conc_aio_run_true(void *ctx, long n, long *ops)
{
    conc_buf res = CONC_BUF_INIT;
    BENCH_CHECK(conc_aio_run(aio_runs, &n, sizeof n, &res));
    BENCH_ASSERT(res.len == sizeof(double));
    double secs;
    memcpy(&secs, res.data, sizeof secs);
    conc_buf_free(&res);
    return secs;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl impls[] = {
        {"pthread", raw_spawn_wait, NULL},
        {"conc", conc_run, NULL},
    };
    bench_row(&o, "subprocess_run", impls, 2, 1, 5);
    bench_impl aio[] = {
        {"pthread", raw_spawn_wait, NULL},
        {"conc", conc_aio_run_true, NULL},
    };
    bench_row(&o, "aio_subprocess_run", aio, 2, 1, 5);
    return 0;
}
