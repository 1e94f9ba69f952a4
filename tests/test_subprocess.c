/* Subprocesses: run and its relatives, Popen's pipes, communicate with
 * input, large outputs and timeouts, process groups, waits, signals,
 * environment and working directory, start failures, and reaping.
 *
 * Children that must stay alive while the test looks are held by what they
 * read: `cat` waits on its stdin pipe, and `sh -c 'read x <&$1'` waits on a
 * control pipe whose write end the test keeps. Closing that end lets them
 * go; no test sleeps to wait for a child. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "subprocess/subprocess_internal.h"

#define WAIT_S 30.0

/* ---- Helpers ------------------------------------------------------------ */

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})

static void
assert_buf_str(const conc_buf *b, const char *want)
{
    size_t n = strlen(want);
    char got[256];
    size_t shown = b->len < sizeof got - 1 ? b->len : sizeof got - 1;
    memcpy(got, b->data ? (const char *)b->data : "", shown);
    got[shown] = '\0';
    assert_string_equal(got, want);
    assert_int_equal(b->len, n);
}

/* A close-on-exec pipe the test controls. */
static void
control_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
}

/* The decimal name of `fd`, for scripts given it as $1 (a static buffer:
 * one use at a time). */
static char *
fdname(int fd)
{
    static char name[16];
    snprintf(name, sizeof name, "%d", fd);
    return name;
}

/* The state letter of process `pid` in /proc ('Z' for a zombie), or 0 once
 * it is gone; its group and session through the pointers. */
static char
proc_state(pid_t pid, int *pgrp, int *session)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok)
        return 0;
    char *p = strrchr(line, ')');
    char st = 0;
    int ppid = 0, g = 0, s = 0;
    if (!p || sscanf(p + 1, " %c %d %d %d", &st, &ppid, &g, &s) != 4)
        return 0;
    if (pgrp)
        *pgrp = g;
    if (session)
        *session = s;
    return st;
}

static int
pid_dead(void *arg)
{
    char st = proc_state(*(pid_t *)arg, NULL, NULL);
    return st == 0 || st == 'Z';
}

/* Starts `cat` with its stdin a pipe: it runs until that pipe closes. */
static conc_popen *
start_cat(const conc_popen_opts *extra)
{
    conc_popen_opts o = extra ? *extra : (conc_popen_opts){0};
    o.stdin_mode = CONC_STDIO_PIPE;
    conc_popen *p = NULL;
    assert_conc_ok(conc_popen_new(ARGV("cat"), &o, &p));
    assert_true(conc_popen_pid(p) > 0);
    int fd = -1;
    assert_conc_ok(conc_popen_stdin_fd(p, &fd));
    assert_true(fd >= 0);
    return p;
}

static void
finish_cat(conc_popen *p)
{
    int rc = -1;
    assert_conc_ok(conc_popen_close_stdin(p));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, 0);
    conc_popen_free(p);
}

/* Runs argv with output captured; returns run's result code. */
static int
run_capture(char *const argv[], conc_run_opts *o, conc_completed_process *r)
{
    conc_run_opts ro = o ? *o : (conc_run_opts){0};
    ro.capture_output = 1;
    return conc_subprocess_run(argv, &ro, WAIT_S, r);
}

/* ---- Return codes ------------------------------------------------------- */

static void
test_run_returncodes(void **state)
{
    (void)state;
    conc_completed_process r;
    assert_conc_ok(conc_subprocess_run(ARGV("true"), NULL, WAIT_S, &r));
    assert_int_equal(r.returncode, 0);
    assert_int_equal(r.out.len, 0);
    conc_completed_process_free(&r);
    assert_conc_ok(conc_subprocess_run(ARGV("false"), NULL, WAIT_S, &r));
    assert_int_equal(r.returncode, 1);
    conc_completed_process_free(&r);
    assert_conc_ok(
        conc_subprocess_run(ARGV("sh", "-c", "exit 3"), NULL, WAIT_S, &r));
    assert_int_equal(r.returncode, 3);
    conc_completed_process_free(&r);
    int rc = -1;
    assert_conc_ok(conc_call(ARGV("sh", "-c", "exit 42"), NULL, WAIT_S, &rc));
    assert_int_equal(rc, 42);
    assert_conc_ok(conc_call(ARGV("true"), NULL, WAIT_S, NULL));
    conc_completed_process_free(NULL);
}

static void
test_signal_returncodes(void **state)
{
    (void)state;
    int rc = 0;
    conc_popen *p = start_cat(NULL);
    assert_int_equal(conc_popen_poll(p, &rc), 0);
    assert_int_equal(conc_popen_returncode(p, &rc), 0);
    assert_conc_ok(conc_popen_terminate(p));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, -SIGTERM);
    assert_int_equal(conc_popen_returncode(p, &rc), 1);
    assert_int_equal(rc, -SIGTERM);
    /* Signals after the child was reaped do nothing. */
    assert_conc_ok(conc_popen_kill(p));
    assert_conc_ok(conc_popen_send_signal(p, SIGUSR1));
    conc_popen_free(p);

    p = start_cat(NULL);
    assert_conc_ok(conc_popen_kill(p));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, -SIGKILL);
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, -SIGKILL);
    conc_popen_free(p);

    p = start_cat(NULL);
    assert_conc_ok(conc_popen_send_signal(p, 0)); /* existence check */
    assert_conc_ok(conc_popen_send_signal(p, SIGINT));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, -SIGINT);
    conc_popen_free(p);
}

/* A child starts with no signal blocked even if the caller blocks some,
 * so terminate works; keep_signals keeps the caller's mask. */
static void
test_signal_mask_reset(void **state)
{
    (void)state;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = 0;
    conc_popen *p = start_cat(NULL);
    assert_conc_ok(conc_popen_terminate(p));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, -SIGTERM);
    conc_popen_free(p);

    p = start_cat(&(conc_popen_opts){.keep_signals = 1});
    assert_conc_ok(conc_popen_terminate(p)); /* stays pending in cat */
    assert_conc(conc_popen_wait(p, 0.05, &rc), CONC_ETIMEDOUT);
    finish_cat(p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- Standard streams --------------------------------------------------- */

static void
test_capture_output(void **state)
{
    (void)state;
    conc_completed_process r;
    assert_conc_ok(run_capture(
        ARGV("sh", "-c", "echo out; echo err >&2; exit 5"), NULL, &r));
    assert_int_equal(r.returncode, 5);
    assert_buf_str(&r.out, "out\n");
    assert_buf_str(&r.err, "err\n");
    conc_completed_process_free(&r);
    assert_int_equal(r.out.len, 0);
}

static void
test_stderr_merged(void **state)
{
    (void)state;
    conc_completed_process r;
    conc_run_opts o = {.popen = {.stdout_mode = CONC_STDIO_PIPE,
                                 .stderr_mode = CONC_STDIO_STDOUT}};
    assert_conc_ok(conc_subprocess_run(
        ARGV("sh", "-c", "echo a; echo b >&2; echo c"), &o, WAIT_S, &r));
    assert_buf_str(&r.out, "a\nb\nc\n");
    assert_int_equal(r.err.len, 0);
    conc_completed_process_free(&r);
}

static void
test_devnull(void **state)
{
    (void)state;
    conc_completed_process r;
    conc_run_opts o = {.popen = {.stdin_mode = CONC_STDIO_DEVNULL,
                                 .stdout_mode = CONC_STDIO_PIPE}};
    assert_conc_ok(conc_subprocess_run(ARGV("cat"), &o, WAIT_S, &r));
    assert_int_equal(r.returncode, 0);
    assert_int_equal(r.out.len, 0);
    conc_completed_process_free(&r);

    o = (conc_run_opts){.popen = {.stdout_mode = CONC_STDIO_DEVNULL,
                                  .stderr_mode = CONC_STDIO_PIPE}};
    assert_conc_ok(conc_subprocess_run(
        ARGV("sh", "-c", "echo gone; echo kept >&2"), &o, WAIT_S, &r));
    assert_int_equal(r.out.len, 0);
    assert_buf_str(&r.err, "kept\n");
    conc_completed_process_free(&r);
}

/* Reads all of fd into a NUL-terminated string. */
static void
read_all(int fd, char *buf, size_t size)
{
    size_t at = 0;
    ssize_t n;
    while (at + 1 < size && (n = read(fd, buf + at, size - 1 - at)) > 0)
        at += (size_t)n;
    buf[at] = '\0';
}

/* An explicit descriptor; then an inherited stdout, with stderr sent to
 * "our fd 1" while the child's stdout becomes a pipe (fd order matters). */
static void
test_fd_and_inherit(void **state)
{
    (void)state;
    int fds[2];
    char got[64];
    control_pipe(fds);
    conc_run_opts o = {
        .popen = {.stdout_mode = CONC_STDIO_FD, .stdout_fd = fds[1]}};
    assert_conc_ok(conc_call(ARGV("echo", "to fd"), &o, WAIT_S, NULL));
    close(fds[1]);
    read_all(fds[0], got, sizeof got);
    close(fds[0]);
    assert_string_equal(got, "to fd\n");

    control_pipe(fds);
    int saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
    assert_true(saved >= 0);
    dup2(fds[1], 1);
    int r1 = conc_call(ARGV("echo", "inherited"), NULL, WAIT_S, NULL);
    conc_completed_process r;
    o = (conc_run_opts){.popen = {.stdout_mode = CONC_STDIO_PIPE,
                                  .stderr_mode = CONC_STDIO_FD,
                                  .stderr_fd = 1}};
    int r2 = conc_subprocess_run(ARGV("sh", "-c", "echo o; echo e >&2"), &o,
                                 WAIT_S, &r);
    dup2(saved, 1);
    close(saved);
    close(fds[1]);
    read_all(fds[0], got, sizeof got);
    close(fds[0]);
    assert_conc_ok(r1);
    assert_conc_ok(r2);
    assert_string_equal(got, "inherited\ne\n");
    assert_buf_str(&r.out, "o\n");
    conc_completed_process_free(&r);
}

/* ---- communicate -------------------------------------------------------- */

static void
test_communicate_input(void **state)
{
    (void)state;
    conc_completed_process r;
    conc_run_opts o = {.input = "hello", .input_len = 5, .capture_output = 1};
    assert_conc_ok(conc_subprocess_run(ARGV("cat"), &o, WAIT_S, &r));
    assert_buf_str(&r.out, "hello");
    conc_completed_process_free(&r);
    o.input = "one two\n";
    o.input_len = 8;
    assert_conc_ok(
        conc_subprocess_run(ARGV("tr", "a-z", "A-Z"), &o, WAIT_S, &r));
    assert_buf_str(&r.out, "ONE TWO\n");
    conc_completed_process_free(&r);
    /* Empty input still gives a pipe, closed at once. */
    o.input = "";
    o.input_len = 0;
    assert_conc_ok(conc_subprocess_run(ARGV("wc", "-c"), &o, WAIT_S, &r));
    assert_buf_str(&r.out, "0\n");
    conc_completed_process_free(&r);

    /* Popen directly; a second communicate finds everything done. */
    conc_popen *p;
    conc_buf out = CONC_BUF_INIT;
    int rc = -1;
    assert_conc_ok(
        conc_popen_new(ARGV("sh", "-c", "read a; echo got $a"),
                       &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                                          .stdout_mode = CONC_STDIO_PIPE},
                       &p));
    int fd = -1;
    assert_conc_ok(conc_popen_stdout_fd(p, &fd));
    assert_true(fd >= 0);
    assert_conc(conc_popen_stderr_fd(p, &fd), CONC_ESTATE); /* not a pipe */
    assert_conc_ok(conc_popen_communicate(p, "x\n", 2, WAIT_S, &out, NULL));
    assert_buf_str(&out, "got x\n");
    assert_conc(conc_popen_stdin_fd(p, &fd), CONC_ECLOSED);
    assert_conc(conc_popen_stdout_fd(p, &fd), CONC_ECLOSED);
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, 0);
    /* A later call succeeds with nothing more to give: out is replaced. */
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, 0, &out, NULL));
    assert_int_equal(out.len, 0);
    assert_conc_ok(conc_buf_append(&out, "kept", 4));
    assert_conc(conc_popen_communicate(p, "y", 1, 0, &out, NULL), CONC_ESTATE);
    assert_buf_str(&out, "kept");
    conc_buf_free(&out);
    conc_popen_free(p);
}

static void
fill_pattern(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i * 31 + i / 7919) % 251);
}

/* 12 MiB in, 12 MiB out and 12 MiB err at once: without polling all three
 * the child would block on a full pipe while we block on another. */
static void
test_communicate_huge(void **state)
{
    (void)state;
    size_t n = (size_t)12 << 20;
    uint8_t *in = malloc(n);
    assert_non_null(in);
    fill_pattern(in, n);
    conc_popen *p;
    assert_conc_ok(
        conc_popen_new(ARGV("tee", "/dev/fd/2"),
                       &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                                          .stdout_mode = CONC_STDIO_PIPE,
                                          .stderr_mode = CONC_STDIO_PIPE},
                       &p));
    conc_buf out = CONC_BUF_INIT, err = CONC_BUF_INIT;
    int rc = -1;
    assert_conc_ok(conc_popen_communicate(p, in, n, WAIT_S, &out, &err));
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, 0);
    assert_int_equal(out.len, n);
    assert_int_equal(err.len, n);
    assert_memory_equal(out.data, in, n);
    assert_memory_equal(err.data, in, n);
    conc_buf_free(&out);
    conc_buf_free(&err);
    conc_popen_free(p);
    /* Output dropped (NULL buffers) is still read to its end. */
    assert_conc_ok(
        conc_popen_new(ARGV("tee", "/dev/fd/2"),
                       &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                                          .stdout_mode = CONC_STDIO_PIPE,
                                          .stderr_mode = CONC_STDIO_PIPE},
                       &p));
    assert_conc_ok(conc_popen_communicate(p, in, n, WAIT_S, NULL, NULL));
    assert_int_equal(conc_popen_returncode(p, &rc), 1);
    conc_popen_free(p);
    free(in);
}

/* A timed-out communicate keeps what it read and the input it did not
 * write; later calls continue from there. The child takes part of its
 * input between the calls, so each call writes from where the last one
 * stopped. */
static void
test_communicate_timeout_continues(void **state)
{
    (void)state;
    int ctl[2];
    control_pipe(ctl);
    size_t n = (size_t)1 << 20, skip = 400000; /* far more than a pipe */
    uint8_t *in = malloc(n), *ref = malloc(n);
    assert_true(in && ref);
    fill_pattern(in, n);
    fill_pattern(ref, n);
    conc_popen *p;
    assert_conc_ok(conc_popen_new(
        ARGV("sh", "-c",
             "echo first; read x <&$1; head -c 200000 >/dev/null; "
             "read x <&$1; head -c 200000 >/dev/null; "
             "echo second; read x <&$1; cat",
             "sh", fdname(ctl[0])),
        &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                           .stdout_mode = CONC_STDIO_PIPE,
                           .pass_fds = &ctl[0],
                           .pass_fds_count = 1},
        &p));
    close(ctl[0]);
    conc_buf out = CONC_BUF_INIT;
    double t0 = conc_monotonic();
    assert_conc(conc_popen_communicate(p, in, n, 0.1, &out, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.1);
    /* The caller's input may go away now: conc kept the rest. */
    free(in);
    assert_conc(conc_popen_communicate(p, ref, 1, 0, &out, NULL), CONC_ESTATE);
    assert_int_equal(conc_popen_poll(p, NULL), 0);
    assert_int_equal(write(ctl[1], "a\n", 2), 2);
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.3, &out, NULL),
                CONC_ETIMEDOUT);
    assert_int_equal(write(ctl[1], "b\n", 2), 2);
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.3, &out, NULL),
                CONC_ETIMEDOUT);
    assert_int_equal(write(ctl[1], "c\n", 2), 2);
    close(ctl[1]);
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL));
    assert_int_equal(out.len, 13 + n - skip);
    assert_memory_equal(out.data, "first\nsecond\n", 13);
    assert_memory_equal(out.data + 13, ref + skip, n - skip);
    conc_buf_free(&out);
    conc_popen_free(p);
    free(ref);
}

/* The child exits without reading its input: the broken pipe is ignored
 * and no SIGPIPE is left to the caller. */
static void
test_communicate_epipe(void **state)
{
    (void)state;
    size_t n = (size_t)4 << 20;
    char *in = calloc(1, n);
    assert_non_null(in);
    sigset_t before, after, pend;
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    int rc = -1;
    conc_popen *p;
    assert_conc_ok(conc_popen_new(
        ARGV("true"), &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE}, &p));
    assert_conc_ok(conc_popen_communicate(p, in, n, WAIT_S, NULL, NULL));
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, 0);
    conc_popen_free(p);
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    sigpending(&pend);
    assert_int_equal(sigismember(&pend, SIGPIPE), 0);
    assert_int_equal(sigismember(&after, SIGPIPE),
                     sigismember(&before, SIGPIPE));
    conc_completed_process r;
    conc_run_opts o = {.input = in, .input_len = n};
    assert_conc_ok(
        conc_subprocess_run(ARGV("sh", "-c", "exit 4"), &o, WAIT_S, &r));
    assert_int_equal(r.returncode, 4);
    conc_completed_process_free(&r);
    free(in);
}

/* ---- Timeouts and process groups ---------------------------------------- */

/* `sh -c 'sleep 100 & echo $!'` exits at once, but the background sleep
 * keeps its stdout open: communicate alone would wait for it. Killing the
 * group on timeout ends both and returns promptly. */
static void
test_grandchild_group_kill_on_timeout(void **state)
{
    (void)state;
    conc_popen *p;
    assert_conc_ok(
        conc_popen_new(ARGV("sh", "-c", "sleep 100 & echo $!"),
                       &(conc_popen_opts){.stdout_mode = CONC_STDIO_PIPE,
                                          .new_group = 1,
                                          .kill_on_timeout = 1},
                       &p));
    conc_buf out = CONC_BUF_INIT;
    double t0 = conc_monotonic();
    assert_conc(conc_popen_communicate(p, NULL, 0, 1.0, &out, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 1.0);
    assert_int_equal(conc_popen_poll(p, NULL), 1); /* reaped */
    int fd = -1;
    assert_conc(conc_popen_stdout_fd(p, &fd), CONC_ECLOSED);
    assert_int_equal(out.len, 0); /* a failed call leaves it as it was */
    /* Everything is over: another call returns at once, with the output
     * the timed-out call read. */
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, 0, &out, NULL));
    assert_true(out.len > 1 && out.data[out.len - 1] == '\n');
    pid_t grandchild = (pid_t)strtol((char *)out.data, NULL, 10);
    assert_true(grandchild > 0);
    assert_true(conc_test_wait_until(pid_dead, &grandchild, WAIT_S));
    conc_buf_free(&out);
    conc_popen_free(p);
}

/* Without a group, kill_on_timeout kills the child only, and still
 * returns without waiting for the grandchild's end of the pipe. */
static void
test_kill_on_timeout_without_group(void **state)
{
    (void)state;
    conc_popen *p;
    assert_conc_ok(
        conc_popen_new(ARGV("sh", "-c", "sleep 100 & echo $!; exec cat"),
                       &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                                          .stdout_mode = CONC_STDIO_PIPE,
                                          .kill_on_timeout = 1},
                       &p));
    conc_buf out = CONC_BUF_INIT;
    int rc = 0;
    /* cat holds on its stdin, left open while the input is being given. */
    int fd = -1;
    assert_conc_ok(conc_popen_stdin_fd(p, &fd));
    assert_true(fd >= 0);
    int keep = dup(fd); /* keeps cat's stdin open past communicate */
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.2, &out, NULL),
                CONC_ETIMEDOUT);
    close(keep);
    assert_int_equal(out.len, 0);
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, -SIGKILL);
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, 0, &out, NULL));
    conc_popen_free(p);
    if (out.len > 1) {
        pid_t grandchild = (pid_t)strtol((char *)out.data, NULL, 10);
        assert_true(grandchild > 0);
        kill(grandchild, SIGKILL);
    }
    conc_buf_free(&out);
}

/* The group can also be killed on request, then the pipes drained. */
static void
test_kill_group_on_request(void **state)
{
    (void)state;
    conc_popen *p;
    assert_conc_ok(conc_popen_new(
        ARGV("sh", "-c", "sleep 100 & echo started"),
        &(conc_popen_opts){.stdout_mode = CONC_STDIO_PIPE, .new_group = 1},
        &p));
    conc_buf out = CONC_BUF_INIT;
    /* Wait for the line: the background sleep keeps the pipe open. */
    int ofd = -1;
    assert_conc_ok(conc_popen_stdout_fd(p, &ofd));
    struct pollfd pfd = {ofd, POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, (int)(WAIT_S * 1000)), 1);
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.05, &out, NULL),
                CONC_ETIMEDOUT);
    assert_int_equal(out.len, 0); /* kept by the popen until success */
    assert_conc_ok(conc_popen_kill_group(p, SIGKILL));
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL));
    assert_buf_str(&out, "started\n");
    assert_conc_ok(conc_popen_kill_group(p, SIGKILL)); /* nobody left */
    conc_buf_free(&out);
    conc_popen_free(p);
}

static void
test_run_timeout(void **state)
{
    (void)state;
    int ctl[2];
    control_pipe(ctl);
    conc_completed_process r;
    conc_run_opts o = {.capture_output = 1,
                       .popen = {.pass_fds = &ctl[0], .pass_fds_count = 1}};
    double t0 = conc_monotonic();
    assert_conc(
        conc_subprocess_run(ARGV("sh", "-c", "echo partial; exec cat <&$1",
                                 "sh", fdname(ctl[0])),
                            &o, 1.0, &r),
        CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 1.0);
    assert_int_equal(r.returncode, -SIGKILL);
    assert_buf_str(&r.out, "partial\n");
    assert_non_null(strstr(conc_failure_message(), "timed out after 1"));
    conc_completed_process_free(&r);
    close(ctl[0]);
    close(ctl[1]);
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_buf_append(&out, "kept", 4));
    assert_conc(
        conc_check_output(ARGV("sh", "-c", "echo partial; exec sleep 100"),
                          NULL, 0.2, &out),
        CONC_ETIMEDOUT);
    assert_conc(conc_call(ARGV("sleep", "100"), NULL, 0, NULL), CONC_ETIMEDOUT);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "kept", 4);
    conc_buf_free(&out);
}

/* A child that never stops writing: communicate still returns at its
 * timeout, and run kills it there. */
static void
test_endless_output_timeout(void **state)
{
    (void)state;
    conc_popen *p;
    int rc = 0;
    assert_conc_ok(conc_popen_new(
        ARGV("yes"), &(conc_popen_opts){.stdout_mode = CONC_STDIO_PIPE}, &p));
    double t0 = conc_monotonic();
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.2, NULL, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.2);
    assert_conc(conc_popen_communicate(p, NULL, 0, 0, NULL, NULL),
                CONC_ETIMEDOUT);
    assert_conc_ok(conc_popen_kill(p));
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, NULL, NULL));
    assert_int_equal(conc_popen_poll(p, &rc), 1);
    assert_int_equal(rc, -SIGKILL);
    conc_popen_free(p);

    conc_completed_process r;
    conc_run_opts o = {.capture_output = 1};
    assert_conc(conc_subprocess_run(ARGV("yes"), &o, 0.2, &r), CONC_ETIMEDOUT);
    assert_true(r.out.len > 0);
    assert_int_equal(r.out.data[0], 'y');
    assert_int_equal(r.returncode, -SIGKILL);
    conc_completed_process_free(&r);
}

static int
wait_timeout_case(void)
{
    int rc = -1;
    conc_popen *p = start_cat(NULL);
    double t0 = conc_monotonic();
    assert_conc(conc_popen_wait(p, 0.1, &rc), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.1);
    assert_conc(conc_popen_wait(p, 0, &rc), CONC_ETIMEDOUT);
    assert_int_equal(conc_popen_poll(p, &rc), 0);
    assert_int_equal(rc, -1);
    assert_conc_ok(conc_popen_close_stdin(p));
    assert_conc_ok(conc_popen_close_stdin(p)); /* already closed */
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(conc_popen_poll(p, NULL), 1);
    assert_conc_ok(conc_popen_wait(p, 0, NULL));
    conc_popen_free(p);
    return 0;
}

static void
test_wait_timeout_and_poll(void **state)
{
    (void)state;
    /* The path without pidfds (growing naps) runs when CTest runs this
     * program again with CONC_NO_PIDFD=1. */
    wait_timeout_case();
}

static int
waiter_fn(void *arg)
{
    int rc = -1;
    int r = conc_popen_wait(arg, WAIT_S, &rc);
    return r ? r : rc + 100;
}

static int
forever_waiter_fn(void *arg)
{
    int rc = -1;
    int r = conc_popen_wait(arg, CONC_FOREVER, &rc);
    return r ? r : rc + 100;
}

/* Threads may wait on one child together, while another polls. */
static void
test_concurrent_waiters(void **state)
{
    (void)state;
    conc_popen *p = start_cat(NULL);
    conc_thread *t[4];
    assert_conc_ok(conc_thread_start(waiter_fn, p, NULL, &t[0]));
    assert_conc_ok(conc_thread_start(waiter_fn, p, NULL, &t[1]));
    assert_conc_ok(conc_thread_start(forever_waiter_fn, p, NULL, &t[2]));
    assert_conc_ok(conc_thread_start(forever_waiter_fn, p, NULL, &t[3]));
    int polled = conc_popen_poll(p, NULL);
    assert_true(polled == 0 || polled == 1);
    assert_conc_ok(conc_popen_close_stdin(p));
    for (int i = 0; i < 4; i++) {
        int status = 0;
        assert_conc_ok(conc_thread_join(t[i], WAIT_S, &status));
        assert_int_equal(status, 100);
        conc_thread_free(t[i]);
    }
    conc_popen_free(p);
}

static void
test_groups_and_sessions(void **state)
{
    (void)state;
    int g = 0, s = 0;
    conc_popen *p = start_cat(NULL);
    assert_true(proc_state(conc_popen_pid(p), &g, &s) != 0);
    assert_int_equal(g, getpgrp());
    assert_int_equal(s, getsid(0));
    assert_conc(conc_popen_kill_group(p, SIGKILL), CONC_ESTATE);
    finish_cat(p);

    p = start_cat(&(conc_popen_opts){.new_group = 1});
    assert_true(proc_state(conc_popen_pid(p), &g, &s) != 0);
    assert_int_equal(g, conc_popen_pid(p));
    assert_int_equal(s, getsid(0));
    assert_conc_ok(conc_popen_kill_group(p, 0));
    finish_cat(p);

    p = start_cat(&(conc_popen_opts){.new_session = 1, .new_group = 1});
    assert_true(proc_state(conc_popen_pid(p), &g, &s) != 0);
    assert_int_equal(g, conc_popen_pid(p));
    assert_int_equal(s, conc_popen_pid(p));
    int rc = 0;
    assert_conc_ok(conc_popen_kill_group(p, SIGTERM));
    assert_conc_ok(conc_popen_wait(p, WAIT_S, &rc));
    assert_int_equal(rc, -SIGTERM);
    conc_popen_free(p);
}

/* ---- Environment, directory, program ------------------------------------ */

static void
test_env_and_cwd(void **state)
{
    (void)state;
    conc_completed_process r;
    char *env[] = {"FOO=bar baz", NULL};
    conc_run_opts o = {.popen = {.env = env, .cwd = "/"}};
    assert_conc_ok(run_capture(
        ARGV("sh", "-c", "echo \"$FOO\"; pwd; echo $HOME"), &o, &r));
    assert_buf_str(&r.out, "bar baz\n/\n\n");
    conc_completed_process_free(&r);

    /* The program is searched in env's PATH, as Python does. */
    char *nopath[] = {"PATH=/nonexistent", NULL};
    o = (conc_run_opts){.popen = {.env = nopath}};
    assert_conc(conc_subprocess_run(ARGV("true"), &o, WAIT_S, &r), CONC_ENOENT);
    conc_completed_process_free(&r);
    char *later[] = {"PATH=/nonexistent::/usr/bin:/bin", NULL};
    o.popen.env = later;
    assert_conc_ok(conc_subprocess_run(ARGV("true"), &o, WAIT_S, &r));
    conc_completed_process_free(&r);

    /* A relative program path is found from cwd. */
    o = (conc_run_opts){.popen = {.cwd = "/bin"}};
    int rc = -1;
    assert_conc_ok(conc_call(ARGV("./sh", "-c", "exit 7"), &o, WAIT_S, &rc));
    assert_int_equal(rc, 7);

    /* executable runs another program under argv[0]'s name. */
    o = (conc_run_opts){.popen = {.executable = "/bin/sh"}};
    assert_conc_ok(run_capture(ARGV("my-name", "-c", "echo $0"), &o, &r));
    assert_buf_str(&r.out, "my-name\n");
    conc_completed_process_free(&r);
}

/* A temporary file with `content` and `mode`; its path in `path`. */
static void
make_file(char *path, const char *content, mode_t mode)
{
    strcpy(path, "/tmp/conc-subprocess-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)),
                     (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_start_failures(void **state)
{
    (void)state;
    conc_popen *p = NULL;
    conc_popen_opts piped = {.stdin_mode = CONC_STDIO_PIPE,
                             .stdout_mode = CONC_STDIO_PIPE,
                             .stderr_mode = CONC_STDIO_PIPE};
    assert_conc(conc_popen_new(ARGV("conc-no-such-program"), &piped, &p),
                CONC_ENOENT);
    assert_null(p);
    assert_non_null(strstr(conc_failure_message(), "conc-no-such-program"));
    assert_conc(conc_popen_new(ARGV("/nonexistent/prog"), NULL, &p),
                CONC_ENOENT);
    assert_conc(conc_popen_new(ARGV(""), NULL, &p), CONC_ENOENT);
    char path[64];
    make_file(path, "#!/bin/sh\necho hi\n", 0644);
    assert_conc(conc_popen_new(ARGV(path), &piped, &p), CONC_EACCES);
    unlink(path);
    make_file(path, "just text, no interpreter line\n", 0755);
    assert_conc(conc_popen_new(ARGV(path), &piped, &p), -ENOEXEC);
    unlink(path);
    assert_conc(conc_popen_new(ARGV("/"), NULL, &p), CONC_EACCES);
    assert_conc(conc_popen_new(ARGV("true"),
                               &(conc_popen_opts){.cwd = "/nonexistent-dir"},
                               &p),
                CONC_ENOENT);
    assert_non_null(strstr(conc_failure_message(), "/nonexistent-dir"));
    int closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(closed_fd);
    assert_conc(conc_popen_new(ARGV("true"),
                               &(conc_popen_opts){.stdin_mode = CONC_STDIO_FD,
                                                  .stdin_fd = closed_fd},
                               &p),
                CONC_EBADF);
    conc_completed_process r;
    assert_conc(
        conc_subprocess_run(ARGV("conc-no-such-program"), NULL, WAIT_S, &r),
        CONC_ENOENT);
    assert_int_equal(r.out.len, 0);
    conc_completed_process_free(&r);
    assert_null(p);
}

static void
test_check_call_and_output(void **state)
{
    (void)state;
    assert_conc_ok(conc_check_call(ARGV("true"), NULL, WAIT_S));
    assert_conc(conc_check_call(ARGV("false"), NULL, WAIT_S), CONC_EPROCESS);
    assert_string_equal(conc_failure_message(),
                        "Command 'false' returned non-zero exit status 1.");
    assert_conc(conc_check_call(ARGV("sh", "-c", "kill -9 $$"), NULL, WAIT_S),
                CONC_EPROCESS);
    assert_non_null(strstr(conc_failure_message(), "died with SIGKILL"));

    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_check_output(ARGV("echo", "hi"), NULL, WAIT_S, &out));
    assert_buf_str(&out, "hi\n");
    assert_conc_ok(conc_check_output(ARGV("echo", "ho"), NULL, WAIT_S, &out));
    assert_buf_str(&out, "ho\n"); /* replaced */
    assert_conc(conc_check_output(ARGV("sh", "-c", "echo partial; exit 2"),
                                  NULL, WAIT_S, &out),
                CONC_EPROCESS);
    assert_buf_str(&out, "ho\n"); /* a failure leaves it as it was */
    assert_string_equal(
        conc_failure_message(),
        "Command 'sh -c echo partial; exit 2' returned non-zero exit status "
        "2.");
    conc_buf_free(&out);
    conc_run_opts o = {.input = "abc",
                       .input_len = 3,
                       .popen = {.stderr_mode = CONC_STDIO_STDOUT}};
    assert_conc_ok(conc_check_output(ARGV("sh", "-c", "cat; echo E >&2"), &o,
                                     WAIT_S, &out));
    assert_buf_str(&out, "abcE\n");
    conc_buf_free(&out);

    conc_completed_process r;
    o = (conc_run_opts){.check = 1, .capture_output = 1};
    assert_conc(conc_subprocess_run(ARGV("sh", "-c", "echo x >&2; exit 9"), &o,
                                    WAIT_S, &r),
                CONC_EPROCESS);
    assert_int_equal(r.returncode, 9);
    assert_buf_str(&r.err, "x\n");
    conc_completed_process_free(&r);
}

/* ---- Descriptors -------------------------------------------------------- */

static void
fd_seen(int fd, conc_popen_opts po, const char *want)
{
    char script[128];
    snprintf(script, sizeof script,
             "if [ -e /proc/self/fd/%d ]; then echo open; else echo closed; "
             "fi",
             fd);
    conc_completed_process r;
    conc_run_opts o = {.popen = po};
    assert_conc_ok(run_capture(ARGV("sh", "-c", script), &o, &r));
    assert_buf_str(&r.out, want);
    conc_completed_process_free(&r);
}

static void
test_close_fds_and_pass_fds(void **state)
{
    (void)state;
    int leaky = open("/dev/null", O_RDONLY); /* inheritable on purpose */
    int cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(leaky >= 3 && cloexec >= 3 && extra >= 3);
    fd_seen(leaky, (conc_popen_opts){0}, "closed\n");
    fd_seen(cloexec, (conc_popen_opts){0}, "closed\n");
    fd_seen(leaky, (conc_popen_opts){.inherit_fds = 1}, "open\n");
    int pass[] = {extra};
    conc_popen_opts po = {.pass_fds = pass, .pass_fds_count = 1};
    fd_seen(extra, po, "open\n");
    fd_seen(leaky, po, "closed\n");
    fd_seen(cloexec, po, "closed\n");
    /* Passing survives the exec only in the child: ours stays cloexec. */
    assert_true(fcntl(extra, F_GETFD) & FD_CLOEXEC);
    close(leaky);
    close(cloexec);
    close(extra);
}

/* ---- Bad input ---------------------------------------------------------- */

static void
test_bad_input(void **state)
{
    (void)state;
    conc_popen *p = NULL;
    char *empty[] = {NULL};
    assert_conc(conc_popen_new(NULL, NULL, &p), CONC_EINVAL);
    assert_conc(conc_popen_new(empty, NULL, &p), CONC_EINVAL);
    assert_conc(conc_popen_new(ARGV("true"), NULL, NULL), CONC_EINVAL);
    conc_popen_opts bad[] = {
        {.stdin_mode = CONC_STDIO_STDOUT},
        {.stdout_mode = CONC_STDIO_STDOUT},
        {.stderr_mode = (conc_stdio)99},
        {.stdout_mode = CONC_STDIO_FD, .stdout_fd = -1},
        {.pass_fds_count = 1},
        {.pass_fds = (int[]){-4}, .pass_fds_count = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_conc(conc_popen_new(ARGV("true"), &bad[i], &p), CONC_EINVAL);
    assert_null(p);

    conc_completed_process r;
    assert_conc(conc_subprocess_run(ARGV("true"), NULL, WAIT_S, NULL),
                CONC_EINVAL);
    assert_conc(conc_subprocess_run(NULL, NULL, WAIT_S, &r), CONC_EINVAL);
    assert_conc(conc_subprocess_run(ARGV("true"), NULL, NAN, &r), CONC_EINVAL);
    conc_run_opts o = {.input = "x",
                       .input_len = 1,
                       .popen = {.stdin_mode = CONC_STDIO_DEVNULL}};
    assert_conc(conc_subprocess_run(ARGV("true"), &o, WAIT_S, &r), CONC_EINVAL);
    o = (conc_run_opts){.capture_output = 1,
                        .popen = {.stderr_mode = CONC_STDIO_DEVNULL}};
    assert_conc(conc_subprocess_run(ARGV("true"), &o, WAIT_S, &r), CONC_EINVAL);
    conc_completed_process_free(&r);
    conc_buf out = CONC_BUF_INIT;
    assert_conc(conc_check_output(ARGV("true"), NULL, WAIT_S, NULL),
                CONC_EINVAL);
    o = (conc_run_opts){.capture_output = 1};
    assert_conc(conc_check_output(ARGV("true"), &o, WAIT_S, &out), CONC_EINVAL);
    o = (conc_run_opts){.popen = {.stdout_mode = CONC_STDIO_DEVNULL}};
    assert_conc(conc_check_output(ARGV("true"), &o, WAIT_S, &out), CONC_EINVAL);
    assert_conc(conc_check_call(NULL, NULL, WAIT_S), CONC_EINVAL);
    assert_conc(conc_call(empty, NULL, WAIT_S, NULL), CONC_EINVAL);

    /* NULL objects and bad arguments on a live popen. */
    assert_conc(conc_popen_wait(NULL, 0, NULL), CONC_EINVAL);
    assert_conc(conc_popen_poll(NULL, NULL), CONC_EINVAL);
    assert_conc(conc_popen_returncode(NULL, NULL), CONC_EINVAL);
    assert_conc(conc_popen_send_signal(NULL, SIGTERM), CONC_EINVAL);
    assert_conc(conc_popen_kill_group(NULL, SIGTERM), CONC_EINVAL);
    assert_conc(conc_popen_communicate(NULL, NULL, 0, 0, NULL, NULL),
                CONC_EINVAL);
    assert_conc(conc_popen_close_stdin(NULL), CONC_EINVAL);
    assert_int_equal(conc_popen_pid(NULL), 0);
    int fd = -1;
    assert_conc(conc_popen_stdin_fd(NULL, &fd), CONC_EINVAL);
    assert_conc(conc_popen_stdin_fd(p, NULL), CONC_EINVAL);
    conc_popen_free(NULL);
    p = start_cat(&(conc_popen_opts){.new_group = 1});
    assert_conc(conc_popen_wait(p, NAN, NULL), CONC_EINVAL);
    assert_conc(conc_popen_send_signal(p, -1), CONC_EINVAL);
    assert_conc(conc_popen_send_signal(p, 100000), CONC_EINVAL);
    assert_conc(conc_popen_kill_group(p, -1), CONC_EINVAL);
    assert_conc(conc_popen_communicate(p, NULL, 3, 0, NULL, NULL), CONC_EINVAL);
    assert_conc(conc_popen_communicate(p, NULL, 0, NAN, NULL, NULL),
                CONC_EINVAL);
    finish_cat(p);
    /* Input with no stdin pipe. */
    assert_conc_ok(conc_popen_new(ARGV("true"), NULL, &p));
    assert_conc(conc_popen_communicate(p, "x", 1, WAIT_S, NULL, NULL),
                CONC_EINVAL);
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, NULL, NULL));
    conc_popen_free(p);
}

/* ---- Reaping ------------------------------------------------------------ */

static int
reaped_all(void *arg)
{
    (void)arg;
    size_t running = 1;
    return conc_subprocess_reap(&running) == 0 && running == 0;
}

/* A popen freed while its child runs leaves no zombie for long: the child
 * is reaped by a later call. */
static void
test_free_running_child(void **state)
{
    (void)state;
    size_t running = 1;
    assert_conc_ok(conc_subprocess_reap(&running));
    assert_int_equal(running, 0);
    conc_popen *p = start_cat(NULL);
    conc_popen_free(p); /* closing stdin makes cat exit, soon */
    assert_true(conc_test_wait_until(reaped_all, NULL, WAIT_S));

    /* One that does not end by itself; it is reaped after it is killed,
     * here by a following conc_popen_new. */
    p = start_cat(NULL);
    pid_t pid = conc_popen_pid(p);
    int in_fd = -1;
    assert_conc_ok(conc_popen_stdin_fd(p, &in_fd));
    int keep = dup(in_fd);
    conc_popen_free(p);
    assert_conc_ok(conc_subprocess_reap(&running));
    assert_int_equal(running, 1);
    close(keep);
    assert_true(conc_test_wait_until(pid_dead, &pid, WAIT_S));
    assert_conc_ok(conc_call(ARGV("true"), NULL, WAIT_S, NULL));
    assert_conc_ok(conc_subprocess_reap(&running));
    assert_int_equal(running, 0);
    assert_int_equal(proc_state(pid, NULL, NULL), 0);
}

/* Other code reaped our child: its status is lost, and said so. */
static void
test_lost_child(void **state)
{
    (void)state;
    conc_popen *p;
    assert_conc_ok(conc_popen_new(ARGV("true"), NULL, &p));
    int st;
    assert_int_equal(waitpid(conc_popen_pid(p), &st, 0), conc_popen_pid(p));
    assert_conc(conc_popen_wait(p, WAIT_S, NULL), CONC_ECHILD);
    assert_conc(conc_popen_poll(p, NULL), CONC_ECHILD);
    assert_int_equal(conc_popen_returncode(p, NULL), 0);
    assert_conc_ok(conc_popen_kill(p)); /* never signals that pid */
    conc_popen_free(p);
}

/* ---- Allocation failures ------------------------------------------------ */

static void
test_alloc_failures(void **state)
{
    (void)state;
    conc_popen *p = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_popen_new(ARGV("true"), NULL, &p), CONC_ENOMEM);
    assert_null(p);
    conc_completed_process r;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_subprocess_run(ARGV("true"), NULL, WAIT_S, &r),
                CONC_ENOMEM);
    conc_completed_process_free(&r);

    /* The output buffer cannot grow: nothing read is lost, retry works. */
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(
        conc_popen_new(ARGV("echo", "hi"),
                       &(conc_popen_opts){.stdout_mode = CONC_STDIO_PIPE}, &p));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL),
                CONC_ENOMEM);
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL));
    assert_buf_str(&out, "hi\n");
    conc_buf_free(&out);
    conc_popen_free(p);

    /* In run, the child is killed and reaped. */
    conc_test_fail_alloc_after(2);
    assert_conc(
        conc_subprocess_run(
            ARGV("sh", "-c", "echo x; exec cat"),
            &(conc_run_opts){.capture_output = 1, .input = "", .input_len = 0},
            WAIT_S, &r),
        CONC_ENOMEM);
    conc_completed_process_free(&r);
}

/* The input left by a timeout cannot be kept: stdin is closed, the
 * output still comes. */
static void
test_alloc_failure_keeping_input(void **state)
{
    (void)state;
    int ctl[2];
    control_pipe(ctl);
    size_t n = (size_t)1 << 20;
    char *in = calloc(1, n);
    assert_non_null(in);
    conc_popen *p;
    assert_conc_ok(conc_popen_new(
        ARGV("sh", "-c", "read x <&$1; wc -c", "sh", fdname(ctl[0])),
        &(conc_popen_opts){.stdin_mode = CONC_STDIO_PIPE,
                           .stdout_mode = CONC_STDIO_PIPE,
                           .pass_fds = &ctl[0],
                           .pass_fds_count = 1},
        &p));
    close(ctl[0]);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_popen_communicate(p, in, n, 0.05, NULL, NULL),
                CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    int in_fd = -1;
    assert_conc(conc_popen_stdin_fd(p, &in_fd), CONC_ECLOSED);
    close(ctl[1]);
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL));
    assert_true(out.len > 0);
    long got = strtol((char *)out.data, NULL, 10);
    assert_true(got > 0 && (size_t)got < n);
    conc_buf_free(&out);
    conc_popen_free(p);
    free(in);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_run_returncodes),
        conc_unit_test(test_signal_returncodes),
        conc_unit_test(test_signal_mask_reset),
        conc_unit_test(test_capture_output),
        conc_unit_test(test_stderr_merged),
        conc_unit_test(test_devnull),
        conc_unit_test(test_fd_and_inherit),
        conc_unit_test(test_communicate_input),
        conc_unit_test(test_communicate_huge),
        conc_unit_test(test_communicate_timeout_continues),
        conc_unit_test(test_communicate_epipe),
        conc_unit_test(test_grandchild_group_kill_on_timeout),
        conc_unit_test(test_kill_on_timeout_without_group),
        conc_unit_test(test_kill_group_on_request),
        conc_unit_test(test_run_timeout),
        conc_unit_test(test_endless_output_timeout),
        conc_unit_test(test_wait_timeout_and_poll),
        conc_unit_test(test_concurrent_waiters),
        conc_unit_test(test_groups_and_sessions),
        conc_unit_test(test_env_and_cwd),
        conc_unit_test(test_start_failures),
        conc_unit_test(test_check_call_and_output),
        conc_unit_test(test_close_fds_and_pass_fds),
        conc_unit_test(test_bad_input),
        conc_unit_test(test_free_running_child),
        conc_unit_test(test_lost_child),
        conc_unit_test(test_alloc_failures),
        conc_unit_test(test_alloc_failure_keeping_input),
    };
    return conc_run_tests(tests);
}
