/* Process pools alone, the life of their workers: maxtasksperchild,
 * workers that die (SIGKILL, segfault, abort, exit) failing only their
 * task, through apply, the error callback, map and imap, task_timeout,
 * workers killed at random under imap_unordered, a malformed result frame,
 * and a program that exits while its pool runs. What every engine does is
 * in test_pool.c, once per engine.
 *
 * Tasks that must stay running wait on the shared gate (tasks.h). Nothing
 * sleeps to synchronize and every wait is bounded. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/procs_internal.h"
#include "tasks.h"

/* ---- Process pools: worker lives and deaths ------------------------------ */

static void
test_maxtasksperchild(void **state)
{
    (void)state;
    fixture_open();
    conc_pool_opts o = {.processes = 1, .maxtasksperchild = 2};
    conc_pool *p = new_pool(PROCESSES, &o);
    int pids[6];
    for (int i = 0; i < 6; i++)
        pids[i] = apply_tagged(p, whoami_task, 0).pid;
    for (int i = 0; i < 6; i += 2) {
        assert_int_equal(pids[i], pids[i + 1]);
        if (i)
            assert_int_not_equal(pids[i], pids[i - 1]);
    }
    assert_int_not_equal(pids[0], pids[4]);
    close_join(p);
    fixture_close();
}

static void
run_death(enum death how, const char *what)
{
    fixture_open();
    static struct cb_log log;
    cb_log_init(&log);
    conc_pool *p = pool_of(PROCESSES, 2);
    int v = how;
    conc_clear_failure();
    assert_conc(conc_pool_apply(p, die_task, &v, sizeof v, CONC_FOREVER, NULL),
                CONC_EBROKEN);
    int pid = atomic_load(&fx.sh->last_pid);
    check_death_message(conc_failure_message(), pid, what);

    /* The error callback hears of it too. */
    conc_apply_opts o = {
        .callback = ok_cb, .error_callback = err_cb, .arg = &log};
    conc_async_result *r = apply_int(p, die_task, how, &o);
    assert_conc(conc_async_result_get(r, WAIT_S, NULL, NULL), CONC_EBROKEN);
    conc_async_result_free(r);
    wait_callbacks(&log, 1);
    assert_int_equal(log.code[0], CONC_EBROKEN);
    check_death_message(log.msg[0], atomic_load(&fx.sh->last_pid), what);

    /* Replaced: two tasks run at once again. */
    conc_async_result *a = apply_int(p, held_task, 5, NULL);
    conc_async_result *b = apply_int(p, held_task, 6, NULL);
    wait_started(2);
    release_gate();
    assert_int_equal(result_int(a), 25);
    assert_int_equal(result_int(b), 36);
    conc_async_result_free(a);
    conc_async_result_free(b);
    close_join(p);
    cb_log_fini(&log);
    fixture_close();
}

DEATH_TESTS_OF(run_death)

/* A death during a map fails only the items of the dying chunk. */
static int
die_at_13_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    if (v == 13)
        kill(getpid(), SIGKILL);
    return put_int(result, v * v);
}

static void
test_death_in_map(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p = pool_of(PROCESSES, 2);
    enum { N = 40 };
    int in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    memset(out, 0xff, sizeof out);
    conc_items items = CONC_ITEMS(in, N);
    conc_map_opts one = {.chunksize = 1};
    assert_conc(conc_pool_map(p, die_at_13_task, &items, out, sizeof *out, &one,
                              CONC_FOREVER),
                CONC_EBROKEN);
    for (int i = 0; i < N; i++)
        if (i != 13)
            assert_int_equal(out[i], i * i);
    /* imap: the one item fails, the others come. */
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap(p, die_at_13_task, &items, &one, &it));
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        int rc = conc_map_next(it, WAIT_S, &data, &len);
        if (i == 13) {
            assert_conc(rc, CONC_EBROKEN);
        } else {
            assert_conc_ok(rc);
            assert_int_equal(*(const int *)data, i * i);
        }
    }
    conc_map_free(it);
    close_join(p);
    fixture_close();
}

static void
test_task_timeout(void **state)
{
    (void)state;
    fixture_open();
    conc_pool_opts o = {.processes = 1, .task_timeout = 0.2};
    conc_pool *p = new_pool(PROCESSES, &o);
    int v = 3;
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, NULL));
    double t0 = conc_monotonic();
    conc_async_result *r = apply_int(p, held_task, 1, NULL);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_conc(conc_async_result_get(r, WAIT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.2 - SLACK_S);
    conc_async_result_free(r);
    assert_int_not_equal(apply_tagged(p, whoami_task, 0).pid, pid);
    close_join(p);
    fixture_close();
}

/* Random deaths under imap_unordered: see test_executor_procs.c's twin. */
#define RD_TASKS 200
#define RD_KILLS 6

static void
test_random_deaths(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p = pool_of(PROCESSES, 3);
    static int in[RD_TASKS];
    for (int i = 0; i < RD_TASKS; i++)
        in[i] = i;
    struct killer k = {
        .ntasks = RD_TASKS, .max_kills = RD_KILLS, .next_slot = 11};
    conc_thread *t = start_thread(killer_fn, &k);
    conc_items items = CONC_ITEMS(in, RD_TASKS);
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap_unordered(
        p, rd_task, &items, &(conc_map_opts){.chunksize = 1}, &it));
    int failed = 0, self = 0, n = 0;
    static unsigned char seen[RD_TASKS];
    memset(seen, 0, sizeof seen);
    for (;;) {
        const void *data;
        size_t len;
        int rc = conc_map_next(it, WAIT_S, &data, &len);
        if (rc == CONC_ECLOSED)
            break;
        size_t i = conc_map_index(it);
        assert_true(i < RD_TASKS);
        assert_false(seen[i]);
        seen[i] = 1;
        n++;
        if (i % RD_SELF == 5) {
            self++;
            assert_conc(rc, CONC_EBROKEN);
        }
        if (rc == CONC_EBROKEN) {
            failed++;
        } else {
            assert_conc_ok(rc);
            assert_int_equal(*(const int *)data, (int)i * 3 + 1);
        }
    }
    conc_map_free(it);
    atomic_store(&k.stop, 1);
    join_thread(t);
    assert_int_equal(n, RD_TASKS);
    assert_true(failed >= self);
    assert_true(failed <= self + k.kills);
    int v = 12;
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, &out));
    assert_int_equal(*(int *)out.data, 144);
    conc_buf_free(&out);
    close_join(p);
    fixture_close();
}

/* A program that exits while its pool's workers run: exit terminates the
 * workers, the pool starts no replacement that exit would not wait for,
 * and the program ends. Run in a forked child, whose exit the test awaits
 * with a bound. */
static void
exit_with_busy_pool(void)
{
    conc_pool *p = NULL;
    if (conc_pool_new(&(conc_pool_opts){.processes = 2}, &p) < 0)
        _exit(2);
    for (int i = 0; i < 4; i++)
        if (conc_pool_apply_async(p, held_task, &i, sizeof i, NULL, NULL) < 0)
            _exit(3);
    for (int i = 0; i < 2; i++)
        if (conc_sem_acquire(fx.started, WAIT_S) < 0)
            _exit(4);
    exit(0); /* the pool still runs: exit's handlers must end it */
}

static void
test_exit_while_running(void **state)
{
    (void)state;
    fixture_open();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exit_with_busy_pool();
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    assert_true(pidfd >= 0);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    int ready = poll(&pf, 1, (int)(WAIT_S * 1000));
    if (ready != 1)
        kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(pidfd);
    assert_int_equal(ready, 1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* Its workers were reaped before it ended. */
    int worker = atomic_load(&fx.sh->last_pid);
    assert_true(worker > 0);
    assert_int_equal(kill(worker, 0), -1);
    assert_int_equal(errno, ESRCH);
    fixture_close();
}

/* ---- Without pidfds ------------------------------------------------------ */

/* Makes pidfd_open fail with ENOSYS in this process and everything it
 * starts, as an old kernel or valgrind does. */
static int
refuse_pidfd_open(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* The int result of fn(v) in p, or the task's error. */
static int
apply_get(conc_pool *p, conc_task_fn fn, int v)
{
    conc_async_result *r;
    int rc = conc_pool_apply_async(p, fn, &v, sizeof v, NULL, &r);
    if (rc < 0)
        return rc;
    const void *data;
    size_t len;
    rc = conc_async_result_get(r, WAIT_S, &data, &len);
    if (rc == 0)
        rc = len == sizeof(int) ? *(const int *)data : CONC_EVALUE;
    conc_async_result_free(r);
    return rc;
}

/* In a child without pidfds: a pool starts, runs a task, notices a worker
 * that dies, replaces it, and shuts down. Exits with 0 or the step that
 * failed. */
static _Noreturn void
pool_without_pidfd(void)
{
    conc_pool *p;
    if (refuse_pidfd_open() != 0)
        _exit(10);
    if (conc_pool_new(&(conc_pool_opts){.processes = 2}, &p) < 0)
        _exit(11);
    if (apply_get(p, square_task, 7) != 49)
        _exit(12);
    if (apply_get(p, die_task, DIE_KILL) != CONC_EBROKEN)
        _exit(13);
    for (int i = 0; i < 4; i++)
        if (apply_get(p, square_task, i) != i * i)
            _exit(14);
    if (conc_pool_close(p) < 0 || conc_pool_join(p, WAIT_S) < 0)
        _exit(15);
    conc_pool_free(p);
    _exit(0);
}

static void
test_pool_without_pidfd(void **state)
{
    (void)state;
    fixture_open();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        pool_without_pidfd();
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fixture_close();
}

/* ---- Malformed result frames ------------------------------------------- */

/* The worker's shared region: the one shared mapping of its size (the
 * pool has one worker, so no other worker's region was inherited). */
static struct conc__wshared *
own_region(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t want = (sizeof(struct conc__wshared) + page - 1) / page * page;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return NULL;
    char line[512];
    struct conc__wshared *found = NULL;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && b - a == want &&
            perms[3] == 's') {
            found = (struct conc__wshared *)a;
            n++;
        }
    }
    fclose(f);
    return n == 1 ? found : NULL;
}

enum forgery { FORGE_SEQ, FORGE_MSGLEN, FORGE_SHORT, FORGE_SIZE };

/* Writes a malformed frame into its own worker's result ring, as a task
 * with a wild pointer might, then returns normally. */
static int
forge_task(const void *arg, size_t len, conc_buf *result)
{
    struct conc__wshared *sh = own_region();
    if (!sh)
        return conc_fail(CONC_ENOENT, "the worker's region was not found");
    struct conc__res_hdr h = {.seq = 987654321};
    const void *parts[2] = {&h, "xyz"};
    size_t lens[2] = {sizeof h, 3};
    switch ((enum forgery)arg_int(arg, len)) {
    case FORGE_SEQ: /* no such task */
        break;
    case FORGE_MSGLEN: /* a message longer than the frame */
        h.seq = atomic_load(&sh->started);
        h.code = CONC_EVALUE;
        h.msglen = 1000;
        break;
    case FORGE_SHORT: /* shorter than a header */
        lens[0] = 4;
        break;
    case FORGE_SIZE: /* data beyond the result's announced size */
        h.seq = atomic_load(&sh->started);
        h.total = 1;
        break;
    }
    if (!conc__ring_put(&sh->res, parts, lens, 2))
        return conc_fail(CONC_EFULL, "the result ring is full");
    return put_int(result, 7);
}

static void
test_malformed_result(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p = pool_of(PROCESSES, 1);
    for (int how = FORGE_SEQ; how <= FORGE_SIZE; how++) {
        conc_clear_failure();
        assert_conc(conc_pool_apply(p, forge_task, &how, sizeof how,
                                    CONC_FOREVER, NULL),
                    CONC_EBROKEN);
        const char *msg = conc_failure_message();
        if (!strstr(msg, "malformed result"))
            fail_msg("forgery %d: %s", how, msg);
        /* Replaced: the pool serves again. */
        conc_async_result *r = apply_int(p, square_task, 9, NULL);
        assert_int_equal(result_int(r), 81);
        conc_async_result_free(r);
    }
    close_join(p);
    fixture_close();
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_maxtasksperchild),
        DEATH_TESTS,
        conc_unit_test(test_death_in_map),
        conc_unit_test(test_task_timeout),
        conc_unit_test(test_random_deaths),
        conc_unit_test(test_malformed_result),
        conc_unit_test(test_exit_while_running),
        conc_unit_test(test_pool_without_pidfd),
    };
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    return conc_run_tests(tests);
}
