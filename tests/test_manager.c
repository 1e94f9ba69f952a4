/* Managers (conc/manager.h): a conc server with conc clients, registered C
 * types, reference counting, wrong keys, and unmodified CPython on the
 * other side in both directions (tests/peers/manager_peer.py, run by
 * Debian's /usr/bin/python3). */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "conc_test.h"
#include "ipc/auth.h"
#include "manager/manager_internal.h"

#define PEER   CONC_PEERS_DIR "/manager_peer.py"
#define PYTHON "/usr/bin/python3"
#define KEY    "Willard"
#define WAIT   30.0 /* bound on any wait for a peer */
#define TASKS  10

static int
have_python(void)
{
    return access(PYTHON, X_OK) == 0;
}

/* A started conc manager on `address` and its address. */
static conc_manager *
server(const char *address, char *addr, size_t cap)
{
    conc_manager *m;
    assert_conc_ok(conc_manager_new(address, KEY, &m));
    assert_conc_ok(conc_manager_start(m));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    assert_true(b.len < cap);
    memcpy(addr, b.data, b.len + 1);
    conc_buf_free(&b);
    return m;
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

static void
assert_int_obj(conc_obj *o, int64_t want)
{
    int64_t v;
    assert_conc_ok(conc_obj_int_value(o, &v));
    assert_int_equal(v, want);
}

/* ---- conc on both sides ---------------------------------------------------
 */

static void
check_dict(conc_manager *c)
{
    conc_proxy *d;
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    conc_obj *k = str("x"), *v = conc_obj_int(42), *got = NULL;
    assert_conc_ok(conc_dictproxy_set(d, k, v));
    assert_conc_ok(conc_dictproxy_get(d, k, &got));
    assert_int_obj(got, 42);
    conc_obj_decref(got);
    conc_obj *missing = str("missing");
    assert_conc(conc_dictproxy_get(d, missing, &got), CONC_EKEY);
    assert_string_equal(conc_failure_message(), "KeyError('missing')");
    conc_obj *n = NULL;
    assert_conc_ok(conc_proxy_call(d, "__len__", NULL, NULL, &n));
    assert_int_obj(n, 1);
    conc_obj_decref(n);
    /* CPython's server ends the traceback of a method not exposed with
     * KeyError, and conc's does too. */
    assert_conc(conc_proxy_call(d, "no_such", NULL, NULL, &n), CONC_EKEY);
    assert_string_equal(conc_failure_message(), "KeyError: 'no_such'");
    conc_obj_decref(missing);
    conc_obj_decref(k);
    conc_obj_decref(v);
    conc_proxy_free(d);
}

static void
check_list(conc_manager *c)
{
    conc_proxy *l;
    assert_conc_ok(conc_manager_create(c, "list", NULL, &l));
    conc_obj *a = str("a"), *b = conc_obj_float(2.5), *got = NULL;
    assert_conc_ok(conc_listproxy_append(l, a));
    assert_conc_ok(conc_listproxy_append(l, b));
    assert_conc_ok(conc_listproxy_get(l, -2, &got));
    assert_str(got, "a");
    conc_obj_decref(got);
    assert_conc(conc_listproxy_get(l, 2, &got), CONC_EINDEX);
    assert_string_equal(conc_failure_message(),
                        "IndexError('list index out of range')");
    conc_obj_decref(a);
    conc_obj_decref(b);
    conc_proxy_free(l);
}

static void
check_queue(conc_manager *c)
{
    conc_obj *one = conc_obj_tuple(1), *item = str("item"), *got = NULL;
    conc_obj_tuple_set_new(one, 0, conc_obj_int(1)); /* maxsize 1 */
    conc_proxy *q;
    assert_conc_ok(conc_manager_create(c, "Queue", one, &q));
    assert_conc_ok(conc_queueproxy_put(q, item, 0));
    assert_conc(conc_queueproxy_put(q, item, 0.01), CONC_EFULL);
    assert_conc_ok(conc_queueproxy_get(q, CONC_FOREVER, &got));
    assert_str(got, "item");
    conc_obj_decref(got);
    assert_conc(conc_queueproxy_get(q, 0, &got), CONC_EEMPTY);
    assert_conc(conc_queueproxy_get(q, 0.01, &got), CONC_EEMPTY);
    assert_conc(conc_queueproxy_get(q, NAN, &got), CONC_EINVAL);
    conc_obj_decref(one);
    conc_obj_decref(item);
    conc_proxy_free(q);
}

static void
test_builtins(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    check_dict(c);
    check_list(c);
    check_queue(c);
    assert_int_equal(conc__mgr_obj_count(m), 0);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* Proxies hold references: the object lives while one does. */
static void
test_refcount(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    conc_proxy *d, *d2;
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    assert_conc_ok(conc_proxy_dup(d, &d2));
    assert_string_equal(conc_proxy_ident(d), conc_proxy_ident(d2));
    assert_int_equal(conc__mgr_obj_count(m), 1);
    conc_proxy_free(d);
    assert_int_equal(conc__mgr_obj_count(m), 1);
    conc_obj *n = NULL;
    assert_conc_ok(conc_proxy_call(d2, "__len__", NULL, NULL, &n));
    assert_int_obj(n, 0);
    conc_obj_decref(n);
    conc_proxy_free(d2);
    assert_int_equal(conc__mgr_obj_count(m), 0);
    assert_conc(conc_manager_create(c, "nope", NULL, &d), CONC_ETASK);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* A type registered in C: a counter whose add() returns the new total. */
static int
counter_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)args;
    (void)kwds;
    int64_t *n = malloc(sizeof *n);
    if (!n)
        return CONC_ENOMEM;
    *n = *(int64_t *)arg;
    *self = n;
    return 0;
}

static int
counter_add(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)kwds;
    int64_t by;
    if (conc_obj_int_value(conc_obj_seq_get(args, 0), &by) < 0)
        return conc_fail(CONC_EVALUE, "add() takes an int");
    *(int64_t *)self += by;
    *result = conc_obj_int(*(int64_t *)self);
    return 0;
}

static const conc_manager_method counter_methods[] = {{"add", counter_add}};
static const conc_manager_type counter_type = {
    .create = counter_create,
    .release = free,
    .methods = counter_methods,
    .n_methods = 1,
};

static void
test_register(void **state)
{
    (void)state;
    char path[64], addr[256];
    snprintf(path, sizeof path, "/tmp/conc-mgr-%d.sock", (int)getpid());
    int64_t start = 100;
    conc_manager *m, *c;
    assert_conc_ok(conc_manager_new(path, KEY, &m));
    assert_conc_ok(conc_manager_register(m, "Counter", &counter_type, &start));
    void *shared;
    assert_conc_ok(conc_manager_queue_new(0, &shared));
    assert_conc_ok(conc_manager_register_object(
        m, "get_queue", conc_manager_queue_type(), shared));
    assert_conc_ok(conc_manager_start(m));
    assert_conc(conc_manager_register(m, "late", &counter_type, NULL),
                CONC_ESTATE);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    assert_string_equal((char *)b.data, path);
    memcpy(addr, b.data, b.len + 1);
    conc_buf_free(&b);
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    conc_proxy *p, *q1, *q2;
    assert_conc_ok(conc_manager_create(c, "Counter", NULL, &p));
    conc_obj *args = conc_obj_tuple(1), *r = NULL;
    conc_obj_tuple_set_new(args, 0, conc_obj_int(5));
    assert_conc_ok(conc_proxy_call(p, "add", args, NULL, &r));
    assert_int_obj(r, 105);
    conc_obj_decref(r);
    conc_obj_decref(args);
    assert_conc(conc_proxy_call(p, "add", NULL, NULL, &r), CONC_EVALUE);
    assert_string_equal(conc_failure_message(),
                        "ValueError('add() takes an int')");
    assert_conc_ok(conc_manager_create(c, "get_queue", NULL, &q1));
    assert_conc_ok(conc_manager_create(c, "get_queue", NULL, &q2));
    assert_string_equal(conc_proxy_ident(q1), conc_proxy_ident(q2));
    conc_obj *item = str("shared");
    assert_conc_ok(conc_queueproxy_put(q1, item, CONC_FOREVER));
    assert_conc_ok(conc_queueproxy_get(q2, 1.0, &r));
    assert_str(r, "shared");
    conc_obj_decref(r);
    conc_obj_decref(item);
    conc_proxy_free(q1);
    conc_proxy_free(q2);
    conc_proxy_free(p);
    conc_manager_free(c);
    conc_manager_free(m);
    conc_manager_queue_type()->release(shared);
}

static void
test_wrong_key(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    assert_conc(conc_manager_connect(addr, "wrong", &c), CONC_EAUTH);
    conc_manager_free(m);
}

/* A client slower to answer the challenge than the server's look at its
 * stop flag (CONC__MGR_POLL_S) still gets in: the server used to give the
 * whole handshake that long and cut slow clients (CPython under load) off. */
static void
test_slow_handshake(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    conc_conn *c;
    unsigned flags = CONC__CONN_READ | CONC__CONN_WRITE | CONC__CONN_SOCKET |
                     CONC__CONN_PYWIRE;
    assert_conc_ok(conc__conn_wrap(fd, flags, 0, &c));
    conc_buf msg = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(c, WAIT, &msg));
    /* The delay under test: three times the server's polling period,
     * during which the server neither answers nor hangs up. */
    assert_int_equal(conc_conn_poll(c, 3 * CONC__MGR_POLL_S), 0);
    struct conc__auth_key key = {(const uint8_t *)KEY, sizeof KEY - 1};
    uint8_t resp[CONC__AUTH_MSG_MAX];
    size_t rn;
    assert_conc_ok(conc__auth_respond(key, msg.data, msg.len, resp, &rn));
    assert_conc_ok(conc_conn_send_bytes(c, resp, rn, WAIT));
    assert_conc_ok(conc_conn_recv_bytes(c, WAIT, &msg));
    assert_int_equal(msg.len, strlen(CONC__AUTH_WELCOME));
    assert_memory_equal(msg.data, CONC__AUTH_WELCOME, msg.len);
    conc_buf_free(&msg);
    conc_conn_free(c);
    conc_manager_free(m);
}

static double now_s(void);

/* A raw TCP connection to the manager at `addr`. */
static int
raw_connect(const char *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* A client that connects and never answers the challenge holds up no
 * other client (the accepting thread used to wait CONC__MGR_HANDSHAKE_S
 * for it), and does not hold up the stop either. */
static void
test_stalled_client(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    int stalled = raw_connect(addr);
    double t0 = now_s();
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    check_dict(c);
    assert_true(now_s() - t0 < CONC__MGR_HANDSHAKE_S / 2);
    conc_manager_free(c);
    t0 = now_s();
    conc_manager_free(m);
    assert_true(now_s() - t0 < CONC__MGR_HANDSHAKE_S / 2);
    close(stalled);
}

/* Connecting, creating an object and dropping its proxy take one
 * connection and one handshake, not one for each of the three server
 * functions (dummy, create, decref) as with CPython's client: a conc
 * server answers many requests on one connection. */
static void
test_one_connection_per_create(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    for (int i = 0; i < 3; i++) {
        uint64_t before = atomic_load(&m->accepted);
        conc_proxy *d;
        assert_conc_ok(conc_manager_connect(addr, KEY, &c));
        assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
        conc_proxy_free(d);
        conc_manager_free(c);
        assert_int_equal(atomic_load(&m->accepted) - before, 1);
    }
    conc_manager_free(m);
}

/* A get blocked in the server ends when the server stops. */
struct getter {
    conc_proxy *q;
    int rc;
};

static int
blocked_get(void *arg)
{
    struct getter *g = arg;
    conc_obj *item = NULL;
    g->rc = conc_queueproxy_get(g->q, CONC_FOREVER, &item);
    conc_obj_decref(item);
    return 0;
}

static void
test_shutdown_wakes(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = server("127.0.0.1:0", addr, sizeof addr), *c;
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    struct getter g = {NULL, 1};
    assert_conc_ok(conc_manager_create(c, "Queue", NULL, &g.q));
    conc_thread *t;
    assert_conc_ok(conc_thread_start(blocked_get, &g, NULL, &t));
    assert_conc_ok(conc_manager_shutdown(m));
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    assert_true(g.rc == CONC_ETASK || g.rc == CONC_ECLOSED);
    conc_proxy_free(g.q);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* A server's own manager creates objects once it serves, and not before
 * (the request used to wait forever for a server nobody runs) nor after. */
static void
test_create_needs_start(void **state)
{
    (void)state;
    conc_manager *m;
    conc_proxy *p;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &m));
    assert_conc(conc_manager_create(m, "dict", NULL, &p), CONC_ESTATE);
    assert_conc_ok(conc_manager_start(m));
    assert_conc_ok(conc_manager_create(m, "dict", NULL, &p));
    conc_proxy_free(p);
    assert_conc_ok(conc_manager_shutdown(m));
    assert_conc(conc_manager_create(m, "dict", NULL, &p), CONC_ECLOSED);
    conc_manager_free(m);
}

static void
test_null_args(void **state)
{
    (void)state;
    conc_manager *m;
    conc_proxy *p;
    conc_obj *o;
    assert_conc(conc_manager_new(NULL, KEY, &m), CONC_EINVAL);
    assert_conc(conc_manager_connect("127.0.0.1:1", KEY, NULL), CONC_EINVAL);
    assert_conc(conc_manager_create(NULL, "dict", NULL, &p), CONC_EINVAL);
    assert_conc(conc_proxy_call(NULL, "x", NULL, NULL, &o), CONC_EINVAL);
    assert_conc(conc_manager_start(NULL), CONC_EINVAL);
    conc_manager_free(NULL);
    conc_proxy_free(NULL);
}

/* ---- CPython peers ---------------------------------------------------------
 */

struct peer {
    conc_popen *p;
    int out;
    char line[512]; /* the first line: a server's address */
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads one line of the peer's stdout into buf, waiting up to WAIT. */
static void
read_line(int fd, char *buf, size_t cap)
{
    conc_test_read_line_within(fd, WAIT, buf, cap);
}

/* Starts the peer in `mode`; a server mode's address is in peer->line.
 * Its stdin is a pipe that peer_finish closes. */
static void
peer_start(struct peer *pr, const char *mode, const char *address,
           const char *key, int server_mode)
{
    char *argv[] = {PYTHON,          PEER,        (char *)mode,
                    (char *)address, (char *)key, NULL};
    conc_popen_opts o = {.stdin_mode = CONC_STDIO_PIPE,
                         .stdout_mode = CONC_STDIO_PIPE};
    assert_conc_ok(conc_popen_new(argv, &o, &pr->p));
    assert_conc_ok(conc_popen_stdout_fd(pr->p, &pr->out));
    pr->line[0] = '\0';
    if (server_mode)
        read_line(pr->out, pr->line, sizeof pr->line);
}

/* Waits for the peer to end, checks its last line and exit status, and
 * returns its output (freed by the caller). */
static char *
peer_finish(struct peer *pr, const char *want)
{
    conc_buf out = CONC_BUF_INIT;
    conc_test_peer_finish_last(pr->p, WAIT, want, &out);
    char *copy = strdup((const char *)out.data);
    assert_non_null(copy);
    conc_buf_free(&out);
    return copy;
}

/* Seed 000's master in C: two shared queues, tasks out, results back. */
static void
test_python_worker(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    char addr[256];
    void *tasks, *results;
    conc_manager *m, *c;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_queue_new(0, &tasks));
    assert_conc_ok(conc_manager_queue_new(0, &results));
    assert_conc_ok(conc_manager_register_object(
        m, "get_task_queue", conc_manager_queue_type(), tasks));
    assert_conc_ok(conc_manager_register_object(
        m, "get_result_queue", conc_manager_queue_type(), results));
    assert_conc_ok(conc_manager_start(m));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    memcpy(addr, b.data, b.len + 1);
    conc_buf_free(&b);
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    conc_proxy *tq, *rq;
    assert_conc_ok(conc_manager_create(c, "get_task_queue", NULL, &tq));
    assert_conc_ok(conc_manager_create(c, "get_result_queue", NULL, &rq));
    for (int i = 0; i < TASKS; i++) {
        conc_obj *n = conc_obj_int(i * 11);
        assert_conc_ok(conc_queueproxy_put(tq, n, CONC_FOREVER));
        conc_obj_decref(n);
    }
    struct peer pr;
    peer_start(&pr, "worker", addr, KEY, 0);
    for (int i = 0; i < TASKS; i++) {
        conc_obj *r = NULL;
        assert_conc_ok(conc_queueproxy_get(rq, WAIT, &r));
        char want[64];
        snprintf(want, sizeof want, "%d * %d = %d", i * 11, i * 11,
                 i * 11 * i * 11);
        assert_str(r, want);
        conc_obj_decref(r);
    }
    free(peer_finish(&pr, "Worker Exit."));
    conc_proxy_free(tq);
    conc_proxy_free(rq);
    conc_manager_free(c);
    conc_manager_free(m);
    conc_manager_queue_type()->release(tasks);
    conc_manager_queue_type()->release(results);
}

/* CPython's DictProxy, ListProxy and a queue's AutoProxy on a conc
 * manager, over TCP and a Unix socket; a wrong key is refused. */
static void
test_python_client(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    char addr[256], path[64];
    snprintf(path, sizeof path, "/tmp/conc-mgr-py-%d.sock", (int)getpid());
    const char *where[] = {"127.0.0.1:0", path};
    for (size_t i = 0; i < 2; i++) {
        conc_manager *m = server(where[i], addr, sizeof addr);
        struct peer pr;
        peer_start(&pr, "client", addr, KEY, 0);
        free(peer_finish(&pr, "ok"));
        peer_start(&pr, "badkey", addr, "wrong", 0);
        free(peer_finish(&pr, "auth"));
        assert_int_equal(conc__mgr_obj_count(m), 0);
        conc_manager_free(m);
    }
}

/* Seed 000's master run by CPython (port 0, slip mended) serves a conc
 * worker; a wrong key gets CONC_EAUTH. */
static void
test_python_master(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    struct peer pr;
    peer_start(&pr, "master", "127.0.0.1:0", KEY, 1);
    conc_manager *c;
    assert_conc(conc_manager_connect(pr.line, "wrong", &c), CONC_EAUTH);
    assert_conc_ok(conc_manager_connect(pr.line, KEY, &c));
    conc_proxy *tq, *rq;
    assert_conc_ok(conc_manager_create(c, "get_task_queue", NULL, &tq));
    assert_conc_ok(conc_manager_create(c, "get_result_queue", NULL, &rq));
    for (int i = 0; i < TASKS; i++) {
        conc_obj *n = NULL;
        assert_conc_ok(conc_queueproxy_get(tq, WAIT, &n));
        int64_t v;
        assert_conc_ok(conc_obj_int_value(n, &v));
        assert_int_equal(v, i * 37);
        char text[64];
        snprintf(text, sizeof text, "%lld * %lld = %lld", (long long)v,
                 (long long)v, (long long)(v * v));
        conc_obj *r = str(text);
        assert_conc_ok(conc_queueproxy_put(rq, r, CONC_FOREVER));
        conc_obj_decref(r);
        conc_obj_decref(n);
    }
    conc_obj *n = NULL;
    assert_conc(conc_queueproxy_get(tq, 0.01, &n), CONC_EEMPTY);
    assert_string_equal(conc_failure_message(), "Empty()");
    conc_proxy_free(tq);
    conc_proxy_free(rq);
    char *out = peer_finish(&pr, "Master Exit.");
    assert_non_null(strstr(out, "Result:333 * 333 = 110889"));
    free(out);
    conc_manager_free(c);
}

/* CPython's SyncManager: its dict and list from a conc client. */
static void
test_python_syncmanager(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    struct peer pr;
    peer_start(&pr, "sync", "127.0.0.1:0", KEY, 1);
    conc_manager *c;
    assert_conc_ok(conc_manager_connect(pr.line, KEY, &c));
    check_dict(c);
    check_list(c);
    check_queue(c);
    conc_manager_free(c);
    free(peer_finish(&pr, "ok"));
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_builtins),
        conc_unit_test(test_refcount),
        conc_unit_test(test_register),
        conc_unit_test(test_wrong_key),
        conc_unit_test(test_slow_handshake),
        conc_unit_test(test_stalled_client),
        conc_unit_test(test_one_connection_per_create),
        conc_unit_test(test_shutdown_wakes),
        conc_unit_test(test_create_needs_start),
        conc_unit_test(test_null_args),
        conc_unit_test(test_python_worker),
        conc_unit_test(test_python_client),
        conc_unit_test(test_python_master),
        conc_unit_test(test_python_syncmanager),
    };
    return conc_run_tests(tests);
}
