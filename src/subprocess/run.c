/* subprocess.run and its relatives call, check_call and check_output, all
 * one path: start a popen whose communicate kills on timeout, communicate
 * within the caller's deadline, and record the returncode. As in Python,
 * any failure after the start kills and reaps the child, so a run never
 * leaves a process behind. */
#include <signal.h>
#include <string.h>

#include "core/internal.h"
#include "subprocess/subprocess_internal.h"
#include "unix/coro.h"

static const conc_run_opts run_defaults;

/* The popen options a run implies. */
static int
popen_opts_for(const conc_run_opts *ro, conc_popen_opts *po)
{
    *po = ro->popen;
    if (ro->input) {
        if (po->stdin_mode != CONC_STDIO_INHERIT)
            return CONC_EINVAL; /* Python: stdin and input both used */
        po->stdin_mode = CONC_STDIO_PIPE;
    }
    if (ro->capture_output) {
        if (po->stdout_mode != CONC_STDIO_INHERIT ||
            po->stderr_mode != CONC_STDIO_INHERIT)
            return CONC_EINVAL;
        po->stdout_mode = CONC_STDIO_PIPE;
        po->stderr_mode = CONC_STDIO_PIPE;
    }
    po->kill_on_timeout = 1;
    return 0;
}

/* The command line, cut to fit, for failure messages. */
static void
describe(char *dst, size_t size, char *const argv[])
{
    size_t at = 0;
    dst[0] = '\0';
    for (size_t i = 0; argv[i] && at + 1 < size; i++) {
        size_t n = strlen(argv[i]);
        size_t room = size - at - 1 - (i > 0);
        if (n > room)
            n = room;
        if (i > 0)
            dst[at++] = ' ';
        memcpy(dst + at, argv[i], n);
        at += n;
        dst[at] = '\0';
    }
}

static int
fail_status(char *const argv[], int rc)
{
    char cmd[160];
    describe(cmd, sizeof cmd, argv);
    if (rc >= 0)
        return conc_fail(CONC_EPROCESS,
                         "Command '%s' returned non-zero exit status %d.", cmd,
                         rc);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *name = sigabbrev_np(-rc);
    if (name)
        return conc_fail(CONC_EPROCESS, "Command '%s' died with SIG%s (%d).",
                         cmd, name, -rc);
#endif
    return conc_fail(CONC_EPROCESS, "Command '%s' died with signal %d.", cmd,
                     -rc);
}

/* Runs the program, appending output to res's buffers (which the caller
 * prepared) and setting res->returncode once known. */
static int
run_into(char *const argv[], const conc_run_opts *ro, double timeout,
         conc_completed_process *res)
{
    int64_t deadline;
    conc_popen_opts po;
    conc_popen *p;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    int r = popen_opts_for(ro, &po);
    if (!r)
        r = conc_popen_new(argv, &po, &p);
    if (r)
        return r;
    r = conc__popen_communicate_until(p, ro->input, ro->input_len, deadline,
                                      &res->out, &res->err);
    if (r && r != CONC_ETIMEDOUT) /* a timeout has killed it already */
        conc__popen_kill_reap(p);
    conc_popen_returncode(p, &res->returncode);
    conc_popen_free(p);
    if (r == CONC_ETIMEDOUT) {
        char cmd[160];
        describe(cmd, sizeof cmd, argv);
        return conc_fail(r, "Command '%s' timed out after %g seconds", cmd,
                         timeout);
    }
    if (r == 0 && ro->check && res->returncode != 0)
        return fail_status(argv, res->returncode);
    return r;
}

static int
subprocess_run_uncancelled(char *const argv[], const conc_run_opts *opts,
                           double timeout, conc_completed_process *res)
{
    if (!res)
        return CONC_EINVAL;
    res->returncode = 0;
    conc_buf_init(&res->out);
    conc_buf_init(&res->err);
    return run_into(argv, opts ? opts : &run_defaults, timeout, res);
}

int
conc_subprocess_run(char *const argv[], const conc_run_opts *opts,
                    double timeout, conc_completed_process *res)
{
    CONC__CANCEL_POINT(subprocess_run_uncancelled(argv, opts, timeout, res));
}

void
conc_completed_process_free(conc_completed_process *res)
{
    if (!res)
        return;
    conc_buf_free(&res->out);
    conc_buf_free(&res->err);
    res->returncode = 0;
}

static int
call_uncancelled(char *const argv[], const conc_run_opts *opts, double timeout,
                 int *returncode)
{
    conc_completed_process res;
    int r = conc_subprocess_run(argv, opts, timeout, &res);
    if (r == 0 && returncode)
        *returncode = res.returncode;
    conc_completed_process_free(&res);
    return r;
}

int
conc_call(char *const argv[], const conc_run_opts *opts, double timeout,
          int *returncode)
{
    CONC__CANCEL_POINT(call_uncancelled(argv, opts, timeout, returncode));
}

static int
check_call_uncancelled(char *const argv[], const conc_run_opts *opts,
                       double timeout)
{
    conc_run_opts ro = opts ? *opts : run_defaults;
    ro.check = 1;
    conc_completed_process res;
    int r = conc_subprocess_run(argv, &ro, timeout, &res);
    conc_completed_process_free(&res);
    return r;
}

int
conc_check_call(char *const argv[], const conc_run_opts *opts, double timeout)
{
    CONC__CANCEL_POINT(check_call_uncancelled(argv, opts, timeout));
}

static int
check_output_uncancelled(char *const argv[], const conc_run_opts *opts,
                         double timeout, conc_buf *out)
{
    conc_run_opts ro = opts ? *opts : run_defaults;
    if (!out || ro.capture_output || ro.popen.stdout_mode != CONC_STDIO_INHERIT)
        return CONC_EINVAL;
    ro.popen.stdout_mode = CONC_STDIO_PIPE;
    ro.check = 1;
    /* The output is gathered apart and replaces the caller's buffer only
     * on success, so that a failure leaves it as it was. */
    conc_completed_process res = {0, CONC_BUF_INIT, CONC_BUF_INIT};
    int r = run_into(argv, &ro, timeout, &res);
    if (r == 0) {
        conc_buf_free(out);
        *out = res.out;
    } else {
        conc_buf_free(&res.out);
    }
    conc_buf_free(&res.err);
    return r;
}

int
conc_check_output(char *const argv[], const conc_run_opts *opts, double timeout,
                  conc_buf *out)
{
    CONC__CANCEL_POINT(check_output_uncancelled(argv, opts, timeout, out));
}
