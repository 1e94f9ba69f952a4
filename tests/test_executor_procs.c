/* Executors and their workers: initializers (a failing one breaks the
 * executor) and descriptor passing, on threads and on processes; then, for
 * process executors alone, workers that die inside a task (SIGKILL, segfault,
 * abort, exit) and fail only that task, an idle worker killed from outside,
 * task time limits, max_tasks_per_child, and workers killed at random while
 * many tasks run. The common behaviour is in test_executor.c.
 *
 * Tasks that must stay running wait on the shared gate (tasks.h). Nothing
 * sleeps to synchronize and every wait is bounded. */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tasks.h"

/* ---- Tasks of this program (more in tasks.h) ----------------------------- */

static int
failing_init_fn(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    atomic_fetch_add(&fx.sh->init_runs, 1);
    return conc_fail(CONC_EPERM, "initializer refused");
}

/* Takes its descriptor, writes its argument and closes it itself. */
static int
fd_take_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    int fd = conc_task_take_fd();
    if (fd < 0)
        return conc_fail(CONC_EBADF, "no descriptor");
    ssize_t w = write(fd, arg, len);
    close(fd);
    return w == (ssize_t)len ? 0 : conc_fail(CONC_EPIPE, "short write");
}

static int
no_fd_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    int r[2] = {conc_task_fd(), conc_task_take_fd()};
    return conc_buf_append(result, r, sizeof r);
}

/* ---- Initializer --------------------------------------------------------- */

static void
body_initializer(enum kind k)
{
    fixture_open();
    int tag = 1234;
    conc_executor_opts o = {.max_workers = 2,
                            .initializer = init_fn,
                            .initarg = &tag,
                            .initarg_len = sizeof tag};
    conc_executor *ex = new_exec(k, &o);
    tag = 0; /* the executor copied it */
    conc_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = submit_int(ex, tag_task, 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(future_int(fs[i]), 1234);
        conc_future_free(fs[i]);
    }
    conc_executor_free(ex);
    int runs = atomic_load(&fx.sh->init_runs);
    assert_true(runs >= 1 && runs <= 2);
    fixture_close();
}

BOTH(body_initializer)

static void
body_initializer_fails(enum kind k)
{
    fixture_open();
    conc_executor_opts o = {.max_workers = 2, .initializer = failing_init_fn};
    conc_executor *ex = NULL;
    int rc = k == THREADS ? conc_thread_executor_new(&o, &ex)
                          : conc_process_executor_new(&o, &ex);
    if (rc == CONC_EBROKEN) {
        /* Process workers start at creation: the failure may show here. */
        assert_true(k == PROCESSES);
        assert_null(ex);
        fixture_close();
        return;
    }
    assert_conc_ok(rc);
    conc_future *f = NULL;
    int v = 2;
    rc = conc_executor_submit(ex, square_task, &v, sizeof v, &f);
    if (rc == 0) {
        assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EBROKEN);
        conc_future_free(f);
        f = NULL;
    } else {
        assert_conc(rc, CONC_EBROKEN);
    }
    /* Once broken, always broken. */
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, &f),
                CONC_EBROKEN);
    assert_null(f);
    assert_true(atomic_load(&fx.sh->init_runs) >= 1);
    conc_executor_free(ex);
    fixture_close();
}

BOTH(body_initializer_fails)

/* ---- Descriptor passing -------------------------------------------------- */

/* Reads exactly n bytes within WAIT_S. */
static void
read_full(int fd, char *buf, size_t n)
{
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t r = read(fd, buf, n);
        assert_true(r > 0);
        buf += r;
        n -= (size_t)r;
    }
}

/* Whether the other end is closed everywhere within WAIT_S. */
static int
wait_eof(int fd)
{
    char c;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, (int)(WAIT_S * 1000)) != 1)
        return 0;
    return read(fd, &c, 1) == 0;
}

static void
body_fd_passing(enum kind k)
{
    fixture_open();
    conc_executor *ex = new_exec(k, &(conc_executor_opts){.max_workers = 2});
    assert_int_equal(conc_task_fd(), -1);
    for (int take = 0; take < 2; take++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        conc_submit_opts so = {.has_fd = 1, .fd = sv[1]};
        conc_future *f = NULL;
        assert_conc_ok(conc_executor_submit_with(
            ex, take ? fd_take_task : fd_write_task, "hello", 5, &so, &f));
        /* The executor has its own copy. */
        close(sv[1]);
        char buf[6] = {0};
        read_full(sv[0], buf, 5);
        assert_string_equal(buf, "hello");
        assert_conc_ok(conc_future_result(f, WAIT_S, NULL, NULL));
        conc_future_free(f);
        /* Every copy is closed once the task is done. */
        assert_true(wait_eof(sv[0]));
        close(sv[0]);
    }
    /* A task with no descriptor. */
    conc_future *f = NULL;
    assert_conc_ok(conc_executor_submit_with(
        ex, no_fd_task, NULL, 0, &(conc_submit_opts){.fd = -1}, &f));
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, 2 * sizeof(int));
    assert_int_equal(((const int *)data)[0], -1);
    assert_int_equal(((const int *)data)[1], -1);
    conc_future_free(f);
    assert_conc_ok(
        conc_executor_submit_with(ex, no_fd_task, NULL, 0, NULL, &f));
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(((const int *)data)[0], -1);
    conc_future_free(f);
    conc_executor_free(ex);
    fixture_close();
}

BOTH(body_fd_passing)

/* ---- Process workers that die -------------------------------------------- */

static void
run_death(enum death how, const char *what)
{
    fixture_open();
    conc_executor *ex =
        new_exec(PROCESSES, &(conc_executor_opts){.max_workers = 2});
    conc_future *f = submit_int(ex, die_task, how);
    conc_clear_failure();
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EBROKEN);
    int pid = atomic_load(&fx.sh->last_pid);
    check_death_message(conc_failure_message(), pid, what);
    check_death_message(conc_future_message(f), pid, what);
    conc_future_free(f);

    /* The executor replaced the worker: two tasks run at once again. */
    conc_future *a = submit_int(ex, held_task, 5);
    conc_future *b = submit_int(ex, held_task, 6);
    wait_started(2);
    release_gate();
    assert_int_equal(future_int(a), 25);
    assert_int_equal(future_int(b), 36);
    conc_future_free(a);
    conc_future_free(b);
    assert_int_equal(conc_executor_max_workers(ex), 2);
    conc_executor_free(ex);
    fixture_close();
}

DEATH_TESTS_OF(run_death)

/* A death fails only the task that was running in that worker. */
static void
test_death_spares_others(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex =
        new_exec(PROCESSES, &(conc_executor_opts){.max_workers = 2});
    conc_future *a = submit_int(ex, held_task, 7);
    wait_started(1);
    conc_future *d = submit_int(ex, die_task, DIE_KILL);
    assert_conc(conc_future_result(d, WAIT_S, NULL, NULL), CONC_EBROKEN);
    conc_future *b = submit_int(ex, square_task, 8);
    assert_int_equal(future_int(b), 64);
    assert_int_equal(conc_future_running(a), 1);
    release_gate();
    assert_int_equal(future_int(a), 49);
    conc_future_free(a);
    conc_future_free(b);
    conc_future_free(d);
    conc_executor_free(ex);
    fixture_close();
}

/* An idle worker killed from outside is replaced; no task fails. */
static void
test_idle_worker_killed(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex =
        new_exec(PROCESSES, &(conc_executor_opts){.max_workers = 1});
    struct tagged w = run_whoami(ex);
    assert_int_equal(kill(w.pid, SIGKILL), 0);
    /* Once reaped, the executor knows. */
    assert_true(conc_test_wait_until(process_gone, &w.pid, WAIT_S));
    for (int i = 0; i < 20; i++) {
        conc_future *f = submit_int(ex, square_task, i);
        assert_int_equal(future_int(f), i * i);
        conc_future_free(f);
    }
    assert_int_not_equal(run_whoami(ex).pid, w.pid);
    conc_executor_free(ex);
    fixture_close();
}

static void
test_task_timeout(void **state)
{
    (void)state;
    fixture_open();
    conc_executor_opts o = {.max_workers = 1, .task_timeout = 0.2};
    conc_executor *ex = new_exec(PROCESSES, &o);
    /* Under the limit: fine. */
    conc_future *f = submit_int(ex, square_task, 3);
    assert_int_equal(future_int(f), 9);
    conc_future_free(f);

    double t0 = conc_monotonic();
    f = submit_int(ex, held_task, 1);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.2 - SLACK_S);
    conc_future_free(f);

    /* The worker was killed and replaced. */
    struct tagged w = run_whoami(ex);
    assert_int_not_equal(w.pid, pid);
    assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
    f = submit_int(ex, square_task, 4);
    assert_int_equal(future_int(f), 16);
    conc_future_free(f);
    conc_executor_free(ex);
    fixture_close();
}

static void
test_max_tasks_per_child(void **state)
{
    (void)state;
    fixture_open();
    conc_executor_opts o = {.max_workers = 1, .max_tasks_per_child = 2};
    conc_executor *ex = new_exec(PROCESSES, &o);
    int pids[6];
    for (int i = 0; i < 6; i++)
        pids[i] = run_whoami(ex).pid;
    for (int i = 0; i < 6; i += 2) {
        assert_int_equal(pids[i], pids[i + 1]);
        if (i)
            assert_int_not_equal(pids[i], pids[i - 1]);
    }
    assert_int_not_equal(pids[0], pids[4]);
    assert_int_not_equal(pids[0], (int)getpid());
    conc_executor_free(ex);
    fixture_close();
}

/* Random deaths: tasks record their pid in their item's slot while they
 * run; a killer thread claims a slot (so the worker is certainly alive and
 * running that task) and kills the worker. Some items also kill
 * themselves. Every task must succeed with the right result or fail with
 * CONC_EBROKEN, at most as many as were killed, and nothing hangs. */
#define RD_TASKS 300
#define RD_KILLS 8

static void
test_random_deaths(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex =
        new_exec(PROCESSES, &(conc_executor_opts){.max_workers = 3});
    struct killer k = {
        .ntasks = RD_TASKS, .max_kills = RD_KILLS, .next_slot = 11};
    conc_thread *t = start_thread(killer_fn, &k);
    conc_future *fs[RD_TASKS];
    for (int i = 0; i < RD_TASKS; i++)
        fs[i] = submit_int(ex, rd_task, i);
    int failed = 0, self = 0;
    for (int i = 0; i < RD_TASKS; i++) {
        const void *data;
        size_t len;
        int rc = conc_future_result(fs[i], WAIT_S, &data, &len);
        if (i % RD_SELF == 5) {
            self++;
            assert_conc(rc, CONC_EBROKEN);
        }
        if (rc == CONC_EBROKEN) {
            failed++;
        } else {
            assert_conc_ok(rc);
            assert_int_equal(len, sizeof(int));
            assert_int_equal(*(const int *)data, i * 3 + 1);
        }
        conc_future_free(fs[i]);
    }
    atomic_store(&k.stop, 1);
    join_thread(t);
    assert_true(failed >= self);
    assert_true(failed <= self + k.kills);
    /* Still serving. */
    conc_future *f = submit_int(ex, square_task, 12);
    assert_int_equal(future_int(f), 144);
    conc_future_free(f);
    conc_executor_free(ex);
    fixture_close();
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        BOTH_TESTS(body_initializer),
        BOTH_TESTS(body_initializer_fails),
        BOTH_TESTS(body_fd_passing),
        DEATH_TESTS,
        conc_unit_test(test_death_spares_others),
        conc_unit_test(test_idle_worker_killed),
        conc_unit_test(test_task_timeout),
        conc_unit_test(test_max_tasks_per_child),
        conc_unit_test(test_random_deaths),
    };
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    return conc_run_tests(tests);
}
