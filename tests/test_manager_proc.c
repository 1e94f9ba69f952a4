/* Managers (conc/manager.h) beyond one process's threads: a server in a
 * child process and in the calling thread, proxies used from many
 * threads, a manager killed under load, methods that return proxies and
 * proxies inside values (with unmodified CPython on the other side,
 * tests/peers/manager_proxy_peer.py, and a SyncManager of
 * tests/peers/manager_peer.py), and conc_conn_send_obj and
 * conc_conn_recv_obj with a CPython peer. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"
#include "manager/manager_internal.h"

#define PEER      CONC_PEERS_DIR "/manager_proxy_peer.py"
#define SYNC_PEER CONC_PEERS_DIR "/manager_peer.py"
#define PYTHON    "/usr/bin/python3"
#define KEY       "Willard"
#define WAIT      30.0 /* bound on any wait for a peer or a thread */
#define DEATH     5.0  /* bound on learning that a killed manager is gone */

static int
have_python(void)
{
    return access(PYTHON, X_OK) == 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
address_of(conc_manager *m, char *addr, size_t cap)
{
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    assert_true(b.len < cap);
    memcpy(addr, b.data, b.len + 1);
    conc_buf_free(&b);
}

static conc_obj *
str(const char *s)
{
    conc_obj *o = conc_obj_str(s);
    assert_non_null(o);
    return o;
}

static void
assert_str(conc_obj *o, const char *want)
{
    assert_non_null(conc_obj_str_value(o));
    assert_string_equal(conc_obj_str_value(o), want);
}

static conc_obj *
args1(conc_obj *item)
{
    conc_obj *t = conc_obj_tuple(1);
    assert_non_null(t);
    conc_obj_tuple_set_new(t, 0, item);
    return t;
}

/* ---- A type whose methods block, for calls from several threads -------- */

struct gate {
    conc_event *entered; /* set by block() once it waits */
    conc_event *go;      /* set by open() */
};

static int
gate_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)args;
    (void)kwds;
    *self = arg;
    return 0;
}

static void
gate_release(void *self)
{
    (void)self;
}

/* block(): waits up to 3 s for open(); True if it came. */
static int
gate_block(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct gate *g = self;
    conc_event_set(g->entered);
    *result = conc_obj_bool(conc_event_wait(g->go, 3.0) == 0);
    return 0;
}

static int
gate_open(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    conc_event_set(((struct gate *)self)->go);
    *result = NULL;
    return 0;
}

static int
gate_echo(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)self;
    (void)kwds;
    *result = conc_obj_incref(conc_obj_seq_get(args, 0));
    return 0;
}

static const conc_manager_method gate_methods[] = {
    {"block", gate_block},
    {"open", gate_open},
    {"echo", gate_echo},
};

static const conc_manager_type gate_type = {
    .create = gate_create,
    .release = gate_release,
    .methods = gate_methods,
    .n_methods = 3,
};

/* A started manager that serves the type Gate over one gate, and a proxy
 * to a Gate of it. */
struct gate_server {
    struct gate g;
    conc_manager *m;
    conc_proxy *p;
};

static void
gate_server_start(struct gate_server *s)
{
    assert_conc_ok(conc_event_new(NULL, &s->g.entered));
    assert_conc_ok(conc_event_new(NULL, &s->g.go));
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &s->m));
    assert_conc_ok(conc_manager_register(s->m, "Gate", &gate_type, &s->g));
    assert_conc_ok(conc_manager_start(s->m));
    assert_conc_ok(conc_manager_create(s->m, "Gate", NULL, &s->p));
}

/* Frees the manager and the gate; the test frees the proxy when it
 * chooses (before this). */
static void
gate_server_end(struct gate_server *s)
{
    conc_manager_free(s->m);
    conc_event_free(s->g.entered);
    conc_event_free(s->g.go);
}

struct caller {
    conc_proxy *p;
    int rc;
    int got; /* block()'s result, or echo's matches */
    int id;
};

static int
call_block(void *arg)
{
    struct caller *c = arg;
    conc_obj *r = NULL;
    c->rc = conc_proxy_call(c->p, "block", NULL, NULL, &r);
    c->got = c->rc == 0 && conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    return 0;
}

#define ECHO_THREADS 6
#define ECHO_CALLS   200

static int
call_echo(void *arg)
{
    struct caller *c = arg;
    for (int i = 0; i < ECHO_CALLS && c->rc == 0; i++) {
        conc_obj *a = args1(conc_obj_int(c->id * 100000 + i)), *r = NULL;
        c->rc = conc_proxy_call(c->p, "echo", a, NULL, &r);
        int64_t v = -1;
        if (c->rc == 0 && conc_obj_int_value(r, &v) == 0 &&
            v == c->id * 100000 + i)
            c->got++;
        conc_obj_decref(r);
        conc_obj_decref(a);
    }
    return 0;
}

/* A proxy used by two threads at once: a call blocked in the server holds
 * up no other thread's call on the same proxy (each thread has its own
 * connection), and replies never cross between threads. */
static void
test_thread_connections(void **state)
{
    (void)state;
    struct gate_server s;
    gate_server_start(&s);
    conc_proxy *p = s.p;

    struct caller blocker = {.p = p};
    conc_thread *t;
    assert_conc_ok(conc_thread_start(call_block, &blocker, NULL, &t));
    assert_conc_ok(conc_event_wait(s.g.entered, WAIT));
    conc_obj *r = NULL;
    double t0 = now_s();
    assert_conc_ok(conc_proxy_call(p, "open", NULL, NULL, &r));
    assert_true(now_s() - t0 < 2.0); /* not after block() timed out */
    conc_obj_decref(r);
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    assert_conc_ok(blocker.rc);
    assert_int_equal(blocker.got, 1);

    struct caller c[ECHO_THREADS];
    conc_thread *ts[ECHO_THREADS];
    for (int i = 0; i < ECHO_THREADS; i++) {
        c[i] = (struct caller){.p = p, .id = i};
        assert_conc_ok(conc_thread_start(call_echo, &c[i], NULL, &ts[i]));
    }
    for (int i = 0; i < ECHO_THREADS; i++) {
        assert_conc_ok(conc_thread_join(ts[i], WAIT, NULL));
        conc_thread_free(ts[i]);
        assert_conc_ok(c[i].rc);
        assert_int_equal(c[i].got, ECHO_CALLS);
    }
    conc_proxy_free(p);
    gate_server_end(&s);
}

static int
call_echo_once(void *arg)
{
    struct caller *c = arg;
    conc_obj *a = args1(conc_obj_int(1)), *r = NULL;
    c->rc = conc_proxy_call(c->p, "echo", a, NULL, &r);
    conc_obj_decref(r);
    conc_obj_decref(a);
    return 0;
}

/* A call, then `done` set while the thread is still on its way out. */
struct ender {
    struct caller c;
    conc_event *done;
};

static int
call_and_end(void *arg)
{
    struct ender *e = arg;
    call_echo_once(&e->c);
    conc_event_set(e->done);
    return 0;
}

/* The server serves only the connection its own manager keeps for
 * server functions (create, decref). */
static int
no_connection(void *arg)
{
    return conc__mgr_conn_count(arg) == 1;
}

/* The connection a thread opened for a proxy's calls closes when the
 * thread ends, as CPython's do, not when the proxy is freed: the server
 * sees it go while the proxy lives on. */
static void
test_thread_end_closes(void **state)
{
    (void)state;
    struct gate_server s;
    gate_server_start(&s);
    conc_manager *m = s.m;
    conc_proxy *p = s.p;
    assert_true(conc_test_wait_until(no_connection, m, WAIT));
    for (int i = 0; i < 2; i++) {
        struct caller c = {.p = p};
        conc_thread *t;
        assert_conc_ok(conc_thread_start(call_echo_once, &c, NULL, &t));
        assert_conc_ok(conc_thread_join(t, WAIT, NULL));
        conc_thread_free(t);
        assert_conc_ok(c.rc);
        assert_true(conc_test_wait_until(no_connection, m, DEATH));
    }
    /* A thread's end and conc_proxy_free at once close its connection
     * once (ASan and TSan watch this). */
    struct ender e = {.c = {.p = p}, .done = s.g.entered};
    conc_event_clear(s.g.entered);
    conc_thread *t;
    assert_conc_ok(conc_thread_start(call_and_end, &e, NULL, &t));
    assert_conc_ok(conc_event_wait(s.g.entered, WAIT));
    conc_proxy_free(p);
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    assert_conc_ok(e.c.rc);
    assert_true(conc_test_wait_until(no_connection, m, DEATH));
    gate_server_end(&s);
}

/* ---- serve_forever ------------------------------------------------------ */

static int
serve(void *arg)
{
    return conc_manager_serve_forever(arg);
}

static void
use_dict(conc_manager *c)
{
    conc_proxy *d;
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    conc_obj *k = str("k"), *v = conc_obj_int(7), *got = NULL;
    assert_conc_ok(conc_dictproxy_set(d, k, v));
    assert_conc_ok(conc_dictproxy_get(d, k, &got));
    assert_true(conc_obj_equal(got, v) == 1);
    conc_obj_decref(got);
    conc_obj_decref(k);
    conc_obj_decref(v);
    conc_proxy_free(d);
}

/* serve_forever returns on a client's shutdown request, and on
 * conc_manager_shutdown from another thread. */
static void
test_serve_forever(void **state)
{
    (void)state;
    for (int by_client = 1; by_client >= 0; by_client--) {
        conc_manager *m, *c;
        char addr[256];
        assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
        address_of(m, addr, sizeof addr);
        conc_thread *t;
        assert_conc_ok(conc_thread_start(serve, m, NULL, &t));
        assert_conc_ok(conc_manager_connect(addr, KEY, &c));
        use_dict(c);
        if (by_client)
            assert_conc_ok(conc_manager_shutdown(c));
        else
            assert_conc_ok(conc_manager_shutdown(m));
        int rc = -1;
        assert_conc_ok(conc_thread_join(t, WAIT, &rc));
        assert_int_equal(rc, 0);
        conc_thread_free(t);
        assert_conc(conc_manager_serve_forever(m), CONC_ESTATE);
        conc_proxy *p;
        assert_true(conc_manager_create(c, "dict", NULL, &p) < 0);
        conc_manager_free(c);
        conc_manager_free(m);
    }
}

/* ---- A manager in its own process -------------------------------------- */

static int
pid_alive(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z';
}

/* Manager(): a child serves, the parent creates and uses objects as a
 * client, and shutdown stops and reaps the child, whose Unix socket is
 * gone after. */
static void
test_process(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/conc-mgr-proc-%d.sock", (int)getpid());
    const char *where[] = {"127.0.0.1:0", path};
    for (size_t i = 0; i < 2; i++) {
        conc_manager *m;
        assert_conc_ok(conc_manager_new(where[i], KEY, &m));
        pid_t pid;
        assert_conc(conc_manager_pid(m, &pid), CONC_ESTATE);
        assert_conc_ok(conc_manager_start_process(m));
        assert_conc(conc_manager_start_process(m), CONC_ESTATE);
        assert_conc_ok(conc_manager_pid(m, &pid));
        assert_true(pid != getpid());
        use_dict(m);
        /* Another process reaches it too, as a client. */
        char addr[256];
        conc_manager *c;
        address_of(m, addr, sizeof addr);
        assert_conc_ok(conc_manager_connect(addr, KEY, &c));
        use_dict(c);
        conc_manager_free(c);
        assert_conc_ok(conc_manager_shutdown(m));
        assert_false(pid_alive(pid));
        assert_conc(conc_manager_pid(m, &pid), CONC_ESTATE);
        if (i == 1)
            assert_int_equal(access(path, F_OK), -1);
        conc_manager_free(m);
    }
}

/* A forked test child that starts a manager process, reports its pid on
 * `fd` and dies by SIGKILL. */
static int orphan_fd;

static int
orphan_parent(void *arg)
{
    (void)arg;
    conc_manager *m;
    if (conc_manager_new("127.0.0.1:0", KEY, &m) < 0 ||
        conc_manager_start_process(m) < 0)
        return 1;
    pid_t pid;
    if (conc_manager_pid(m, &pid) < 0 ||
        write(orphan_fd, &pid, sizeof pid) != sizeof pid)
        return 2;
    raise(SIGKILL);
    return 3;
}

static int
pid_gone(void *arg)
{
    return !pid_alive(*(pid_t *)arg);
}

/* The manager's process dies with the process that started it. */
static void
test_process_orphaned(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    orphan_fd = fds[1];
    pid_t parent = fork_child(orphan_parent, NULL);
    close(fds[1]);
    pid_t pid = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, (int)(WAIT * 1000)), 1);
    assert_int_equal(read(fds[0], &pid, sizeof pid), sizeof pid);
    close(fds[0]);
    int status = reap_status(parent);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(conc_test_wait_until(pid_gone, &pid, WAIT));
}

/* ---- A manager killed under load ---------------------------------------- */

#define LOADERS 2
#define GETTERS 2

struct load {
    conc_proxy *p;
    atomic_int *calls;
    int rc;
    double ended; /* when the last call returned */
};

static int
load_dict(void *arg)
{
    struct load *l = arg;
    conc_obj *k = conc_obj_str("k"), *v = conc_obj_int(1);
    do {
        conc_obj *got = NULL;
        l->rc = conc_dictproxy_set(l->p, k, v);
        if (l->rc == 0)
            l->rc = conc_dictproxy_get(l->p, k, &got);
        conc_obj_decref(got);
        atomic_fetch_add(l->calls, 1);
    } while (l->rc == 0);
    l->ended = now_s();
    conc_obj_decref(k);
    conc_obj_decref(v);
    return 0;
}

static int
load_get(void *arg)
{
    struct load *l = arg;
    conc_obj *item = NULL;
    atomic_fetch_add(l->calls, 1);
    l->rc = conc_queueproxy_get(l->p, CONC_FOREVER, &item);
    conc_obj_decref(item);
    l->ended = now_s();
    return 0;
}

static int
enough_calls(void *arg)
{
    return atomic_load((atomic_int *)arg) >= 100 + GETTERS;
}

/* SIGKILL of the manager's process: every blocked and every new call
 * fails with CONC_ECLOSED within DEATH seconds, none hangs. */
static void
test_killed_under_load(void **state)
{
    (void)state;
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_start_process(m));
    conc_proxy *d, *q;
    assert_conc_ok(conc_manager_create(m, "dict", NULL, &d));
    assert_conc_ok(conc_manager_create(m, "Queue", NULL, &q));
    atomic_int calls = 0;
    struct load l[LOADERS + GETTERS];
    conc_thread *t[LOADERS + GETTERS];
    for (int i = 0; i < LOADERS + GETTERS; i++) {
        l[i] = (struct load){.p = i < LOADERS ? d : q, .calls = &calls};
        assert_conc_ok(conc_thread_start(i < LOADERS ? load_dict : load_get,
                                         &l[i], NULL, &t[i]));
    }
    assert_true(conc_test_wait_until(enough_calls, &calls, WAIT));
    pid_t pid;
    assert_conc_ok(conc_manager_pid(m, &pid));
    double killed = now_s();
    assert_int_equal(kill(pid, SIGKILL), 0);
    for (int i = 0; i < LOADERS + GETTERS; i++) {
        assert_conc_ok(conc_thread_join(t[i], WAIT, NULL));
        conc_thread_free(t[i]);
        assert_conc(l[i].rc, CONC_ECLOSED);
        assert_true(l[i].ended - killed < DEATH);
    }
    conc_obj *got = NULL;
    double t0 = now_s();
    assert_conc(conc_queueproxy_get(q, CONC_FOREVER, &got), CONC_ECLOSED);
    conc_proxy *p;
    assert_conc(conc_manager_create(m, "dict", NULL, &p), CONC_ECLOSED);
    assert_true(now_s() - t0 < DEATH);
    conc_proxy_free(d);
    conc_proxy_free(q);
    conc_manager_free(m); /* reaps the killed child */
    assert_false(pid_alive(pid));
}

/* ---- Clients that die inside a blocking call ---------------------------- */

/* What a forked client calls on its copy of a proxy, and blocks in. */
struct blocked_call {
    conc_proxy *p;
    const char *first; /* called before `method` (NULL: none) */
    const char *method;
};

static int
call_and_block(void *arg)
{
    struct blocked_call *b = arg;
    conc_obj *r = NULL;
    if (b->first && conc_proxy_call(b->p, b->first, NULL, NULL, &r) < 0)
        return 1;
    conc_obj_decref(r);
    conc_proxy_call(b->p, b->method, NULL, NULL, &r);
    return 2; /* never gets here: killed while blocked */
}

static int
one_watching(void *arg)
{
    (void)arg;
    return conc__mgr_watch_count() == 1;
}

static int
hung_up(void *arg)
{
    return conc__mgr_watch_hangups() > *(uint64_t *)arg &&
           conc__mgr_watch_count() == 0;
}

/* Forks a client that calls `b` and blocks in the server, kills it with
 * SIGKILL once it blocks, and waits until the server noticed. */
static void
kill_blocked(struct blocked_call *b)
{
    uint64_t before = conc__mgr_watch_hangups();
    pid_t pid = fork_child(call_and_block, b);
    assert_true(conc_test_wait_until(one_watching, NULL, WAIT));
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = reap_status(pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(conc_test_wait_until(hung_up, &before, DEATH));
}

static conc_manager *
local_server(void)
{
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_start(m));
    return m;
}

static int
barrier_broken(void *arg)
{
    conc_obj *name = args1(str("broken")), *r = NULL;
    int rc = conc_proxy_call(arg, "__getattribute__", name, NULL, &r);
    int broken = rc == 0 && conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    conc_obj_decref(name);
    return broken;
}

/* A party whose client dies in Barrier.wait breaks the barrier at once,
 * as threading's does for a party that fails inside wait: the others get
 * BrokenBarrierError instead of waiting for a party that never comes. */
static void
test_killed_in_barrier_wait(void **state)
{
    (void)state;
    conc_manager *m = local_server();
    conc_proxy *b;
    conc_obj *two = args1(conc_obj_int(2)), *r = NULL;
    assert_conc_ok(conc_manager_create(m, "Barrier", two, &b));
    struct blocked_call call = {b, NULL, "wait"};
    kill_blocked(&call);
    assert_true(barrier_broken(b));
    assert_conc(conc_proxy_call(b, "wait", NULL, NULL, &r), CONC_EBROKEN);
    conc_obj_decref(two);
    conc_proxy_free(b);
    conc_manager_free(m);
}

/* A client that dies in Queue.get takes no item: the next put goes to a
 * live getter. */
static void
test_killed_in_queue_get(void **state)
{
    (void)state;
    conc_manager *m = local_server();
    conc_proxy *q;
    assert_conc_ok(conc_manager_create(m, "Queue", NULL, &q));
    struct blocked_call call = {q, NULL, "get"};
    kill_blocked(&call);
    conc_obj *item = str("item"), *got = NULL;
    assert_conc_ok(conc_queueproxy_put(q, item, 0));
    assert_conc_ok(conc_queueproxy_get(q, 0, &got));
    assert_str(got, "item");
    conc_obj_decref(got);
    conc_obj_decref(item);
    conc_proxy_free(q);
    conc_manager_free(m);
}

/* A client that dies in Lock.acquire does not get the lock when it is
 * released. */
static void
test_killed_in_lock_acquire(void **state)
{
    (void)state;
    conc_manager *m = local_server();
    conc_proxy *l;
    conc_obj *r = NULL;
    assert_conc_ok(conc_manager_create(m, "Lock", NULL, &l));
    assert_conc_ok(conc_proxy_call(l, "acquire", NULL, NULL, &r));
    conc_obj_decref(r);
    struct blocked_call call = {l, NULL, "acquire"};
    kill_blocked(&call);
    assert_conc_ok(conc_proxy_call(l, "release", NULL, NULL, &r));
    conc_obj_decref(r);
    conc_obj *no = args1(conc_obj_bool(0));
    assert_conc_ok(conc_proxy_call(l, "acquire", no, NULL, &r));
    assert_int_equal(conc_obj_truth(r), 1);
    conc_obj_decref(r);
    conc_obj_decref(no);
    conc_proxy_free(l);
    conc_manager_free(m);
}

/* A registered C type whose methods block until their client is gone:
 * wait() in a watched wait (conc_manager_watch_begin), poll() in steps,
 * asking conc_manager_client_gone. */
struct waiter {
    conc_event *never;    /* never set: the methods wait for the hang-up */
    conc_event *entered;  /* set by poll() before its first step */
    conc_event *returned; /* set once a method returned */
    int began, rc, gone;  /* what the method saw, read after `returned` */
};

#define POLL_STEP 0.01 /* poll()'s wait between two looks */

static int
waiter_wait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct waiter *w = self;
    int began = conc_manager_watch_begin();
    int rc = conc_event_wait(w->never, CONC_FOREVER);
    conc_manager_watch_end(began);
    w->began = began;
    w->rc = rc;
    w->gone = conc_manager_client_gone();
    conc_event_set(w->returned);
    return rc;
}

static int
waiter_poll(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    struct waiter *w = self;
    conc_event_set(w->entered);
    int rc = CONC_ETIMEDOUT;
    while (!conc_manager_client_gone() && rc == CONC_ETIMEDOUT)
        rc = conc_event_wait(w->never, POLL_STEP);
    w->rc = rc;
    w->gone = conc_manager_client_gone();
    conc_event_set(w->returned);
    return rc;
}

static const conc_manager_method waiter_methods[] = {
    {"wait", waiter_wait},
    {"poll", waiter_poll},
};

static const conc_manager_type waiter_type = {
    .create = gate_create,
    .release = gate_release,
    .methods = waiter_methods,
    .n_methods = 2,
};

static conc_manager *
waiter_server(struct waiter *w, conc_proxy **p)
{
    *w = (struct waiter){0};
    assert_conc_ok(conc_event_new(NULL, &w->never));
    assert_conc_ok(conc_event_new(NULL, &w->entered));
    assert_conc_ok(conc_event_new(NULL, &w->returned));
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_register(m, "Waiter", &waiter_type, w));
    assert_conc_ok(conc_manager_start(m));
    assert_conc_ok(conc_manager_create(m, "Waiter", NULL, p));
    return m;
}

static void
waiter_free(struct waiter *w, conc_manager *m, conc_proxy *p)
{
    conc_proxy_free(p);
    conc_manager_free(m);
    conc_event_free(w->never);
    conc_event_free(w->entered);
    conc_event_free(w->returned);
}

/* A registered method's watched wait ends with CONC_ECANCELED as soon as
 * its client dies, as the built-in types' waits do, instead of blocking
 * its thread for good. Outside a method call there is nothing to watch. */
static void
test_killed_in_registered_wait(void **state)
{
    (void)state;
    assert_int_equal(conc_manager_watch_begin(), 0);
    conc_manager_watch_end(1); /* nothing to end: does nothing */
    assert_int_equal(conc_manager_client_gone(), 0);
    struct waiter w;
    conc_proxy *p;
    conc_manager *m = waiter_server(&w, &p);
    struct blocked_call call = {p, NULL, "wait"};
    kill_blocked(&call);
    assert_conc_ok(conc_event_wait(w.returned, WAIT));
    assert_int_equal(w.began, 1);
    assert_conc(w.rc, CONC_ECANCELED);
    assert_int_equal(w.gone, 1);
    waiter_free(&w, m, p);
}

/* A registered method that waits in steps learns from
 * conc_manager_client_gone that its client died. */
static void
test_killed_in_registered_poll(void **state)
{
    (void)state;
    struct waiter w;
    conc_proxy *p;
    conc_manager *m = waiter_server(&w, &p);
    struct blocked_call call = {p, NULL, "poll"};
    pid_t pid = fork_child(call_and_block, &call);
    assert_conc_ok(conc_event_wait(w.entered, WAIT));
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = reap_status(pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_conc_ok(conc_event_wait(w.returned, WAIT));
    assert_conc(w.rc, CONC_ETIMEDOUT);
    assert_int_equal(w.gone, 1);
    waiter_free(&w, m, p);
}

static int
cond_wait_once(void *arg)
{
    struct caller *c = arg;
    conc_obj *r = NULL, *t = args1(conc_obj_float(WAIT));
    c->rc = conc_proxy_call(c->p, "acquire", NULL, NULL, &r);
    conc_obj_decref(r);
    r = NULL;
    if (c->rc == 0)
        c->rc = conc_proxy_call(c->p, "wait", t, NULL, &r);
    c->got = c->rc == 0 && conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    conc_obj_decref(t);
    return 0;
}

/* A client that dies in Condition.wait leaves the line of waiters: a
 * notify goes to a live waiter, not to the dead one that came first. */
static void
test_killed_in_condition_wait(void **state)
{
    (void)state;
    conc_manager *m = local_server();
    conc_proxy *c;
    assert_conc_ok(conc_manager_create(m, "Condition", NULL, &c));
    struct blocked_call call = {c, "acquire", "wait"};
    kill_blocked(&call);
    struct caller live = {.p = c};
    conc_thread *t;
    assert_conc_ok(conc_thread_start(cond_wait_once, &live, NULL, &t));
    assert_true(conc_test_wait_until(one_watching, NULL, WAIT));
    conc_obj *r = NULL;
    assert_conc_ok(conc_proxy_call(c, "acquire", NULL, NULL, &r));
    conc_obj_decref(r);
    assert_conc_ok(conc_proxy_call(c, "notify", NULL, NULL, &r));
    conc_obj_decref(r);
    assert_conc_ok(conc_proxy_call(c, "release", NULL, NULL, &r));
    conc_obj_decref(r);
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    assert_conc_ok(live.rc);
    assert_int_equal(live.got, 1);
    conc_proxy_free(c);
    conc_manager_free(m);
}

/* ---- Methods that return proxies; proxies inside values ----------------- */

/* Holder: an object owning a queue that get_queue() returns as a proxy
 * (method_to_typeid = {'get_queue': 'Queue'}). */
struct holder {
    void *queue;
};

static int
holder_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    (void)args;
    (void)kwds;
    struct holder *h = malloc(sizeof *h);
    if (!h)
        return CONC_ENOMEM;
    int rc = conc_manager_queue_new(0, &h->queue);
    if (rc < 0)
        free(h);
    else
        *self = h;
    return rc;
}

static void
holder_release(void *self)
{
    struct holder *h = self;
    conc_manager_queue_type()->release(h->queue);
    free(h);
}

static int
holder_get_queue(void *self, conc_obj *args, conc_obj *kwds, void **obj,
                 int *borrowed)
{
    (void)args;
    (void)kwds;
    *obj = ((struct holder *)self)->queue;
    *borrowed = 1; /* the holder's own: it outlives the proxies here */
    return 0;
}

static const conc_manager_proxy_method holder_proxies[] = {
    {"get_queue", "Queue", holder_get_queue},
};

static const conc_manager_type holder_type = {
    .create = holder_create,
    .release = holder_release,
    .proxy_methods = holder_proxies,
    .n_proxy_methods = 1,
};

struct peer {
    conc_popen *p;
};

static void
peer_start(struct peer *pr, const char *mode, const char *address)
{
    char *argv[] = {PYTHON, PEER, (char *)mode, (char *)address, KEY, NULL};
    conc_popen_opts o = {.stdout_mode = CONC_STDIO_PIPE};
    assert_conc_ok(conc_popen_new(argv, &o, &pr->p));
}

/* Waits for the peer and checks that its last line is "ok". */
static void
peer_finish(struct peer *pr)
{
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_popen_communicate(pr->p, NULL, 0, WAIT, &out, NULL));
    int rc = -1;
    assert_int_equal(conc_popen_returncode(pr->p, &rc), 1);
    assert_conc_ok(conc_buf_append(&out, "", 1));
    assert_string_equal((const char *)out.data, "ok\n");
    assert_int_equal(rc, 0);
    conc_popen_free(pr->p);
    conc_buf_free(&out);
}

/* A method listed in method_to_typeid returns a proxy, to a conc client
 * and to CPython's (whose AutoProxy for Holder gets a Queue proxy). */
static void
test_method_to_typeid(void **state)
{
    (void)state;
    conc_manager *m;
    char addr[256];
    void *holder = NULL;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(holder_create(NULL, NULL, NULL, &holder));
    /* One holder for every client, as register('Holder', lambda: h). */
    assert_conc_ok(
        conc_manager_register_object(m, "Holder", &holder_type, holder));
    assert_conc_ok(conc_manager_start(m));
    address_of(m, addr, sizeof addr);
    conc_proxy *h, *q;
    assert_conc_ok(conc_manager_create(m, "Holder", NULL, &h));
    conc_obj *r = NULL;
    assert_conc(conc_proxy_call(h, "get_queue", NULL, NULL, &r), CONC_ETYPE);
    assert_conc_ok(conc_proxy_call_proxy(h, "get_queue", NULL, NULL, &q));
    assert_string_equal(conc_proxy_typeid(q), "Queue");
    conc_obj *item = str("from conc");
    assert_conc_ok(conc_queueproxy_put(q, item, 0));
    conc_obj_decref(item);
    if (have_python()) {
        struct peer pr;
        peer_start(&pr, "holder", addr);
        peer_finish(&pr);
        assert_conc_ok(conc_queueproxy_get(q, 0, &r));
        assert_str(r, "from python");
        conc_obj_decref(r);
    }
    conc_proxy *not_proxy;
    assert_conc(conc_proxy_call_proxy(q, "qsize", NULL, NULL, &not_proxy),
                CONC_ETYPE);
    conc_proxy_free(q);
    conc_proxy_free(h);
    assert_int_equal(conc__mgr_obj_count(m), 0);
    conc_manager_free(m);
    holder_release(holder);
}

/* A list proxy stored in a dict (as CPython allows), read back by a conc
 * client and by CPython's, and one CPython stored read by conc. */
static void
test_proxies_in_values(void **state)
{
    (void)state;
    conc_manager *m;
    char addr[256];
    void *box;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc__mgr_box_new(conc_obj_dict(), &box));
    assert_conc_ok(conc_manager_register_object(m, "get_dict",
                                                conc_manager_dict_type(), box));
    assert_conc_ok(conc_manager_start(m));
    address_of(m, addr, sizeof addr);
    conc_proxy *d, *l, *l2;
    assert_conc_ok(conc_manager_create(m, "get_dict", NULL, &d));
    assert_conc_ok(conc_manager_create(m, "list", NULL, &l));
    conc_obj *made = str("made by conc"), *rec = NULL, *key = str("conc_list");
    assert_conc_ok(conc_listproxy_append(l, made));
    assert_conc_ok(conc_proxy_to_obj(l, &rec));
    assert_conc_ok(conc_dictproxy_set(d, key, rec));
    conc_obj_decref(rec);
    conc_proxy_free(l); /* the stored value keeps the list alive */
    conc_obj *ax = args1(str("x"));
    assert_conc(conc_proxy_call_proxy(d, "__getitem__", ax, NULL, &l2),
                CONC_EKEY);
    conc_obj_decref(ax);
    conc_obj *a = args1(conc_obj_incref(key));
    assert_conc_ok(conc_proxy_call_proxy(d, "__getitem__", a, NULL, &l2));
    conc_obj_decref(a);
    assert_string_equal(conc_proxy_typeid(l2), "list");
    conc_obj *got = NULL;
    assert_conc_ok(conc_listproxy_get(l2, 0, &got));
    assert_true(conc_obj_equal(got, made) == 1);
    conc_obj_decref(got);
    if (have_python()) {
        struct peer pr;
        peer_start(&pr, "nested", addr);
        peer_finish(&pr);
        assert_conc_ok(conc_listproxy_get(l2, 1, &got));
        assert_str(got, "from python");
        conc_obj_decref(got);
        conc_obj *pk = str("py_list"), *pv = NULL;
        assert_conc_ok(conc_dictproxy_get(d, pk, &pv));
        conc_proxy *pl;
        assert_conc_ok(conc_proxy_from_obj(m, pv, &pl));
        assert_conc_ok(conc_listproxy_get(pl, 2, &got));
        assert_str(got, "python");
        conc_obj_decref(got);
        conc_proxy_free(pl);
        conc_obj_decref(pv);
        conc_obj_decref(pk);
    }
    assert_conc(conc_proxy_from_obj(m, made, &l), CONC_ETYPE);
    conc_obj_decref(made);
    conc_obj_decref(key);
    conc_proxy_free(l2);
    conc_proxy_free(d);
    conc_manager_free(m); /* releases the pinned lists */
    conc__mgr_box_free(box);
}

/* CPython's SyncManager (tests/peers/manager_peer.py sync) in a child of
 * its own, its address read from its first line; its stdin is a pipe
 * whose closing stops it. */
static conc_popen *
syncmanager_start(char *addr, size_t cap)
{
    char *argv[] = {PYTHON, SYNC_PEER, "sync", "127.0.0.1:0", KEY, NULL};
    conc_popen_opts o = {.stdin_mode = CONC_STDIO_PIPE,
                         .stdout_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    assert_conc_ok(conc_popen_new(argv, &o, &p));
    int fd;
    assert_conc_ok(conc_popen_stdout_fd(p, &fd));
    size_t n = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        assert_int_equal(poll(&pfd, 1, (int)(WAIT * 1000)), 1);
        char ch;
        assert_int_equal(read(fd, &ch, 1), 1);
        if (ch == '\n')
            break;
        assert_true(n + 1 < cap);
        addr[n++] = ch;
    }
    addr[n] = '\0';
    return p;
}

/* A conc client stores a list proxy inside a dict of CPython's
 * SyncManager, drops its own proxy, and reads the list back through the
 * dict: CPython's server kept it alive, as for its own clients. */
static void
test_proxies_in_python_values(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    char addr[256];
    conc_popen *py = syncmanager_start(addr, sizeof addr);
    conc_manager *c;
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    conc_proxy *d, *l, *back;
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    assert_conc_ok(conc_manager_create(c, "list", NULL, &l));
    conc_obj *item = str("from conc"), *key = str("inner"), *rec = NULL;
    assert_conc_ok(conc_listproxy_append(l, item));
    assert_conc_ok(conc_proxy_to_obj(l, &rec));
    assert_conc_ok(conc_dictproxy_set(d, key, rec));
    conc_obj_decref(rec);
    conc_proxy_free(l);
    conc_obj *a = args1(conc_obj_incref(key)), *got = NULL;
    assert_conc_ok(conc_proxy_call_proxy(d, "__getitem__", a, NULL, &back));
    assert_string_equal(conc_proxy_typeid(back), "list");
    assert_conc_ok(conc_listproxy_get(back, 0, &got));
    assert_str(got, "from conc");
    conc_obj_decref(got);
    conc_obj_decref(a);
    conc_obj_decref(key);
    conc_obj_decref(item);
    conc_proxy_free(back);
    conc_proxy_free(d);
    conc_manager_free(c);
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_popen_communicate(py, NULL, 0, WAIT, &out, NULL));
    assert_conc_ok(conc_buf_append(&out, "", 1));
    assert_string_equal((const char *)out.data, "ok\n");
    int rc = -1;
    assert_int_equal(conc_popen_returncode(py, &rc), 1);
    assert_int_equal(rc, 0);
    conc_buf_free(&out);
    conc_popen_free(py);
}

/* ---- conc_conn_send_obj and conc_conn_recv_obj with CPython ------------- */

static void
test_conn_obj(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    conc_listener_opts lo = {.authkey = KEY, .authkey_len = strlen(KEY)};
    conc_listener *l;
    assert_conc_ok(conc_listener_new("127.0.0.1:0", &lo, &l));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_listener_address(l, &b));
    struct peer pr;
    peer_start(&pr, "conn", (const char *)b.data);
    conc_conn *c;
    assert_conc_ok(conc_listener_accept(l, WAIT, &c));
    conc_obj *v = conc_obj_list(), *got = NULL;
    assert_conc_ok(conc_obj_list_append_new(v, conc_obj_float(2.5)));
    assert_conc_ok(conc_obj_list_append_new(v, str("three")));
    assert_conc_ok(conc_conn_send_obj(c, v, WAIT));
    assert_conc_ok(conc_conn_recv_obj(c, WAIT, &got));
    conc_buf text = CONC_BUF_INIT;
    assert_conc_ok(conc_obj_repr(got, &text));
    assert_conc_ok(conc_buf_append(&text, "", 1));
    assert_string_equal((const char *)text.data, "['echo', [2.5, 'three']]");
    conc_obj_decref(got);
    assert_conc_ok(conc_conn_recv_obj(c, WAIT, &got));
    assert_conc_ok(conc_obj_repr(got, &text));
    assert_conc_ok(conc_buf_append(&text, "", 1));
    assert_string_equal((const char *)text.data,
                        "{'str': '\xc3\xa9', 'int': 1180591620717411303424, "
                        "'neg': -5, 'float': 1.5, 'tuple': (1, None, True), "
                        "'bytes': b'\\x00\\xff', 'set': {3}, "
                        "'nested': [[{'a': []}]]}");
    conc_obj_decref(got);
    assert_conc(conc_conn_recv_obj(c, WAIT, &got), CONC_ECLOSED);
    assert_conc(conc_conn_send_obj(NULL, v, 0), CONC_EINVAL);
    assert_conc(conc_conn_recv_obj(c, 0, NULL), CONC_EINVAL);
    peer_finish(&pr);
    conc_obj_decref(v);
    conc_buf_free(&text);
    conc_buf_free(&b);
    conc_conn_free(c);
    conc_listener_free(l);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_thread_connections),
        conc_unit_test(test_thread_end_closes),
        conc_unit_test(test_serve_forever),
        conc_unit_test(test_process),
        conc_unit_test(test_process_orphaned),
        conc_unit_test(test_killed_under_load),
        conc_unit_test(test_killed_in_barrier_wait),
        conc_unit_test(test_killed_in_queue_get),
        conc_unit_test(test_killed_in_lock_acquire),
        conc_unit_test(test_killed_in_condition_wait),
        conc_unit_test(test_killed_in_registered_wait),
        conc_unit_test(test_killed_in_registered_poll),
        conc_unit_test(test_method_to_typeid),
        conc_unit_test(test_proxies_in_values),
        conc_unit_test(test_proxies_in_python_values),
        conc_unit_test(test_conn_obj),
    };
    return conc_run_tests(tests);
}
