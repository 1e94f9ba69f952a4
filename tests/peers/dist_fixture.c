/* The scale-out test programs' shared setup (dist_fixture.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "conc_test.h"
#include "dist_fixture.h"

struct redis_fixture dist_server;
int dist_have_server;

static const char *queue_prefix = "q";
static int queue_no;

static const char *program_name = "test";

static int
group_setup(void **state)
{
    (void)state;
    dist_have_server =
        redis_fixture_start(&dist_server, DIST_PASSWORD, "always") == 0;
    if (!dist_have_server)
        fprintf(stderr, "%s: no redis-server; its tests are skipped\n",
                program_name);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (dist_have_server) {
        if (dist_server.pid > 0)
            kill(dist_server.pid, SIGCONT);
        redis_fixture_stop(&dist_server);
    }
    return 0;
}

int
dist_fixture_run(const char *name, const char *prefix,
                 const struct CMUnitTest *tests, size_t n)
{
    program_name = name;
    queue_prefix = prefix;
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    conc_test_install_allocator();
    return _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
}

const char *
dist_fixture_queue(char *buf, size_t size)
{
    if (!dist_have_server)
        skip();
    snprintf(buf, size, "%s%d-%d", queue_prefix, (int)getpid(), ++queue_no);
    return buf;
}

pid_t
dist_start_peer(const char *queue, int threads, const char *idle, int max_del,
                int procs)
{
    char th[16], md[16], pr[16];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(md, sizeof md, "%d", max_del);
    snprintf(pr, sizeof pr, "%d", procs);
    char *argv[] = {DIST_PEER,
                    dist_server.url,
                    DIST_PASSWORD,
                    (char *)queue,
                    th,
                    (char *)idle,
                    md,
                    pr,
                    NULL};
    pid_t pid = redis_fixture_spawn(argv);
    assert_true(pid > 0);
    return pid;
}

void
dist_stop_peer(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

void
dist_stop_peer_any(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

conc_dist_executor *
dist_new_executor(const char *queue, const conc_dist_opts *o)
{
    conc_dist_executor *dx = NULL;
    assert_conc_ok(
        conc_dist_executor_new(dist_server.url, DIST_PASSWORD, queue, o, &dx));
    return dx;
}

conc_future *
dist_submit_long(conc_dist_executor *dx, const char *name, long v,
                 double timeout)
{
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, name, &v, sizeof v, timeout, &f));
    return f;
}

long
dist_long_of(const void *data, size_t len)
{
    long v;
    assert_int_equal(len, sizeof v);
    memcpy(&v, data, sizeof v);
    return v;
}

long
dist_long_result(conc_future *f, double timeout)
{
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(f, timeout, &data, &len));
    return dist_long_of(data, len);
}

void
dist_check_squares(conc_future **fs, size_t n, double timeout)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dist_long_result(fs[i], timeout), (long)(i * i));
        conc_future_free(fs[i]);
    }
}

void
dist_submit_zeros(conc_dist_executor *dx, size_t n, double timeout,
                  conc_future **fs)
{
    static long in[DIST_ZEROS_MAX];
    assert_true(n <= DIST_ZEROS_MAX);
    size_t sent = 0;
    conc_items items = CONC_ITEMS(in, n);
    assert_conc_ok(
        conc_dist_submit_many(dx, "square", &items, timeout, fs, &sent));
}

void
dist_free_cancels(conc_dist_executor *dx, double bound, conc_future **fs,
                  size_t n)
{
    double t0 = conc_monotonic();
    conc_dist_executor_free(dx);
    assert_true(conc_monotonic() - t0 < bound);
    for (size_t i = 0; i < n; i++) {
        assert_true(conc_future_cancelled(fs[i]));
        conc_future_free(fs[i]);
    }
}
