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
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1));
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
    assert_conc(conc_pool_apply(p, fail_task, &v, sizeof v, &got), CONC_EVALUE);
    assert_old(&got);
    assert_conc_ok(conc_pool_apply(p, square_task, &v, sizeof v, &got));
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
    assert_conc(conc_check_output(ARGV("sh", "-c", "echo partial; sleep 100"),
                                  NULL, 0.05, &out),
                CONC_ETIMEDOUT);
    assert_old(&out);
    assert_conc_ok(conc_check_output(ARGV("echo", "hi"), NULL, WAIT_S, &out));
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "hi\n", 3);
    conc_buf_free(&out);
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
    };
    return conc_run_tests(tests);
}
