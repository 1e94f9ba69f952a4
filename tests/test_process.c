/* Processes: start and join with exit statuses, argument bytes, names,
 * pids, liveness, timeouts, signals, close, current and parent processes,
 * active_children and reaping, daemons, and the fork server.
 *
 * Children talk to the test over an abstract-namespace Unix socket whose
 * name travels in their argument bytes, which works for both start methods
 * (fork server children inherit no descriptor). A child that must stay
 * alive blocks reading that socket until the test writes a byte or closes
 * it, so no test sleeps. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "ipc/ipc_internal.h"
#include "unix/platform.h"

/* A process's pid, or -1 if conc_process_pid fails (usable in children,
 * where an assertion cannot report). */
static int
pid_of(const conc_process *p)
{
    pid_t pid = 0;
    return conc_process_pid(p, &pid) == 0 ? (int)pid : -1;
}

#define WAIT_S 20.0

static const int methods[] = {CONC_START_FORK, CONC_START_FORKSERVER};
#define FOR_EACH_METHOD(m)                                                     \
    for (size_t m##_i = 0; m##_i < 2; m##_i++)                                 \
        for (int m = methods[m##_i], m##_once = 1; m##_once; m##_once = 0)

/* ---- The test's end of a channel ------------------------------------------
 */

struct chan {
    int lfd;       /* listening socket */
    char name[48]; /* abstract name, without the leading NUL */
};

static socklen_t
chan_addr(const char *name, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(a->sun_path + 1, name, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static void
chan_open(struct chan *c)
{
    static atomic_int seq;
    snprintf(c->name, sizeof c->name, "conc-test-proc-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->lfd >= 0);
    struct sockaddr_un a;
    socklen_t len = chan_addr(c->name, &a);
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, len), 0);
    assert_int_equal(listen(c->lfd, 128), 0);
}

static void
chan_close(struct chan *c)
{
    close(c->lfd);
}

/* Accepts the next child's connection within WAIT_S. */
static int
chan_accept(struct chan *c)
{
    struct pollfd pf = {.fd = c->lfd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
    int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* Reads exactly n bytes within WAIT_S; returns 0, or -1 at end of file. */
static int
read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t r = read(fd, p, n);
        if (r == 0)
            return -1;
        assert_true(r > 0);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads until end of file into buf (NUL-terminated). */
static void
read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        assert_true(r >= 0);
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
}

/* Whether the other side closed within WAIT_S. */
static int
wait_eof(int fd)
{
    char c;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, (int)(WAIT_S * 1000)) != 1)
        return 0;
    return read(fd, &c, 1) == 0;
}

/* ---- What children run -----------------------------------------------------
 */

enum action {
    RETURN,    /* return value */
    FAIL,      /* stderr to the channel, then conc_fail(CONC_EVALUE) */
    HOLD,      /* report, wait for a byte or end of file, return value */
    CHECK_ARG, /* return 0 if the bytes after the header are intact */
    WATCH      /* report, wait for a byte, report the parent's liveness */
};

struct prog {
    char chan[48];
    int action;
    int value;
};

struct report {
    int pid, ppid, parent_pid, daemon;
    int parent_alive, parent_join_rc, start_rc, fs_start_rc, is_alive_self;
    char name[64], parent_name[64], next_name[64], message[128];
};

static int
child_connect(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    socklen_t len = chan_addr(name, &a);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, len) != 0)
        _exit(100);
    return fd;
}

static int
noop_fn(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static void
fill_report(struct report *r)
{
    conc_process *me = conc_process_current();
    conc_process *parent = conc_process_parent();
    memset(r, 0, sizeof *r);
    r->pid = pid_of(me);
    r->ppid = (int)getppid();
    r->daemon = conc_process_daemon(me);
    r->is_alive_self = conc_process_is_alive(me);
    snprintf(r->name, sizeof r->name, "%s", conc_process_name(me));
    if (parent) {
        r->parent_pid = pid_of(parent);
        snprintf(r->parent_name, sizeof r->parent_name, "%s",
                 conc_process_name(parent));
        r->parent_alive = conc_process_is_alive(parent);
        r->parent_join_rc = conc_process_join(parent, 0);
    }
    conc_process *next;
    if (conc_process_new(noop_fn, NULL, 0, NULL, &next) == 0) {
        snprintf(r->next_name, sizeof r->next_name, "%s",
                 conc_process_name(next));
        if (r->daemon) {
            r->start_rc = conc_process_start(next);
            snprintf(r->message, sizeof r->message, "%s",
                     conc_failure_message());
            r->fs_start_rc = conc_forkserver_start();
        }
        conc_process_free(next);
    }
}

static int
send_report(int fd)
{
    struct report r;
    fill_report(&r);
    return write(fd, &r, sizeof r) == (ssize_t)sizeof r ? 0 : 101;
}

static int
prog_fn(const void *arg, size_t len)
{
    const struct prog *p = arg;
    if (len < sizeof *p)
        return 102;
    if (p->action == RETURN)
        return p->value;
    if (p->action == CHECK_ARG) {
        const unsigned char *b = (const unsigned char *)arg + sizeof *p;
        for (size_t i = 0; i < len - sizeof *p; i++)
            if (b[i] != (unsigned char)(i * 7 + 3))
                return 1;
        return (int)((len - sizeof *p) != (size_t)p->value);
    }
    int fd = child_connect(p->chan);
    if (p->action == FAIL) {
        dup2(fd, 2);
        if (p->value < 0) /* a code without a message */
            return p->value;
        return conc_fail(CONC_EVALUE, "bad row %d", p->value);
    }
    if (send_report(fd))
        return 101;
    if (p->action == HOLD || p->action == WATCH) {
        char c;
        while (read(fd, &c, 1) < 0 && errno == EINTR)
            ;
    }
    if (p->action == WATCH) {
        conc_process *parent = conc_process_parent();
        int seen[2] = {conc_process_is_alive(parent),
                       conc_process_join(parent, WAIT_S)};
        if (write(fd, seen, sizeof seen) != (ssize_t)sizeof seen)
            return 101;
    }
    return p->value;
}

/* ---- Helpers for the test's side ------------------------------------------
 */

static conc_process *
make(int method, const struct prog *p, const conc_process_opts *base)
{
    conc_process_opts o = base ? *base : (conc_process_opts){0};
    o.method = method;
    conc_process *proc;
    assert_conc_ok(conc_process_new(prog_fn, p, sizeof *p, &o, &proc));
    return proc;
}

static conc_process *
start(int method, const struct prog *p, const conc_process_opts *base)
{
    conc_process *proc = make(method, p, base);
    assert_conc_ok(conc_process_start(proc));
    return proc;
}

/* A child held until released: its connection and its report. */
struct held {
    conc_process *p;
    int fd;
    struct report r;
};

static void
hold(struct held *h, struct chan *c, int method, int value,
     const conc_process_opts *o)
{
    struct prog pr = {.action = HOLD, .value = value};
    memcpy(pr.chan, c->name, sizeof pr.chan);
    h->p = start(method, &pr, o);
    h->fd = chan_accept(c);
    assert_int_equal(read_full(h->fd, &h->r, sizeof h->r), 0);
}

static void
release(struct held *h)
{
    assert_int_equal(write(h->fd, "x", 1), 1);
}

static int
exitcode_of(conc_process *p)
{
    int code = 12345;
    assert_int_equal(conc_process_exitcode(p, &code), 1);
    return code;
}

static void
join_free(conc_process *p, int want_code)
{
    assert_conc_ok(conc_process_join(p, WAIT_S));
    assert_int_equal(exitcode_of(p), want_code);
    conc_process_free(p);
}

/* Whether our child `pid` has ended and can be reaped (a zombie whose
 * threads have all gone), without reaping it. */
static int
reapable(void *arg)
{
    siginfo_t si;
    si.si_pid = 0;
    return waitid(P_PID, (id_t) * (int *)arg, &si,
                  WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid != 0;
}

/* Whether /proc says `pid` (not our child) is a zombie or gone. */
static int
ended(void *arg)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", *(int *)arg);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

/* ---- Start, join, exit statuses --------------------------------------------
 */

static void
test_exit_statuses(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        const int values[] = {0, 7, 255, 256 + 3};
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            struct prog pr = {.action = RETURN, .value = values[i]};
            join_free(start(m, &pr, NULL), values[i] & 0xff);
        }
    }
}

/* A child failing with a negative code prints it, as Python prints the
 * traceback, and exits with 1. */
static void
expect_failure(int method, int value, const char *name, const char *want)
{
    struct chan c;
    chan_open(&c);
    struct prog pr = {.action = FAIL, .value = value};
    memcpy(pr.chan, c.name, sizeof pr.chan);
    conc_process *p = make(method, &pr, &(conc_process_opts){.name = name});
    assert_conc_ok(conc_process_start(p));
    int fd = chan_accept(&c);
    char text[256];
    read_all(fd, text, sizeof text);
    assert_string_equal(text, want);
    join_free(p, 1);
    close(fd);
    chan_close(&c);
}

static void
test_failure_message(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        expect_failure(m, 3, "loader",
                       "Process loader: CONC_EVALUE: bad row 3\n");
        expect_failure(m, CONC_ETIMEDOUT, "waiter",
                       "Process waiter: CONC_ETIMEDOUT: timed out\n");
        expect_failure(m, -ECONNRESET, "net",
                       "Process net: ECONNRESET: Connection reset by peer\n");
    }
}

static void
test_arg_bytes(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 4096, 1 << 20};
    FOR_EACH_METHOD(m)
    {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            unsigned char *buf = malloc(sizeof(struct prog) + n);
            assert_non_null(buf);
            struct prog pr = {.action = CHECK_ARG, .value = (int)n};
            memcpy(buf, &pr, sizeof pr);
            for (size_t k = 0; k < n; k++)
                buf[sizeof pr + k] = (unsigned char)(k * 7 + 3);
            conc_process *p;
            assert_conc_ok(conc_process_new(prog_fn, buf, sizeof pr + n,
                                            &(conc_process_opts){.method = m},
                                            &p));
            memset(buf, 0, sizeof pr + n); /* the handle has its own copy */
            free(buf);
            assert_conc_ok(conc_process_start(p));
            join_free(p, 0);
        }
    }
}

static int
len_fn(const void *arg, size_t len)
{
    return arg == NULL && len == 0 ? 0 : 1;
}

static void
test_empty_arg_is_null(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        conc_process *p;
        assert_conc_ok(conc_process_new(len_fn, "ignored", 0,
                                        &(conc_process_opts){.method = m}, &p));
        assert_conc_ok(conc_process_start(p));
        join_free(p, 0);
    }
}

/* ---- Names, pids, current and parent ---------------------------------------
 */

static int
name_number(const char *name)
{
    assert_memory_equal(name, "Process-", 8);
    return atoi(name + 8);
}

static void
test_names(void **state)
{
    (void)state;
    conc_process *a, *b, *c;
    assert_conc_ok(conc_process_new(noop_fn, NULL, 0, NULL, &a));
    assert_conc_ok(conc_process_new(noop_fn, NULL, 0, NULL, &b));
    assert_conc_ok(conc_process_new(
        noop_fn, NULL, 0, &(conc_process_opts){.name = "worker"}, &c));
    int n = name_number(conc_process_name(a));
    assert_true(n >= 1);
    assert_int_equal(name_number(conc_process_name(b)), n + 1);
    assert_string_equal(conc_process_name(c), "worker");
    assert_conc_ok(conc_process_set_name(a, "renamed"));
    assert_string_equal(conc_process_name(a), "renamed");
    assert_conc(conc_process_set_name(a, ""), CONC_EINVAL);
    assert_conc(conc_process_set_name(a, NULL), CONC_EINVAL);
    conc_process_free(a);
    conc_process_free(b);
    conc_process_free(c);
}

static void
test_main_process(void **state)
{
    (void)state;
    conc_process *me = conc_process_current();
    assert_non_null(me);
    assert_string_equal(conc_process_name(me), "MainProcess");
    assert_int_equal(pid_of(me), (int)getpid());
    assert_int_equal(conc_process_is_alive(me), 1);
    assert_int_equal(conc_process_daemon(me), 0);
    assert_null(conc_process_parent());
    int code = 99;
    assert_int_equal(conc_process_exitcode(me, &code), 0);
    assert_conc(conc_process_join(me, 0), CONC_EDEADLK);
    assert_conc(conc_process_terminate(me), CONC_ESTATE);
    assert_conc(conc_process_close(me), CONC_ESTATE);
    assert_conc(conc_process_start(me), CONC_ESTATE);
    assert_conc(conc_process_set_daemon(me, 1), CONC_ESTATE);
    conc_process_free(me); /* borrowed: does nothing */
    assert_string_equal(conc_process_name(conc_process_current()),
                        "MainProcess");
}

static void
test_current_and_parent_in_child(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan c;
        chan_open(&c);
        struct held h;
        hold(&h, &c, m, 0, &(conc_process_opts){.name = "kid"});
        assert_int_equal(h.r.pid, pid_of(h.p));
        assert_true(h.r.pid > 0);
        assert_string_equal(h.r.name, "kid");
        assert_int_equal(h.r.is_alive_self, 1);
        assert_int_equal(h.r.daemon, 0);
        assert_int_equal(h.r.parent_pid, (int)getpid());
        assert_string_equal(h.r.parent_name, "MainProcess");
        assert_int_equal(h.r.parent_alive, 1);
        assert_int_equal(h.r.parent_join_rc, CONC_ETIMEDOUT);
        if (m == CONC_START_FORK)
            assert_int_equal(h.r.ppid, (int)getpid());
        else
            assert_int_not_equal(h.r.ppid, (int)getpid());
        /* The child numbers its own children under its identity. */
        assert_memory_equal(h.r.next_name, "Process-", 8);
        assert_non_null(strstr(h.r.next_name, ":1"));
        release(&h);
        join_free(h.p, 0);
        close(h.fd);
        chan_close(&c);
    }
}

static void
test_grandchild_identity(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    conc_process *p;
    struct prog pr = {.action = HOLD};
    memcpy(pr.chan, c.name, sizeof pr.chan);
    assert_conc_ok(conc_process_new(prog_fn, &pr, sizeof pr, NULL, &p));
    char want[64];
    /* A child that was Process-N names its first child Process-N:1. */
    snprintf(want, sizeof want, "%s:1", conc_process_name(p));
    assert_conc_ok(conc_process_start(p));
    int fd = chan_accept(&c);
    struct report r;
    assert_int_equal(read_full(fd, &r, sizeof r), 0);
    assert_string_equal(r.next_name, want);
    close(fd);
    join_free(p, 0);
    chan_close(&c);
}

/* ---- Liveness, timeouts, signals -------------------------------------------
 */

static void
test_is_alive_exitcode_timeout(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan c;
        chan_open(&c);
        struct held h;
        hold(&h, &c, m, 5, NULL);
        assert_int_equal(conc_process_is_alive(h.p), 1);
        int code = 99;
        assert_int_equal(conc_process_exitcode(h.p, &code), 0);
        assert_int_equal(code, 99);
        assert_conc(conc_process_join(h.p, 0), CONC_ETIMEDOUT);
        double t0 = conc_monotonic();
        assert_conc(conc_process_join(h.p, 0.05), CONC_ETIMEDOUT);
        assert_true(conc_monotonic() - t0 >= 0.05);
        assert_int_equal(conc_process_is_alive(h.p), 1);
        release(&h);
        assert_conc_ok(conc_process_join(h.p, WAIT_S));
        assert_int_equal(conc_process_is_alive(h.p), 0);
        assert_int_equal(exitcode_of(h.p), 5);
        assert_conc_ok(conc_process_join(h.p, 0)); /* again: still 0 */
        conc_process_free(h.p);
        close(h.fd);
        chan_close(&c);
    }
}

static void
test_terminate_and_kill(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan c;
        chan_open(&c);
        struct held a, b;
        hold(&a, &c, m, 0, NULL);
        hold(&b, &c, m, 0, NULL);
        assert_conc_ok(conc_process_terminate(a.p));
        assert_conc_ok(conc_process_kill(b.p));
        join_free(b.p, -SIGKILL);
        assert_conc_ok(conc_process_join(a.p, WAIT_S));
        assert_int_equal(exitcode_of(a.p), -SIGTERM);
        /* Signalling a process that has ended does nothing. */
        assert_conc_ok(conc_process_terminate(a.p));
        assert_conc_ok(conc_process_kill(a.p));
        conc_process_free(a.p);
        close(a.fd);
        close(b.fd);
        chan_close(&c);
    }
}

struct joiner {
    conc_process *p;
    double timeout;
    int rc;
};

static void *
join_thread(void *arg)
{
    struct joiner *j = arg;
    j->rc = conc_process_join(j->p, j->timeout);
    return NULL;
}

static void
test_concurrent_joiners(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan c;
        chan_open(&c);
        struct held h;
        hold(&h, &c, m, 9, NULL);
        struct joiner j[3] = {
            {h.p, CONC_FOREVER, 1}, {h.p, WAIT_S, 1}, {h.p, WAIT_S, 1}};
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            assert_int_equal(pthread_create(&t[i], NULL, join_thread, &j[i]),
                             0);
        release(&h);
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            assert_conc_ok(j[i].rc);
        }
        assert_int_equal(exitcode_of(h.p), 9);
        conc_process_free(h.p);
        close(h.fd);
        chan_close(&c);
    }
}

/* ---- Misuse and errors -----------------------------------------------------
 */

static void
test_state_errors(void **state)
{
    (void)state;
    conc_process *p;
    assert_conc_ok(conc_process_new(noop_fn, NULL, 0, NULL, &p));
    int code = 99;
    assert_int_equal(pid_of(p), 0);
    assert_conc(conc_process_join(p, 0), CONC_ESTATE);
    assert_conc(conc_process_join(p, CONC_FOREVER), CONC_ESTATE);
    assert_int_equal(conc_process_exitcode(p, &code), 0);
    assert_int_equal(conc_process_is_alive(p), 0);
    assert_conc(conc_process_terminate(p), CONC_ESTATE);
    assert_conc(conc_process_kill(p), CONC_ESTATE);
    assert_conc(conc_process_join(p, NAN), CONC_EINVAL);
    assert_conc(conc_process_exitcode(p, NULL), CONC_EINVAL);
    assert_conc_ok(conc_process_set_daemon(p, 1));
    assert_int_equal(conc_process_daemon(p), 1);
    assert_conc_ok(conc_process_set_daemon(p, 0));
    assert_conc_ok(conc_process_start(p));
    assert_conc(conc_process_start(p), CONC_ESTATE);
    assert_conc(conc_process_set_daemon(p, 1), CONC_ESTATE);
    assert_conc_ok(conc_process_join(p, WAIT_S));
    assert_conc(conc_process_start(p), CONC_ESTATE);
    assert_int_equal(exitcode_of(p), 0);
    assert_true(pid_of(p) > 0);
    /* After close, as Python's ValueError: "process object is closed". */
    assert_conc_ok(conc_process_close(p));
    assert_conc_ok(conc_process_close(p));
    assert_conc(conc_process_start(p), CONC_ECLOSED);
    assert_conc(conc_process_join(p, 0), CONC_ECLOSED);
    assert_conc(conc_process_exitcode(p, &code), CONC_ECLOSED);
    assert_conc(conc_process_terminate(p), CONC_ECLOSED);
    assert_conc(conc_process_kill(p), CONC_ECLOSED);
    pid_t closed_pid = 0;
    assert_conc(conc_process_pid(p, &closed_pid), CONC_ECLOSED);
    assert_conc(conc_process_set_daemon(p, 1), CONC_ECLOSED);
    assert_int_equal(conc_process_is_alive(p), 0);
    assert_non_null(conc_process_name(p));
    conc_process_free(p);

    /* A process that never started can be closed. */
    assert_conc_ok(conc_process_new(noop_fn, NULL, 0, NULL, &p));
    assert_conc_ok(conc_process_close(p));
    assert_conc(conc_process_start(p), CONC_ECLOSED);
    conc_process_free(p);
    conc_process_free(NULL);
}

static void
test_close_while_running(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct held h;
    hold(&h, &c, CONC_START_FORK, 0, NULL);
    assert_conc(conc_process_close(h.p), CONC_ESTATE);
    assert_int_equal(conc_process_is_alive(h.p), 1);
    release(&h);
    assert_conc_ok(conc_process_join(h.p, WAIT_S));
    assert_conc_ok(conc_process_close(h.p));
    conc_process_free(h.p);
    close(h.fd);
    chan_close(&c);
}

static void
test_new_errors(void **state)
{
    (void)state;
    conc_process *p = NULL;
    assert_conc(conc_process_new(NULL, NULL, 0, NULL, &p), CONC_EINVAL);
    assert_conc(conc_process_new(noop_fn, NULL, 0, NULL, NULL), CONC_EINVAL);
    assert_conc(conc_process_new(noop_fn, NULL, 3, NULL, &p), CONC_EINVAL);
    assert_conc(conc_process_new(noop_fn, NULL, 0,
                                 &(conc_process_opts){.name = ""}, &p),
                CONC_EINVAL);
    assert_conc(conc_process_new(noop_fn, NULL, 0,
                                 &(conc_process_opts){.method = 7}, &p),
                CONC_EINVAL);
    assert_conc(conc_process_new(noop_fn, NULL, 0,
                                 &(conc_process_opts){.daemon = 9}, &p),
                CONC_EINVAL);
    assert_null(p);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_process_new(noop_fn, "abc", 3, NULL, &p), CONC_ENOMEM);
    conc_test_fail_alloc_after(2); /* the argument's copy */
    assert_conc(conc_process_new(noop_fn, "abc", 3, NULL, &p), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(p);
}

static void
test_function_outside_modules(void **state)
{
    (void)state;
    void *page = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(page != MAP_FAILED);
    conc_process_fn fn;
    memcpy(&fn, &page, sizeof fn);
    conc_process *p = NULL;
    assert_conc(conc_process_new(
                    fn, NULL, 0,
                    &(conc_process_opts){.method = CONC_START_FORKSERVER}, &p),
                CONC_EINVAL);
    assert_non_null(strstr(conc_failure_message(), "no loaded module"));
    assert_null(p);
    munmap(page, 4096);
}

static void
test_status_lost_when_reaped_elsewhere(void **state)
{
    (void)state;
    struct prog pr = {.action = RETURN, .value = 4};
    conc_process *p = start(CONC_START_FORK, &pr, NULL);
    int st;
    assert_int_equal(waitpid(pid_of(p), &st, 0), pid_of(p));
    assert_conc(conc_process_join(p, WAIT_S), CONC_ECHILD);
    int code;
    assert_conc(conc_process_exitcode(p, &code), CONC_ECHILD);
    assert_int_equal(conc_process_is_alive(p), 0);
    conc_process_free(p);
}

static void
test_start_method_default(void **state)
{
    (void)state;
    assert_int_equal(conc_get_start_method(), CONC_START_FORK);
    assert_conc(conc_set_start_method((conc_start_method)9), CONC_EINVAL);
    assert_conc(conc_set_start_method(CONC_START_DEFAULT), CONC_EINVAL);
    assert_conc_ok(conc_set_start_method(CONC_START_FORKSERVER));
    struct chan c;
    chan_open(&c);
    struct held h;
    hold(&h, &c, CONC_START_DEFAULT, 0, NULL);
    assert_conc_ok(conc_set_start_method(CONC_START_FORK));
    assert_int_not_equal(h.r.ppid, (int)getpid()); /* the server's child */
    release(&h);
    join_free(h.p, 0);
    close(h.fd);
    chan_close(&c);
}

/* ---- Children: active_children and reaping ---------------------------------
 */

static int
contains_pid(conc_process **list, size_t n, int pid)
{
    for (size_t i = 0; i < n; i++)
        if (pid_of(list[i]) == pid)
            return 1;
    return 0;
}

static void
test_active_children(void **state)
{
    (void)state;
    conc_process **list;
    size_t n = 99;
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 0);
    assert_null(list);
    assert_conc(conc_active_children(NULL, &n), CONC_EINVAL);

    struct chan c;
    chan_open(&c);
    struct held h[3];
    for (int i = 0; i < 3; i++)
        hold(&h[i], &c, methods[i % 2], i, NULL);
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(contains_pid(list, n, pid_of(h[i].p)));
    conc_process_list_free(list, n);

    /* One ends; active_children reaps it without a join. */
    release(&h[0]);
    assert_true(wait_eof(h[0].fd));
    int pid0 = pid_of(h[0].p);
    assert_true(conc_test_wait_until(reapable, &pid0, WAIT_S));
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 2);
    assert_false(contains_pid(list, n, pid0));
    conc_process_list_free(list, n);
    assert_int_equal(conc_process_is_alive(h[0].p), 0);
    assert_int_equal(exitcode_of(h[0].p), 0);

    for (int i = 1; i < 3; i++) {
        release(&h[i]);
        assert_conc_ok(conc_process_join(h[i].p, WAIT_S));
    }
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 0);
    for (int i = 0; i < 3; i++) {
        conc_process_free(h[i].p);
        close(h[i].fd);
    }
    chan_close(&c);
}

static void
test_active_children_nomem(void **state)
{
    (void)state;
    conc_process **list = NULL;
    size_t n = 0;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_active_children(&list, &n), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
}

static int
zombie_count_drops(void *arg)
{
    return conc_test_count_children() <= *(int *)arg;
}

/* A handle freed while its process runs: the process is reaped once it
 * ends, by active_children (how = 0) or by the next start (how = 1). */
static void
freed_running_is_reaped(int how)
{
    int before = conc_test_count_children();
    struct chan c;
    chan_open(&c);
    struct held h;
    hold(&h, &c, CONC_START_FORK, 0, NULL);
    int pid = pid_of(h.p);
    conc_process_free(h.p);
    release(&h);
    assert_true(wait_eof(h.fd));
    assert_true(conc_test_wait_until(reapable, &pid, WAIT_S));
    assert_int_equal(conc_test_count_children(), before + 1); /* a zombie */
    if (how == 0) {
        conc_process **list;
        size_t n;
        assert_conc_ok(conc_active_children(&list, &n));
        assert_int_equal(n, 0);
    } else {
        struct prog pr = {.action = RETURN};
        join_free(start(CONC_START_FORK, &pr, NULL), 0);
    }
    assert_true(conc_test_wait_until(zombie_count_drops, &before, WAIT_S));
    close(h.fd);
    chan_close(&c);
}

static void
test_freed_running_reaped_by_active_children(void **state)
{
    (void)state;
    freed_running_is_reaped(0);
}

static void
test_freed_running_reaped_by_next_start(void **state)
{
    (void)state;
    freed_running_is_reaped(1);
}

static void
test_freed_running_listed_until_end(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct held h;
    hold(&h, &c, CONC_START_FORKSERVER, 0, NULL);
    int pid = pid_of(h.p);
    conc_process_free(h.p);
    conc_process **list;
    size_t n;
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 1);
    assert_int_equal(pid_of(list[0]), pid);
    release(&h);
    assert_conc_ok(conc_process_join(list[0], WAIT_S));
    conc_process_list_free(list, n);
    assert_conc_ok(conc_active_children(&list, &n));
    assert_int_equal(n, 0);
    close(h.fd);
    chan_close(&c);
}

static void
test_many_processes(void **state)
{
    (void)state;
    enum { N = 100 };
    FOR_EACH_METHOD(m)
    {
        conc_process *p[N];
        for (int i = 0; i < N; i++) {
            struct prog pr = {.action = RETURN, .value = i};
            p[i] = start(m, &pr, NULL);
        }
        for (int i = N - 1; i >= 0; i--)
            join_free(p[i], i);
    }
}

/* ---- Daemons ---------------------------------------------------------------
 */

static void
test_daemon_may_not_have_children(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan c;
        chan_open(&c);
        struct held h;
        hold(&h, &c, m, 0, &(conc_process_opts){.daemon = CONC_DAEMON_YES});
        assert_int_equal(conc_process_daemon(h.p), 1);
        assert_int_equal(h.r.daemon, 1);
        assert_int_equal(h.r.start_rc, CONC_EPERM);
        assert_string_equal(h.r.message,
                            "daemonic processes are not allowed to have "
                            "children");
        assert_int_equal(h.r.fs_start_rc, CONC_EPERM);
        release(&h);
        join_free(h.p, 0);
        close(h.fd);
        chan_close(&c);
    }
}

/* The middle process: starts a daemon that connects to the test, then
 * waits to be killed, or for a byte on its own channel before it returns. */
struct middle {
    struct prog prog; /* the daemon's */
    int method;       /* the daemon's start method */
    char chan[48];    /* the middle's channel, or "" to wait to be killed */
};

static int
middle_fn(const void *arg, size_t len)
{
    const struct middle *mid = arg;
    (void)len;
    int fd = mid->chan[0] ? child_connect(mid->chan) : -1;
    conc_process *d;
    conc_process_opts o = {.method = mid->method, .daemon = CONC_DAEMON_YES};
    if (conc_process_new(prog_fn, &mid->prog, sizeof mid->prog, &o, &d) ||
        conc_process_start(d))
        return 50;
    if (fd < 0)
        for (;;)
            pause();
    char c;
    while (read(fd, &c, 1) < 0 && errno == EINTR)
        ;
    return 0; /* the exit path terminates and joins the daemon */
}

static void
daemon_ends_with_parent(int method, int killed)
{
    struct chan c, mc;
    chan_open(&c);
    chan_open(&mc);
    struct middle mid = {.method = method};
    mid.prog.action = HOLD;
    memcpy(mid.prog.chan, c.name, sizeof mid.prog.chan);
    if (!killed)
        memcpy(mid.chan, mc.name, sizeof mid.chan);
    conc_process *p;
    assert_conc_ok(conc_process_new(middle_fn, &mid, sizeof mid, NULL, &p));
    assert_conc_ok(conc_process_start(p));
    int mfd = killed ? -1 : chan_accept(&mc);
    int fd = chan_accept(&c);
    struct report r;
    assert_int_equal(read_full(fd, &r, sizeof r), 0);
    assert_int_equal(r.daemon, 1);
    assert_int_equal(r.parent_pid, pid_of(p));
    if (killed) {
        assert_conc_ok(conc_process_kill(p));
        join_free(p, -SIGKILL);
    } else {
        assert_int_equal(write(mfd, "x", 1), 1);
        join_free(p, 0);
        close(mfd);
    }
    /* The daemon's end of the connection closes: it is gone. */
    assert_true(wait_eof(fd));
    assert_true(conc_test_wait_until(ended, &r.pid, WAIT_S));
    close(fd);
    chan_close(&c);
    chan_close(&mc);
}

static void
test_daemon_dies_with_killed_parent(void **state)
{
    (void)state;
    daemon_ends_with_parent(CONC_START_FORK, 1);
}

static void
test_daemon_dies_with_killed_parent_forkserver(void **state)
{
    (void)state;
    daemon_ends_with_parent(CONC_START_FORKSERVER, 1);
}

static void
test_daemon_terminated_when_parent_returns(void **state)
{
    (void)state;
    daemon_ends_with_parent(CONC_START_FORK, 0);
    daemon_ends_with_parent(CONC_START_FORKSERVER, 0);
}

/* A child whose function returns waits for its non-daemon children. */
static int
waits_for_child_fn(const void *arg, size_t len)
{
    conc_process *k;
    conc_process_opts o = {.daemon = CONC_DAEMON_NO};
    if (conc_process_new(prog_fn, arg, len, &o, &k) || conc_process_start(k))
        return 50;
    conc_process_free(k); /* still joined before this process ends */
    return 6;
}

static void
test_child_joins_its_children(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct prog pr = {.action = HOLD};
    memcpy(pr.chan, c.name, sizeof pr.chan);
    conc_process *p;
    assert_conc_ok(
        conc_process_new(waits_for_child_fn, &pr, sizeof pr, NULL, &p));
    assert_conc_ok(conc_process_start(p));
    int fd = chan_accept(&c);
    struct report r;
    assert_int_equal(read_full(fd, &r, sizeof r), 0);
    double t0 = conc_monotonic();
    assert_conc(conc_process_join(p, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(write(fd, "x", 1), 1);
    join_free(p, 6);
    close(fd);
    chan_close(&c);
}

/* The middle process of the next tests: starts `daemon` and `other` (a
 * non-daemon), both held by the test, then ends as asked. */
struct family {
    struct prog daemon, other;
    int method;
    int how;       /* 0: exit(4) once released; 1: wait to be killed */
    char chan[48]; /* the middle's channel, for how 0 */
};

static int
family_fn(const void *arg, size_t len)
{
    const struct family *f = arg;
    (void)len;
    conc_process *d, *o;
    conc_process_opts od = {.method = f->method, .daemon = CONC_DAEMON_YES};
    conc_process_opts oo = {.method = f->method};
    if (conc_process_new(prog_fn, &f->daemon, sizeof f->daemon, &od, &d) ||
        conc_process_new(prog_fn, &f->other, sizeof f->other, &oo, &o) ||
        conc_process_start(d) || conc_process_start(o))
        return 50;
    conc_process_free(d); /* the list still holds them */
    conc_process_free(o);
    if (f->how == 1)
        for (;;)
            pause();
    char c;
    int fd = child_connect(f->chan);
    while (read(fd, &c, 1) < 0 && errno == EINTR)
        ;
    exit(4); /* the exit handler terminates d and joins o */
}

static void
test_exit_terminates_daemons_joins_others(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan cd, co, cm;
        chan_open(&cd);
        chan_open(&co);
        chan_open(&cm);
        struct family f = {.method = m, .how = 0};
        f.daemon.action = f.other.action = HOLD;
        memcpy(f.daemon.chan, cd.name, sizeof cd.name);
        memcpy(f.other.chan, co.name, sizeof co.name);
        memcpy(f.chan, cm.name, sizeof cm.name);
        conc_process *p;
        assert_conc_ok(conc_process_new(family_fn, &f, sizeof f, NULL, &p));
        assert_conc_ok(conc_process_start(p));
        int dfd = chan_accept(&cd), ofd = chan_accept(&co);
        int mfd = chan_accept(&cm);
        struct report r;
        assert_int_equal(read_full(dfd, &r, sizeof r), 0);
        assert_int_equal(read_full(ofd, &r, sizeof r), 0);
        assert_int_equal(write(mfd, "x", 1), 1);
        assert_true(wait_eof(dfd)); /* the daemon was terminated */
        assert_conc(conc_process_join(p, 0.05), CONC_ETIMEDOUT);
        assert_int_equal(write(ofd, "x", 1), 1);
        join_free(p, 4);
        close(dfd);
        close(ofd);
        close(mfd);
        chan_close(&cd);
        chan_close(&co);
        chan_close(&cm);
    }
}

static void
test_parent_watch_after_parent_killed(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        struct chan cd, co;
        chan_open(&cd);
        chan_open(&co);
        struct family f = {.method = m, .how = 1};
        f.daemon.action = HOLD;
        f.other.action = WATCH;
        memcpy(f.daemon.chan, cd.name, sizeof cd.name);
        memcpy(f.other.chan, co.name, sizeof co.name);
        conc_process *p;
        assert_conc_ok(conc_process_new(family_fn, &f, sizeof f, NULL, &p));
        assert_conc_ok(conc_process_start(p));
        int dfd = chan_accept(&cd), ofd = chan_accept(&co);
        struct report r;
        assert_int_equal(read_full(dfd, &r, sizeof r), 0);
        assert_int_equal(read_full(ofd, &r, sizeof r), 0);
        assert_int_equal(r.parent_pid, pid_of(p));
        assert_int_equal(r.parent_alive, 1);
        assert_conc_ok(conc_process_kill(p));
        join_free(p, -SIGKILL);
        assert_true(wait_eof(dfd)); /* the daemon died with its parent */
        /* The other outlives its parent and sees it gone. */
        assert_int_equal(write(ofd, "x", 1), 1);
        int seen[2];
        assert_int_equal(read_full(ofd, seen, sizeof seen), 0);
        assert_int_equal(seen[0], 0);
        assert_conc_ok(seen[1]);
        assert_true(wait_eof(ofd));
        close(dfd);
        close(ofd);
        chan_close(&cd);
        chan_close(&co);
    }
}

/* A child uses conc freely: threads, locks, events, allocation. */
static int
worker_thread(void *arg)
{
    conc_lock *lock = arg;
    for (int i = 0; i < 1000; i++) {
        if (conc_lock_acquire(lock, WAIT_S))
            return 1;
        conc_lock_release(lock);
    }
    return 0;
}

static int
uses_conc_fn(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_lock *lock;
    if (conc_lock_new(NULL, &lock))
        return 1;
    conc_thread *t[2];
    int bad = 0;
    for (int i = 0; i < 2; i++)
        if (conc_thread_start(worker_thread, lock, NULL, &t[i]))
            return 2;
    for (int i = 0; i < 2; i++) {
        int st = 1;
        if (conc_thread_join(t[i], WAIT_S, &st) || st)
            bad = 1;
        conc_thread_free(t[i]);
    }
    conc_lock_free(lock);
    return bad ? 3 : 0;
}

static void
test_child_uses_conc(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        conc_process *p;
        assert_conc_ok(conc_process_new(uses_conc_fn, NULL, 0,
                                        &(conc_process_opts){.method = m}, &p));
        assert_conc_ok(conc_process_start(p));
        join_free(p, 0);
    }
}

/* ---- The fork server -------------------------------------------------------
 */

struct locker {
    conc_lock *lock;
    conc_event *locked, *done;
};

static int
hold_lock_thread(void *arg)
{
    struct locker *l = arg;
    int rc = conc_lock_acquire(l->lock, CONC_FOREVER);
    if (rc)
        return rc;
    conc_event_set(l->locked);
    rc = conc_event_wait(l->done, WAIT_S);
    conc_lock_release(l->lock);
    return rc;
}

static int
fresh_lock_fn(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_lock *lock;
    if (conc_lock_new(NULL, &lock))
        return 1;
    int rc = conc_lock_acquire(lock, 1.0);
    void *blocks[256];
    for (int i = 0; i < 256; i++)
        if (!(blocks[i] = malloc((size_t)(i + 1) * 64)))
            rc = 2;
    for (int i = 0; i < 256; i++)
        free(blocks[i]);
    conc_lock_release(lock);
    conc_lock_free(lock);
    return rc ? 3 : 0;
}

static void
test_forkserver_while_threads_hold_locks(void **state)
{
    (void)state;
    struct locker l;
    assert_conc_ok(conc_lock_new(NULL, &l.lock));
    assert_conc_ok(conc_event_new(NULL, &l.locked));
    assert_conc_ok(conc_event_new(NULL, &l.done));
    conc_thread *t;
    assert_conc_ok(conc_thread_start(hold_lock_thread, &l, NULL, &t));
    assert_conc_ok(conc_event_wait(l.locked, WAIT_S));
    for (int i = 0; i < 5; i++) {
        conc_process *p;
        assert_conc_ok(conc_process_new(
            fresh_lock_fn, NULL, 0,
            &(conc_process_opts){.method = CONC_START_FORKSERVER}, &p));
        assert_conc_ok(conc_process_start(p));
        join_free(p, 0);
    }
    conc_event_set(l.done);
    int status = 1;
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    assert_int_equal(status, 0);
    conc_thread_free(t);
    conc_event_free(l.locked);
    conc_event_free(l.done);
    conc_lock_free(l.lock);
}

static void
test_forkserver_stop_and_restart(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct held a, b;
    hold(&a, &c, CONC_START_FORKSERVER, 0, NULL);
    release(&a);
    join_free(a.p, 0);
    assert_conc_ok(conc_forkserver_stop(CONC_FOREVER));
    assert_conc_ok(
        conc_forkserver_stop(CONC_FOREVER));      /* not running: nothing */
    hold(&b, &c, CONC_START_FORKSERVER, 0, NULL); /* starts a new one */
    assert_int_not_equal(a.r.ppid, b.r.ppid);
    release(&b);
    join_free(b.p, 0);
    assert_conc_ok(conc_forkserver_start()); /* already running */
    close(a.fd);
    close(b.fd);
    chan_close(&c);
}

static void
test_forkserver_stop_kills_daemons(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct held d, n;
    hold(&d, &c, CONC_START_FORKSERVER, 0,
         &(conc_process_opts){.daemon = CONC_DAEMON_YES});
    hold(&n, &c, CONC_START_FORKSERVER, 0, NULL);
    assert_conc_ok(conc_forkserver_stop(CONC_FOREVER));
    /* The daemon was killed and its status reported. */
    join_free(d.p, -SIGKILL);
    /* The other lives on; its status is lost with the server. */
    assert_int_equal(conc_process_is_alive(n.p), 1);
    release(&n);
    assert_conc(conc_process_join(n.p, WAIT_S), CONC_ECHILD);
    conc_process_free(n.p);
    assert_conc_ok(conc_forkserver_start());
    close(d.fd);
    close(n.fd);
    chan_close(&c);
}

static void
test_forkserver_replaced_when_killed(void **state)
{
    (void)state;
    struct chan c;
    chan_open(&c);
    struct held a, b;
    hold(&a, &c, CONC_START_FORKSERVER, 0, NULL);
    int server = a.r.ppid;
    release(&a);
    join_free(a.p, 0);
    assert_int_equal(kill(server, SIGKILL), 0);
    assert_true(conc_test_wait_until(reapable, &server, WAIT_S));
    /* The next start notices the dead server, reaps it and starts another.
     * (A server that dies during a request fails that request with
     * CONC_EBROKEN instead.) */
    hold(&b, &c, CONC_START_FORKSERVER, 0, NULL);
    assert_int_not_equal(b.r.ppid, server);
    release(&b);
    join_free(b.p, 0);
    close(a.fd);
    close(b.fd);
    chan_close(&c);
}

/* ---- Handing a Pipe() end to a process ------------------------------------
 * Python's Process(target=f, args=(conn,)): the child opens its own handle
 * from a conc_conn_ref, under both start methods. */

#define CONN_ECHOES 200
#define CONN_BIG    (40 * 1024) /* larger than a ring's message */
#define NO_PIDFD_RC 3           /* the child could not open the ref */

struct conn_args {
    conc_conn_ref ref;
};

/* Reads one byte from `fd` (a pipe's reading end); -1 on failure. */
static int
read_byte(int fd)
{
    unsigned char ch;
    return read(fd, &ch, 1) == 1 ? ch : -1;
}

/* The child's part of the traffic over its own handle; returns 0 or the
 * line of the check that failed. */
static int
conn_child_talk(conc_conn *c)
{
    conc_buf b = CONC_BUF_INIT;
    int fd = -1, pfd[2];
    if (conc_conn_recv_bytes(c, WAIT_S, &b) || b.len != 5 ||
        memcmp(b.data, "early", 5))
        return __LINE__; /* sent before the share */
    if (conc_conn_recv_bytes(c, WAIT_S, &b) || b.len != 5 ||
        memcmp(b.data, "hello", 5))
        return __LINE__; /* sent after it */
    if (conc_conn_send_bytes(c, "opened", 6, WAIT_S))
        return __LINE__;
    if (conc_conn_recv_fd(c, WAIT_S, &fd) || read_byte(fd) != 'x')
        return __LINE__;
    close(fd);
    if (pipe(pfd) || write(pfd[1], "y", 1) != 1 ||
        conc_conn_send_fd(c, pfd[0], WAIT_S))
        return __LINE__;
    close(pfd[0]);
    close(pfd[1]);
    for (uint32_t i = 0; i < CONN_ECHOES; i++) {
        if (conc_conn_recv_bytes(c, WAIT_S, &b) || b.len < sizeof i)
            return __LINE__;
        uint32_t got;
        memcpy(&got, b.data, sizeof got);
        if (got != i || conc_conn_send_bytes(c, b.data, b.len, WAIT_S))
            return __LINE__;
    }
    conc_buf_free(&b);
    return 0;
}

static int
conn_child(const void *arg, size_t len)
{
    const struct conn_args *a = arg;
    conc_conn *c;
    if (len != sizeof *a)
        return 100;
    int r = conc_conn_open(&a->ref, &c);
    if (r == CONC__NO_PIDFD)
        return NO_PIDFD_RC;
    if (r)
        return 101;
    r = conn_child_talk(c);
    conc_conn_free(c);
    return r;
}

/* Sends message i (its number, then filler up to `len`) on `c`. */
static void
send_numbered(conc_conn *c, uint32_t i, size_t len, conc_buf *scratch)
{
    scratch->len = 0;
    assert_conc_ok(conc_buf_reserve(scratch, len));
    scratch->len = len;
    memset(scratch->data, (int)i, len);
    memcpy(scratch->data, &i, sizeof i);
    assert_conc_ok(conc_conn_send_bytes(c, scratch->data, len, WAIT_S));
}

/* The parent's side of conn_child_talk, on the other end `a`. */
static void
conn_parent_talk(conc_conn *a)
{
    conc_buf b = CONC_BUF_INIT, s = CONC_BUF_INIT;
    int pfd[2], fd = -1;
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(write(pfd[1], "x", 1), 1);
    assert_conc_ok(conc_conn_send_fd(a, pfd[0], WAIT_S));
    close(pfd[0]);
    close(pfd[1]);
    assert_conc_ok(conc_conn_recv_fd(a, WAIT_S, &fd));
    assert_int_equal(read_byte(fd), 'y');
    close(fd);
    for (uint32_t i = 0; i < CONN_ECHOES; i++) {
        size_t len = i % 50 == 7 ? CONN_BIG : 8 + i;
        send_numbered(a, i, len, &s);
        assert_conc_ok(conc_conn_recv_bytes(a, WAIT_S, &b));
        assert_int_equal(b.len, len);
        assert_memory_equal(b.data, s.data, len);
    }
    conc_buf_free(&b);
    conc_buf_free(&s);
}

/* Both ends have used their rings before the share; the shared end then
 * lives in a child, and traffic goes both ways, descriptors included. */
static void
test_conn_handed_to_process(void **state)
{
    (void)state;
    FOR_EACH_METHOD(m)
    {
        conc_conn *a, *b;
        conc_buf got = CONC_BUF_INIT;
        assert_conc_ok(conc_pipe(NULL, &a, &b));
        assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
        assert_conc_ok(conc_conn_send_bytes(b, "pre", 3, WAIT_S));
        assert_conc_ok(conc_conn_recv_bytes(a, WAIT_S, &got));
        assert_int_equal(got.len, 3);
        assert_conc_ok(conc_conn_send_bytes(a, "early", 5, WAIT_S));
        struct conn_args args;
        assert_conc_ok(conc_conn_share(b, &args.ref));
        assert_conc_ok(conc_conn_send_bytes(a, "hello", 5, WAIT_S));
        conc_process *p;
        assert_conc_ok(conc_process_new(conn_child, &args, sizeof args,
                                        &(conc_process_opts){.method = m}, &p));
        assert_conc_ok(conc_process_start(p));
        int code = -1;
        if (m == CONC_START_FORKSERVER && !conc__pidfd_available()) {
            /* Nothing inherited, nothing to copy it with: a clear error. */
            assert_conc_ok(conc_process_join(p, WAIT_S));
            assert_int_equal(conc_process_exitcode(p, &code), 1);
            assert_int_equal(code, NO_PIDFD_RC);
        } else {
            assert_conc_ok(conc_conn_recv_bytes(a, WAIT_S, &got));
            assert_int_equal(got.len, 6);
            conc_conn_free(b); /* the child has its own descriptor now */
            b = NULL;
            conn_parent_talk(a);
            assert_conc_ok(conc_process_join(p, WAIT_S));
            assert_int_equal(conc_process_exitcode(p, &code), 1);
            assert_int_equal(code, 0);
            /* Every copy of the shared end is closed now. */
            assert_conc(conc_conn_recv_bytes(a, WAIT_S, &got), CONC_ECLOSED);
        }
        conc_process_free(p);
        conc_conn_free(b);
        conc_conn_free(a);
        conc_buf_free(&got);
    }
}

/* A pool's initializer opens the ref, as Pool(initializer=init,
 * initargs=(conn,)), and the worker's tasks answer through it. */
static conc_conn *worker_conn;

static int
conn_init_worker(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    if (len != sizeof(conc_conn_ref))
        return CONC_EINVAL;
    return conc_conn_open(arg, &worker_conn);
}

static int
conn_send_double(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    uint64_t v;
    if (len != sizeof v)
        return CONC_EINVAL;
    memcpy(&v, arg, sizeof v);
    v *= 2;
    return conc_conn_send_bytes(worker_conn, &v, sizeof v, WAIT_S);
}

static void
test_conn_ref_in_pool_initializer(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_conn_ref ref;
    assert_conc_ok(conc_conn_share(b, &ref));
    conc_pool *pool;
    assert_conc_ok(
        conc_pool_new(&(conc_pool_opts){.processes = 1,
                                        .initializer = conn_init_worker,
                                        .initarg = &ref,
                                        .initarg_len = sizeof ref},
                      &pool));
    for (uint64_t i = 1; i <= 4; i++) {
        conc_buf r = CONC_BUF_INIT, got = CONC_BUF_INIT;
        assert_conc_ok(conc_pool_apply(pool, conn_send_double, &i, sizeof i,
                                       CONC_FOREVER, &r));
        assert_conc_ok(conc_conn_recv_bytes(a, WAIT_S, &got));
        uint64_t v = 0;
        assert_int_equal(got.len, sizeof v);
        memcpy(&v, got.data, sizeof v);
        assert_int_equal(v, 2 * i);
        conc_buf_free(&r);
        conc_buf_free(&got);
    }
    assert_conc_ok(conc_pool_close(pool));
    assert_conc_ok(conc_pool_join(pool, WAIT_S));
    conc_pool_free(pool);
    conc_conn_free(b);
    conc_conn_free(a);
}

/* Messages sent before the share are never lost: an end that holds some
 * is refused, and stays usable as it was. */
static void
test_conn_share_refused_with_messages(void **state)
{
    (void)state;
    conc_conn *a, *b;
    conc_conn_ref ref;
    conc_buf got = CONC_BUF_INIT;
    /* In the end's ring. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ETIMEDOUT);
    assert_conc_ok(conc_conn_send_bytes(a, "one", 3, WAIT_S));
    assert_conc(conc_conn_share(b, &ref), CONC_ESTATE);
    assert_non_null(strstr(conc_failure_message(), "ring"));
    assert_conc_ok(conc_conn_recv_bytes(b, WAIT_S, &got));
    assert_memory_equal(got.data, "one", 3);
    conc_conn_free(a);
    conc_conn_free(b);
    /* In the end's input buffer (a connection without rings). */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
    assert_conc_ok(conc_conn_from_fd(sv[1], NULL, &b));
    assert_conc_ok(conc_conn_send_bytes(a, "one", 3, WAIT_S));
    assert_conc_ok(conc_conn_send_bytes(a, "two", 3, WAIT_S));
    assert_conc_ok(conc_conn_recv_bytes(b, WAIT_S, &got));
    assert_true(b->in_tail > b->in_head); /* one read took both */
    assert_conc(conc_conn_share(b, &ref), CONC_ESTATE);
    assert_non_null(strstr(conc_failure_message(), "buffer"));
    assert_conc_ok(conc_conn_recv_bytes(b, WAIT_S, &got));
    assert_memory_equal(got.data, "two", 3);
    assert_conc_ok(conc_conn_share(b, &ref)); /* nothing held now */
    conc_conn *c;
    assert_conc_ok(conc_conn_open(&ref, &c)); /* this process: a dup */
    assert_conc_ok(conc_conn_send_bytes(a, "three", 5, WAIT_S));
    assert_conc_ok(conc_conn_recv_bytes(c, WAIT_S, &got));
    assert_memory_equal(got.data, "three", 5);
    conc_conn_free(c);
    conc_conn_close(b);
    assert_conc(conc_conn_share(b, &ref), CONC_ECLOSED);
    conc_conn_free(a);
    conc_conn_free(b);
    conc_buf_free(&got);
}

/* Both ends of a simplex pipe can be handed on; each opened handle keeps
 * its direction, and a message sent before the share is not lost. */
static void
test_conn_share_simplex(void **state)
{
    (void)state;
    conc_conn *r, *w, *r2, *w2;
    conc_conn_ref rref, wref;
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &r, &w));
    assert_conc_ok(conc_conn_send_bytes(w, "before", 6, WAIT_S));
    assert_conc_ok(conc_conn_share(r, &rref));
    assert_conc_ok(conc_conn_share(w, &wref));
    assert_conc_ok(conc_conn_open(&rref, &r2));
    assert_conc_ok(conc_conn_open(&wref, &w2));
    assert_int_equal(conc_conn_readable(r2), 1);
    assert_int_equal(conc_conn_writable(r2), 0);
    assert_int_equal(conc_conn_writable(w2), 1);
    conc_conn_free(r);
    conc_conn_free(w);
    assert_conc_ok(conc_conn_send_bytes(w2, "after", 5, WAIT_S));
    assert_conc_ok(conc_conn_recv_bytes(r2, WAIT_S, &got));
    assert_int_equal(got.len, 6);
    assert_conc_ok(conc_conn_recv_bytes(r2, WAIT_S, &got));
    assert_int_equal(got.len, 5);
    conc_conn_free(w2);
    assert_conc(conc_conn_recv_bytes(r2, WAIT_S, &got), CONC_ECLOSED);
    conc_conn_free(r2);
    conc_buf_free(&got);
}

/* Refs that name nothing usable fail with an error and a message. */
static void
test_conn_open_bad_refs(void **state)
{
    (void)state;
    conc_conn *a, *b, *c = NULL;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_conn_ref ref, bad;
    assert_conc_ok(conc_conn_share(b, &ref));
    int no_pidfd = !conc__pidfd_available();
    /* Garbage bytes. */
    memset(&bad, 0xa5, sizeof bad);
    assert_conc(conc_conn_open(&bad, &c), CONC_EINVAL);
    memset(&bad, 0, sizeof bad);
    assert_conc(conc_conn_open(&bad, &c), CONC_EINVAL);
    /* A kind of end the descriptor is not. */
    bad = ref;
    bad.flags = 1u << 20;
    assert_conc(conc_conn_open(&bad, &c), CONC_EINVAL);
    /* No such process. */
    bad = ref;
    bad.pid = INT32_MAX;
    assert_conc(conc_conn_open(&bad, &c),
                no_pidfd ? CONC__NO_PIDFD : CONC_ESRCH);
    assert_non_null(strstr(conc_failure_message(),
                           no_pidfd ? "pidfd_getfd" : "it has ended"));
    /* Another file at that descriptor number: the identity differs. */
    bad = ref;
    bad.ino ^= 1;
    assert_conc(conc_conn_open(&bad, &c),
                no_pidfd ? CONC__NO_PIDFD : CONC_EBADF);
    /* The descriptor closed since. */
    conc_conn_free(b);
    assert_conc(conc_conn_open(&ref, &c),
                no_pidfd ? CONC__NO_PIDFD : CONC_EBADF);
    assert_null(c);
    conc_conn_free(a);
}

int
main(void)
{
    warm_up_threads();
    /* Before the leak baselines: the fork server (a child with a socket)
     * lives as long as the program. */
    if (conc_forkserver_start() != 0) {
        fprintf(stderr, "cannot start the fork server: %s\n",
                conc_failure_message());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_exit_statuses),
        conc_unit_test(test_failure_message),
        conc_unit_test(test_arg_bytes),
        conc_unit_test(test_empty_arg_is_null),
        conc_unit_test(test_names),
        conc_unit_test(test_main_process),
        conc_unit_test(test_current_and_parent_in_child),
        conc_unit_test(test_grandchild_identity),
        conc_unit_test(test_is_alive_exitcode_timeout),
        conc_unit_test(test_terminate_and_kill),
        conc_unit_test(test_concurrent_joiners),
        conc_unit_test(test_state_errors),
        conc_unit_test(test_close_while_running),
        conc_unit_test(test_new_errors),
        conc_unit_test(test_function_outside_modules),
        conc_unit_test(test_status_lost_when_reaped_elsewhere),
        conc_unit_test(test_start_method_default),
        conc_unit_test(test_active_children),
        conc_unit_test(test_active_children_nomem),
        conc_unit_test(test_freed_running_reaped_by_active_children),
        conc_unit_test(test_freed_running_reaped_by_next_start),
        conc_unit_test(test_freed_running_listed_until_end),
        conc_unit_test(test_many_processes),
        conc_unit_test(test_daemon_may_not_have_children),
        conc_unit_test(test_daemon_dies_with_killed_parent),
        conc_unit_test(test_daemon_dies_with_killed_parent_forkserver),
        conc_unit_test(test_daemon_terminated_when_parent_returns),
        conc_unit_test(test_child_joins_its_children),
        conc_unit_test(test_exit_terminates_daemons_joins_others),
        conc_unit_test(test_parent_watch_after_parent_killed),
        conc_unit_test(test_child_uses_conc),
        conc_unit_test(test_forkserver_while_threads_hold_locks),
        conc_unit_test(test_forkserver_stop_and_restart),
        conc_unit_test(test_forkserver_stop_kills_daemons),
        conc_unit_test(test_forkserver_replaced_when_killed),
        conc_unit_test(test_conn_handed_to_process),
        conc_unit_test(test_conn_ref_in_pool_initializer),
        conc_unit_test(test_conn_share_refused_with_messages),
        conc_unit_test(test_conn_share_simplex),
        conc_unit_test(test_conn_open_bad_refs),
    };
    return conc_run_tests(tests);
}
