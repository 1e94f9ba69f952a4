/* Process pools alone, the life of their workers: maxtasksperchild,
 * workers that die (SIGKILL, segfault, abort, exit) failing only their
 * task, through apply, the error callback, map and imap (where only the
 * dying item fails), task_timeout, workers killed at random under
 * imap_unordered, a malformed result frame, a task that overwrites its
 * worker's shared region, running out of memory in a worker, in the
 * result thread and in the caller, a worker that cannot be replaced, the
 * output of workers of a pool freed while running, a pool without pidfds,
 * and a program that exits while its pool runs. What every engine does is
 * in test_pool.c, once per engine.
 *
 * Tasks that must stay running wait on the shared gate (tasks.h). Nothing
 * sleeps to synchronize and every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
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
    close_pool(p);
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
    conc_pool *p = open_pool(PROCESSES, 2);
    enum { N = 40 };
    int in[N], out[N];
    memset(out, 0xff, sizeof out);
    conc_items items = number_items(in, N);
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
    close_pool(p);
}

/* Counts its runs per item in fx.sh->slot; item 55 kills its worker. */
static int
die_at_55_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    atomic_fetch_add(&fx.sh->slot[v], 1);
    if (v == 55)
        kill(getpid(), SIGKILL);
    return put_int(result, v * v);
}

/* A death in a map's chunk keeps what the chunk computed and runs the
 * rest once more: only the dying item fails, and no other item runs
 * twice. */
static void
test_death_in_map_chunk(void **state)
{
    (void)state;
    conc_pool *p = open_pool(PROCESSES, 2);
    enum { N = 100 };
    int in[N], out[N];
    conc_items items = number_items(in, N);
    const size_t sizes[] = {13, 100, 1, 7};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int i = 0; i < N; i++)
            atomic_store(&fx.sh->slot[i], 0);
        memset(out, 0xff, sizeof out);
        conc_map_opts o = {.chunksize = sizes[k]};
        conc_clear_failure();
        assert_conc(conc_pool_map(p, die_at_55_task, &items, out, sizeof *out,
                                  &o, CONC_FOREVER),
                    CONC_EBROKEN);
        assert_non_null(strstr(conc_failure_message(), "signal 9"));
        for (int i = 0; i < N; i++) {
            if (i == 55)
                continue;
            if (out[i] != i * i || atomic_load(&fx.sh->slot[i]) != 1)
                fail_msg("chunksize %zu, item %d: %d, ran %d times", sizes[k],
                         i, out[i], atomic_load(&fx.sh->slot[i]));
        }
        assert_int_equal(atomic_load(&fx.sh->slot[55]), 1);
    }
    /* A pool closed while its map runs still runs the map's rest. */
    memset(out, 0xff, sizeof out);
    conc_async_result *r;
    assert_conc_ok(
        conc_pool_map_async(p, die_at_55_task, &items, out, sizeof *out,
                            &(conc_map_opts){.chunksize = 13}, NULL, &r));
    assert_conc_ok(conc_pool_close(p));
    assert_conc(conc_async_result_get(r, WAIT_S, NULL, NULL), CONC_EBROKEN);
    conc_async_result_free(r);
    for (int i = 0; i < N; i++)
        if (i != 55)
            assert_int_equal(out[i], i * i);
    close_pool(p);
}

/* Like die_at_55_task, with results of 3000 bytes (v * v, then zeros):
 * a chunk's log holds five, so chunks end early and run on. */
static int
die_at_55_big_task(const void *arg, size_t len, conc_buf *result)
{
    int r = die_at_55_task(arg, len, result);
    size_t have = result->len;
    if (r == 0 && (r = conc_buf_reserve(result, 3000 - have)) == 0) {
        memset(result->data + have, 0, 3000 - have);
        result->len = 3000;
    }
    return r;
}

/* imap and imap_unordered: a death in a chunk fails only the item it ran;
 * the items before it keep their results, the ones after run again, and
 * no item runs twice. */
static void
test_death_in_imap_chunk(void **state)
{
    (void)state;
    conc_pool *p = open_pool(PROCESSES, 2);
    enum { N = 100 };
    int in[N];
    conc_items items = number_items(in, N);
    const size_t sizes[] = {13, 100, 1};
    for (int run = 0; run < 12; run++) {
        int ordered = run % 2, big = run / 6;
        size_t chunk = sizes[run / 2 % 3];
        for (int i = 0; i < N; i++)
            atomic_store(&fx.sh->slot[i], 0);
        conc_map_iter *it;
        conc_map_opts o = {.chunksize = chunk};
        conc_task_fn fn = big ? die_at_55_big_task : die_at_55_task;
        assert_conc_ok(ordered
                           ? conc_pool_imap(p, fn, &items, &o, &it)
                           : conc_pool_imap_unordered(p, fn, &items, &o, &it));
        unsigned char seen[N] = {0};
        for (int n = 0; n < N; n++) {
            const void *data;
            size_t len;
            int rc = conc_map_next(it, WAIT_S, &data, &len);
            size_t i = conc_map_index(it);
            assert_true(i < N && !seen[i]);
            seen[i] = 1;
            if (ordered)
                assert_int_equal(i, n);
            if (i == 55) {
                assert_conc(rc, CONC_EBROKEN);
                continue;
            }
            if (rc != 0 || *(const int *)data != (int)(i * i) ||
                len != (big ? 3000u : sizeof(int)))
                fail_msg("run %d (chunksize %zu), item %zu: %s", run, chunk, i,
                         conc_err_name(rc));
        }
        const void *data;
        assert_conc(conc_map_next(it, WAIT_S, &data, NULL), CONC_ECLOSED);
        conc_map_free(it);
        for (int i = 0; i < N; i++)
            if (atomic_load(&fx.sh->slot[i]) != 1)
                fail_msg("run %d (chunksize %zu): item %d ran %d times", run,
                         chunk, i, atomic_load(&fx.sh->slot[i]));
    }
    close_pool(p);
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
    close_pool(p);
}

/* Random deaths under imap_unordered: see test_executor_procs.c's twin. */
#define RD_TASKS 200
#define RD_KILLS 6

static void
test_random_deaths(void **state)
{
    (void)state;
    conc_pool *p = open_pool(PROCESSES, 3);
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
    close_pool(p);
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
    conc_pool *p = open_pool(PROCESSES, 1);
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
    close_pool(p);
}

/* ---- Out of memory in a worker ----------------------------------------- */

/* An allocator that refuses blocks of 64 KiB or more, installed by the
 * initializer in each worker only. */
#define BIG_BLOCK ((size_t)64 << 10)

static void *
small_malloc(size_t n)
{
    return n >= BIG_BLOCK ? NULL : malloc(n);
}

static void *
small_realloc(void *p, size_t n)
{
    return n >= BIG_BLOCK ? NULL : realloc(p, n);
}

static void *
small_calloc(size_t k, size_t n)
{
    return n && k >= BIG_BLOCK / n ? NULL : calloc(k, n);
}

static int
small_heap_init(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return conc_replace_allocator(small_malloc, small_realloc, small_calloc,
                                  free);
}

/* The sum of its argument's bytes. */
static int
sum_task(const void *arg, size_t len, conc_buf *result)
{
    int sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += ((const unsigned char *)arg)[i];
    return put_int(result, sum);
}

/* A worker that cannot copy a task's argument fails that task with
 * CONC_ENOMEM, without running it, and serves on. */
static void
test_worker_nomem(void **state)
{
    (void)state;
    fixture_open();
    conc_pool_opts o = {.processes = 1, .initializer = small_heap_init};
    conc_pool *p = new_pool(PROCESSES, &o);
    size_t n = 100 << 10; /* sent in the ring, copied by the worker */
    unsigned char *big = calloc(n, 1);
    assert_non_null(big);
    big[0] = big[n - 1] = 1;
    for (int round = 0; round < 2; round++) {
        conc_clear_failure();
        assert_conc(conc_pool_apply(p, sum_task, big, n, CONC_FOREVER, NULL),
                    CONC_ENOMEM);
        assert_non_null(strstr(conc_failure_message(), "no memory"));
        unsigned char small[100] = {[3] = 5, [99] = 2};
        conc_buf out = CONC_BUF_INIT;
        assert_conc_ok(conc_pool_apply(p, sum_task, small, sizeof small,
                                       CONC_FOREVER, &out));
        assert_int_equal(*(int *)out.data, 7);
        conc_buf_free(&out);
    }
    free(big);
    close_pool(p);
}

/* Runs `body` in a forked child and returns its wait status, or -1 if
 * it did not end within WAIT_S (then it is killed). The child may replace
 * the allocator and may crash without harming the test program. */
static int
in_child(int (*body)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(body());
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    assert_true(pidfd >= 0);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    int ready = poll(&pf, 1, (int)(WAIT_S * 1000));
    if (ready != 1)
        kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(pidfd);
    return ready == 1 ? status : -1;
}

/* Returns as many bytes as its argument says. */
static int
bytes_task(const void *arg, size_t len, conc_buf *result)
{
    size_t n = (size_t)arg_int(arg, len);
    int r = conc_buf_reserve(result, n);
    if (r < 0)
        return r;
    memset(result->data + result->len, 'x', n);
    result->len += n;
    return 0;
}

/* An allocator under which the pool's result thread gets no memory. */
static int
in_result_thread(void)
{
    char name[16] = "";
    prctl(PR_GET_NAME, name);
    return strncmp(name, "PoolResult", 10) == 0;
}

static void *
rt_malloc(size_t n)
{
    return in_result_thread() ? NULL : malloc(n);
}

static void *
rt_realloc(void *p, size_t n)
{
    return in_result_thread() ? NULL : realloc(p, n);
}

static void *
rt_calloc(size_t k, size_t n)
{
    return in_result_thread() ? NULL : calloc(k, n);
}

/* The child's part: exit status 0 if every check held, else its line. */
#define CHILD_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            return __LINE__ % 250 + 1;                                         \
    } while (0)

static int
result_thread_nomem_child(void)
{
    conc_replace_allocator(rt_malloc, rt_realloc, rt_calloc, free);
    conc_pool *p;
    CHILD_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 2}, &p) == 0);
    for (int i = 0; i < 10; i++) {
        int v = 200000 + i;
        conc_buf out = CONC_BUF_INIT;
        /* A large result needs memory in the parent: the task fails. */
        CHILD_CHECK(conc_pool_apply(p, bytes_task, &v, sizeof v, CONC_FOREVER,
                                    &out) == CONC_ENOMEM);
        v = i;
        /* A failure without its message still carries its code. */
        CHILD_CHECK(conc_pool_apply(p, fail_task, &v, sizeof v, CONC_FOREVER,
                                    &out) == CONC_EVALUE);
        conc_buf_free(&out);
    }
    CHILD_CHECK(conc_pool_close(p) == 0);
    CHILD_CHECK(conc_pool_join(p, WAIT_S) == 0);
    conc_pool_free(p);
    return 0;
}

/* The result thread out of memory fails the tasks whose results it cannot
 * keep, and never ends the program. */
static void
test_result_thread_nomem(void **state)
{
    (void)state;
    int status = in_child(result_thread_nomem_child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child ended with status %#x (exit %d, signal %d)", status,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Waits for the gate like held_task, then kills its own worker. */
static int
held_then_die_task(const void *arg, size_t len, conc_buf *result)
{
    held_task(arg, len, result);
    kill(getpid(), SIGKILL);
    return 0;
}

/* The only worker dies and cannot be replaced: the tasks queued to it and
 * the backlog fail, with the error that stopped the replacement or
 * CONC_EBROKEN, and new submits fail clearly. */
static int
no_replacement_child(void)
{
    conc_pool *p;
    CHILD_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 1}, &p) == 0);
    int v = 1;
    conc_async_result *dying, *queued[6];
    CHILD_CHECK(conc_pool_apply_async(p, held_then_die_task, &v, sizeof v, NULL,
                                      &dying) == 0);
    for (int i = 0; i < 6; i++)
        CHILD_CHECK(conc_pool_apply_async(p, square_task, &i, sizeof i, NULL,
                                          &queued[i]) == 0);
    CHILD_CHECK(conc_sem_acquire(fx.started, WAIT_S) == 0);
    conc_replace_allocator(rt_malloc, rt_realloc, rt_calloc, free);
    conc_event_set(fx.gate);
    CHILD_CHECK(conc_async_result_get(dying, WAIT_S, NULL, NULL) ==
                CONC_EBROKEN);
    for (int i = 0; i < 6; i++) {
        int r = conc_async_result_get(queued[i], WAIT_S, NULL, NULL);
        CHILD_CHECK(r == CONC_ENOMEM || r == CONC_EBROKEN);
        conc_async_result_free(queued[i]);
    }
    conc_async_result_free(dying);
    conc_clear_failure();
    CHILD_CHECK(conc_pool_apply_async(p, square_task, &v, sizeof v, NULL,
                                      &dying) == CONC_EBROKEN);
    CHILD_CHECK(strstr(conc_failure_message(), "could not be replaced"));
    CHILD_CHECK(conc_pool_close(p) == 0);
    CHILD_CHECK(conc_pool_join(p, WAIT_S) == 0);
    conc_pool_free(p);
    return 0;
}

/* One of two workers dies and cannot be replaced: the other serves on. */
static int
one_left_child(void)
{
    conc_pool *p;
    CHILD_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 2}, &p) == 0);
    conc_replace_allocator(rt_malloc, rt_realloc, rt_calloc, free);
    int v = DIE_KILL;
    CHILD_CHECK(conc_pool_apply(p, die_task, &v, sizeof v, CONC_FOREVER,
                                NULL) == CONC_EBROKEN);
    for (int i = 0; i < 20; i++) {
        conc_async_result *r;
        CHILD_CHECK(
            conc_pool_apply_async(p, fail_task, &i, sizeof i, NULL, &r) == 0);
        CHILD_CHECK(conc_async_result_get(r, WAIT_S, NULL, NULL) ==
                    CONC_EVALUE);
        conc_async_result_free(r);
    }
    CHILD_CHECK(conc_pool_close(p) == 0);
    CHILD_CHECK(conc_pool_join(p, WAIT_S) == 0);
    conc_pool_free(p);
    return 0;
}

static void
check_child(int (*body)(void))
{
    int status = in_child(body);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child ended with status %#x (exit %d, signal %d)", status,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void
test_no_replacement(void **state)
{
    (void)state;
    fixture_open();
    check_child(no_replacement_child);
    check_child(one_left_child);
    fixture_close();
}

#ifdef __x86_64__
/* Makes every fork of this process fail with EAGAIN, in all its threads,
 * while threads can still start: seccomp refuses fork, vfork and a clone
 * without CLONE_THREAD, and clone3 (whose flags it cannot read) with
 * ENOSYS, on which the C library falls back to clone. */
static int
forbid_fork(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fork, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_vfork, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof *f, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                        SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

/* The only worker dies and no process can be forked: the pool fails its
 * queue and new submits with the error, instead of waiting. */
static int
fork_fails_child(void)
{
    conc_pool *p;
    CHILD_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 1}, &p) == 0);
    int v = 3;
    CHILD_CHECK(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, NULL) == 0);
    conc_async_result *dying, *queued[4];
    CHILD_CHECK(conc_pool_apply_async(p, held_then_die_task, &v, sizeof v, NULL,
                                      &dying) == 0);
    for (int i = 0; i < 4; i++)
        CHILD_CHECK(conc_pool_apply_async(p, square_task, &i, sizeof i, NULL,
                                          &queued[i]) == 0);
    CHILD_CHECK(conc_sem_acquire(fx.started, WAIT_S) == 0);
    CHILD_CHECK(forbid_fork() == 0);
    conc_event_set(fx.gate);
    CHILD_CHECK(conc_async_result_get(dying, WAIT_S, NULL, NULL) ==
                CONC_EBROKEN);
    for (int i = 0; i < 4; i++) {
        int r = conc_async_result_get(queued[i], WAIT_S, NULL, NULL);
        CHILD_CHECK(r == -EAGAIN || r == CONC_EBROKEN);
        conc_async_result_free(queued[i]);
    }
    conc_async_result_free(dying);
    conc_clear_failure();
    CHILD_CHECK(conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER,
                                NULL) == CONC_EBROKEN);
    CHILD_CHECK(strstr(conc_failure_message(), "could not be replaced"));
    CHILD_CHECK(strstr(conc_failure_message(), "CONC_EAGAIN"));
    conc_pool_free(p);
    return 0;
}

static void
test_fork_fails(void **state)
{
    (void)state;
    fixture_open();
    check_child(fork_fails_child);
    fixture_close();
}
#endif

/* ---- Scribbles on the shared region ------------------------------------ */

/* What a task with a wild pointer may overwrite in its own worker's shared
 * region. Each variant leaves tasks queued behind the scribbler. */
enum scribble {
    SCRIBBLE_TASK_HEAD,     /* the task ring's head, into a frame */
    SCRIBBLE_TASK_TAIL,     /* the task ring's tail, back to its head */
    SCRIBBLE_FRAME_LEN,     /* the next task frame's length */
    SCRIBBLE_RES_HEAD,      /* the result ring's head, past its tail */
    SCRIBBLE_RES_TAIL,      /* the result ring's tail, over garbage */
    SCRIBBLE_CLAIM_ZERO,    /* every claim word cleared */
    SCRIBBLE_CLAIM_TAKEN,   /* every claim word says "taken" */
    SCRIBBLE_CLAIM_REVOKED, /* every claim word says "revoked" */
    SCRIBBLE_POPPED,        /* the count of consumed task frames */
    SCRIBBLE_SETTLED,       /* the count of tasks whose claims are done */
    SCRIBBLE_STARTED_HANG,  /* the running task's record, then hangs */
    SCRIBBLE_ALL_FF,        /* the whole region set to 0xFF */
    SCRIBBLE_ALL_ZERO,      /* the whole region cleared */
    SCRIBBLE_ALL_ZERO_HANG, /* the whole region cleared, then hangs */
    SCRIBBLES
};

static void
set_claims(struct conc__wshared *sh, uint64_t state)
{
    for (size_t k = 0; k < CONC__SLOTS; k++)
        sh->claim[k] = (sh->claim[k] & ~(uint64_t)3) | state;
}

/* Waits for the gate like held_task, then overwrites part of its worker's
 * shared region and returns normally, or hangs (until its worker is
 * killed). */
static int
scribble_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    held_task(&v, sizeof v, result);
    struct conc__wshared *sh = own_region();
    if (!sh)
        return conc_fail(CONC_ENOENT, "the worker's region was not found");
    uint64_t head = atomic_load(&sh->task.head);
    uint64_t huge = (uint64_t)1 << 40;
    switch ((enum scribble)v) {
    case SCRIBBLE_TASK_HEAD:
        sh->task.head = head + 8 * 37;
        break;
    case SCRIBBLE_TASK_TAIL:
        sh->task.tail = head;
        break;
    case SCRIBBLE_FRAME_LEN:
        memcpy(sh->task.bytes + (head & (CONC__RING_CAP - 1)), &huge, 8);
        break;
    case SCRIBBLE_RES_HEAD:
        sh->res.head = sh->res.head + 4096 * 3;
        break;
    case SCRIBBLE_RES_TAIL:
        sh->res.tail = sh->res.tail + 4096;
        break;
    case SCRIBBLE_CLAIM_ZERO:
        memset(sh->claim, 0, sizeof sh->claim);
        break;
    case SCRIBBLE_CLAIM_TAKEN:
        set_claims(sh, CONC__CLAIM_TAKEN);
        break;
    case SCRIBBLE_CLAIM_REVOKED:
        set_claims(sh, CONC__CLAIM_REVOKED);
        break;
    case SCRIBBLE_POPPED:
        sh->popped = sh->popped + 1000;
        break;
    case SCRIBBLE_SETTLED:
        sh->settled = sh->settled + 1000;
        break;
    case SCRIBBLE_STARTED_HANG:
        sh->started = 0;
        sh->started_ns = INT64_MAX / 2;
        for (;;)
            pause();
    case SCRIBBLE_ALL_FF:
        memset(sh, 0xff, sizeof *sh);
        break;
    case SCRIBBLE_ALL_ZERO:
        memset(sh, 0, sizeof *sh);
        break;
    case SCRIBBLE_ALL_ZERO_HANG:
        memset(sh, 0, sizeof *sh);
        for (;;)
            pause();
    case SCRIBBLES:
        break;
    }
    return put_int(result, 7);
}

/* How long the scribble test waits for each task. */
#ifndef SCRIBBLE_WAIT_S
#define SCRIBBLE_WAIT_S WAIT_S
#endif

/* Checks that `r` finished within the bound with 0 and v * v, or failed
 * with CONC_EBROKEN or CONC_ETIMEDOUT and a message naming a pid. Returns
 * its code. */
static int
check_outcome(conc_async_result *r, int v, int variant)
{
    const void *data;
    conc_clear_failure();
    int rc = conc_async_result_get(r, SCRIBBLE_WAIT_S, &data, NULL);
    if (rc == 0 && *(const int *)data == v * v)
        return 0;
    if ((rc == CONC_EBROKEN || rc == CONC_ETIMEDOUT) &&
        strstr(conc_failure_message(), "pid"))
        return rc;
    fail_msg("scribble %d, task %d: %s (%s)", variant, v, conc_err_name(rc),
             conc_failure_message());
    return rc;
}

/* Every task a pool accepted finishes or fails, whatever a task wrote in
 * its worker's shared region; the pool then serves on. SCRIBBLE=n runs
 * variant n only. */
static void
test_scribbles(void **state)
{
    (void)state;
    enum { QUEUED = 6 };
    int only = getenv("SCRIBBLE") ? atoi(getenv("SCRIBBLE")) : -1;
    for (int variant = 0; variant < SCRIBBLES; variant++) {
        if (only >= 0 && variant != only)
            continue;
        fixture_open();
        conc_pool_opts o = {.processes = 1, .task_timeout = 1.0};
        conc_pool *p = new_pool(PROCESSES, &o);
        for (int i = 0; i < 30; i++) { /* deep rings: tasks queue there */
            conc_async_result *r = apply_int(p, square_task, i, NULL);
            assert_int_equal(result_int(r), i * i);
            conc_async_result_free(r);
        }
        conc_async_result *s = apply_int(p, scribble_task, variant, NULL);
        conc_async_result *q[QUEUED];
        for (int i = 0; i < QUEUED; i++)
            q[i] = apply_int(p, square_task, 10 + i, NULL);
        wait_started(1);
        release_gate();
        int pid = atomic_load(&fx.sh->last_pid);
        check_outcome(s, variant, variant);
        for (int i = 0; i < QUEUED; i++) {
            check_outcome(q[i], 10 + i, variant);
            conc_async_result_free(q[i]);
        }
        conc_async_result_free(s);
        /* The worker was killed (a scribble no task suffered from is
         * found by the next look), and its replacement serves. */
        if (apply_tagged(p, whoami_task, 0).pid == pid)
            fail_msg("scribble %d went unnoticed", variant);
        for (int i = 0; i < 3; i++) {
            conc_async_result *r = apply_int(p, square_task, i, NULL);
            assert_int_equal(result_int(r), i * i);
            conc_async_result_free(r);
        }
        close_join(p);
        fixture_close();
    }
}

/* ---- What workers printed ----------------------------------------------- */

/* Prints a line, left in the worker's stdio buffer (stdout is a pipe). */
static int
print_task(const void *arg, size_t len, conc_buf *result)
{
    printf("task %d\n", arg_int(arg, len));
    return put_int(result, 0);
}

/* Ten applies that print, then a free without close or join. */
static int
print_then_free_child(void)
{
    conc_pool *p;
    CHILD_CHECK(conc_pool_new(&(conc_pool_opts){.processes = 2}, &p) == 0);
    for (int i = 0; i < 10; i++)
        CHILD_CHECK(conc_pool_apply(p, print_task, &i, sizeof i, CONC_FOREVER,
                                    NULL) == 0);
    conc_pool_free(p);
    return 0;
}

/* Runs print_then_free_child with its stdout on a pipe, and counts the
 * lines that come out before every writer is gone. */
static void
test_free_keeps_output(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        _exit(print_then_free_child());
    }
    close(fds[1]);
    char buf[4096];
    size_t got = 0;
    for (;;) {
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t n = read(fds[0], buf + got, sizeof buf - 1 - got);
        assert_true(n >= 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    buf[got] = 0;
    int lines = 0;
    for (char *c = buf; *c; c++)
        lines += *c == '\n';
    if (lines != 10)
        fail_msg("%d lines came out of 10:\n%s", lines, buf);
}

/* ---- Allocation failures in the caller ---------------------------------- */

/* Every allocation the calling thread makes through a process pool's
 * life, failed in turn: each call fails cleanly or succeeds, tasks it
 * accepted finish, and nothing leaks (the teardown counts). */
static void
test_caller_nomem(void **state)
{
    (void)state;
    fixture_open();
    int in[30];
    conc_items items = number_items(in, 30);
    for (long n = 1; n < 120; n++) { /* past the calls' last allocation */
        conc_test_fail_alloc_after(n);
        conc_pool *p = NULL;
        if (conc_pool_new(&(conc_pool_opts){.processes = 1}, &p) < 0) {
            conc_test_fail_alloc_after(0);
            continue;
        }
        int v = 7, out[30];
        conc_buf b = CONC_BUF_INIT;
        int r = conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, &b);
        assert_true(r == 0 || r == CONC_ENOMEM);
        conc_buf_free(&b);
        r = conc_pool_map(p, square_task, &items, out, sizeof *out,
                          &(conc_map_opts){.chunksize = 4}, CONC_FOREVER);
        assert_true(r == 0 || r == CONC_ENOMEM);
        conc_map_iter *it = NULL;
        if (conc_pool_imap(p, square_task, &items,
                           &(conc_map_opts){.chunksize = 4}, &it) == 0) {
            for (int i = 0; i < 30; i++)
                if (conc_map_next(it, WAIT_S, NULL, NULL) == CONC_ECLOSED)
                    break;
            conc_map_free(it);
        }
        conc_test_fail_alloc_after(0);
        conc_pool_free(p);
    }
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
        conc_unit_test(test_death_in_map_chunk),
        conc_unit_test(test_death_in_imap_chunk),
        conc_unit_test(test_task_timeout),
        conc_unit_test(test_random_deaths),
        conc_unit_test(test_malformed_result),
        conc_unit_test(test_worker_nomem),
        conc_unit_test(test_result_thread_nomem),
        conc_unit_test(test_no_replacement),
#ifdef __x86_64__
        conc_unit_test(test_fork_fails),
#endif
        conc_unit_test(test_scribbles),
        conc_unit_test(test_free_keeps_output),
        conc_unit_test(test_caller_nomem),
        conc_unit_test(test_exit_while_running),
        conc_unit_test(test_pool_without_pidfd),
    };
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    return conc_run_tests(tests);
}
