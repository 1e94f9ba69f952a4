/* Threads and thread-local data: start, join, names, identity, the
 * registry, daemon flags, the excepthook, exit, fork, and locals. Threads
 * are held on semaphores the test controls, never on sleeps. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"

#define WAIT_S 10.0

/* ---- Helpers --------------------------------------------------------------
 */

/* Waits on `s` for at most `timeout` seconds; returns 0 or -1. */
static int
sem_wait_for(sem_t *s, double timeout)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t whole = (time_t)timeout;
    ts.tv_sec += whole;
    ts.tv_nsec += (long)((timeout - (double)whole) * 1e9);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int r;
    while ((r = sem_timedwait(s, &ts)) == -1 && errno == EINTR)
        ;
    return r;
}

/* A thread held until the test releases it. */
struct hold {
    sem_t started, release;
    int status;
    conc_thread *self; /* conc_thread_current() inside */
    unsigned long pthread_id;
    long tid;
};

static void
hold_init(struct hold *h, int status)
{
    memset(h, 0, sizeof *h);
    sem_init(&h->started, 0, 0);
    sem_init(&h->release, 0, 0);
    h->status = status;
}

static void
hold_destroy(struct hold *h)
{
    sem_destroy(&h->started);
    sem_destroy(&h->release);
}

static int
held_fn(void *arg)
{
    struct hold *h = arg;
    h->self = conc_thread_current();
    h->pthread_id = (unsigned long)pthread_self();
    h->tid = (long)gettid();
    sem_post(&h->started);
    if (sem_wait_for(&h->release, WAIT_S))
        return CONC_ETIMEDOUT;
    return h->status;
}

/* Starts a held thread and waits until it runs. */
static conc_thread *
start_held(struct hold *h, const conc_thread_opts *opts)
{
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(held_fn, h, opts, &t));
    assert_int_equal(sem_wait_for(&h->started, WAIT_S), 0);
    return t;
}

static void
release_join(struct hold *h, conc_thread *t)
{
    int status = -1;
    sem_post(&h->release);
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    assert_int_equal(status, h->status);
    conc_thread_free(t);
    hold_destroy(h);
}

static int
return_arg_fn(void *arg)
{
    return (int)(intptr_t)arg;
}

/* The OS name of kernel thread `tid`, without the newline. */
static void
os_name(long tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)size, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* ---- Start and join ---------------------------------------------------------
 */

static void
test_start_join_status(void **state)
{
    (void)state;
    conc_thread *t;
    int status = 0;
    assert_conc_ok(conc_thread_start(return_arg_fn, (void *)42, NULL, &t));
    assert_conc_ok(conc_thread_join(t, CONC_FOREVER, &status));
    assert_int_equal(status, 42);
    assert_false(conc_thread_is_alive(t));
    /* A second join of an ended thread returns at once, status again. */
    status = 0;
    assert_conc_ok(conc_thread_join(t, 0, &status));
    assert_int_equal(status, 42);
    assert_conc_ok(conc_thread_join(t, 0, NULL));
    conc_thread_free(t);
    conc_thread_free(NULL);

    assert_conc(conc_thread_start(NULL, NULL, NULL, &t), CONC_EINVAL);
    conc_thread_opts tiny = {.stack_size = 1};
    assert_conc(conc_thread_start(return_arg_fn, NULL, &tiny, &t), CONC_EINVAL);
    conc_thread_opts bad = {.daemon = (conc_daemon_mode)7};
    assert_conc(conc_thread_start(return_arg_fn, NULL, &bad, &t), CONC_EINVAL);
}

static int
stack_fn(void *arg)
{
    pthread_attr_t attr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr))
        return -1;
    pthread_attr_getstacksize(&attr, &size);
    pthread_attr_destroy(&attr);
    *(size_t *)arg = size;
    return 0;
}

static int
wait_for_release(void *arg)
{
    return sem_wait_for(arg, WAIT_S) == 0 ? 0 : CONC_ETIMEDOUT;
}

/* As Python's start(), conc_thread_start returns once the new thread runs:
 * by then it has set itself up (it is named for the OS, first thing in
 * its bootstrap), every time. */
static void
test_start_returns_once_running(void **state)
{
    (void)state;
    sem_t release;
    sem_init(&release, 0, 0);
    for (int i = 0; i < 200; i++) {
        char name[16], shown[32];
        snprintf(name, sizeof name, "starter-%d", i);
        conc_thread *t;
        assert_conc_ok(conc_thread_start(
            wait_for_release, &release, &(conc_thread_opts){.name = name}, &t));
        os_name(conc_thread_native_id(t), shown, sizeof shown);
        assert_string_equal(shown, name);
        assert_true(conc_thread_is_alive(t));
        sem_post(&release);
        int status = -1;
        assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
        assert_int_equal(status, 0);
        conc_thread_free(t);
    }
    sem_destroy(&release);
}

/* ---- The seeds' programs, in the order Python prints them ---------------
 * Each runs many times and its log must be exactly Python's every time:
 * conc_thread_start returns only once the new thread has run until it
 * first sleeps (the order CPython's GIL gives), so nothing here depends
 * on timing. Logs are kept in memory, in the order the steps happened. */

#define SEED_RUNS 100

static char seed_log[64];
static _Atomic int seed_n;

static void
seed_say(char c)
{
    int i = atomic_fetch_add(&seed_n, 1);
    if (i < (int)sizeof seed_log - 1)
        seed_log[i] = c;
}

static void
seed_reset(void)
{
    memset(seed_log, 0, sizeof seed_log);
    atomic_store(&seed_n, 0);
}

/* Seed 004: two threads each print their task line, sleep, print a
 * result; main starts both, then joins both. */
static int
seed004_task(void *arg)
{
    seed_say((char)(intptr_t)arg);
    conc_sleep(0.001);
    seed_say((char)(intptr_t)arg + 'a' - 'A');
    return 0;
}

static void
test_seed004_thread_order(void **state)
{
    (void)state;
    for (int run = 0; run < SEED_RUNS; run++) {
        seed_reset();
        conc_thread *t[2];
        for (int i = 0; i < 2; i++)
            assert_conc_ok(conc_thread_start(
                seed004_task, (void *)(intptr_t)('1' + i), NULL, &t[i]));
        for (int i = 0; i < 2; i++) {
            assert_conc_ok(conc_thread_join(t[i], WAIT_S, NULL));
            conc_thread_free(t[i]);
        }
        /* The task lines in start order (a result may come between them
         * if a sleep ends first, as it may in Python). */
        assert_int_equal(seed_log[0], '1');
        assert_true(strchr(seed_log, '2') != NULL);
    }
}

/* Seed 002's dialogue on a Condition, written as in the seed: 小爱 (A)
 * and 天猫精灵 (T) started back to back. 小爱 must be waiting before
 * 天猫精灵 first notifies, or both wait for ever (a 1 s bound here). */
static conc_cond *dialogue;

static int
dialogue_wait(void)
{
    return conc_cond_wait(dialogue, 1.0);
}

static int
xiaoai(void *arg)
{
    (void)arg;
    seed_say('A');
    assert_conc_ok(conc_cond_acquire(dialogue, WAIT_S));
    seed_say('B');
    int r = dialogue_wait();
    for (int i = 0; i < 3 && r == 0; i++) {
        seed_say((char)('p' + i)); /* 在, 好啊, a line of the poem */
        conc_cond_notify(dialogue, 1);
        if (i < 2) /* the seed's last line answers no one */
            r = dialogue_wait();
    }
    conc_cond_release(dialogue);
    return r;
}

static int
tianmao(void *arg)
{
    (void)arg;
    seed_say('C');
    assert_conc_ok(conc_cond_acquire(dialogue, WAIT_S));
    seed_say('D');
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++) {
        seed_say((char)('x' + i)); /* 小爱同学, 我们来对古诗吧, a line */
        conc_cond_notify(dialogue, 1);
        r = dialogue_wait();
    }
    conc_cond_release(dialogue);
    return r;
}

static void
test_seed002_condition_dialogue(void **state)
{
    (void)state;
    assert_conc_ok(conc_cond_new(NULL, &dialogue));
    for (int run = 0; run < SEED_RUNS; run++) {
        seed_reset();
        conc_thread *a, *t;
        int sa = -1, st = -1;
        assert_conc_ok(conc_thread_start(xiaoai, NULL, NULL, &a));
        assert_conc_ok(conc_thread_start(tianmao, NULL, NULL, &t));
        assert_conc_ok(conc_thread_join(a, WAIT_S, &sa));
        assert_conc_ok(conc_thread_join(t, WAIT_S, &st));
        conc_thread_free(a);
        conc_thread_free(t);
        assert_conc_ok(sa);
        assert_conc_ok(st);
        assert_string_equal(seed_log, "ABCDxpyqzr");
    }
    conc_cond_free(dialogue);
}

/* Seed 003's traffic light: the light turns green (sets the Event) and
 * says so, then sleeps; each car, started after it, finds the light
 * green and drives. */
static conc_event *green;

static int
lighter(void *arg)
{
    (void)arg;
    conc_event_set(green);
    seed_say('L');
    return conc_sleep(0.001);
}

static int
car(void *arg)
{
    seed_say(conc_event_is_set(green) ? (char)(intptr_t)arg : '!');
    return conc_sleep(0.001);
}

static void
test_seed003_event_traffic_light(void **state)
{
    (void)state;
    assert_conc_ok(conc_event_new(NULL, &green));
    for (int run = 0; run < SEED_RUNS; run++) {
        seed_reset();
        conc_event_clear(green);
        conc_thread *t[4];
        assert_conc_ok(conc_thread_start(lighter, NULL, NULL, &t[0]));
        for (int i = 1; i < 4; i++)
            assert_conc_ok(conc_thread_start(car, (void *)(intptr_t)('0' + i),
                                             NULL, &t[i]));
        for (int i = 0; i < 4; i++) {
            assert_conc_ok(conc_thread_join(t[i], WAIT_S, NULL));
            conc_thread_free(t[i]);
        }
        assert_string_equal(seed_log, "L123");
    }
    conc_event_free(green);
}

/* A thread that never sleeps does not hold its starter for long: start
 * returns once it has used CPython's switch interval of CPU. */
static _Atomic int spin_stop;

static int
spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        ;
    return 0;
}

static void
test_start_of_busy_thread(void **state)
{
    (void)state;
    atomic_store(&spin_stop, 0);
    conc_thread *t;
    assert_conc_ok(conc_thread_start(spinner, NULL, NULL, &t));
    atomic_store(&spin_stop, 1);
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
}

static void
test_stack_size(void **state)
{
    (void)state;
    size_t got = 0;
    conc_thread *t;
    conc_thread_opts opts = {.stack_size = 4u << 20};
    assert_conc_ok(conc_thread_start(stack_fn, &got, &opts, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    assert_true(got >= opts.stack_size);
}

static int
thread_number(const char *name)
{
    assert_memory_equal(name, "Thread-", 7);
    return atoi(name + 7);
}

static void
test_names(void **state)
{
    (void)state;
    conc_thread *a, *b, *c, *d;
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, NULL, &a));
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, NULL, &b));
    conc_thread_opts named = {.name = "worker"};
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, &named, &c));
    conc_thread_opts empty = {.name = ""}; /* as Python: the default */
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, &empty, &d));
    int na = thread_number(conc_thread_name(a));
    int nb = thread_number(conc_thread_name(b));
    int nd = thread_number(conc_thread_name(d));
    assert_true(na >= 1);
    assert_true(nb > na);
    assert_true(nd > nb);
    assert_string_equal(conc_thread_name(c), "worker");
    conc_thread *all[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        assert_conc_ok(conc_thread_join(all[i], WAIT_S, NULL));
        conc_thread_free(all[i]);
    }
}

static void
test_set_name(void **state)
{
    (void)state;
    struct hold h;
    hold_init(&h, 0);
    conc_thread_opts opts = {.name = "a-rather-long-thread-name"};
    conc_thread *t = start_held(&h, &opts);
    char buf[64];
    os_name(h.tid, buf, sizeof buf);
    assert_string_equal(buf, "a-rather-long-t"); /* the first 15 bytes */

    assert_conc_ok(conc_thread_set_name(t, "renamed"));
    assert_string_equal(conc_thread_name(t), "renamed");
    os_name(h.tid, buf, sizeof buf);
    assert_string_equal(buf, "renamed");
    assert_conc_ok(conc_thread_set_name(t, "again"));
    assert_string_equal(conc_thread_name(t), "again");

    assert_conc(conc_thread_set_name(t, ""), CONC_EINVAL);
    assert_conc(conc_thread_set_name(t, NULL), CONC_EINVAL);
    assert_conc(conc_thread_set_name(NULL, "x"), CONC_EINVAL);
    conc_test_fail_alloc_after(1);
    assert_conc(conc_thread_set_name(t, "nomem"), CONC_ENOMEM);
    assert_string_equal(conc_thread_name(t), "again");
    release_join(&h, t);
}

static int
rename_self_fn(void *arg)
{
    conc_thread *self = conc_thread_current();
    if (conc_thread_set_name(self, "self-named-thread-x"))
        return -1;
    char path[64], buf[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", (long)gettid());
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    *(int *)arg = strcmp(buf, "self-named-thre\n") == 0 &&
                  strcmp(conc_thread_name(self), "self-named-thread-x") == 0;
    return 0;
}

static void
test_set_name_self(void **state)
{
    (void)state;
    int ok = 0;
    conc_thread *t;
    assert_conc_ok(conc_thread_start(rename_self_fn, &ok, NULL, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    assert_true(ok);
}

static void
test_current_and_main(void **state)
{
    (void)state;
    conc_thread *me = conc_thread_current();
    assert_non_null(me);
    assert_ptr_equal(me, conc_thread_main());
    assert_string_equal(conc_thread_name(me), "MainThread");
    assert_false(conc_thread_daemon(me));
    assert_true(conc_thread_is_alive(me));
    assert_int_equal(conc_thread_native_id(me), (long)getpid());
    assert_int_equal(conc_thread_ident(me), (unsigned long)pthread_self());

    struct hold h;
    hold_init(&h, 0);
    conc_thread_opts opts = {.name = "inner"};
    conc_thread *t = start_held(&h, &opts);
    assert_ptr_equal(h.self, t);
    assert_string_equal(conc_thread_name(h.self), "inner");
    release_join(&h, t);
}

static void
test_is_alive_and_timeout(void **state)
{
    (void)state;
    struct hold h;
    hold_init(&h, 5);
    conc_thread *t = start_held(&h, NULL);
    assert_true(conc_thread_is_alive(t));
    double t0 = conc_monotonic();
    assert_conc(conc_thread_join(t, 0.05, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc(conc_thread_join(t, 0, NULL), CONC_ETIMEDOUT);
    assert_true(conc_thread_is_alive(t));
    release_join(&h, t);
}

/* Several threads join one thread at once: all see its status. */
struct joiner {
    conc_thread *target;
    double timeout;
    int status;
};

static int
joiner_fn(void *arg)
{
    struct joiner *j = arg;
    return conc_thread_join(j->target, j->timeout, &j->status);
}

static void
test_concurrent_joiners(void **state)
{
    (void)state;
    struct hold h;
    hold_init(&h, 9);
    conc_thread *t = start_held(&h, NULL);
    struct joiner j[4];
    conc_thread *jt[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (struct joiner){t, i % 2 ? WAIT_S : CONC_FOREVER, 0};
        assert_conc_ok(conc_thread_start(joiner_fn, &j[i], NULL, &jt[i]));
    }
    sem_post(&h.release);
    for (int i = 0; i < 4; i++) {
        int r = -1;
        assert_conc_ok(conc_thread_join(jt[i], WAIT_S, &r));
        assert_conc_ok(r);
        assert_int_equal(j[i].status, 9);
        conc_thread_free(jt[i]);
    }
    assert_false(conc_thread_is_alive(t));
    assert_conc_ok(conc_thread_join(t, 0, NULL));
    conc_thread_free(t);
    hold_destroy(&h);
}

static int
self_join_fn(void *arg)
{
    int *out = arg;
    out[0] = conc_thread_join(conc_thread_current(), 1.0, NULL);
    out[1] = conc_thread_join(conc_thread_main(), 1.0, NULL);
    return 0;
}

static void
test_join_errors(void **state)
{
    (void)state;
    int res[2] = {0, 0};
    conc_thread *t;
    assert_conc_ok(conc_thread_start(self_join_fn, res, NULL, &t));
    assert_conc(conc_thread_join(t, NAN, NULL), CONC_EINVAL);
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    assert_conc(res[0], CONC_EDEADLK);
    assert_conc(res[1], CONC_ESTATE);
    /* The main thread joining itself. */
    assert_conc(conc_thread_join(conc_thread_main(), 0, NULL), CONC_EDEADLK);
    assert_conc(conc_thread_join(NULL, 0, NULL), CONC_EINVAL);
}

static void
test_ident_native_id(void **state)
{
    (void)state;
    struct hold a, b;
    hold_init(&a, 0);
    hold_init(&b, 0);
    conc_thread *ta = start_held(&a, NULL);
    conc_thread *tb = start_held(&b, NULL);
    assert_int_equal(conc_thread_ident(ta), a.pthread_id);
    assert_int_equal(conc_thread_ident(tb), b.pthread_id);
    assert_int_equal(conc_thread_native_id(ta), a.tid);
    assert_int_equal(conc_thread_native_id(tb), b.tid);
    assert_int_not_equal(conc_thread_ident(ta), conc_thread_ident(tb));
    assert_int_not_equal(conc_thread_native_id(ta), conc_thread_native_id(tb));
    assert_int_not_equal(conc_thread_native_id(ta), (long)getpid());
    release_join(&a, ta);
    release_join(&b, tb);
}

/* ---- Registry
 * ----------------------------------------------------------------- */

static int
listed(conc_thread **list, size_t n, conc_thread *t)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == t)
            return 1;
    return 0;
}

static void
test_active_count_enumerate(void **state)
{
    (void)state;
    size_t base = conc_active_count();
    assert_true(base >= 1);
    struct hold h[3];
    conc_thread *t[3];
    for (int i = 0; i < 3; i++) {
        hold_init(&h[i], i);
        t[i] = start_held(&h[i], NULL);
    }
    assert_int_equal(conc_active_count(), base + 3);
    conc_thread **list;
    size_t n;
    assert_conc_ok(conc_thread_enumerate(&list, &n));
    assert_int_equal(n, base + 3);
    assert_true(listed(list, n, conc_thread_main()));
    for (int i = 0; i < 3; i++)
        assert_true(listed(list, n, t[i]));
    for (int i = 0; i < 3; i++)
        release_join(&h[i], t[i]);
    assert_int_equal(conc_active_count(), base);
    /* The list's references keep the ended threads' handles valid. */
    for (size_t i = 0; i < n; i++)
        assert_non_null(conc_thread_name(list[i]));
    conc_thread_list_free(list, n);
    conc_thread_list_free(NULL, 0);

    conc_test_fail_alloc_after(1);
    assert_conc(conc_thread_enumerate(&list, &n), CONC_ENOMEM);
}

/* ---- Daemon flags
 * --------------------------------------------------------------- */

static int
spawn_child_fn(void *arg)
{
    int *daemon = arg;
    conc_thread *c;
    int r = conc_thread_start(return_arg_fn, NULL, NULL, &c);
    if (r)
        return r;
    *daemon = conc_thread_daemon(c);
    r = conc_thread_join(c, WAIT_S, NULL);
    conc_thread_free(c);
    return r;
}

static int
child_daemon_with(conc_daemon_mode parent)
{
    int daemon = -1;
    conc_thread *t;
    conc_thread_opts opts = {.daemon = parent};
    assert_conc_ok(conc_thread_start(spawn_child_fn, &daemon, &opts, &t));
    assert_int_equal(conc_thread_daemon(t), parent == CONC_DAEMON_YES);
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    return daemon;
}

static void
test_daemon_flags(void **state)
{
    (void)state;
    conc_thread *t;
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, NULL, &t));
    assert_false(conc_thread_daemon(t)); /* the main thread is not */
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    conc_thread_opts yes = {.daemon = CONC_DAEMON_YES};
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, &yes, &t));
    assert_true(conc_thread_daemon(t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    /* Children inherit their creator's flag. */
    assert_int_equal(child_daemon_with(CONC_DAEMON_YES), 1);
    assert_int_equal(child_daemon_with(CONC_DAEMON_NO), 0);
}

/* ---- excepthook
 * ------------------------------------------------------------------- */

struct hook_record {
    int calls;
    int status;
    char message[64];
    char name[32];
    int in_failing_thread;
    conc_thread *thread;
};

static void
record_hook(void *arg, const conc_thread_failure *f)
{
    struct hook_record *r = arg;
    r->calls++;
    r->status = f->status;
    snprintf(r->message, sizeof r->message, "%s", f->message);
    snprintf(r->name, sizeof r->name, "%s", conc_thread_name(f->thread));
    r->thread = f->thread;
    r->in_failing_thread = conc_thread_current() == f->thread;
}

static int
failing_fn(void *arg)
{
    int row = (int)(intptr_t)arg;
    if (row < 0)
        return CONC_EBROKEN; /* no message */
    return conc_fail(CONC_EVALUE, "bad row %d", row);
}

static void
test_excepthook_custom(void **state)
{
    (void)state;
    struct hook_record rec = {0};
    conc_set_excepthook(record_hook, &rec);
    conc_thread *t;
    conc_thread_opts opts = {.name = "failer"};
    int status = 0;
    assert_conc_ok(conc_thread_start(failing_fn, (void *)7, &opts, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    assert_conc(status, CONC_EVALUE);
    assert_int_equal(rec.calls, 1);
    assert_conc(rec.status, CONC_EVALUE);
    assert_string_equal(rec.message, "bad row 7");
    assert_string_equal(rec.name, "failer");
    assert_ptr_equal(rec.thread, t);
    assert_true(rec.in_failing_thread);
    conc_thread_free(t);

    /* Success calls no hook; the message starts clear in each thread. */
    conc_fail(CONC_EVALUE, "stale message in main");
    assert_conc_ok(conc_thread_start(failing_fn, (void *)-1, NULL, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    assert_int_equal(rec.calls, 2);
    assert_string_equal(rec.message, "");
    assert_conc_ok(conc_thread_start(return_arg_fn, NULL, NULL, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    assert_int_equal(rec.calls, 2);
    conc_clear_failure();
    conc_set_excepthook(NULL, NULL);
}

/* Runs `fn(arg)` in a thread named `name` with stderr captured in `out`. */
static void
run_capturing_stderr(conc_thread_fn fn, void *arg, const char *name, char *out,
                     size_t size)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    dup2(p[1], 2);
    close(p[1]);
    conc_thread *t;
    conc_thread_opts opts = {.name = name};
    int r = conc_thread_start(fn, arg, &opts, &t);
    if (!r)
        r = conc_thread_join(t, WAIT_S, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_conc_ok(r);
    conc_thread_free(t);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < size && (k = read(p[0], out + n, size - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(p[0]);
}

static void
test_excepthook_default(void **state)
{
    (void)state;
    struct hook_record rec = {0};
    conc_set_excepthook(record_hook, &rec);
    conc_set_excepthook(NULL, &rec); /* back to the default */
    char buf[256];
    run_capturing_stderr(failing_fn, (void *)3, "printer", buf, sizeof buf);
    assert_string_equal(
        buf, "Exception in thread printer: CONC_EVALUE: bad row 3\n");
    run_capturing_stderr(failing_fn, (void *)-1, "quiet", buf, sizeof buf);
    char want[256];
    snprintf(want, sizeof want, "Exception in thread quiet: CONC_EBROKEN: %s\n",
             conc_strerror(CONC_EBROKEN));
    assert_string_equal(buf, want);
    assert_int_equal(rec.calls, 0);
}

/* ---- Many threads, unobserved threads
 * ------------------------------------------------ */

static atomic_int counter;

static int
count_fn(void *arg)
{
    atomic_fetch_add(&counter, 1);
    return (int)(intptr_t)arg;
}

static void
test_many_threads(void **state)
{
    (void)state;
    enum { N = 50 };
    conc_thread *t[N];
    atomic_store(&counter, 0);
    for (int i = 0; i < N; i++)
        assert_conc_ok(
            conc_thread_start(count_fn, (void *)(intptr_t)i, NULL, &t[i]));
    for (int i = 0; i < N; i++) {
        int status = -1;
        assert_conc_ok(conc_thread_join(t[i], WAIT_S, &status));
        assert_int_equal(status, i);
        conc_thread_free(t[i]);
    }
    assert_int_equal(atomic_load(&counter), N);
}

static int
signal_end_fn(void *arg)
{
    struct hold *h = arg;
    if (sem_wait_for(&h->release, WAIT_S))
        return CONC_ETIMEDOUT;
    sem_post(&h->started); /* "about to end" */
    return 0;
}

static int
threads_back(void *arg)
{
    return conc_test_count_threads() <= *(int *)arg;
}

static void
test_handle_freed_before_end(void **state)
{
    (void)state;
    int before = conc_test_count_threads();
    long allocs = conc_test_live_allocations();
    size_t base = conc_active_count();
    struct hold h;
    hold_init(&h, 0);
    conc_thread *t;
    assert_conc_ok(conc_thread_start(signal_end_fn, &h, NULL, &t));
    conc_thread_free(t); /* before it ends: it detaches itself */
    assert_conc_ok(conc_thread_start(signal_end_fn, &h, NULL, NULL));
    assert_int_equal(conc_active_count(), base + 2);
    sem_post(&h.release);
    sem_post(&h.release);
    assert_int_equal(sem_wait_for(&h.started, WAIT_S), 0);
    assert_int_equal(sem_wait_for(&h.started, WAIT_S), 0);
    /* Both vanish with their memory, with nobody joining. */
    assert_true(conc_test_wait_until(threads_back, &before, WAIT_S));
    assert_int_equal(conc_test_live_allocations(), allocs);
    assert_int_equal(conc_active_count(), base);
    hold_destroy(&h);
}

/* ---- Foreign threads
 * ------------------------------------------------------------------- */

struct foreign {
    sem_t ready, release;
    conc_thread *self;
    char name[32];
    int daemon, self_join, alive;
    long tid;
};

static void *
foreign_fn(void *arg)
{
    struct foreign *f = arg;
    f->self = conc_thread_current();
    if (f->self) {
        snprintf(f->name, sizeof f->name, "%s", conc_thread_name(f->self));
        f->daemon = conc_thread_daemon(f->self);
        f->alive = conc_thread_is_alive(f->self);
        f->self_join = conc_thread_join(f->self, 0, NULL);
        f->tid = conc_thread_native_id(f->self);
        if (conc_thread_current() != f->self)
            f->self = NULL;
    }
    sem_post(&f->ready);
    sem_wait_for(&f->release, WAIT_S);
    return NULL;
}

static void
test_foreign_thread(void **state)
{
    (void)state;
    size_t base = conc_active_count();
    struct foreign f = {0};
    sem_init(&f.ready, 0, 0);
    sem_init(&f.release, 0, 0);
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, foreign_fn, &f), 0);
    assert_int_equal(sem_wait_for(&f.ready, WAIT_S), 0);
    assert_non_null(f.self);
    assert_memory_equal(f.name, "Dummy-", 6);
    assert_true(atoi(f.name + 6) >= 1);
    assert_true(f.daemon);
    assert_true(f.alive);
    assert_conc(f.self_join, CONC_EDEADLK);
    assert_int_not_equal(f.tid, (long)getpid());
    assert_int_equal(conc_active_count(), base + 1);

    conc_thread **list;
    size_t n;
    assert_conc_ok(conc_thread_enumerate(&list, &n));
    assert_true(listed(list, n, f.self));
    assert_conc(conc_thread_join(f.self, 0, NULL), CONC_ESTATE);
    assert_int_equal(conc_thread_ident(f.self), (unsigned long)pt);

    sem_post(&f.release);
    assert_int_equal(pthread_join(pt, NULL), 0);
    /* Its exit unlisted it; our reference from enumerate still works. */
    assert_false(conc_thread_is_alive(f.self));
    assert_int_equal(conc_active_count(), base);
    conc_thread_list_free(list, n);
    sem_destroy(&f.ready);
    sem_destroy(&f.release);
}

static void *
foreign_nomem_fn(void *arg)
{
    conc_test_fail_alloc_after(1);
    *(int *)arg = conc_thread_current() == NULL;
    return NULL;
}

static void
test_foreign_thread_nomem(void **state)
{
    (void)state;
    int was_null = 0;
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, foreign_nomem_fn, &was_null), 0);
    assert_int_equal(pthread_join(pt, NULL), 0);
    assert_true(was_null);
}

/* ---- Allocation failures
 * ----------------------------------------------------------------- */

static void
test_start_nomem(void **state)
{
    (void)state;
    size_t base = conc_active_count();
    conc_thread *t = (conc_thread *)&t;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_thread_start(return_arg_fn, NULL, NULL, &t), CONC_ENOMEM);
    assert_ptr_equal(t, (conc_thread *)&t); /* untouched */
    assert_int_equal(conc_active_count(), base);
}

/* ---- Thread-local data
 * ------------------------------------------------------------------- */

static atomic_int dtor_calls;
static atomic_int dtor_sum;

static void
count_dtor(void *value)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_fetch_add(&dtor_sum, (int)(intptr_t)value);
}

static void
reset_dtor_counts(void)
{
    atomic_store(&dtor_calls, 0);
    atomic_store(&dtor_sum, 0);
}

struct local_arg {
    conc_local *local;
    void *value;
    void *seen_before;
    void *seen_after;
    struct hold *hold;
};

static int
local_fn(void *arg)
{
    struct local_arg *a = arg;
    a->seen_before = conc_local_get(a->local);
    int r = conc_local_set(a->local, a->value);
    a->seen_after = conc_local_get(a->local);
    if (a->hold) {
        sem_post(&a->hold->started);
        if (sem_wait_for(&a->hold->release, WAIT_S))
            return CONC_ETIMEDOUT;
    }
    return r;
}

static void
run_local_fn(struct local_arg *a)
{
    conc_thread *t;
    int status = -1;
    assert_conc_ok(conc_thread_start(local_fn, a, NULL, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    conc_thread_free(t);
    assert_conc_ok(status);
}

static void
test_local_isolation_and_exit_dtor(void **state)
{
    (void)state;
    reset_dtor_counts();
    conc_local *l;
    assert_conc_ok(conc_local_new(count_dtor, &l));
    assert_null(conc_local_get(l));
    assert_conc_ok(conc_local_set(l, (void *)1));
    struct local_arg a = {.local = l, .value = (void *)10};
    run_local_fn(&a);
    assert_null(a.seen_before);
    assert_ptr_equal(a.seen_after, (void *)10);
    /* The thread's value went to the destructor when it ended. */
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_int_equal(atomic_load(&dtor_sum), 10);
    assert_ptr_equal(conc_local_get(l), (void *)1);
    conc_local_free(l);
    assert_int_equal(atomic_load(&dtor_calls), 2);
    assert_int_equal(atomic_load(&dtor_sum), 11);
    conc_local_free(NULL);
}

static void
test_local_replace(void **state)
{
    (void)state;
    reset_dtor_counts();
    conc_local *l;
    assert_conc_ok(conc_local_new(count_dtor, &l));
    assert_conc_ok(conc_local_set(l, NULL)); /* nothing to replace */
    assert_conc_ok(conc_local_set(l, (void *)1));
    assert_conc_ok(conc_local_set(l, (void *)2));
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_int_equal(atomic_load(&dtor_sum), 1);
    assert_conc_ok(conc_local_set(l, (void *)2)); /* the same: kept */
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_conc_ok(conc_local_set(l, NULL));
    assert_int_equal(atomic_load(&dtor_calls), 2);
    assert_int_equal(atomic_load(&dtor_sum), 3);
    assert_null(conc_local_get(l));
    conc_local_free(l); /* no value left: no call */
    assert_int_equal(atomic_load(&dtor_calls), 2);

    /* Without a destructor, values are simply dropped. */
    assert_conc_ok(conc_local_new(NULL, &l));
    assert_conc_ok(conc_local_set(l, (void *)1));
    assert_conc_ok(conc_local_set(l, (void *)2));
    assert_ptr_equal(conc_local_get(l), (void *)2);
    conc_local_free(l);
}

static void
test_local_free_runs_every_dtor(void **state)
{
    (void)state;
    reset_dtor_counts();
    conc_local *l;
    assert_conc_ok(conc_local_new(count_dtor, &l));
    enum { N = 3 };
    struct hold h[N];
    struct local_arg a[N];
    conc_thread *t[N];
    for (int i = 0; i < N; i++) {
        hold_init(&h[i], 0);
        a[i] = (struct local_arg){
            .local = l, .value = (void *)(intptr_t)(100 << i), .hold = &h[i]};
        assert_conc_ok(conc_thread_start(local_fn, &a[i], NULL, &t[i]));
        assert_int_equal(sem_wait_for(&h[i].started, WAIT_S), 0);
    }
    assert_conc_ok(conc_local_set(l, (void *)1));
    conc_local_free(l);
    assert_int_equal(atomic_load(&dtor_calls), N + 1);
    assert_int_equal(atomic_load(&dtor_sum), 1 + 100 + 200 + 400);
    for (int i = 0; i < N; i++)
        release_join(&h[i], t[i]);
    /* Their values were gone already: nothing more at their exit. */
    assert_int_equal(atomic_load(&dtor_calls), N + 1);
}

static void
test_local_ids_recycled(void **state)
{
    (void)state;
    reset_dtor_counts();
    /* More locals than pthread keys allow (PTHREAD_KEYS_MAX is 1024). */
    enum { N = 1500 };
    conc_local **ls = malloc(N * sizeof *ls);
    assert_non_null(ls);
    for (int i = 0; i < N; i++) {
        assert_conc_ok(conc_local_new(count_dtor, &ls[i]));
        assert_conc_ok(conc_local_set(ls[i], (void *)(intptr_t)(i + 1)));
    }
    for (int i = 0; i < N; i++)
        assert_ptr_equal(conc_local_get(ls[i]), (void *)(intptr_t)(i + 1));
    /* A freed local's id comes back with a new generation: no stale
     * value shows through it. */
    conc_local_free(ls[7]);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_conc_ok(conc_local_new(count_dtor, &ls[7]));
    assert_null(conc_local_get(ls[7]));
    struct local_arg a = {.local = ls[7], .value = (void *)5};
    run_local_fn(&a);
    assert_null(a.seen_before);
    for (int i = 0; i < N; i++)
        conc_local_free(ls[i]);
    assert_int_equal(atomic_load(&dtor_calls), 2 + N - 1);
    free(ls);
}

static int
local_nomem_fn(void *arg)
{
    conc_local *l = arg;
    conc_test_fail_alloc_after(1); /* the table's first allocation */
    int r = conc_local_set(l, (void *)1);
    if (r != CONC_ENOMEM || conc_local_get(l) != NULL)
        return -1;
    return conc_local_set(l, (void *)2); /* then it works */
}

static void
test_local_nomem(void **state)
{
    (void)state;
    reset_dtor_counts();
    conc_local *l = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_local_new(count_dtor, &l), CONC_ENOMEM);
    assert_null(l);
    assert_conc_ok(conc_local_new(count_dtor, &l));
    conc_thread *t;
    int status = -1;
    assert_conc_ok(conc_thread_start(local_nomem_fn, l, NULL, &t));
    assert_conc_ok(conc_thread_join(t, WAIT_S, &status));
    conc_thread_free(t);
    assert_conc_ok(status);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_int_equal(atomic_load(&dtor_sum), 2);
    conc_local_free(l);
}

static void *
foreign_local_fn(void *arg)
{
    conc_local *l = arg;
    if (conc_local_set(l, (void *)40))
        return NULL;
    return conc_local_get(l);
}

static void
test_local_foreign_thread(void **state)
{
    (void)state;
    reset_dtor_counts();
    conc_local *l;
    assert_conc_ok(conc_local_new(count_dtor, &l));
    pthread_t pt;
    void *got = NULL;
    assert_int_equal(pthread_create(&pt, NULL, foreign_local_fn, l), 0);
    assert_int_equal(pthread_join(pt, &got), 0);
    assert_ptr_equal(got, (void *)40);
    /* Its key destructor ran the local's destructor before it ended. */
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_int_equal(atomic_load(&dtor_sum), 40);
    conc_local_free(l);
    assert_int_equal(atomic_load(&dtor_calls), 1);
}

/* An ending thread's destructor and conc_local_free race: the free waits
 * until that destructor has returned. */
static sem_t dtor_entered, dtor_release;

static void
blocking_dtor(void *value)
{
    (void)value;
    sem_post(&dtor_entered);
    sem_wait_for(&dtor_release, WAIT_S);
    atomic_fetch_add(&dtor_calls, 1);
}

static int
free_local_fn(void *arg)
{
    conc_local_free(arg);
    return atomic_load(&dtor_calls) == 1 ? 0 : -1;
}

static void
test_local_free_waits_for_exit_dtor(void **state)
{
    (void)state;
    reset_dtor_counts();
    sem_init(&dtor_entered, 0, 0);
    sem_init(&dtor_release, 0, 0);
    conc_local *l;
    assert_conc_ok(conc_local_new(blocking_dtor, &l));
    struct local_arg a = {.local = l, .value = (void *)1};
    conc_thread *t, *f;
    assert_conc_ok(conc_thread_start(local_fn, &a, NULL, &t));
    assert_int_equal(sem_wait_for(&dtor_entered, WAIT_S), 0);
    assert_conc_ok(conc_thread_start(free_local_fn, l, NULL, &f));
    assert_conc(conc_thread_join(f, 0.05, NULL), CONC_ETIMEDOUT);
    sem_post(&dtor_release);
    int status = -1;
    assert_conc_ok(conc_thread_join(f, WAIT_S, &status));
    assert_conc_ok(status);
    assert_conc_ok(conc_thread_join(t, WAIT_S, NULL));
    conc_thread_free(t);
    conc_thread_free(f);
    sem_destroy(&dtor_entered);
    sem_destroy(&dtor_release);
}

/* ---- Fork and exit
 * ------------------------------------------------------------------------- */

static void
test_fork_child_sees_itself(void **state)
{
    (void)state;
    struct hold h;
    hold_init(&h, 0);
    conc_thread *held = start_held(&h, NULL);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        conc_thread **list;
        size_t n;
        int ok = conc_thread_enumerate(&list, &n) == 0 && n == 1 &&
                 list[0] == conc_thread_current() &&
                 list[0] == conc_thread_main() && conc_active_count() == 1 &&
                 conc_thread_native_id(list[0]) == (long)getpid() &&
                 !conc_thread_is_alive(held) &&
                 conc_thread_join(held, 0, NULL) == 0;
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(conc_thread_is_alive(held));
    release_join(&h, held);
}

/* Reads one byte from `fd` within WAIT_S; returns it, 0 at EOF, -1 on
 * timeout. */
static int
read_byte(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(WAIT_S * 1000)) != 1)
        return -1;
    char c;
    ssize_t n = read(fd, &c, 1);
    return n == 1 ? (unsigned char)c : 0;
}

/* Runs in the forked child: its fds. */
static int child_out = -1, child_release = -1, child_never = -1;

static void
child_say(char c)
{
    ssize_t n = write(child_out, &c, 1);
    (void)n;
}

static int
child_nondaemon_fn(void *arg)
{
    char c;
    if (read(child_release, &c, 1) != 1)
        return -1;
    child_say((char)(intptr_t)arg);
    return 0;
}

static int
child_daemon_fn(void *arg)
{
    char c;
    ssize_t n = read(child_never, &c, 1); /* never written */
    (void)n;
    child_say('D');
    return 0;
}

/* In the child, the very end of exit(): ELF destructors run after every
 * atexit handler, conc's included. */
__attribute__((destructor)) static void
say_end(void)
{
    if (child_out >= 0)
        child_say('E');
}

static void
say_x(void)
{
    child_say('X');
}

/* Forks a child running `body` with a pipe for its output and one to
 * release it; reads bytes, releasing once after `release_after`, and
 * returns what it read until EOF and the exit status. */
static void
run_child(void (*body)(void), char release_after, char *got, size_t size,
          int *status)
{
    int out[2], rel[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(rel, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int never[2];
        if (pipe(never))
            _exit(99);
        close(out[0]);
        close(rel[1]);
        child_out = out[1];
        child_release = rel[0];
        child_never = never[0];
        body();
        _exit(98);
    }
    close(out[1]);
    close(rel[0]);
    size_t n = 0;
    int c;
    while (n + 1 < size && (c = read_byte(out[0])) > 0) {
        got[n++] = (char)c;
        if (c == release_after)
            assert_int_equal(write(rel[1], "r", 1), 1);
    }
    got[n] = '\0';
    if (c < 0)
        kill(pid, SIGKILL); /* it hung: fail below, without hanging */
    close(out[0]);
    close(rel[1]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    assert_true(c == 0);
}

/* Returns from "main" through exit(): waits for the non-daemon thread,
 * not for the daemon one. */
static void
exit_body(void)
{
    conc_thread_opts nd = {.daemon = CONC_DAEMON_NO};
    conc_thread_opts d = {.daemon = CONC_DAEMON_YES};
    if (conc_thread_start(child_nondaemon_fn, (void *)(intptr_t)'T', &nd,
                          NULL) ||
        conc_thread_start(child_daemon_fn, NULL, &d, NULL))
        _exit(97);
    atexit(say_x); /* runs before conc's handler */
    child_say('M');
    exit(0); /* 'E' comes from say_end */
}

static void
test_exit_waits_for_nondaemon(void **state)
{
    (void)state;
    char got[16];
    int st;
    /* 'X' shows the child inside exit(); it is released only then, so 'T'
     * arriving before 'E' (the end of exit) shows that exit waited for
     * that thread. The daemon thread never ends, and the child exits
     * anyway. */
    run_child(exit_body, 'X', got, sizeof got, &st);
    assert_string_equal(got, "MXTE");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int
child_exit_fn(void *arg)
{
    child_say('B');
    conc_exit(7); /* waits for the other, not for itself */
}

static void
conc_exit_body(void)
{
    conc_thread_opts nd = {.daemon = CONC_DAEMON_NO};
    if (conc_thread_start(child_nondaemon_fn, (void *)(intptr_t)'A', &nd,
                          NULL) ||
        conc_thread_start(child_exit_fn, NULL, &nd, NULL))
        _exit(97);
    for (;;)
        pause(); /* the process ends from conc_exit */
}

static void
test_conc_exit(void **state)
{
    (void)state;
    char got[16];
    int st;
    run_child(conc_exit_body, 'B', got, sizeof got, &st);
    assert_string_equal(got, "BAE");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
}

/* A thread that computes without sleeping until its creator, back from
 * conc_thread_start, says go; it reports the CPU it had used by then. */
struct hold_probe {
    atomic_int go;
    double cpu_ms; /* the thread's CPU time when it saw `go` */
};

static double
thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
hold_probe_fn(void *arg)
{
    struct hold_probe *hp = arg;
    double start = thread_cpu_ms();
    /* Bounded: gives up after 10 s of its own CPU. */
    while (!atomic_load(&hp->go) && thread_cpu_ms() - start < 10000)
        ;
    hp->cpu_ms = thread_cpu_ms() - start;
    return 0;
}

static double
probe_start(int parallel)
{
    struct hold_probe hp = {.go = 0, .cpu_ms = -1};
    conc_thread *t;
    conc_thread_opts o = {.parallel_start = parallel};
    assert_conc_ok(conc_thread_start(hold_probe_fn, &hp, &o, &t));
    atomic_store(&hp.go, 1);
    assert_conc_ok(conc_thread_join(t, 30.0, NULL));
    conc_thread_free(t);
    return hp.cpu_ms;
}

/* By default start holds the creator while the new thread computes, up to
 * CPython's 5 ms switch interval of the thread's CPU; parallel_start does
 * not. The second check allows for a creator descheduled right after
 * start returned: one quick start in five tries is enough. */
static void
test_parallel_start(void **state)
{
    (void)state;
    assert_true(probe_start(0) >= 4.0);
    int quick = 0;
    for (int i = 0; i < 5 && !quick; i++)
        quick = probe_start(1) < 4.0;
    assert_true(quick);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_start_join_status),
        conc_unit_test(test_start_returns_once_running),
        conc_unit_test(test_seed004_thread_order),
        conc_unit_test(test_seed002_condition_dialogue),
        conc_unit_test(test_seed003_event_traffic_light),
        conc_unit_test(test_start_of_busy_thread),
        conc_unit_test(test_stack_size),
        conc_unit_test(test_names),
        conc_unit_test(test_set_name),
        conc_unit_test(test_set_name_self),
        conc_unit_test(test_current_and_main),
        conc_unit_test(test_is_alive_and_timeout),
        conc_unit_test(test_concurrent_joiners),
        conc_unit_test(test_join_errors),
        conc_unit_test(test_ident_native_id),
        conc_unit_test(test_active_count_enumerate),
        conc_unit_test(test_daemon_flags),
        conc_unit_test(test_excepthook_custom),
        conc_unit_test(test_excepthook_default),
        conc_unit_test(test_many_threads),
        conc_unit_test(test_handle_freed_before_end),
        conc_unit_test(test_foreign_thread),
        conc_unit_test(test_foreign_thread_nomem),
        conc_unit_test(test_start_nomem),
        conc_unit_test(test_local_isolation_and_exit_dtor),
        conc_unit_test(test_local_replace),
        conc_unit_test(test_local_free_runs_every_dtor),
        conc_unit_test(test_local_ids_recycled),
        conc_unit_test(test_local_nomem),
        conc_unit_test(test_local_foreign_thread),
        conc_unit_test(test_local_free_waits_for_exit_dtor),
        conc_unit_test(test_fork_child_sees_itself),
        conc_unit_test(test_exit_waits_for_nondaemon),
        conc_unit_test(test_conc_exit),
        conc_unit_test(test_parallel_start),
    };
    return conc_run_tests(tests);
}
