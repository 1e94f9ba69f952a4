/* Scale-out over Redis: every blocking call of conc/dist.h returns within
 * its timeout (or its documented bound) while the server does not answer.
 * The server is stopped with SIGSTOP, so that connections hang rather than
 * fail (a killed server refuses at once, which proves nothing about the
 * waits); each test's teardown sends SIGCONT, so no test leaves it stopped.
 * Time checks are one-sided: a call may be quicker, never much slower. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "redis_fixture.h"

#define PASSWORD  "conc-test-pw"
#define LONG_WAIT 20.0
/* The short timeout given to calls while the server is stopped, and how
 * much later than it they may return (loaded machines, sanitizers). */
#define SHORT 0.2
#define SLACK 1.3
/* The bound of the calls that take no timeout, from conc/dist.h. */
#define CANCEL_BOUND 2.0

static struct redis_fixture server;
static int have_server;
static int queue_no;

#define NEED_SERVER()                                                          \
    do {                                                                       \
        if (!have_server)                                                      \
            skip();                                                            \
    } while (0)

static const char *
new_queue(char *buf, size_t size)
{
    snprintf(buf, size, "to%d-%d", (int)getpid(), ++queue_no);
    return buf;
}

/* Stops the server: it keeps its connections and accepts new ones (the
 * kernel completes the handshakes), but answers nothing. */
static void
freeze(void)
{
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
}

static void
thaw(void)
{
    if (have_server && server.pid > 0)
        kill(server.pid, SIGCONT);
}

static int
thaw_teardown(void **state)
{
    thaw();
    return conc_test_teardown(state);
}

#define timeout_test(f)                                                        \
    cmocka_unit_test_setup_teardown(f, conc_test_setup, thaw_teardown)

/* Starts a worker process on `queue` (tests/peers/dist_peer.c). */
static pid_t
start_peer(const char *queue)
{
    char *argv[] = {DIST_PEER, server.url, PASSWORD, (char *)queue,
                    "2",       "5",        "5",      NULL};
    pid_t pid = redis_fixture_spawn(argv);
    assert_true(pid > 0);
    return pid;
}

static void
stop_peer(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static conc_dist_executor *
new_executor(const char *queue, const conc_dist_opts *o)
{
    conc_dist_executor *dx = NULL;
    assert_conc_ok(conc_dist_executor_new(server.url, PASSWORD, queue, o, &dx));
    return dx;
}

static long
long_of(const void *data, size_t len)
{
    long v;
    assert_int_equal(len, sizeof v);
    memcpy(&v, data, sizeof v);
    return v;
}

/* Submits square(v) and waits for its result. */
static long
round_trip(conc_dist_executor *dx, long v)
{
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, "square", &v, sizeof v, LONG_WAIT, &f));
    const void *d = NULL;
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, LONG_WAIT, &d, &len));
    long r = long_of(d, len);
    conc_future_free(f);
    return r;
}

/* ---- Map ----------------------------------------------------------------- */

/* A map whose batch of submits hangs on a stopped server returns
 * CONC_ETIMEDOUT within its timeout (it gave a started batch 5 s), and
 * once the server goes on every item comes back once, in order. */
static void
test_map_next_within_timeout(void **state)
{
    (void)state;
    NEED_SERVER();
    char q[64];
    new_queue(q, sizeof q);
    conc_dist_executor *dx = new_executor(q, NULL);
    pid_t peer = start_peer(q);
    assert_int_equal(round_trip(dx, 7), 49); /* the worker is up */
    enum { N = 40 };
    static long in[N];
    for (long i = 0; i < N; i++)
        in[i] = i;
    conc_items items = CONC_ITEMS(in, N);
    conc_map_opts mo = {.max_in_flight = 16};
    conc_map_iter *m = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", &items, &mo, &m));
    freeze();
    const void *d = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        double t0 = conc_monotonic();
        assert_conc(conc_map_next(m, SHORT, &d, &len), CONC_ETIMEDOUT);
        assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    }
    thaw();
    for (long i = 0; i < N; i++) {
        assert_conc_ok(conc_map_next(m, LONG_WAIT, &d, &len));
        assert_int_equal(long_of(d, len), i * i);
        assert_int_equal(conc_map_index(m), (size_t)i);
    }
    assert_conc(conc_map_next(m, LONG_WAIT, &d, &len), CONC_ECLOSED);
    conc_map_free(m);
    conc_dist_executor_free(dx);
    stop_peer(peer);
}

/* ---- Setup --------------------------------------------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    have_server = redis_fixture_start(&server, PASSWORD, "always") == 0;
    if (!have_server)
        fprintf(stderr,
                "test_dist_timeouts: no redis-server; its tests are skipped\n");
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (have_server) {
        thaw();
        redis_fixture_stop(&server);
    }
    return 0;
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        timeout_test(test_map_next_within_timeout),
    };
    conc_test_install_allocator();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
