/* The rules every module follows (docs/conventions.md), checked across the
 * API: a conc_buf out-parameter is replaced on success and left unchanged
 * on failure; "closed" is CONC_ECLOSED; timeouts are converted one way and
 * every blocking call has one. (The NULL-argument rule is checked by
 * test_contract_null, generated from the headers.) */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"
#include "tasks.h"

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

/* A buffer holding "old", to see that a failed call leaves it so. */
static conc_buf
old_buf(void)
{
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_buf_append(&b, "old", 3));
    return b;
}

static void
assert_old(const conc_buf *b)
{
    assert_int_equal(b->len, 3);
    assert_memory_equal(b->data, "old", 3);
}

/* ---- conc_buf out-parameters -------------------------------------------- */

static void
test_buf_conn_recv_bytes(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_buf got = old_buf();
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ETIMEDOUT);
    assert_old(&got);
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(b, WAIT_S, &got));
    assert_int_equal(got.len, 1); /* replaced, not appended */
    conc_buf_free(&got);
    got = old_buf();
    conc_conn_free(a); /* the stream ends before any big message */
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ECLOSED);
    assert_old(&got);
    conc_buf_free(&got);
    conc_conn_free(b);
}

static void
test_buf_mpqueue_get(void **state)
{
    (void)state;
    conc_mpqueue *q;
    assert_conc_ok(conc_mpqueue_new(NULL, &q));
    conc_buf got = old_buf();
    assert_conc(conc_mpqueue_get(q, 0, &got), CONC_EEMPTY);
    assert_old(&got);
    assert_conc_ok(conc_mpqueue_put(q, "x", 1, 0));
    assert_conc_ok(conc_mpqueue_get(q, 0, &got));
    assert_int_equal(got.len, 1);
    assert_memory_equal(got.data, "x", 1);
    conc_buf_free(&got);
    got = old_buf();
    assert_conc_ok(conc_mpqueue_close(q));
    assert_conc(conc_mpqueue_get(q, 0, &got), CONC_ECLOSED);
    assert_old(&got);
    conc_buf_free(&got);
    conc_mpqueue_free(q);
}

static void
test_buf_pool_apply(void **state)
{
    (void)state;
    conc_pool *p;
    assert_conc_ok(conc_threadpool_new(&(conc_pool_opts){.processes = 1}, &p));
    conc_buf got = old_buf();
    int v = 3;
    assert_conc(conc_pool_apply(p, fail_task, &v, sizeof v, CONC_FOREVER, &got),
                CONC_EVALUE);
    assert_old(&got);
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, &got));
    assert_int_equal(got.len, sizeof(int));
    assert_int_equal(*(int *)got.data, 9);
    conc_buf_free(&got);
    conc_pool_free(p);
}

static void
test_buf_communicate(void **state)
{
    (void)state;
    conc_popen *p;
    assert_conc_ok(
        conc_popen_new(ARGV("sh", "-c", "echo one; exec sleep 100"),
                       &(conc_popen_opts){.stdout_mode = CONC_STDIO_PIPE}, &p));
    conc_buf out = old_buf();
    assert_conc(conc_popen_communicate(p, NULL, 0, 0.05, &out, NULL),
                CONC_ETIMEDOUT);
    assert_old(&out);
    assert_conc_ok(conc_popen_kill(p));
    /* The call that succeeds gives all the output, the part read by the
     * call that timed out included, in place of what out held. */
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, WAIT_S, &out, NULL));
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "one\n", 4);
    conc_buf_free(&out);
    conc_popen_free(p);
}

static void
test_buf_check_output(void **state)
{
    (void)state;
    conc_buf out = old_buf();
    assert_conc(conc_check_output(ARGV("sh", "-c", "echo partial; exit 2"),
                                  NULL, WAIT_S, &out),
                CONC_EPROCESS);
    assert_old(&out);
    assert_conc(
        conc_check_output(ARGV("sh", "-c", "echo partial; exec sleep 100"),
                          NULL, 0.05, &out),
        CONC_ETIMEDOUT);
    assert_old(&out);
    assert_conc_ok(conc_check_output(ARGV("echo", "hi"), NULL, WAIT_S, &out));
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "hi\n", 3);
    conc_buf_free(&out);
}

/* ---- Timeouts ----------------------------------------------------------- */

/* CONC_FOREVER is the only "forever": another negative timeout, such as a
 * budget that ran out, behaves as 0. NaN is CONC_EINVAL. */
static void
test_timeout_negative_is_zero(void **state)
{
    (void)state;
    conc_event *ev;
    assert_conc_ok(conc_event_new(NULL, &ev));
    assert_conc(conc_event_wait(ev, -0.5), CONC_ETIMEDOUT);
    assert_conc(conc_event_wait(ev, -INFINITY), CONC_ETIMEDOUT);
    assert_conc(conc_event_wait(ev, NAN), CONC_EINVAL);
    conc_event_free(ev);
    conc_queue *q;
    assert_conc_ok(conc_queue_new(NULL, &q));
    void *item;
    assert_conc(conc_queue_get(q, -2.0, &item), CONC_EEMPTY);
    conc_queue_free(q);
    conc_lock *l;
    assert_conc_ok(conc_lock_new(NULL, &l));
    assert_conc_ok(conc_lock_acquire(l, -1e-9));
    assert_conc(conc_lock_acquire(l, -3.0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_lock_release(l));
    conc_lock_free(l);
}

/* Sends until the connection's buffer is full: the send that finds no
 * room waits its timeout and fails with CONC_ETIMEDOUT, whole. */
static void
fill_until_timeout(conc_conn *tx)
{
    static const uint8_t chunk[512];
    for (int i = 0; i < 1 << 16; i++) {
        double t0 = conc_monotonic();
        int r = conc_conn_send_bytes(tx, chunk, sizeof chunk, SHORT_S);
        if (r == CONC_ETIMEDOUT) {
            assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
            return;
        }
        assert_conc_ok(r);
    }
    fail_msg("the connection never filled up");
}

static void
test_timeout_conn_send(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b)); /* a socket pair */
    assert_conc(conc_conn_send_bytes(a, "x", 1, NAN), CONC_EINVAL);
    assert_conc(conc_conn_send_fd(a, 0, NAN), CONC_EINVAL);
    fill_until_timeout(a);
    double t0 = conc_monotonic();
    assert_conc(conc_conn_send_fd(a, 0, SHORT_S), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_conc(conc_conn_send_bytes(a, "x", 1, 0), CONC_ETIMEDOUT);
    conc_conn_free(a);
    conc_conn_free(b);
    /* A pipe: its writes are bounded in size so they never block. */
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &a, &b));
    fill_until_timeout(b);
    conc_conn_free(a);
    conc_conn_free(b);
}

static void
test_timeout_pool_apply(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p;
    assert_conc_ok(conc_threadpool_new(&(conc_pool_opts){.processes = 1}, &p));
    int v = 4;
    conc_buf out = CONC_BUF_INIT;
    assert_conc(conc_pool_apply(p, square_task, &v, sizeof v, NAN, &out),
                CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_pool_apply(p, held_task, &v, sizeof v, SHORT_S, &out),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_int_equal(out.len, 0);
    release_gate();
    assert_conc_ok(conc_pool_apply(p, square_task, &v, sizeof v, WAIT_S, &out));
    assert_int_equal(*(int *)out.data, 16);
    conc_buf_free(&out);
    conc_pool_free(p);
    fixture_close();
}

static void
test_timeout_pool_map(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p;
    assert_conc_ok(conc_threadpool_new(&(conc_pool_opts){.processes = 1}, &p));
    int in[2] = {2, 3}, out[2] = {0, 0};
    conc_items items = CONC_ITEMS(in, 2);
    assert_conc(
        conc_pool_map(p, square_task, &items, out, sizeof *out, NULL, NAN),
        CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(
        conc_pool_map(p, held_task, &items, out, sizeof *out, NULL, SHORT_S),
        CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    /* The map goes on: out stays valid until the pool is joined. */
    release_gate();
    assert_conc_ok(conc_pool_close(p));
    assert_conc_ok(conc_pool_join(p, WAIT_S));
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 9);
    conc_pool_free(p);
    fixture_close();
}

static void
test_timeout_executor_shutdown(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex;
    assert_conc_ok(
        conc_thread_executor_new(&(conc_executor_opts){.max_workers = 1}, &ex));
    int v = 2;
    assert_conc_ok(conc_executor_submit(ex, held_task, &v, sizeof v, NULL));
    wait_started(1);
    assert_conc(conc_executor_shutdown(ex, 1, 0, NAN), CONC_EINVAL);
    double t0 = conc_monotonic();
    assert_conc(conc_executor_shutdown(ex, 1, 0, SHORT_S), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    /* Shut down all the same. */
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, NULL),
                CONC_ECLOSED);
    release_gate();
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, WAIT_S));
    conc_executor_free(ex);
    fixture_close();
}

static void
test_timeout_forkserver_stop(void **state)
{
    (void)state;
    assert_conc(conc_forkserver_stop(NAN), CONC_EINVAL);
    assert_conc_ok(conc_forkserver_stop(0)); /* not running */
    assert_conc_ok(conc_forkserver_start());
    assert_conc_ok(conc_forkserver_stop(WAIT_S));
    assert_conc_ok(conc_forkserver_stop(WAIT_S));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_buf_conn_recv_bytes),
        conc_unit_test(test_buf_mpqueue_get),
        conc_unit_test(test_buf_pool_apply),
        conc_unit_test(test_buf_communicate),
        conc_unit_test(test_buf_check_output),
        conc_unit_test(test_timeout_negative_is_zero),
        conc_unit_test(test_timeout_conn_send),
        conc_unit_test(test_timeout_pool_apply),
        conc_unit_test(test_timeout_pool_map),
        conc_unit_test(test_timeout_executor_shutdown),
        conc_unit_test(test_timeout_forkserver_stop),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
