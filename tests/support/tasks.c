/* Tasks, a fixture and helpers shared by the executor and pool tests; see
 * tasks.h. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tasks.h"

/* ---- The engines --------------------------------------------------------- */

const struct engine engines[ENGINES] = {
    [THREADS] = {"threads", THREADS, conc_thread_executor_new,
                 conc_threadpool_new},
    [PROCESSES] = {"processes", PROCESSES, conc_process_executor_new,
                   conc_pool_new},
};

/* One scenario on one engine: a cmocka test's initial state. */
struct engine_case {
    const struct scenario *scenario;
    const struct engine *engine;
    char name[128];
};

static void
run_case(void **state)
{
    const struct engine_case *c = *state;
    c->scenario->body(c->engine->kind);
}

int
run_per_engine(const struct CMUnitTest *tests, size_t ntests,
               const struct scenario *scenarios, size_t nscenarios)
{
    size_t ncases = nscenarios * ENGINES, n = ntests + ncases;
    struct CMUnitTest *all = calloc(n, sizeof *all);
    struct engine_case *cases = calloc(ncases ? ncases : 1, sizeof *cases);
    if (!all || !cases) {
        free(all);
        free(cases);
        return -1;
    }
    if (ntests)
        memcpy(all, tests, ntests * sizeof *all);
    for (size_t i = 0; i < nscenarios; i++) {
        for (size_t e = 0; e < ENGINES; e++) {
            struct engine_case *c = &cases[i * ENGINES + e];
            c->scenario = &scenarios[i];
            c->engine = &engines[e];
            snprintf(c->name, sizeof c->name, "%s_%s", scenarios[i].name,
                     engines[e].name);
            all[ntests + i * ENGINES + e] = (struct CMUnitTest){
                .name = c->name,
                .test_func = run_case,
                .setup_func = conc_test_setup,
                .teardown_func = conc_test_teardown,
                .initial_state = c,
            };
        }
    }
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    conc_test_install_allocator();
    int r = _cmocka_run_group_tests("tests", all, n, NULL, NULL);
    free(cases);
    free(all);
    return r;
}

/* ---- The fixture -------------------------------------------------------- */

struct fixture fx;

void
fixture_open(void)
{
    assert_conc_ok(conc_arena_new(1u << 20, &fx.arena));
    void *p;
    assert_conc_ok(conc_arena_alloc(fx.arena, sizeof *fx.sh, &p));
    fx.sh = p;
    conc_sync_opts so = {.arena = fx.arena};
    assert_conc_ok(conc_event_new(&so, &fx.gate));
    assert_conc_ok(conc_event_new(&so, &fx.seven_done));
    assert_conc_ok(conc_sem_new(0, &so, &fx.started));
    for (int i = 0; i < GATES; i++)
        assert_conc_ok(conc_sem_new(0, &so, &fx.item_gate[i]));
}

void
fixture_close(void)
{
    conc_event_free(fx.gate);
    conc_event_free(fx.seven_done);
    conc_sem_free(fx.started);
    for (int i = 0; i < GATES; i++)
        conc_sem_free(fx.item_gate[i]);
    conc_arena_dealloc(fx.arena, fx.sh);
    conc_arena_free(fx.arena);
    memset(&fx, 0, sizeof fx);
}

void
wait_started(int n)
{
    for (int i = 0; i < n; i++)
        assert_conc_ok(conc_sem_acquire(fx.started, WAIT_S));
}

void
forget_started(void)
{
    while (conc_sem_acquire(fx.started, 0) == 0)
        ;
}

void
release_gate(void)
{
    conc_event_set(fx.gate);
}

/* ---- Tasks -------------------------------------------------------------- */

conc_items
number_items(int *in, int n)
{
    for (int i = 0; i < n; i++)
        in[i] = i;
    return CONC_ITEMS(in, (size_t)n);
}

int
arg_int(const void *arg, size_t len)
{
    int v = 0;
    if (len == sizeof v)
        memcpy(&v, arg, sizeof v);
    return v;
}

int
put_int(conc_buf *result, int v)
{
    return conc_buf_append(result, &v, sizeof v);
}

int
square_task(const void *arg, size_t len, conc_buf *result)
{
    if (len != sizeof(int))
        return conc_fail(CONC_EINVAL, "want an int, got %zu bytes", len);
    int v = arg_int(arg, len);
    return put_int(result, v * v);
}

int
fail_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    return conc_fail(CONC_EVALUE, "bad item %d", arg_int(arg, len));
}

int
square_or_fail_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    if (v % 10 == 3)
        return conc_fail(CONC_EVALUE, "bad item %d", v);
    return put_int(result, v * v);
}

int
count_task(const void *arg, size_t len, conc_buf *result)
{
    atomic_fetch_add(&fx.sh->finished, 1);
    return put_int(result, arg_int(arg, len));
}

int
held_task(const void *arg, size_t len, conc_buf *result)
{
    atomic_store(&fx.sh->last_pid, (int)getpid());
    atomic_fetch_add(&fx.sh->started, 1);
    conc_sem_release(fx.started, 1);
    if (conc_event_wait(fx.gate, WAIT_S) != 0)
        return conc_fail(CONC_ETIMEDOUT, "the gate never opened");
    int v = arg_int(arg, len);
    return put_int(result, v * v);
}

int
put_tagged(conc_buf *result, int v)
{
    struct tagged t = {.value = v, .pid = (int)getpid(), .tid = (long)gettid()};
    return conc_buf_append(result, &t, sizeof t);
}

int
tagged_task(const void *arg, size_t len, conc_buf *result)
{
    return put_tagged(result, arg_int(arg, len));
}

int
whoami_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    return put_tagged(result, 0);
}

/* The value the initializer gave this worker. */
static __thread int worker_tag;

int
init_fn(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    atomic_fetch_add(&fx.sh->init_runs, 1);
    worker_tag = arg_int(arg, len);
    return 0;
}

int
tag_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    return put_int(result, worker_tag);
}

int
fd_write_task(const void *arg, size_t len, conc_buf *result)
{
    int fd = conc_task_fd();
    if (fd < 0)
        return conc_fail(CONC_EBADF, "no descriptor");
    if (write(fd, arg, len) != (ssize_t)len)
        return conc_fail(CONC_EPIPE, "short write");
    return put_int(result, fd);
}

int
die_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    atomic_store(&fx.sh->last_pid, (int)getpid());
    switch (arg_int(arg, len)) {
    case DIE_KILL:
        kill(getpid(), SIGKILL);
        break;
    case DIE_SEGV: {
        /* The test harness catches faults in the test process (and so in
         * a forked worker): let this one kill the worker. */
        signal(SIGSEGV, SIG_DFL);
        int *volatile nowhere =
            mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *nowhere = 1;
        break;
    }
    case DIE_ABORT:
        signal(SIGABRT, SIG_DFL);
        abort();
    case DIE_EXIT:
        _exit(3);
    }
    return conc_fail(CONC_ESTATE, "still alive");
}

/* ---- Helpers ------------------------------------------------------------ */

conc_thread *
start_thread(conc_thread_fn fn, void *arg)
{
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(fn, arg, NULL, &t));
    return t;
}

void
join_thread(conc_thread *t)
{
    int status = -1;
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    assert_int_equal(status, 0);
    conc_thread_free(t);
}

size_t
cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

void
check_death_message(const char *msg, int pid, const char *what)
{
    char num[32];
    snprintf(num, sizeof num, "%d", pid);
    if (!strstr(msg, num) || (what && !strstr(msg, what)))
        fail_msg("message \"%s\" should name pid %d and \"%s\"", msg, pid,
                 what ? what : "");
}

int
process_gone(void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", *(int *)arg);
    return access(path, F_OK) != 0;
}

/* ---- Random deaths ------------------------------------------------------ */

int
rd_task(const void *arg, size_t len, conc_buf *result)
{
    int i = arg_int(arg, len);
    int me = (int)getpid();
    atomic_store(&fx.sh->slot[i], me);
    atomic_fetch_add(&fx.sh->started, 1);
    if (i % RD_SELF == 5)
        kill(getpid(), SIGKILL);
    /* Some work, so that kills land inside tasks. */
    volatile unsigned x = (unsigned)i;
    for (int j = 0; j < 300000; j++)
        x = x * 1103515245u + 12345u;
    int expected = me;
    atomic_compare_exchange_strong(&fx.sh->slot[i], &expected, 0);
    return put_int(result, i * 3 + 1);
}

static int
try_kill(void *arg)
{
    struct killer *k = arg;
    if (atomic_load(&k->stop))
        return 1;
    for (int n = 0; n < k->ntasks; n++) {
        int i = (k->next_slot + n) % k->ntasks;
        int pid = atomic_load(&fx.sh->slot[i]);
        if (pid > 0 && i % RD_SELF != 5 &&
            atomic_compare_exchange_strong(&fx.sh->slot[i], &pid, 0)) {
            kill(pid, SIGKILL);
            k->kills++;
            k->next_slot = i + 17;
            return 1;
        }
    }
    return 0;
}

int
killer_fn(void *arg)
{
    struct killer *k = arg;
    while (k->kills < k->max_kills && !atomic_load(&k->stop))
        if (!conc_test_wait_until(try_kill, k, WAIT_S))
            return -1;
    return 0;
}

/* ---- Executors ---------------------------------------------------------- */

conc_executor *
new_exec(enum kind k, const conc_executor_opts *opts)
{
    conc_executor *ex = NULL;
    assert_conc_ok(engines[k].executor_new(opts, &ex));
    assert_non_null(ex);
    return ex;
}

conc_executor *
open_exec(enum kind k, size_t workers)
{
    fixture_open();
    return new_exec(k, &(conc_executor_opts){.max_workers = workers});
}

void
close_exec(conc_executor *ex)
{
    conc_executor_free(ex);
    fixture_close();
}

/* The int a result holds, or a failure naming the caller's line. */
static int
int_result(int rc, const void *data, size_t len, const char *file, int line)
{
    if (rc != 0)
        fail_msg("%s:%d: %s: %s", file, line, conc_err_name(rc),
                 conc_failure_message());
    if (len != sizeof(int))
        fail_msg("%s:%d: a result of %zu bytes", file, line, len);
    int v;
    memcpy(&v, data, sizeof v);
    return v;
}

int
future_int_at(conc_future *f, const char *file, int line)
{
    const void *data = NULL;
    size_t len = 0;
    conc_clear_failure();
    int rc = conc_future_result(f, WAIT_S, &data, &len);
    return int_result(rc, data, len, file, line);
}

conc_future *
submit_int(conc_executor *ex, conc_task_fn fn, int v)
{
    conc_future *f = NULL;
    assert_conc_ok(conc_executor_submit(ex, fn, &v, sizeof v, &f));
    assert_non_null(f);
    return f;
}

struct tagged
run_whoami(conc_executor *ex)
{
    conc_future *f = submit_int(ex, whoami_task, 0);
    const void *data = NULL;
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, sizeof(struct tagged));
    struct tagged t;
    memcpy(&t, data, sizeof t);
    conc_future_free(f);
    return t;
}

/* ---- Pools -------------------------------------------------------------- */

conc_pool *
new_pool(enum kind k, const conc_pool_opts *opts)
{
    conc_pool *p = NULL;
    assert_conc_ok(engines[k].pool_new(opts, &p));
    assert_non_null(p);
    return p;
}

conc_pool *
pool_of(enum kind k, size_t n)
{
    return new_pool(k, &(conc_pool_opts){.processes = n});
}

conc_pool *
open_pool(enum kind k, size_t n)
{
    fixture_open();
    return pool_of(k, n);
}

int
result_int_at(conc_async_result *r, const char *file, int line)
{
    const void *data = NULL;
    size_t len = 0;
    conc_clear_failure();
    int rc = conc_async_result_get(r, WAIT_S, &data, &len);
    return int_result(rc, data, len, file, line);
}

conc_async_result *
apply_int(conc_pool *p, conc_task_fn fn, int v, const conc_apply_opts *o)
{
    conc_async_result *r = NULL;
    assert_conc_ok(conc_pool_apply_async(p, fn, &v, sizeof v, o, &r));
    assert_non_null(r);
    return r;
}

struct tagged
apply_tagged(conc_pool *p, conc_task_fn fn, int v)
{
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_pool_apply(p, fn, &v, sizeof v, CONC_FOREVER, &out));
    assert_int_equal(out.len, sizeof(struct tagged));
    struct tagged t;
    memcpy(&t, out.data, sizeof t);
    conc_buf_free(&out);
    return t;
}

void
close_join(conc_pool *p)
{
    assert_conc_ok(conc_pool_close(p));
    assert_conc_ok(conc_pool_join(p, WAIT_S));
    conc_pool_free(p);
}

void
close_pool(conc_pool *p)
{
    close_join(p);
    fixture_close();
}

/* ---- Pool callback recording -------------------------------------------- */

void
cb_log_init(struct cb_log *l)
{
    memset(l, 0, sizeof *l);
    assert_conc_ok(conc_sem_new(0, NULL, &l->calls));
}

void
cb_log_fini(struct cb_log *l)
{
    conc_sem_free(l->calls);
}

void
wait_callbacks(struct cb_log *l, int n)
{
    for (int i = 0; i < n; i++)
        assert_conc_ok(conc_sem_acquire(l->calls, WAIT_S));
}

/* Notes overlapping callbacks: each spins a little while inside. */
static void
cb_enter(struct cb_log *l)
{
    if (atomic_fetch_add(&l->inside, 1) != 0)
        atomic_fetch_add(&l->overlaps, 1);
    volatile unsigned x = 0;
    for (int i = 0; i < 2000; i++)
        x += (unsigned)i;
}

static void
cb_leave(struct cb_log *l)
{
    atomic_fetch_sub(&l->inside, 1);
    conc_sem_release(l->calls, 1);
}

void
ok_cb(void *arg, const void *data, size_t len)
{
    struct cb_log *l = arg;
    cb_enter(l);
    int i = atomic_fetch_add(&l->n_ok, 1);
    if (i < CB_MAX) {
        struct tagged t = {0};
        if (len >= sizeof t)
            memcpy(&t, data, sizeof t);
        else if (len >= sizeof(int))
            memcpy(&t.value, data, sizeof(int));
        l->value[i] = t.value;
        l->task_pid[i] = t.pid;
        l->task_tid[i] = t.tid;
        l->cb_pid[i] = (int)getpid();
        l->cb_tid[i] = (long)gettid();
        l->len[i] = len;
        if (i < 4)
            memcpy(l->bytes[i], data, len < 128 ? len : 128);
    }
    cb_leave(l);
}

void
err_cb(void *arg, int code, const char *message)
{
    struct cb_log *l = arg;
    cb_enter(l);
    int i = atomic_fetch_add(&l->n_err, 1);
    if (i < CB_MAX) {
        l->code[i] = code;
        snprintf(l->msg[i], sizeof l->msg[i], "%s", message ? message : "");
        l->cb_pid[i] = (int)getpid();
        l->cb_tid[i] = (long)gettid();
    }
    cb_leave(l);
}
