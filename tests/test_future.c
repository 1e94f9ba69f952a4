/* Futures: states and their transitions, result and exception with
 * timeouts, cancel, done callbacks (order, at once when already done, in
 * the completing thread, failures reported on stderr), the producer calls
 * and their misuse, reference counting, conc_wait with each return_when,
 * conc_as_completed, and many threads completing and waiting at once.
 *
 * Futures here are completed by the test itself through the producer calls
 * (conc_future_set_running, set_result, set_exception), from the test
 * thread or from helper threads that wait on an event the test sets, so
 * every state is exact and nothing sleeps to synchronize. Every blocking
 * call has a bounded timeout, so a bug fails a test instead of hanging it. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"

/* A bound for waits that should end at once. */
#define WAIT_S 20.0

/* A short timeout that must run out, and the slack allowed for rounding
 * when checking that it did (time checks are one-sided). */
#define SHORT_S 0.05
#define SLACK_S 0.001

/* ---- Helpers ------------------------------------------------------------ */

static conc_future *
new_future(void)
{
    conc_future *f = NULL;
    assert_conc_ok(conc_future_new(&f));
    assert_non_null(f);
    return f;
}

static conc_future *
new_done_future(int value)
{
    conc_future *f = new_future();
    assert_int_equal(conc_future_set_running(f), 1);
    assert_conc_ok(conc_future_set_result(f, &value, sizeof value));
    return f;
}

static int
result_int(conc_future *f)
{
    const void *data = NULL;
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, sizeof(int));
    int v;
    memcpy(&v, data, sizeof v);
    return v;
}

static conc_thread *
start_thread(conc_thread_fn fn, void *arg)
{
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(fn, arg, NULL, &t));
    return t;
}

static void
join_thread(conc_thread *t)
{
    int status = -1;
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    assert_int_equal(status, 0);
    conc_thread_free(t);
}

static conc_event *
new_event(void)
{
    conc_event *ev = NULL;
    assert_conc_ok(conc_event_new(NULL, &ev));
    return ev;
}

/* What a completer thread does to its future once `go` is set. */
enum completion { SET_RESULT, SET_EXCEPTION, CANCEL };

struct completer {
    conc_future *f;
    conc_event *go; /* NULL: at once */
    enum completion how;
    int value;
    long tid; /* the completing thread, for the callbacks to compare */
    int rc;
};

static int
completer_fn(void *arg)
{
    struct completer *c = arg;
    if (c->go && conc_event_wait(c->go, WAIT_S) != 0)
        return -1;
    c->tid = (long)gettid();
    switch (c->how) {
    case SET_RESULT:
        if (conc_future_set_running(c->f) != 1)
            return -2;
        c->rc = conc_future_set_result(c->f, &c->value, sizeof c->value);
        break;
    case SET_EXCEPTION:
        if (conc_future_set_running(c->f) != 1)
            return -2;
        c->rc = conc_future_set_exception(c->f, CONC_EVALUE, "bad value");
        break;
    case CANCEL:
        c->rc = conc_future_cancel(c->f);
        break;
    }
    return 0;
}

/* ---- Callback recording --------------------------------------------------
 */

#define LOG_MAX 256

struct cb_log {
    atomic_int n;
    int id[LOG_MAX];
    long tid[LOG_MAX];
    conc_future *f[LOG_MAX];
    conc_future_state state[LOG_MAX];
};

struct cb_rec {
    struct cb_log *log;
    int id;
    int fail; /* return conc_fail(CONC_EVALUE, ...) */
};

static int
record_cb(void *arg, conc_future *f)
{
    struct cb_rec *r = arg;
    int i = atomic_fetch_add(&r->log->n, 1);
    if (i < LOG_MAX) {
        r->log->id[i] = r->id;
        r->log->tid[i] = (long)gettid();
        r->log->f[i] = f;
        r->log->state[i] = conc_future_state_of(f);
    }
    if (r->fail)
        return conc_fail(CONC_EVALUE, "callback %d failed", r->id);
    return 0;
}

/* ---- Capturing stderr ----------------------------------------------------
 */

struct capture {
    int saved; /* the real stderr */
    int rd;    /* the read end of the pipe now behind descriptor 2 */
};

static void
capture_start(struct capture *c)
{
    int p[2];
    fflush(stderr);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    c->saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(p[1], 2), 2);
    close(p[1]);
    c->rd = p[0];
}

/* Restores stderr and returns what was written to it meanwhile. */
static void
capture_end(struct capture *c, char *buf, size_t cap)
{
    fflush(stderr);
    assert_int_equal(dup2(c->saved, 2), 2);
    close(c->saved);
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = c->rd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t r = read(c->rd, buf + len, cap - 1 - len);
        assert_true(r >= 0);
        if (r == 0 || len + (size_t)r == cap - 1) {
            len += (size_t)r;
            break;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(c->rd);
}

/* ---- States and transitions ----------------------------------------------
 */

static void
test_states(void **state)
{
    (void)state;
    conc_future *f = new_future();
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_PENDING);
    assert_int_equal(conc_future_done(f), 0);
    assert_int_equal(conc_future_running(f), 0);
    assert_int_equal(conc_future_cancelled(f), 0);
    assert_string_equal(conc_future_message(f), "");

    assert_int_equal(conc_future_set_running(f), 1);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_RUNNING);
    assert_int_equal(conc_future_running(f), 1);
    assert_int_equal(conc_future_done(f), 0);
    /* Running: set_running again is misuse, cancel is refused. */
    assert_conc(conc_future_set_running(f), CONC_ESTATE);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_RUNNING);

    assert_conc_ok(conc_future_set_result(f, "abc", 3));
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_FINISHED);
    assert_int_equal(conc_future_done(f), 1);
    assert_int_equal(conc_future_running(f), 0);
    assert_int_equal(conc_future_cancelled(f), 0);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_FINISHED);

    const void *data = NULL;
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, 0, &data, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    /* Either out-pointer may be NULL. */
    assert_conc_ok(conc_future_result(f, 0, NULL, &len));
    assert_conc_ok(conc_future_result(f, 0, &data, NULL));
    assert_conc_ok(conc_future_result(f, CONC_FOREVER, NULL, NULL));
    int code = 1;
    assert_conc_ok(conc_future_exception(f, 0, &code));
    assert_int_equal(code, 0);
    assert_string_equal(conc_future_message(f), "");

    /* Done: the producer calls are misuse (InvalidStateError). */
    assert_conc(conc_future_set_running(f), CONC_ESTATE);
    assert_conc(conc_future_set_result(f, "x", 1), CONC_ESTATE);
    assert_conc(conc_future_set_exception(f, CONC_EVALUE, "x"), CONC_ESTATE);
    /* ... and leave the result as it was. */
    data = NULL;
    len = 0;
    assert_conc_ok(conc_future_result(f, 0, &data, &len));
    assert_int_equal(len, 3);
    assert_non_null(data);
    assert_memory_equal(data, "abc", 3);
    conc_future_free(f);
}

/* A result may be set on a pending future too (set_running is optional, as
 * in Python), it is copied, and an empty one reads as NULL. */
static void
test_result_copy_and_empty(void **state)
{
    (void)state;
    conc_future *f = new_future();
    char buf[8] = "hello";
    assert_conc_ok(conc_future_set_result(f, buf, 6));
    memcpy(buf, "XXXXX", 6);
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(f, 0, &data, &len));
    assert_int_equal(len, 6);
    assert_string_equal(data, "hello");
    conc_future_free(f);

    f = new_future();
    assert_conc_ok(conc_future_set_result(f, NULL, 0));
    data = "not null";
    len = 99;
    assert_conc_ok(conc_future_result(f, 0, &data, &len));
    assert_null(data);
    assert_int_equal(len, 0);
    conc_future_free(f);

    /* A large result. */
    size_t big = 1u << 20;
    char *src = malloc(big);
    assert_non_null(src);
    for (size_t i = 0; i < big; i++)
        src[i] = (char)(i * 7);
    f = new_future();
    assert_conc_ok(conc_future_set_result(f, src, big));
    assert_conc_ok(conc_future_result(f, 0, &data, &len));
    assert_int_equal(len, big);
    assert_memory_equal(data, src, big);
    free(src);
    conc_future_free(f);
}

static void
test_exception(void **state)
{
    (void)state;
    conc_future *f = new_future();
    assert_int_equal(conc_future_set_running(f), 1);
    assert_conc_ok(conc_future_set_exception(f, CONC_EVALUE, "bad row 3"));
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_FINISHED);
    assert_int_equal(conc_future_done(f), 1);
    assert_int_equal(conc_future_cancelled(f), 0);

    conc_clear_failure();
    const void *data = (void *)1;
    size_t len = 7;
    assert_conc(conc_future_result(f, 0, &data, &len), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad row 3");
    int code = 0;
    assert_conc_ok(conc_future_exception(f, 0, &code));
    assert_int_equal(code, CONC_EVALUE);
    assert_string_equal(conc_future_message(f), "bad row 3");
    assert_conc(conc_future_set_result(f, "x", 1), CONC_ESTATE);
    assert_conc(conc_future_set_exception(f, CONC_EPERM, NULL), CONC_ESTATE);
    assert_int_equal(conc_future_cancel(f), 0);
    conc_future_free(f);

    /* No message: "" (also for the caller's failure message). */
    f = new_future();
    assert_conc_ok(conc_future_set_exception(f, CONC_EPERM, NULL));
    conc_fail(CONC_EINVAL, "stale");
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_EPERM);
    assert_string_equal(conc_failure_message(), "");
    assert_string_equal(conc_future_message(f), "");
    conc_future_free(f);

    /* A failure code must be negative; the future is left untouched. */
    f = new_future();
    assert_conc(conc_future_set_exception(f, 0, "zero"), CONC_EINVAL);
    assert_conc(conc_future_set_exception(f, 5, "positive"), CONC_EINVAL);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_PENDING);
    assert_conc_ok(conc_future_set_exception(f, CONC_EBROKEN, NULL));
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_EBROKEN);
    conc_future_free(f);

    /* A message is copied and cut at the failure message's limit. */
    f = new_future();
    char msg[600];
    memset(msg, 'm', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    assert_conc_ok(conc_future_set_exception(f, CONC_EVALUE, msg));
    memset(msg, 'z', 10);
    assert_int_equal(conc_future_message(f)[0], 'm');
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_EVALUE);
    assert_int_equal(conc_failure_message()[0], 'm');
    conc_future_free(f);
}

static void
test_cancel(void **state)
{
    (void)state;
    conc_future *f = new_future();
    assert_int_equal(conc_future_cancel(f), 1);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_CANCELLED);
    assert_int_equal(conc_future_cancelled(f), 1);
    assert_int_equal(conc_future_done(f), 1);
    assert_int_equal(conc_future_running(f), 0);
    assert_int_equal(conc_future_cancel(f), 1); /* again: still true */
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_ECANCELED);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_ECANCELED);
    int code = 12345;
    assert_conc(conc_future_exception(f, 0, &code), CONC_ECANCELED);
    assert_int_equal(code, 12345);
    /* The producer learns it must not run the task. */
    assert_int_equal(conc_future_set_running(f), 0);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_CANCELLED);
    assert_conc(conc_future_set_result(f, "x", 1), CONC_ESTATE);
    assert_conc(conc_future_set_exception(f, CONC_EVALUE, NULL), CONC_ESTATE);
    assert_int_equal(conc_future_cancelled(f), 1);
    conc_future_free(f);

    /* Failed futures are finished, not cancelled. */
    f = new_future();
    assert_conc_ok(conc_future_set_exception(f, CONC_EVALUE, NULL));
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(conc_future_cancelled(f), 0);
    conc_future_free(f);
}

static void
test_invalid(void **state)
{
    (void)state;
    conc_future *f = new_future();
    int code = 7;
    assert_conc(conc_future_result(NULL, 0, NULL, NULL), CONC_EINVAL);
    assert_conc(conc_future_result(f, NAN, NULL, NULL), CONC_EINVAL);
    assert_conc(conc_future_exception(NULL, 0, &code), CONC_EINVAL);
    assert_conc(conc_future_exception(f, 0, NULL), CONC_EINVAL);
    assert_conc(conc_future_exception(f, NAN, &code), CONC_EINVAL);
    assert_int_equal(code, 7);
    assert_conc(conc_future_add_done_callback(NULL, record_cb, NULL),
                CONC_EINVAL);
    assert_conc(conc_future_add_done_callback(f, NULL, NULL), CONC_EINVAL);
    assert_conc(conc_future_new(NULL), CONC_EINVAL);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_PENDING);
    conc_future_free(NULL);
    conc_future_free(f);
}

static void
test_timeouts(void **state)
{
    (void)state;
    conc_future *f = new_future();
    double t0 = conc_monotonic();
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_ETIMEDOUT);
    t0 = conc_monotonic();
    assert_conc(conc_future_result(f, SHORT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);

    int code = 77;
    assert_conc(conc_future_exception(f, 0, &code), CONC_ETIMEDOUT);
    t0 = conc_monotonic();
    assert_conc(conc_future_exception(f, SHORT_S, &code), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_int_equal(code, 77);

    /* Running is not done either. */
    assert_int_equal(conc_future_set_running(f), 1);
    t0 = conc_monotonic();
    assert_conc(conc_future_result(f, SHORT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_conc_ok(conc_future_set_result(f, NULL, 0));
    assert_conc_ok(conc_future_result(f, 0, NULL, NULL));
    conc_future_free(f);
}

/* Waiters in other threads wake when the future completes. */
struct waiter {
    conc_future *f;
    double timeout;
    conc_event *ready;
    int rc;
    int code;
    char data[16];
    char message[64];
};

static int
waiter_fn(void *arg)
{
    struct waiter *w = arg;
    conc_event_set(w->ready);
    const void *data = NULL;
    size_t len = 0;
    w->rc = conc_future_result(w->f, w->timeout, &data, &len);
    if (w->rc == 0 && len < sizeof w->data)
        memcpy(w->data, data, len);
    snprintf(w->message, sizeof w->message, "%s", conc_failure_message());
    if (w->rc != CONC_ETIMEDOUT)
        conc_future_exception(w->f, 0, &w->code);
    return 0;
}

static void
test_waiters_wake(void **state)
{
    (void)state;
    enum { N = 4 };
    for (int round = 0; round < 3; round++) {
        conc_future *f = new_future();
        struct waiter w[N];
        conc_thread *t[N];
        for (int i = 0; i < N; i++) {
            w[i] = (struct waiter){
                .f = f, .timeout = WAIT_S, .ready = new_event()};
            t[i] = start_thread(waiter_fn, &w[i]);
        }
        for (int i = 0; i < N; i++)
            assert_conc_ok(conc_event_wait(w[i].ready, WAIT_S));
        if (round == 0)
            assert_conc_ok(conc_future_set_result(f, "done", 5));
        else if (round == 1)
            assert_conc_ok(conc_future_set_exception(f, CONC_EPERM, "nope"));
        else
            assert_int_equal(conc_future_cancel(f), 1);
        /* Every thread is joined and freed before anything is checked, so
         * a failed check leaves no thread behind for the next test. */
        for (int i = 0; i < N; i++) {
            join_thread(t[i]);
            conc_event_free(w[i].ready);
        }
        conc_future_free(f);
        for (int i = 0; i < N; i++) {
            if (round == 0) {
                assert_conc_ok(w[i].rc);
                assert_string_equal(w[i].data, "done");
            } else if (round == 1) {
                assert_conc(w[i].rc, CONC_EPERM);
                assert_string_equal(w[i].message, "nope");
                assert_int_equal(w[i].code, CONC_EPERM);
            } else {
                assert_conc(w[i].rc, CONC_ECANCELED);
            }
        }
    }
}

/* ---- Callbacks ----------------------------------------------------------- */

static void
test_callbacks_order_and_thread(void **state)
{
    (void)state;
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    conc_future *f = new_future();
    struct cb_rec r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = (struct cb_rec){.log = &log, .id = i};
        assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r[i]));
    }
    assert_int_equal(atomic_load(&log.n), 0);

    /* Completed by another thread: the callbacks run there, in order,
     * each once, and see the future done. */
    struct completer c = {.f = f, .how = SET_RESULT, .value = 42};
    join_thread(start_thread(completer_fn, &c));
    assert_conc_ok(c.rc);
    assert_int_equal(atomic_load(&log.n), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(log.id[i], i);
        assert_int_equal(log.tid[i], c.tid);
        assert_ptr_equal(log.f[i], f);
        assert_int_equal(log.state[i], CONC_FUTURE_FINISHED);
    }
    assert_int_equal(result_int(f), 42);

    /* Added once done: runs at once, in the adding thread. */
    struct cb_rec late = {.log = &log, .id = 9};
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &late));
    assert_int_equal(atomic_load(&log.n), 6);
    assert_int_equal(log.id[5], 9);
    assert_int_equal(log.tid[5], (long)gettid());
    conc_future_free(f);
}

static void
test_callbacks_on_exception_and_cancel(void **state)
{
    (void)state;
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_rec r = {.log = &log, .id = 1};

    conc_future *f = new_future();
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    struct completer c = {.f = f, .how = SET_EXCEPTION};
    join_thread(start_thread(completer_fn, &c));
    assert_conc_ok(c.rc);
    assert_int_equal(atomic_load(&log.n), 1);
    assert_int_equal(log.tid[0], c.tid);
    assert_int_equal(log.state[0], CONC_FUTURE_FINISHED);
    conc_future_free(f);

    /* Cancel runs the callbacks in the cancelling thread, before it
     * returns; a second cancel does not run them again. */
    f = new_future();
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    c = (struct completer){.f = f, .how = CANCEL};
    join_thread(start_thread(completer_fn, &c));
    assert_int_equal(c.rc, 1);
    assert_int_equal(atomic_load(&log.n), 2);
    assert_int_equal(log.tid[1], c.tid);
    assert_int_equal(log.state[1], CONC_FUTURE_CANCELLED);
    assert_int_equal(conc_future_cancel(f), 1);
    assert_int_equal(atomic_load(&log.n), 2);
    /* Added after cancel: at once. */
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    assert_int_equal(atomic_load(&log.n), 3);
    assert_int_equal(log.state[2], CONC_FUTURE_CANCELLED);
    conc_future_free(f);

    /* A refused cancel (running) runs nothing. */
    f = new_future();
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    assert_int_equal(conc_future_set_running(f), 1);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(atomic_load(&log.n), 3);
    assert_conc_ok(conc_future_set_result(f, NULL, 0));
    assert_int_equal(atomic_load(&log.n), 4);
    conc_future_free(f);
}

/* A failing callback is reported on stderr and the others still run. */
static void
test_callback_failure_reported(void **state)
{
    (void)state;
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_rec r[3] = {{.log = &log, .id = 0},
                          {.log = &log, .id = 1, .fail = 1},
                          {.log = &log, .id = 2}};
    conc_future *f = new_future();
    for (int i = 0; i < 3; i++)
        assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r[i]));

    struct capture cap;
    char text[1024];
    capture_start(&cap);
    int rc = conc_future_set_result(f, "v", 1);
    capture_end(&cap, text, sizeof text);
    assert_conc_ok(rc);
    assert_int_equal(atomic_load(&log.n), 3);
    assert_int_equal(log.id[2], 2);
    assert_non_null(strstr(text, "exception calling callback for future"));
    assert_non_null(strstr(text, "CONC_EVALUE"));
    assert_non_null(strstr(text, "callback 1 failed"));

    /* The same when the callback runs at once on a done future; adding it
     * still succeeds. */
    struct cb_rec again = {.log = &log, .id = 7, .fail = 1};
    capture_start(&cap);
    rc = conc_future_add_done_callback(f, record_cb, &again);
    capture_end(&cap, text, sizeof text);
    assert_conc_ok(rc);
    assert_int_equal(atomic_load(&log.n), 4);
    assert_non_null(strstr(text, "exception calling callback for future"));
    assert_non_null(strstr(text, "callback 7 failed"));
    conc_future_free(f);
}

/* A callback may use its own future: read its result, add a callback
 * (which then runs at once) and drop a reference it took. */
struct reentrant {
    struct cb_log *log;
    struct cb_rec inner;
    int result_rc;
    int add_rc;
};

static int
reentrant_cb(void *arg, conc_future *f)
{
    struct reentrant *re = arg;
    conc_future *ref = conc_future_ref(f);
    re->result_rc = conc_future_result(ref, 0, NULL, NULL);
    re->add_rc = conc_future_add_done_callback(ref, record_cb, &re->inner);
    conc_future_free(ref);
    return 0;
}

static void
test_callback_reentrant(void **state)
{
    (void)state;
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    struct reentrant re = {.log = &log,
                           .inner = {.log = &log, .id = 5},
                           .result_rc = 1,
                           .add_rc = 1};
    conc_future *f = new_future();
    assert_conc_ok(conc_future_add_done_callback(f, reentrant_cb, &re));
    /* Completed in a helper thread so that a deadlock fails the join. */
    struct completer c = {.f = f, .how = SET_RESULT, .value = 1};
    conc_thread *t = start_thread(completer_fn, &c);
    join_thread(t);
    assert_conc_ok(re.result_rc);
    assert_conc_ok(re.add_rc);
    assert_int_equal(atomic_load(&log.n), 1);
    assert_int_equal(log.id[0], 5);
    conc_future_free(f);
}

static void
test_callback_enomem(void **state)
{
    (void)state;
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_rec r = {.log = &log};
    conc_future *f = new_future();
    for (int i = 0; i < 64; i++)
        assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    /* However the callbacks are stored, 200 more additions, each with its
     * allocation refused, must meet at least one that needs memory. */
    int added = 64, refused = 0;
    for (int i = 0; i < 200; i++) {
        conc_test_fail_alloc_after(1);
        int rc = conc_future_add_done_callback(f, record_cb, &r);
        conc_test_fail_alloc_after(0);
        if (rc == CONC_ENOMEM)
            refused++;
        else {
            assert_conc_ok(rc);
            added++;
        }
    }
    assert_true(refused > 0);
    assert_conc_ok(conc_future_set_result(f, NULL, 0));
    assert_int_equal(atomic_load(&log.n), added);
    conc_future_free(f);
}

/* ---- Producer misuse and allocation failures ----------------------------
 */

static void
test_enomem(void **state)
{
    (void)state;
    conc_future *f = NULL, *f2;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_future_new(&f), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(f);

    /* A result too big to live inside the future needs memory; refused,
     * the future is left as it was. */
    size_t big = 1u << 16;
    char *src = calloc(1, big);
    assert_non_null(src);
    f = new_future();
    assert_int_equal(conc_future_set_running(f), 1);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_future_set_result(f, src, big), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_RUNNING);
    assert_conc_ok(conc_future_set_result(f, src, big));
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, 0, NULL, &len));
    assert_int_equal(len, big);
    free(src);

    /* A failure's message is copied; without memory for the copy the
     * future is left as it was, and the next try completes it. */
    f2 = new_future();
    conc_test_fail_alloc_after(1);
    assert_conc(conc_future_set_exception(f2, CONC_EVALUE, "bad row"),
                CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_int_equal(conc_future_state_of(f2), CONC_FUTURE_PENDING);
    assert_conc_ok(conc_future_set_exception(f2, CONC_EVALUE, "bad row"));
    int code = 0;
    assert_conc_ok(conc_future_exception(f2, 0, &code));
    assert_int_equal(code, CONC_EVALUE);
    assert_string_equal(conc_future_message(f2), "bad row");
    conc_future_free(f2);

    /* as_completed allocates its iterator. */
    conc_as_completed_iter *it = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_as_completed(&f, 1, WAIT_S, &it), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    conc_future_free(f);
}

/* ---- Reference counting ---------------------------------------------------
 */

struct holder {
    conc_future *f; /* the holder's own reference */
    conc_event *go;
    int rc;
};

/* Completes and drops its own reference, like an executor's worker. */
static int
holder_fn(void *arg)
{
    struct holder *h = arg;
    if (conc_event_wait(h->go, WAIT_S) != 0)
        return -1;
    h->rc = conc_future_set_result(h->f, "late", 4);
    conc_future_free(h->f);
    return 0;
}

static void
test_refcount(void **state)
{
    (void)state;
    conc_future *f = new_future();
    conc_future *g = conc_future_ref(f);
    assert_ptr_equal(g, f);
    conc_future_free(f);
    /* g still holds it. */
    assert_int_equal(conc_future_state_of(g), CONC_FUTURE_PENDING);
    assert_conc_ok(conc_future_set_result(g, "ok", 2));
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(g, 0, &data, &len));
    assert_memory_equal(data, "ok", 2);
    conc_future_free(g);

    /* The caller drops its reference before the producer completes: the
     * future lives on until the producer lets go (the leak guard checks
     * that it is then freed), and its callbacks still run. */
    static struct cb_log log;
    memset(&log, 0, sizeof log);
    struct cb_rec r = {.log = &log, .id = 3};
    f = new_future();
    assert_conc_ok(conc_future_add_done_callback(f, record_cb, &r));
    struct holder h = {.f = conc_future_ref(f), .go = new_event()};
    conc_thread *t = start_thread(holder_fn, &h);
    conc_future_free(f);
    conc_event_set(h.go);
    join_thread(t);
    conc_event_free(h.go);
    assert_conc_ok(h.rc);
    assert_int_equal(atomic_load(&log.n), 1);
    assert_int_equal(log.state[0], CONC_FUTURE_FINISHED);
}

/* ---- conc_wait ------------------------------------------------------------
 */

static void
test_wait_already_done(void **state)
{
    (void)state;
    conc_future *fs[3] = {new_done_future(1), new_done_future(2), new_future()};
    assert_conc_ok(conc_future_set_exception(fs[2], CONC_EVALUE, NULL));
    unsigned char done[3];
    conc_return_when whens[] = {CONC_ALL_COMPLETED, CONC_FIRST_COMPLETED,
                                CONC_FIRST_EXCEPTION};
    for (size_t w = 0; w < 3; w++) {
        memset(done, 9, sizeof done);
        assert_conc_ok(conc_wait(fs, 3, whens[w], 0, done));
        assert_memory_equal(done, "\1\1\1", 3);
        assert_conc_ok(conc_wait(fs, 3, whens[w], CONC_FOREVER, NULL));
    }
    /* Nothing to wait for. */
    assert_conc_ok(conc_wait(fs, 0, CONC_ALL_COMPLETED, 0, done));
    assert_conc_ok(conc_wait(NULL, 0, CONC_FIRST_COMPLETED, 0, NULL));
    for (int i = 0; i < 3; i++)
        conc_future_free(fs[i]);
}

static void
test_wait_timeouts(void **state)
{
    (void)state;
    conc_future *fs[3] = {new_future(), new_done_future(5), new_future()};
    unsigned char done[3];
    double t0;

    /* ALL_COMPLETED with some pending: times out, flags still filled. */
    memset(done, 9, sizeof done);
    t0 = conc_monotonic();
    assert_conc(conc_wait(fs, 3, CONC_ALL_COMPLETED, SHORT_S, done),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_memory_equal(done, "\0\1\0", 3);

    /* FIRST_EXCEPTION: a success is not enough; neither is a cancel. */
    assert_int_equal(conc_future_cancel(fs[2]), 1);
    memset(done, 9, sizeof done);
    t0 = conc_monotonic();
    assert_conc(conc_wait(fs, 3, CONC_FIRST_EXCEPTION, SHORT_S, done),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_memory_equal(done, "\0\1\1", 3);
    memset(done, 9, sizeof done);
    assert_conc(conc_wait(fs, 3, CONC_FIRST_EXCEPTION, 0, done),
                CONC_ETIMEDOUT);
    assert_memory_equal(done, "\0\1\1", 3);

    /* FIRST_COMPLETED over pending futures only. */
    conc_future *pending[2] = {fs[0], fs[0]};
    memset(done, 9, sizeof done);
    t0 = conc_monotonic();
    assert_conc(conc_wait(pending, 2, CONC_FIRST_COMPLETED, SHORT_S, done),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_memory_equal(done, "\0\0", 2);
    assert_conc(conc_wait(pending, 2, CONC_FIRST_COMPLETED, 0, NULL),
                CONC_ETIMEDOUT);

    /* Every exception-free future done: FIRST_EXCEPTION returns. */
    assert_conc_ok(conc_future_set_result(fs[0], NULL, 0));
    memset(done, 9, sizeof done);
    assert_conc_ok(conc_wait(fs, 3, CONC_FIRST_EXCEPTION, 0, done));
    assert_memory_equal(done, "\1\1\1", 3);
    for (int i = 0; i < 3; i++)
        conc_future_free(fs[i]);
}

static void
test_wait_invalid(void **state)
{
    (void)state;
    conc_future *f = new_future();
    conc_future *fs[2] = {f, NULL};
    unsigned char done[2];
    assert_conc(conc_wait(NULL, 1, CONC_ALL_COMPLETED, 0, done), CONC_EINVAL);
    assert_conc(conc_wait(fs, 2, CONC_ALL_COMPLETED, 0, done), CONC_EINVAL);
    assert_conc(conc_wait(fs, 1, (conc_return_when)7, 0, done), CONC_EINVAL);
    assert_conc(conc_wait(fs, 1, (conc_return_when)-1, 0, done), CONC_EINVAL);
    assert_conc(conc_wait(fs, 1, CONC_ALL_COMPLETED, NAN, done), CONC_EINVAL);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_PENDING);
    conc_future_free(f);
}

/* A waiter blocked in conc_wait wakes when the condition comes true. */
struct multi_waiter {
    conc_future **fs;
    size_t n;
    conc_return_when when;
    conc_event *ready;
    unsigned char done[4];
    int rc;
};

static int
multi_waiter_fn(void *arg)
{
    struct multi_waiter *w = arg;
    conc_event_set(w->ready);
    w->rc = conc_wait(w->fs, w->n, w->when, WAIT_S, w->done);
    return 0;
}

static void
run_wait_wakes(conc_return_when when, enum completion how,
               const char *want_flags, int want_rc)
{
    conc_future *fs[4] = {new_future(), new_future(), new_future(), NULL};
    fs[3] = fs[1]; /* a duplicate */
    struct multi_waiter w = {
        .fs = fs, .n = 4, .when = when, .ready = new_event(), .rc = 1};
    memset(w.done, 9, sizeof w.done);
    conc_thread *t = start_thread(multi_waiter_fn, &w);
    assert_conc_ok(conc_event_wait(w.ready, WAIT_S));
    if (how == SET_RESULT)
        assert_conc_ok(conc_future_set_result(fs[1], NULL, 0));
    else if (how == SET_EXCEPTION)
        assert_conc_ok(conc_future_set_exception(fs[1], CONC_EPERM, NULL));
    else
        assert_int_equal(conc_future_cancel(fs[1]), 1);
    if (want_rc == 0 && when != CONC_FIRST_COMPLETED && how != SET_EXCEPTION) {
        /* The rest must complete too. */
        assert_conc_ok(conc_future_set_result(fs[0], NULL, 0));
        assert_conc_ok(conc_future_set_result(fs[2], NULL, 0));
    }
    join_thread(t);
    assert_conc(w.rc, want_rc);
    assert_memory_equal(w.done, want_flags, 4);
    conc_event_free(w.ready);
    for (int i = 0; i < 3; i++) {
        conc_future_cancel(fs[i]);
        conc_future_free(fs[i]);
    }
}

static void
test_wait_wakes(void **state)
{
    (void)state;
    run_wait_wakes(CONC_FIRST_COMPLETED, SET_RESULT, "\0\1\0\1", 0);
    run_wait_wakes(CONC_FIRST_COMPLETED, CANCEL, "\0\1\0\1", 0);
    run_wait_wakes(CONC_FIRST_EXCEPTION, SET_EXCEPTION, "\0\1\0\1", 0);
    run_wait_wakes(CONC_FIRST_EXCEPTION, SET_RESULT, "\1\1\1\1", 0);
    run_wait_wakes(CONC_ALL_COMPLETED, SET_RESULT, "\1\1\1\1", 0);
    run_wait_wakes(CONC_ALL_COMPLETED, CANCEL, "\1\1\1\1", 0);
}

/* ---- as_completed --------------------------------------------------------
 */

static void
test_as_completed_order(void **state)
{
    (void)state;
    conc_future *fs[5] = {new_future(), new_done_future(1), new_future(),
                          new_done_future(3), NULL};
    fs[4] = fs[2]; /* a duplicate, yielded once */
    conc_as_completed_iter *it = NULL;
    assert_conc_ok(conc_as_completed(fs, 5, WAIT_S, &it));
    assert_non_null(it);

    /* The futures already done come first (in any order between them). */
    conc_future *got = NULL, *got2 = NULL;
    assert_conc_ok(conc_as_completed_next(it, &got));
    assert_conc_ok(conc_as_completed_next(it, &got2));
    assert_true((got == fs[1] && got2 == fs[3]) ||
                (got == fs[3] && got2 == fs[1]));

    /* Then in completion order: fs[2] before fs[0]. */
    assert_conc_ok(conc_future_set_result(fs[2], NULL, 0));
    assert_conc_ok(conc_future_set_exception(fs[0], CONC_EVALUE, NULL));
    assert_conc_ok(conc_as_completed_next(it, &got));
    assert_ptr_equal(got, fs[2]);
    assert_conc_ok(conc_as_completed_next(it, &got));
    assert_ptr_equal(got, fs[0]);
    assert_conc(conc_as_completed_next(it, &got), CONC_ECLOSED);
    assert_conc(conc_as_completed_next(it, &got), CONC_ECLOSED);
    conc_as_completed_free(it);
    conc_as_completed_free(NULL);
    for (int i = 0; i < 4; i++)
        conc_future_free(fs[i]);
}

/* Completions from another thread while the iterator waits. */
struct releaser {
    conc_future **fs;
    int n;
    conc_event *go;
};

static int
releaser_fn(void *arg)
{
    struct releaser *r = arg;
    for (int i = r->n - 1; i >= 0; i--) {
        if (conc_event_wait(r->go, WAIT_S) != 0)
            return -1;
        conc_event_clear(r->go);
        if (conc_future_set_result(r->fs[i], &i, sizeof i) != 0)
            return -2;
    }
    return 0;
}

static void
test_as_completed_waits(void **state)
{
    (void)state;
    enum { N = 6 };
    conc_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = new_future();
    conc_as_completed_iter *it;
    assert_conc_ok(conc_as_completed(fs, N, WAIT_S, &it));
    /* The iterator holds its own references. */
    conc_future *mine[N];
    for (int i = 0; i < N; i++)
        mine[i] = fs[i];
    struct releaser r = {.fs = mine, .n = N, .go = new_event()};
    conc_thread *t = start_thread(releaser_fn, &r);
    for (int i = N - 1; i >= 0; i--) {
        conc_future *got;
        conc_event_set(r.go);
        assert_conc_ok(conc_as_completed_next(it, &got));
        assert_ptr_equal(got, mine[i]);
        assert_int_equal(result_int(got), i);
    }
    join_thread(t);
    conc_event_free(r.go);
    /* Our references go first; the iterator's keep the futures alive. */
    for (int i = 0; i < N; i++)
        conc_future_free(fs[i]);
    conc_future *got;
    assert_conc(conc_as_completed_next(it, &got), CONC_ECLOSED);
    conc_as_completed_free(it);
}

static void
test_as_completed_timeout(void **state)
{
    (void)state;
    conc_future *fs[2] = {new_future(), new_done_future(1)};
    conc_as_completed_iter *it;
    double t0 = conc_monotonic();
    assert_conc_ok(conc_as_completed(fs, 2, SHORT_S, &it));
    conc_future *got;
    assert_conc_ok(conc_as_completed_next(it, &got));
    assert_ptr_equal(got, fs[1]);
    conc_clear_failure();
    assert_conc(conc_as_completed_next(it, &got), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_non_null(strstr(conc_failure_message(), "1 (of 2) futures"));
    /* The timeout counted from the call: later calls time out at once. */
    assert_conc(conc_as_completed_next(it, &got), CONC_ETIMEDOUT);
    conc_as_completed_free(it);

    /* Timeout 0: only what is already done. */
    assert_conc_ok(conc_as_completed(fs, 2, 0, &it));
    assert_conc_ok(conc_as_completed_next(it, &got));
    assert_ptr_equal(got, fs[1]);
    assert_conc(conc_as_completed_next(it, &got), CONC_ETIMEDOUT);
    conc_as_completed_free(it);

    /* Freeing an iterator with futures still pending. */
    assert_conc_ok(conc_as_completed(fs, 2, WAIT_S, &it));
    conc_as_completed_free(it);
    conc_future_free(fs[0]);
    conc_future_free(fs[1]);
}

static void
test_as_completed_invalid(void **state)
{
    (void)state;
    conc_future *f = new_future();
    conc_future *fs[2] = {f, NULL};
    conc_as_completed_iter *it = NULL;
    assert_conc(conc_as_completed(NULL, 1, 0, &it), CONC_EINVAL);
    assert_conc(conc_as_completed(fs, 2, 0, &it), CONC_EINVAL);
    assert_conc(conc_as_completed(fs, 1, NAN, &it), CONC_EINVAL);
    assert_conc(conc_as_completed(fs, 1, 0, NULL), CONC_EINVAL);
    assert_null(it);
    /* An empty set ends at once. */
    assert_conc_ok(conc_as_completed(NULL, 0, 0, &it));
    conc_future *got;
    assert_conc(conc_as_completed_next(it, &got), CONC_ECLOSED);
    conc_as_completed_free(it);
    conc_future_free(f);
}

/* ---- cancel against set_running ------------------------------------------
 */

#define DUEL_N 5000

struct duel {
    conc_future *fs[DUEL_N];
    int ran[DUEL_N], cancelled[DUEL_N];
    conc_barrier *b;
};

static int
duel_runner(void *arg)
{
    struct duel *d = arg;
    for (int i = 0; i < DUEL_N; i++) {
        if (conc_barrier_wait(d->b, WAIT_S, NULL) != 0)
            return -1;
        d->ran[i] = conc_future_set_running(d->fs[i]);
    }
    return 0;
}

static int
duel_canceller(void *arg)
{
    struct duel *d = arg;
    for (int i = 0; i < DUEL_N; i++) {
        if (conc_barrier_wait(d->b, WAIT_S, NULL) != 0)
            return -1;
        d->cancelled[i] = conc_future_cancel(d->fs[i]);
    }
    return 0;
}

/* Python's set_running_or_notify_cancel and cancel exclude each other:
 * exactly one of them wins, however close together they come. */
static void
test_cancel_races_set_running(void **state)
{
    (void)state;
    struct duel *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_conc_ok(conc_barrier_new(2, NULL, &d->b));
    for (int i = 0; i < DUEL_N; i++)
        d->fs[i] = new_future();
    conc_thread *a = start_thread(duel_runner, d);
    conc_thread *c = start_thread(duel_canceller, d);
    join_thread(a);
    join_thread(c);
    int both = 0, wrong_state = 0;
    for (int i = 0; i < DUEL_N; i++) {
        assert_true(d->ran[i] == 0 || d->ran[i] == 1);
        assert_true(d->cancelled[i] == 0 || d->cancelled[i] == 1);
        both += d->ran[i] && d->cancelled[i];
        wrong_state +=
            conc_future_state_of(d->fs[i]) !=
            (d->ran[i] ? CONC_FUTURE_RUNNING : CONC_FUTURE_CANCELLED);
        conc_future_free(d->fs[i]);
    }
    conc_barrier_free(d->b);
    free(d);
    if (both || wrong_state)
        fail_msg("of %d duels, cancel and set_running both won %d times; "
                 "%d futures ended in the loser's state",
                 DUEL_N, both, wrong_state);
}

/* ---- Many threads at once ---------------------------------------------------
 */

#define STRESS_N         2000
#define STRESS_PRODUCERS 4

struct stress {
    conc_future *fs[STRESS_N];
    atomic_int callbacks[STRESS_N];
    atomic_int ran[STRESS_N];       /* set_running returned 1 */
    atomic_int cancelled[STRESS_N]; /* cancel returned 1 */
    conc_event *go;
    atomic_int bad[5]; /* failures seen by each kind of thread */
};

enum { BAD_PRODUCER, BAD_ADDER, BAD_READER, BAD_WAITER, BAD_ITERATOR };

struct stress_arg {
    struct stress *s;
    int id;
};

static int
stress_cb(void *arg, conc_future *f)
{
    atomic_int *counter = arg;
    if (!conc_future_done(f))
        return CONC_ESTATE;
    atomic_fetch_add(counter, 1);
    return 0;
}

static int
stress_producer(void *arg)
{
    struct stress_arg *a = arg;
    struct stress *s = a->s;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    for (int i = a->id; i < STRESS_N; i += STRESS_PRODUCERS) {
        int r = conc_future_set_running(s->fs[i]);
        if (r == 0)
            continue; /* cancelled first */
        if (r != 1) {
            atomic_fetch_add(&s->bad[BAD_PRODUCER], 1);
            continue;
        }
        atomic_store(&s->ran[i], 1);
        int rc = (i % 2)
                     ? conc_future_set_exception(s->fs[i], CONC_EVALUE, "odd")
                     : conc_future_set_result(s->fs[i], &i, sizeof i);
        if (rc != 0)
            atomic_fetch_add(&s->bad[BAD_PRODUCER], 1);
    }
    return 0;
}

static int
stress_canceller(void *arg)
{
    struct stress *s = arg;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    for (int i = 0; i < STRESS_N; i += 3)
        if (conc_future_cancel(s->fs[i]) == 1)
            atomic_store(&s->cancelled[i], 1);
    return 0;
}

/* Adds a second callback while the futures complete. */
static int
stress_adder(void *arg)
{
    struct stress *s = arg;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    for (int i = STRESS_N - 1; i >= 0; i--)
        if (conc_future_add_done_callback(s->fs[i], stress_cb,
                                          &s->callbacks[i]) != 0)
            atomic_fetch_add(&s->bad[BAD_ADDER], 1);
    return 0;
}

/* Reads every result as it comes. */
static int
stress_reader(void *arg)
{
    struct stress *s = arg;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    for (int i = 0; i < STRESS_N; i++) {
        const void *data;
        size_t len;
        int rc = conc_future_result(s->fs[i], WAIT_S, &data, &len);
        int ok = (rc == CONC_ECANCELED) ||
                 (i % 2 && rc == CONC_EVALUE &&
                  strcmp(conc_failure_message(), "odd") == 0) ||
                 (!(i % 2) && rc == 0 && len == sizeof i &&
                  memcmp(data, &i, sizeof i) == 0);
        if (!ok)
            atomic_fetch_add(&s->bad[BAD_READER], 1);
    }
    return 0;
}

static int
stress_waiter(void *arg)
{
    struct stress *s = arg;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    if (conc_wait(s->fs, STRESS_N, CONC_ALL_COMPLETED, WAIT_S, NULL) != 0)
        atomic_fetch_add(&s->bad[BAD_WAITER], 1);
    return 0;
}

static int
stress_iterator(void *arg)
{
    struct stress *s = arg;
    conc_as_completed_iter *it;
    if (conc_as_completed(s->fs, STRESS_N, WAIT_S, &it) != 0)
        return -1;
    if (conc_event_wait(s->go, WAIT_S) != 0)
        return -1;
    int n = 0, rc;
    conc_future *f;
    while ((rc = conc_as_completed_next(it, &f)) == 0) {
        if (!conc_future_done(f))
            atomic_fetch_add(&s->bad[BAD_ITERATOR], 1);
        n++;
    }
    if (rc != CONC_ECLOSED || n != STRESS_N)
        atomic_fetch_add(&s->bad[BAD_ITERATOR], 1);
    conc_as_completed_free(it);
    return 0;
}

static void
test_stress(void **state)
{
    (void)state;
    struct stress *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->go = new_event();
    for (int i = 0; i < STRESS_N; i++) {
        s->fs[i] = new_future();
        assert_conc_ok(conc_future_add_done_callback(s->fs[i], stress_cb,
                                                     &s->callbacks[i]));
    }
    conc_thread *t[STRESS_PRODUCERS + 5];
    struct stress_arg args[STRESS_PRODUCERS];
    int nt = 0;
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        args[i] = (struct stress_arg){.s = s, .id = i};
        t[nt++] = start_thread(stress_producer, &args[i]);
    }
    t[nt++] = start_thread(stress_canceller, s);
    t[nt++] = start_thread(stress_adder, s);
    t[nt++] = start_thread(stress_reader, s);
    t[nt++] = start_thread(stress_waiter, s);
    t[nt++] = start_thread(stress_iterator, s);
    conc_event_set(s->go);
    for (int i = 0; i < nt; i++)
        join_thread(t[i]);
    for (int i = 0; i < 5; i++)
        if (atomic_load(&s->bad[i]))
            fail_msg("stress thread kind %d saw %d failures", i,
                     atomic_load(&s->bad[i]));
    int cancelled = 0;
    for (int i = 0; i < STRESS_N; i++) {
        /* Exactly one of cancel and set_running won. */
        assert_int_equal(
            atomic_load(&s->ran[i]) + atomic_load(&s->cancelled[i]), 1);
        cancelled += atomic_load(&s->cancelled[i]);
        assert_int_equal(conc_future_cancelled(s->fs[i]),
                         atomic_load(&s->cancelled[i]));
        assert_int_equal(atomic_load(&s->callbacks[i]), 2);
        conc_future_free(s->fs[i]);
    }
    assert_true(cancelled <= (STRESS_N + 2) / 3);
    conc_event_free(s->go);
    free(s);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_states),
        conc_unit_test(test_result_copy_and_empty),
        conc_unit_test(test_exception),
        conc_unit_test(test_cancel),
        conc_unit_test(test_invalid),
        conc_unit_test(test_timeouts),
        conc_unit_test(test_waiters_wake),
        conc_unit_test(test_callbacks_order_and_thread),
        conc_unit_test(test_callbacks_on_exception_and_cancel),
        conc_unit_test(test_callback_failure_reported),
        conc_unit_test(test_callback_reentrant),
        conc_unit_test(test_callback_enomem),
        conc_unit_test(test_enomem),
        conc_unit_test(test_refcount),
        conc_unit_test(test_wait_already_done),
        conc_unit_test(test_wait_timeouts),
        conc_unit_test(test_wait_invalid),
        conc_unit_test(test_wait_wakes),
        conc_unit_test(test_as_completed_order),
        conc_unit_test(test_as_completed_waits),
        conc_unit_test(test_as_completed_timeout),
        conc_unit_test(test_as_completed_invalid),
        conc_unit_test(test_cancel_races_set_running),
        conc_unit_test(test_stress),
    };
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    return conc_run_tests(tests);
}
