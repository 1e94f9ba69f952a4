/* Subprocess run of `true`: how many external programs per second one
 * process can run and wait for, with conc_subprocess_run and with raw
 * posix_spawnp + waitpid. The twin is bench_subprocess.py.
 *
 * Row:
 *   subprocess_run   runs of `true` per second
 *
 * Both sides search PATH for `true` on every run, as subprocess.run does,
 * and check that it exited with 0. */
#include "bench_common.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl impls[] = {
        {"pthread", raw_spawn_wait, NULL},
        {"conc", conc_run, NULL},
    };
    bench_row(&o, "subprocess_run", impls, 2, 1, 5);
    return 0;
}
