/* No colours across processes: a coroutine joins a process, receives from a
 * pipe another process writes, waits on a process-shared event, and waits
 * for a process pool's result, while its loop keeps running a ticker.
 *
 * No test relies on timing: the other process is held until the ticker, a
 * task of the same loop, has ticked five times and lets it go. If the
 * waiting coroutine blocked its loop, the ticker could not tick, the other
 * process would never go, and the wait would time out (or, for the waits
 * without a timeout, CTest's limit would end the program). */
#include <string.h>

#include "conc_test.h"

#define TICKS_BEFORE_GO 5

struct shared {
    conc_event *go;   /* set by the ticker: the other process may act */
    conc_event *done; /* set by the other process (the event test) */
};

struct ticker {
    struct shared *sh;
    int ticks;
    int stop;
};

static int
tick_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct ticker *t = *(struct ticker *const *)arg;
    while (!t->stop) {
        int r = conc_aio_sleep(0.001);
        if (r < 0)
            return r;
        if (++t->ticks == TICKS_BEFORE_GO)
            conc_event_set(t->sh->go);
    }
    return 0;
}

/* The scenario: a ticker and `waiter` run on one loop. */
struct scenario {
    struct shared *sh;
    conc_task_fn waiter;
    void *ctx;
};

static int
scenario_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct scenario *s = arg;
    struct ticker t = {.sh = s->sh}, *tp = &t;
    conc_future *ticker, *w;
    int r = conc_aio_create_task(tick_task, &tp, sizeof tp, NULL, &ticker);
    if (r < 0)
        return r;
    r = conc_aio_create_task(s->waiter, &s->ctx, sizeof s->ctx, NULL, &w);
    if (r == 0) {
        r = conc_aio_await(w);
        conc_future_free(w);
    }
    t.stop = 1;
    conc_aio_await(ticker);
    conc_future_free(ticker);
    if (r == 0 && t.ticks < TICKS_BEFORE_GO)
        return conc_fail(CONC_ESTATE, "only %d ticks", t.ticks);
    return r;
}

static conc_arena *arena;
static struct shared *sh;

static int
setup_shared(void **state)
{
    int r = conc_test_setup(state); /* the baseline: before the arena */
    assert_conc_ok(conc_arena_new(1 << 20, &arena));
    void *mem;
    assert_conc_ok(conc_arena_alloc(arena, sizeof *sh, &mem));
    sh = mem;
    conc_sync_opts o = {.arena = arena};
    assert_conc_ok(conc_event_new(&o, &sh->go));
    assert_conc_ok(conc_event_new(&o, &sh->done));
    return r;
}

static int
teardown_shared(void **state)
{
    conc_event_free(sh->go);
    conc_event_free(sh->done);
    conc_arena_free(arena);
    return conc_test_teardown(state);
}

static int
run_scenario(conc_task_fn waiter, void *ctx)
{
    struct scenario s = {sh, waiter, ctx};
    return conc_aio_run(scenario_main, &s, sizeof s, NULL);
}

/* ---- The other process ------------------------------------------------------
 */

static int
child_exits(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return conc_event_wait(sh->go, 30) == 0 ? 7 : 1;
}

static int
child_sets_done(const void *arg, size_t len)
{
    (void)arg, (void)len;
    if (conc_event_wait(sh->go, 30) != 0)
        return 1;
    conc_event_set(sh->done);
    return 0;
}

static int
child_sends(const void *arg, size_t len)
{
    (void)len;
    conc_conn *c = *(conc_conn *const *)arg;
    if (conc_event_wait(sh->go, 30) != 0)
        return 1;
    return conc_conn_send_bytes(c, "hello", 5, 30) < 0 ? 2 : 0;
}

static int
start_child(conc_process_fn fn, const void *arg, size_t len, conc_process **out)
{
    int r = conc_process_new(fn, arg, len, NULL, out);
    if (r == 0 && (r = conc_process_start(*out)) < 0)
        conc_process_free(*out);
    return r;
}

/* ---- Waiters
 * ------------------------------------------------------------------ */

static int
joins(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_process *p = *(conc_process *const *)arg;
    /* Without a timeout, the thread would block in waitid. */
    int r = conc_process_join(p, CONC_FOREVER);
    if (r < 0)
        return r;
    int code;
    conc_process_exitcode(p, &code);
    return code == 7 ? 0 : conc_fail(CONC_ESTATE, "exit code %d", code);
}

static void
test_join_process(void **state)
{
    (void)state;
    conc_process *p;
    assert_conc_ok(start_child(child_exits, NULL, 0, &p));
    assert_conc_ok(run_scenario(joins, p));
    conc_process_free(p);
}

static int
waits_event(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return conc_event_wait(sh->done, 30);
}

static void
test_shared_event(void **state)
{
    (void)state;
    conc_process *p;
    assert_conc_ok(start_child(child_sets_done, NULL, 0, &p));
    assert_conc_ok(run_scenario(waits_event, NULL));
    assert_conc_ok(conc_process_join(p, 30));
    conc_process_free(p);
}

static int
receives(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_conn *c = *(conc_conn *const *)arg;
    conc_buf b = CONC_BUF_INIT;
    /* Without a timeout, the thread would block in recv. */
    int r = conc_conn_recv_bytes(c, CONC_FOREVER, &b);
    if (r == 0 && (b.len != 5 || memcmp(b.data, "hello", 5) != 0))
        r = conc_fail(CONC_ESTATE, "received %zu bytes", b.len);
    conc_buf_free(&b);
    return r;
}

static void
test_recv_from_process(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_process *p;
    assert_conc_ok(start_child(child_sends, &b, sizeof b, &p));
    assert_conc_ok(run_scenario(receives, a));
    assert_conc_ok(conc_process_join(p, 30));
    conc_process_free(p);
    conc_conn_free(a);
    conc_conn_free(b);
}

static int
pool_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    if (conc_event_wait(sh->go, 30) != 0)
        return CONC_ETIMEDOUT;
    return conc_buf_append(result, "pooled", 6);
}

static int
awaits_pool(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_pool *pool = *(conc_pool *const *)arg;
    conc_async_result *f;
    int r = conc_pool_apply_async(pool, pool_task, NULL, 0, NULL, &f);
    if (r < 0)
        return r;
    const void *data;
    size_t n;
    r = conc_future_result(f, 30, &data, &n);
    if (r == 0 && (n != 6 || memcmp(data, "pooled", 6) != 0))
        r = conc_fail(CONC_ESTATE, "wrong result");
    conc_future_free(f);
    return r;
}

static void
test_process_pool_future(void **state)
{
    (void)state;
    conc_pool *pool;
    assert_conc_ok(conc_pool_new(&(conc_pool_opts){.processes = 1}, &pool));
    assert_conc_ok(run_scenario(awaits_pool, pool));
    assert_conc_ok(conc_pool_close(pool));
    assert_conc_ok(conc_pool_join(pool, 30));
    conc_pool_free(pool);
}

#define shared_test(f)                                                         \
    cmocka_unit_test_setup_teardown(f, setup_shared, teardown_shared)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        shared_test(test_join_process),
        shared_test(test_shared_event),
        shared_test(test_recv_from_process),
        shared_test(test_process_pool_future),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
