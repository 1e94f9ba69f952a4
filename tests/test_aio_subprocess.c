/* Async subprocesses (aio_subprocess.h): a cat round trip through the
 * streams, 8 MiB through communicate both ways at once, exit codes and
 * signals, timeouts that keep the output or kill a whole process group,
 * many children at once, start errors, cancellation of a task waiting on
 * a child, the loop running other tasks meanwhile, and freeing a running
 * child (it is killed, then reaped).
 *
 * Children that must stay alive while the test looks are held by what
 * they read: `cat` by its stdin pipe, `sh -c 'read x'` by a control pipe
 * given as its stdin, whose write end the test keeps. No test sleeps to wait
 * for a child. CTest runs the program again with CONC_NO_PIDFD=1, for the waits
 * without pidfds. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"

#define BOUND      20.0 /* seconds: a wait that must end well before this */
#define SHORT      0.2  /* seconds: a timeout meant to run out */
#define BIG        (8u * 1024 * 1024)
#define SPIN_LIMIT 3.0 /* seconds: a cancelled wait ends well before */
#define NKIDS      20  /* children at once */
#define CTL_FD     103 /* where scripts find the control pipe () */

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define MAIN(name)                                                             \
    static int name(const void *arg, size_t len, conc_buf *result)
#define UNUSED_ARGS (void)arg, (void)len, (void)result

static void
run(conc_task_fn main)
{
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
}

static void
assert_buf_str(const conc_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->len ? (const char *)b->data : "", want, b->len);
}

static conc_aio_subprocess_opts
piped(int in, int out, int err)
{
    conc_aio_subprocess_opts o = {0};
    o.popen.stdin_mode = in ? CONC_STDIO_PIPE : CONC_STDIO_DEVNULL;
    o.popen.stdout_mode = out ? CONC_STDIO_PIPE : CONC_STDIO_DEVNULL;
    o.popen.stderr_mode = err ? CONC_STDIO_PIPE : CONC_STDIO_INHERIT;
    return o;
}

/* A control pipe as the child's stdin: it blocks reading it until the
 * test closes ctl[1]. ctl[0] may be closed once the child runs. */
static conc_aio_subprocess_opts
held(int ctl[2], int out)
{
    assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
    conc_aio_subprocess_opts o = piped(0, out, 0);
    o.popen.stdin_mode = CONC_STDIO_FD;
    o.popen.stdin_fd = ctl[0];
    return o;
}

/* ---- Streams --------------------------------------------------------------
 */

MAIN(roundtrip_main)
{
    UNUSED_ARGS;
    conc_aio_subprocess_opts o = piped(1, 1, 0);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
    assert_true(conc_aio_subprocess_pid(p) > 0);
    conc_aio_stream *in, *out, *err;
    assert_conc_ok(conc_aio_subprocess_stdin(p, &in));
    assert_conc_ok(conc_aio_subprocess_stdout(p, &out));
    assert_conc(conc_aio_subprocess_stderr(p, &err), CONC_ESTATE);
    conc_buf line = CONC_BUF_INIT;
    for (int i = 0; i < 3; i++) { /* cat answers each line as it comes */
        char msg[32];
        int n = snprintf(msg, sizeof msg, "line %d\n", i);
        assert_conc_ok(conc_aio_stream_write(in, msg, (size_t)n));
        assert_conc_ok(conc_aio_stream_drain(in, BOUND));
        assert_conc_ok(conc_aio_stream_readline(out, BOUND, &line));
        assert_buf_str(&line, msg);
    }
    assert_conc_ok(conc_aio_stream_write_eof(in));
    assert_conc_ok(conc_aio_stream_read(out, CONC_AIO_READ_ALL, BOUND, &line));
    assert_int_equal(line.len, 0);
    int rc = -1;
    assert_conc_ok(conc_aio_subprocess_wait(p, BOUND, &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 1);
    conc_buf_free(&line);
    conc_aio_subprocess_free(p);
    return 0;
}

static void
test_cat_roundtrip(void **state)
{
    (void)state;
    run(roundtrip_main);
}

MAIN(shell_main)
{
    UNUSED_ARGS;
    conc_aio_subprocess_opts o = piped(0, 1, 0);
    o.popen.stderr_mode = CONC_STDIO_STDOUT;
    o.popen.cwd = "/";
    char *env[] = {"GREETING=hello", NULL};
    o.popen.env = env;
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_shell(
        "echo $GREETING; pwd; echo err >&2", &o, &p));
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(
        conc_aio_subprocess_communicate(p, NULL, 0, BOUND, &out, NULL));
    assert_buf_str(&out, "hello\n/\nerr\n");
    int rc = -1;
    assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 1);
    assert_int_equal(rc, 0);
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return 0;
}

/* stderr to stdout, cwd, env, the shell. */
static void
test_shell_options(void **state)
{
    (void)state;
    run(shell_main);
}

/* ---- communicate ----------------------------------------------------------
 */

MAIN(big_main)
{
    UNUSED_ARGS;
    uint8_t *data = malloc(BIG);
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (uint8_t)(i * 7 + i / 4096);
    /* cat echoes as it reads: both pipes fill, neither side may block. */
    conc_aio_subprocess_opts o = piped(1, 1, 1);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
    conc_buf out = CONC_BUF_INIT, err = CONC_BUF_INIT;
    assert_conc_ok(
        conc_aio_subprocess_communicate(p, data, BIG, BOUND, &out, &err));
    assert_int_equal(out.len, BIG);
    assert_memory_equal(out.data, data, BIG);
    assert_int_equal(err.len, 0);
    conc_aio_subprocess_free(p);
    /* 8 MiB on stdout and stderr while stdin takes nothing. */
    assert_conc_ok(conc_aio_create_subprocess_shell(
        "head -c 8388608 /dev/zero; head -c 8388608 /dev/zero >&2", &o, &p));
    assert_conc_ok(
        conc_aio_subprocess_communicate(p, NULL, 0, BOUND, &out, &err));
    assert_int_equal(out.len, BIG);
    assert_int_equal(err.len, BIG);
    assert_int_equal(out.data[BIG - 1], 0);
    conc_aio_subprocess_free(p);
    conc_buf_free(&out);
    conc_buf_free(&err);
    free(data);
    return 0;
}

static void
test_communicate_large(void **state)
{
    (void)state;
    run(big_main);
}

MAIN(unread_input_main)
{
    UNUSED_ARGS;
    /* The child exits without reading its input: not an error. */
    static uint8_t data[1024 * 1024];
    conc_aio_subprocess_opts o = piped(1, 1, 0);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_shell("echo gone", &o, &p));
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_subprocess_communicate(p, data, sizeof data, BOUND,
                                                   &out, NULL));
    assert_buf_str(&out, "gone\n");
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return 0;
}

static void
test_communicate_unread_input(void **state)
{
    (void)state;
    run(unread_input_main);
}

MAIN(timeout_keeps_main)
{
    UNUSED_ARGS;
    int ctl[2];
    conc_aio_subprocess_opts o = held(ctl, 1);
    conc_aio_subprocess *p;
    assert_conc_ok(
        conc_aio_create_subprocess_shell("echo a; read x; echo b", &o, &p));
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_buf_append(&out, "old", 3));
    double t0 = conc_monotonic();
    assert_conc(conc_aio_subprocess_communicate(p, NULL, 0, SHORT, &out, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    assert_buf_str(&out, "old"); /* unchanged on failure */
    assert_int_equal(conc_aio_subprocess_returncode(p, NULL), 0);
    close(ctl[1]);
    close(ctl[0]);
    assert_conc_ok(
        conc_aio_subprocess_communicate(p, NULL, 0, BOUND, &out, NULL));
    assert_buf_str(&out, "a\nb\n"); /* nothing lost */
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return 0;
}

static void
test_communicate_timeout_keeps_output(void **state)
{
    (void)state;
    run(timeout_keeps_main);
}

MAIN(kill_group_main)
{
    UNUSED_ARGS;
    conc_aio_subprocess_opts o = piped(0, 1, 0);
    o.popen.new_group = 1;
    o.popen.kill_on_timeout = 1;
    conc_aio_subprocess *p;
    /* The grandchild holds stdout open: only killing the group ends it. */
    assert_conc_ok(conc_aio_create_subprocess_shell(
        "echo started; sleep 1000 & wait", &o, &p));
    conc_buf out = CONC_BUF_INIT;
    double t0 = conc_monotonic();
    assert_conc(conc_aio_subprocess_communicate(p, NULL, 0, SHORT, &out, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT);
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_subprocess_stdout(p, &s));
    assert_int_equal(conc_aio_stream_at_eof(s), 1); /* the grandchild died */
    int rc = 0;
    assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 1);
    assert_int_equal(rc, -SIGKILL);
    assert_conc_ok(conc_aio_subprocess_communicate(p, NULL, 0, 0, &out, NULL));
    assert_buf_str(&out, "started\n");
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return 0;
}

static void
test_timeout_kills_group(void **state)
{
    (void)state;
    run(kill_group_main);
}

/* ---- Exit codes and signals -----------------------------------------------
 */

static int
exit_of(const char *cmd)
{
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_shell(cmd, NULL, &p));
    int rc = 12345;
    assert_conc_ok(conc_aio_subprocess_wait(p, BOUND, &rc));
    conc_aio_subprocess_free(p);
    return rc;
}

MAIN(codes_main)
{
    UNUSED_ARGS;
    assert_int_equal(exit_of("exit 0"), 0);
    assert_int_equal(exit_of("exit 3"), 3);
    assert_int_equal(exit_of("kill -TERM $$"), -SIGTERM);
    assert_int_equal(exit_of("no-such-program-here 2>/dev/null"), 127);
    int sigs[] = {SIGTERM, SIGKILL, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        conc_aio_subprocess_opts o = piped(1, 0, 0);
        conc_aio_subprocess *p;
        assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
        int rc = 0;
        assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 0);
        assert_conc(conc_aio_subprocess_wait(p, 0, &rc), CONC_ETIMEDOUT);
        if (sigs[i] == SIGTERM)
            assert_conc_ok(conc_aio_subprocess_terminate(p));
        else if (sigs[i] == SIGKILL)
            assert_conc_ok(conc_aio_subprocess_kill(p));
        else
            assert_conc_ok(conc_aio_subprocess_send_signal(p, sigs[i]));
        assert_conc_ok(conc_aio_subprocess_wait(p, BOUND, &rc));
        assert_int_equal(rc, -sigs[i]);
        /* Reaped: signals do nothing now. */
        assert_conc_ok(conc_aio_subprocess_kill(p));
        assert_conc(conc_aio_subprocess_kill_group(p, SIGKILL), CONC_ESTATE);
        assert_conc(conc_aio_subprocess_send_signal(p, -1), CONC_EINVAL);
        conc_aio_subprocess_free(p);
    }
    return 0;
}

static void
test_exit_codes_and_signals(void **state)
{
    (void)state;
    run(codes_main);
}

MAIN(wait_kill_main)
{
    UNUSED_ARGS;
    conc_aio_subprocess_opts o = piped(1, 0, 0);
    o.popen.kill_on_timeout = 1;
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
    int rc = 0;
    assert_conc(conc_aio_subprocess_wait(p, SHORT, &rc), CONC_ETIMEDOUT);
    assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 1);
    assert_int_equal(rc, -SIGKILL);
    conc_aio_subprocess_free(p);
    return 0;
}

static void
test_wait_timeout_kills(void **state)
{
    (void)state;
    run(wait_kill_main);
}

/* ---- Many at once, and the loop meanwhile ---------------------------------
 */

static int
child_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    int i = *(const int *)arg;
    char cmd[64], want[32];
    snprintf(cmd, sizeof cmd, "echo child %d", i);
    snprintf(want, sizeof want, "child %d\n", i);
    conc_aio_subprocess_opts o = piped(0, 1, 0);
    conc_aio_subprocess *p;
    int r = conc_aio_create_subprocess_shell(cmd, &o, &p);
    if (r < 0)
        return r;
    conc_buf out = CONC_BUF_INIT;
    r = conc_aio_subprocess_communicate(p, NULL, 0, BOUND, &out, NULL);
    if (r == 0 && (out.len != strlen(want) || memcmp(out.data, want, out.len)))
        r = CONC_EVALUE;
    if (r == 0)
        r = conc_buf_append(result, &i, sizeof i);
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return r;
}

MAIN(many_main)
{
    UNUSED_ARGS;
    conc_future *f[NKIDS];
    for (int i = 0; i < NKIDS; i++)
        assert_conc_ok(
            conc_aio_create_task(child_task, &i, sizeof i, NULL, &f[i]));
    assert_conc_ok(conc_aio_gather(f, NKIDS, 0));
    for (int i = 0; i < NKIDS; i++)
        conc_future_free(f[i]);
    return 0;
}

static void
test_many_children(void **state)
{
    (void)state;
    run(many_main);
}

struct hold {
    conc_aio_subprocess *p;
    int ctl_w;
    int ticks;
};

/* Runs while the main task waits on the child, then lets the child go. */
static int
ticker_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct hold *h = *(struct hold *const *)arg;
    for (int i = 0; i < 5; i++) {
        h->ticks++;
        conc_aio_sleep(0);
    }
    close(h->ctl_w);
    return 0;
}

MAIN(meanwhile_main)
{
    UNUSED_ARGS;
    int ctl[2];
    conc_aio_subprocess_opts o = held(ctl, 0);
    struct hold h = {.ctl_w = ctl[1]}, *hp = &h;
    assert_conc_ok(
        conc_aio_create_subprocess_shell("read x; exit 0", &o, &h.p));
    close(ctl[0]);
    conc_future *f;
    assert_conc_ok(conc_aio_create_task(ticker_task, &hp, sizeof hp, NULL, &f));
    int rc = -1;
    /* If this wait blocked the loop, the ticker would never free the
     * child and the wait would time out. */
    assert_conc_ok(conc_aio_subprocess_wait(h.p, BOUND, &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(h.ticks, 5);
    assert_conc_ok(conc_aio_await(f));
    conc_future_free(f);
    conc_aio_subprocess_free(h.p);
    return 0;
}

static void
test_loop_runs_while_waiting(void **state)
{
    (void)state;
    run(meanwhile_main);
}

/* ---- Cancellation -----------------------------------------------------------
 */

static int
waiter_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_subprocess *p = *(conc_aio_subprocess *const *)arg;
    return conc_aio_subprocess_wait(p, CONC_FOREVER, NULL);
}

static int
communicator_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_subprocess *p = *(conc_aio_subprocess *const *)arg;
    return conc_aio_subprocess_communicate(p, NULL, 0, CONC_FOREVER, NULL,
                                           NULL);
}

static void
cancel_case(conc_task_fn fn, int out)
{
    int ctl[2];
    conc_aio_subprocess_opts o = held(ctl, out);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_shell("read x; exit 0", &o, &p));
    close(ctl[0]);
    conc_future *f;
    assert_conc_ok(conc_aio_create_task(fn, &p, sizeof p, NULL, &f));
    for (int i = 0; i < 3; i++) /* let it start waiting */
        assert_conc_ok(conc_aio_sleep(0));
    assert_false(conc_future_done(f));
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    assert_true(conc_future_cancelled(f));
    conc_future_free(f);
    /* The child keeps running; once let go it ends normally. */
    assert_int_equal(conc_aio_subprocess_returncode(p, NULL), 0);
    close(ctl[1]);
    int rc = -1;
    if (out)
        assert_conc_ok(
            conc_aio_subprocess_communicate(p, NULL, 0, BOUND, NULL, NULL));
    assert_conc_ok(conc_aio_subprocess_wait(p, BOUND, &rc));
    assert_int_equal(rc, 0);
    conc_aio_subprocess_free(p);
}

MAIN(cancel_main)
{
    UNUSED_ARGS;
    cancel_case(waiter_task, 0);
    cancel_case(communicator_task, 1);
    return 0;
}

static void
test_cancel_waiting_task(void **state)
{
    (void)state;
    run(cancel_main);
}

/* The sync module's wait, made in a task and cancelled, returns at once
 * (it used to spin on the cancelled descriptor wait until its deadline). */
static int
popen_waiter_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_popen *p = *(conc_popen *const *)arg;
    return conc_popen_wait(p, SPIN_LIMIT, NULL);
}

MAIN(popen_cancel_main)
{
    UNUSED_ARGS;
    conc_popen_opts o = {.stdin_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    assert_conc_ok(conc_popen_new(ARGV("cat"), &o, &p));
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(popen_waiter_task, &p, sizeof p, NULL, &f));
    for (int i = 0; i < 3; i++) /* let it start waiting */
        assert_conc_ok(conc_aio_sleep(0));
    double t0 = conc_monotonic();
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    assert_true(conc_monotonic() - t0 < SPIN_LIMIT);
    conc_future_free(f);
    assert_conc_ok(conc_popen_close_stdin(p));
    int rc = -1;
    assert_conc_ok(conc_popen_wait(p, BOUND, &rc));
    assert_int_equal(rc, 0);
    conc_popen_free(p);
    return 0;
}

static void
test_cancel_popen_wait_in_task(void **state)
{
    (void)state;
    run(popen_cancel_main);
}

/* ---- Errors and freeing
 * ------------------------------------------------------ */

MAIN(errors_main)
{
    UNUSED_ARGS;
    conc_aio_subprocess *p = NULL;
    conc_aio_subprocess_opts o = piped(1, 1, 1);
    int fds = conc_test_count_fds();
    assert_conc(
        conc_aio_create_subprocess_exec(ARGV("no-such-program-here"), &o, &p),
        CONC_ENOENT);
    assert_conc(
        conc_aio_create_subprocess_exec(ARGV("/no/such/program"), &o, &p),
        CONC_ENOENT);
    o.popen.cwd = "/no/such/dir";
    assert_conc(conc_aio_create_subprocess_exec(ARGV("true"), &o, &p),
                CONC_ENOENT);
    assert_int_equal(conc_test_count_fds(), fds); /* the pipes were closed */
    assert_null(p);
    assert_conc(conc_aio_create_subprocess_exec(ARGV(NULL), NULL, &p),
                CONC_EINVAL);
    o = piped(0, 0, 0);
    o.popen.stdout_mode = CONC_STDIO_STDOUT;
    assert_conc(conc_aio_create_subprocess_exec(ARGV("true"), &o, &p),
                CONC_EINVAL);
    /* communicate: input without a stdin pipe, given twice, NaN. */
    o = piped(0, 1, 0);
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("true"), &o, &p));
    assert_conc(conc_aio_subprocess_communicate(p, "x", 1, BOUND, NULL, NULL),
                CONC_EINVAL);
    assert_conc(conc_aio_subprocess_communicate(p, NULL, 1, BOUND, NULL, NULL),
                CONC_EINVAL);
    assert_conc(conc_aio_subprocess_communicate(p, NULL, 0, NAN, NULL, NULL),
                CONC_EINVAL);
    assert_conc(conc_aio_subprocess_wait(p, NAN, NULL), CONC_EINVAL);
    conc_aio_subprocess_free(p);
    o = piped(1, 0, 0);
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
    assert_conc_ok(
        conc_aio_subprocess_communicate(p, "x", 1, BOUND, NULL, NULL));
    assert_conc(conc_aio_subprocess_communicate(p, "x", 1, BOUND, NULL, NULL),
                CONC_ESTATE);
    conc_aio_subprocess_free(p);
    return 0;
}

/* Whether conc has reaped every child freed while it ran (it reaps one
 * once it has died, at the next start of a program or here). */
static int
running_children(void *arg)
{
    (void)arg;
    size_t n = 1;
    conc_subprocess_reap(&n);
    return n == 0;
}

static void
test_errors(void **state)
{
    (void)state;
    run(errors_main);
    /* Outside a task, communicate cannot run; wait blocks the thread. */
    conc_aio_subprocess_opts o = piped(0, 1, 0);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("true"), &o, &p));
    assert_conc(conc_aio_subprocess_communicate(p, NULL, 0, BOUND, NULL, NULL),
                CONC_ESTATE);
    int rc = -1;
    assert_conc_ok(conc_aio_subprocess_wait(p, CONC_FOREVER, &rc));
    assert_int_equal(rc, 0);
    conc_aio_subprocess_free(p);
    /* errors_main freed a `true` that ran: killed, it is reaped once it
     * has died, which the starts after it may have come too early for. */
    assert_true(conc_test_wait_until(running_children, NULL, BOUND));
}

/* Freeing a running child kills it; conc reaps it once it has died. */
static void
test_free_running_kills_and_reaps(void **state)
{
    (void)state;
    conc_aio_subprocess_opts o = piped(1, 1, 0);
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(ARGV("cat"), &o, &p));
    pid_t pid = conc_aio_subprocess_pid(p);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    conc_aio_subprocess_free(p);
    if (pidfd >= 0) { /* the kill's event, where the kernel has pidfds */
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, (int)(BOUND * 1000)), 1);
        close(pidfd);
    }
    assert_true(conc_test_wait_until(running_children, NULL, BOUND));
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped by conc */
    conc_aio_subprocess_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_cat_roundtrip),
        conc_unit_test(test_shell_options),
        conc_unit_test(test_communicate_large),
        conc_unit_test(test_communicate_unread_input),
        conc_unit_test(test_communicate_timeout_keeps_output),
        conc_unit_test(test_timeout_kills_group),
        conc_unit_test(test_exit_codes_and_signals),
        conc_unit_test(test_wait_timeout_kills),
        conc_unit_test(test_many_children),
        conc_unit_test(test_loop_runs_while_waiting),
        conc_unit_test(test_cancel_waiting_task),
        conc_unit_test(test_cancel_popen_wait_in_task),
        conc_unit_test(test_errors),
        conc_unit_test(test_free_running_kills_and_reaps),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
