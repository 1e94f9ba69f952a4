/* The contract of DESIGN.md "Conventions" under allocation failures:
 * every constructor and main call of the newest modules (ws, tls,
 * aio_net, aio_subprocess, aio_stream, dist, manager, obj, listener)
 * fails cleanly (an error code, nothing leaked, no panic) when any one of
 * its allocations fails. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conc_test.h"
#include "tasks.h"
#include "tls_certs.h"
#include "contract_common.h"
#include "manager/manager_internal.h"

/* Seconds a run under allocation failure may take: a failure must be
 * reported, not turned into a wait for a timeout. */
#define OOM_RUN_S 4.0

/* More allocations than any call here makes: a loop that passes it
 * means the operation never got to the end. */
enum { OOM_MAX = 5000 };

/* ---- Allocation failures -------------------------------------------------
 *
 * Each operation below makes its calls and, when they succeed, undoes
 * what they made; it returns the first failure's code. oom_each runs it
 * with this thread's k-th allocation failing, for k = 1, 2, ... until it
 * makes fewer than k allocations: each run must return 0 or an error
 * code within OOM_RUN_S, and leave no allocation or descriptor behind
 * (fewer is no leak: a server's thread may free an earlier run's
 * connection meanwhile).
 * (Threads of the library allocate as usual: injection is per thread.)
 * OOM_TRACE=1 in the environment prints each run. */

typedef int (*oom_op)(void *arg);

static long allocs_before;

static int
allocs_back(void *arg)
{
    (void)arg;
    return conc_test_live_allocations() <= allocs_before;
}

/* Returns how many runs had an allocation fail. */
static long
oom_each(oom_op op, void *arg, const char *what)
{
    assert_conc_ok(op(arg)); /* once without failures: lazy globals */
    long k;
    for (k = 1; k < OOM_MAX; k++) {
        allocs_before = conc_test_live_allocations();
        int fds = conc_test_count_fds();
        conc_test_fail_alloc_after(k);
        double t0 = conc_monotonic();
        int r = op(arg);
        long left = conc_test_fail_alloc_left();
        if (getenv("OOM_TRACE"))
            fprintf(stderr, "%s: allocation %ld: %s in %.3f s\n", what, k,
                    conc_err_name(r), conc_monotonic() - t0);
        conc_test_fail_alloc_after(0);
        conc_test_wait_until(allocs_back, NULL, BOUND);
        double took = conc_monotonic() - t0;
        long allocs = conc_test_live_allocations();
        if (allocs > allocs_before || conc_test_count_fds() > fds || r > 0 ||
            took > OOM_RUN_S)
            fail_msg("%s with allocation %ld failing: returned %d (%s) "
                     "in %.3f s, allocations %ld -> %ld, descriptors %d -> %d",
                     what, k, r, conc_err_name(r), took, allocs_before, allocs,
                     fds, conc_test_count_fds());
        if (left > 0)
            break;
    }
    assert_true(k < OOM_MAX);
    print_message("%s: %ld allocations failed in turn\n", what, k - 1);
    return k - 1;
}

/* -- TLS: contexts, sessions and a handshake through buffers -- */

struct tls_fixture {
    struct tls_certs certs;
    conc_tls_context *client, *server;
};

/* The fixture of the test running, for the loop's tasks. */
static struct tls_fixture *tls_fx;

/* The fixture's client context (trusting its CA) and server context (its
 * certificate), offering `alpn` (NULL: none). */
static void
tls_contexts_new(struct tls_fixture *f, const char *alpn)
{
    assert_conc_ok(conc_tls_context_new(
        &(conc_tls_opts){.ca_file = f->certs.ca, .alpn = alpn}, &f->client));
    assert_conc_ok(
        conc_tls_context_new(&(conc_tls_opts){.server = 1,
                                              .cert_file = f->certs.server,
                                              .key_file = f->certs.server_key,
                                              .alpn = alpn},
                             &f->server));
}

static void
tls_fixture_free(struct tls_fixture *f)
{
    conc_tls_context_free(f->client);
    conc_tls_context_free(f->server);
    tls_certs_remove(&f->certs);
}

static int
tls_context_op(void *arg)
{
    struct tls_fixture *f = arg;
    conc_tls_context *c;
    int r =
        conc_tls_context_new(&(conc_tls_opts){.server = 1,
                                              .cert_file = f->certs.server,
                                              .key_file = f->certs.server_key,
                                              .alpn = "h2,http/1.1"},
                             &c);
    if (r == 0)
        conc_tls_context_free(c);
    return r;
}

/* Moves the ciphertext a has to send into b. */
static int
tls_move(conc_tls_session *a, conc_tls_session *b)
{
    unsigned char buf[16384];
    size_t n = 0, at = 0, taken;
    int r = conc_tls_session_take(a, buf, sizeof buf, &n);
    while (r == 0 && at < n) {
        r = conc_tls_session_feed(b, buf + at, n - at, &taken);
        at += taken;
        if (r == 0 && taken == 0)
            return CONC_EFULL;
    }
    return r;
}

static int
tls_talk(conc_tls_session *c, conc_tls_session *s)
{
    int rc = CONC_EAGAIN, rs = CONC_EAGAIN, r = 0;
    for (int i = 0; i < 20 && (rc || rs); i++) {
        rc = conc_tls_session_handshake(c);
        if ((rc && rc != CONC_EAGAIN) || (r = tls_move(c, s)))
            return rc && rc != CONC_EAGAIN ? rc : r;
        rs = conc_tls_session_handshake(s);
        if ((rs && rs != CONC_EAGAIN) || (r = tls_move(s, c)))
            return rs && rs != CONC_EAGAIN ? rs : r;
    }
    if (rc || rs)
        return CONC_EPROTO;
    size_t n = 0;
    char got[8];
    conc_buf b = CONC_BUF_INIT;
    if ((r = conc_tls_session_write(c, "hello", 5, &n)) ||
        (r = tls_move(c, s)) ||
        (r = conc_tls_session_read(s, got, sizeof got, &n)) ||
        (r = conc_tls_session_alpn(c, &b)) ||
        (r = conc_tls_session_peer_subject(c, &b)) ||
        (r = conc_tls_session_server_name(s, &b)))
        goto out;
    r = n == 5 && memcmp(got, "hello", 5) == 0 ? 0 : CONC_EPROTO;
out:
    conc_buf_free(&b);
    return r;
}

static int
tls_session_op(void *arg)
{
    struct tls_fixture *f = arg;
    conc_tls_session *c, *s;
    int r = conc_tls_session_new(f->client, "localhost", &c);
    if (r)
        return r;
    r = conc_tls_session_new(f->server, NULL, &s);
    if (r == 0) {
        r = tls_talk(c, s);
        conc_tls_session_free(s);
    }
    conc_tls_session_free(c);
    return r;
}

static void
test_oom_tls(void **state)
{
    (void)state;
    struct tls_fixture f;
    assert_int_equal(tls_certs_make(&f.certs), 0);
    assert_true(oom_each(tls_context_op, &f, "conc_tls_context_new") > 0);
    tls_contexts_new(&f, "h2");
    assert_true(oom_each(tls_session_op, &f, "a TLS session's calls") > 0);
    tls_fixture_free(&f);
}

/* -- Listeners and connections carrying objects -- */

/* A dict {"k": [1, 2.5, "x", b"y"]}, or NULL when an allocation failed. */
static conc_obj *
sample_obj(void)
{
    conc_obj *d = conc_obj_dict(), *l = conc_obj_list();
    if (!d || !l)
        goto fail;
    if (conc_obj_list_append_new(l, conc_obj_int(1)) ||
        conc_obj_list_append_new(l, conc_obj_float(2.5)) ||
        conc_obj_list_append_new(l, conc_obj_str("x")) ||
        conc_obj_list_append_new(l, conc_obj_bytes("y", 1)))
        goto fail;
    if (conc_obj_dict_set_new(d, conc_obj_str("k"), l) == 0)
        return d;
    l = NULL; /* dict_set_new took it, even on failure */
fail:
    conc_obj_decref(l);
    conc_obj_decref(d);
    return NULL;
}

static int
listener_op(void *arg)
{
    (void)arg;
    conc_listener *l;
    conc_conn *c = NULL, *a = NULL;
    conc_obj *o = sample_obj(), *got = NULL;
    conc_buf addr = CONC_BUF_INIT;
    int r = o ? conc_listener_new("127.0.0.1:0", NULL, &l) : CONC_ENOMEM;
    if (r)
        goto out;
    if ((r = conc_listener_address(l, &addr)) ||
        (r = conc_client_connect((const char *)addr.data, NULL, BOUND, &c)) ||
        (r = conc_listener_accept(l, BOUND, &a)) ||
        (r = conc_conn_send_obj(c, o, BOUND)) ||
        (r = conc_conn_recv_obj(a, BOUND, &got)))
        goto close;
    r = conc_obj_equal(o, got) == 1 ? 0 : CONC_EPROTO;
close:
    conc_conn_free(a);
    conc_conn_free(c);
    conc_listener_free(l);
out:
    conc_buf_free(&addr);
    conc_obj_decref(got);
    conc_obj_decref(o);
    return r;
}

static int
obj_op(void *arg)
{
    (void)arg;
    conc_obj *o = sample_obj(), *back = NULL;
    conc_buf b = CONC_BUF_INIT;
    int r = o ? conc_obj_dumps(o, &b) : CONC_ENOMEM;
    if (r == 0)
        r = conc_obj_loads(b.data, b.len, NULL, &back, NULL);
    if (r == 0)
        r = conc_obj_repr(back, &b);
    conc_buf_free(&b);
    conc_obj_decref(back);
    conc_obj_decref(o);
    return r;
}

/* The other constructors: a big int, a set grown past its first table,
 * a frozenset of it, a foreign record holding them; then what reads
 * them (hash, contains, repr, a pickle's round trip). */
static int
obj_more_op(void *arg)
{
    (void)arg;
    enum { MEMBERS = 40 };
    conc_obj *big = NULL, *set = conc_obj_set(), *fz = NULL, *rec = NULL,
             *args = conc_obj_tuple(2), *back = NULL;
    conc_buf b = CONC_BUF_INIT;
    int64_t h;
    int r = set && args ? conc_obj_int_parse("-123_456_789_012_345_678_901_234_"
                                             "567_890",
                                             &big)
                        : CONC_ENOMEM;
    for (int i = 0; r == 0 && i < MEMBERS; i++)
        r = conc_obj_set_add_new(set, conc_obj_int(i));
    if (r || (r = conc_obj_set_add(set, big)) ||
        (r = conc_obj_frozenset(set, &fz)) ||
        (r = conc_obj_tuple_set_new(args, 0, conc_obj_incref(big))) ||
        (r = conc_obj_tuple_set_new(args, 1, conc_obj_incref(fz))))
        goto out;
    rec = conc_obj_foreign("conc_contract", "Thing", args, set, 0);
    if (!rec) {
        r = CONC_ENOMEM;
        goto out;
    }
    if ((r = conc_obj_hash(fz, &h)) < 0 ||
        (r = conc_obj_contains(fz, big)) < 0 || (r = conc_obj_repr(rec, &b)) ||
        (r = conc_obj_dumps(rec, &b)) ||
        (r = conc_obj_loads(b.data, b.len,
                            &(conc_obj_load_opts){.any_global = 1}, &back,
                            NULL)))
        goto out;
    /* Foreign records are equal only to themselves: compare their parts. */
    r = conc_obj_equal(conc_obj_foreign_args(rec),
                       conc_obj_foreign_args(back)) == 1 &&
                conc_obj_equal(conc_obj_foreign_state(rec),
                               conc_obj_foreign_state(back)) == 1
            ? 0
            : CONC_EPROTO;
out:
    conc_buf_free(&b);
    conc_obj_decref(back);
    conc_obj_decref(rec);
    conc_obj_decref(args);
    conc_obj_decref(fz);
    conc_obj_decref(set);
    conc_obj_decref(big);
    return r;
}

/* CPython's pickle.dumps of one value at protocols 2, 4 and 5: every
 * container, memo references, ints of every width, str, bytes, bytearray,
 * complex and slice, written by /usr/bin/python3 from
 *     o = {'a': [1, 2.5, 'x', b'y', (1, 2), {1, 2}, frozenset({3, 4}),
 *                None, True, 2**100, -2**70, bytearray(b'z'), -1, 1000000,
 *                '\xe9', (1,), (1, 2, 3), (1, 2, 3, 4)],
 *          'b': ((), [], {}), 'c': complex(1, 2), 'd': slice(1, 2)}
 *     o['e'] = o['a'] */
static const char *const cpython_pickles[] = {
    /* protocol 2 */
    "80027d71002858010000006171015d7102284b01474004000000000000580100"
    "0000787103635f636f646563730a656e636f64650a7104580100000079710558"
    "060000006c6174696e3171068671075271084b014b02867109635f5f6275696c"
    "74696e5f5f0a7365740a710a5d710b284b014b026585710c52710d635f5f6275"
    "696c74696e5f5f0a66726f7a656e7365740a710e5d710f284b034b0465857110"
    "5271114e888a0d000000000000000000000000108a090000000000000000c063"
    "5f5f6275696c74696e5f5f0a6279746561727261790a7112680458010000007a"
    "711368068671145271158571165271174affffffff4a40420f005802000000c3"
    "a971184b018571194b014b024b0387711a284b014b024b034b0474711b655801"
    "00000062711c295d711d7d711e87711f5801000000637120635f5f6275696c74"
    "696e5f5f0a636f6d706c65780a7121473ff00000000000004740000000000000"
    "008671225271235801000000647124635f5f6275696c74696e5f5f0a736c6963"
    "650a71254b014b024e87712652712758010000006571286802752e",
    /* protocol 4 */
    "800495ea000000000000007d94288c0161945d94284b01474004000000000000"
    "8c017894430179944b014b0286948f94284b014b0290284b034b0491944e888a"
    "0d000000000000000000000000108a090000000000000000c08c086275696c74"
    "696e73948c0962797465617272617994939443017a94859452944affffffff4a"
    "40420f008c02c3a9944b0185944b014b024b038794284b014b024b034b047494"
    "658c016294295d947d9487948c01639468088c07636f6d706c6578949394473f"
    "f0000000000000474000000000000000869452948c01649468088c05736c6963"
    "659493944b014b024e879452948c0165946802752e",
    /* protocol 5 */
    "800595dd000000000000007d94288c0161945d94284b01474004000000000000"
    "8c017894430179944b014b0286948f94284b014b0290284b034b0491944e888a"
    "0d000000000000000000000000108a090000000000000000c096010000000000"
    "00007a944affffffff4a40420f008c02c3a9944b0185944b014b024b03879428"
    "4b014b024b034b047494658c016294295d947d9487948c0163948c086275696c"
    "74696e73948c07636f6d706c6578949394473ff0000000000000474000000000"
    "000000869452948c01649468128c05736c6963659493944b014b024e87945294"
    "8c0165946802752e",
};

static int
hex_digit(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* Reads one of cpython_pickles, then dumps and reads back what it got. */
static int
obj_cpython_op(void *arg)
{
    const char *hex = arg;
    size_t n = strlen(hex) / 2;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(hex_digit(hex[2 * i]) << 4 |
                                  hex_digit(hex[2 * i + 1]));
    conc_obj *o = NULL, *back = NULL;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_obj_loads(data, n, NULL, &o, NULL);
    if (r == 0 && (r = conc_obj_dumps(o, &b)) == 0 &&
        (r = conc_obj_loads(b.data, b.len, NULL, &back, NULL)) == 0)
        r = conc_obj_repr(back, &b);
    conc_buf_free(&b);
    conc_obj_decref(back);
    conc_obj_decref(o);
    free(data);
    return r;
}

static void
test_oom_listener_obj(void **state)
{
    (void)state;
    assert_true(oom_each(obj_op, NULL, "conc_obj dumps, loads, repr") > 0);
    assert_true(
        oom_each(obj_more_op, NULL, "conc_obj big ints, sets, records") > 0);
    for (size_t i = 0; i < sizeof cpython_pickles / sizeof *cpython_pickles;
         i++)
        assert_true(oom_each(obj_cpython_op, (void *)cpython_pickles[i],
                             "CPython's pickles") > 0);
    assert_true(oom_each(listener_op, NULL, "a listener's calls") > 0);
}

/* -- Managers and proxies (the server's threads allocate as usual) -- */

static int
manager_op(void *arg)
{
    (void)arg;
    conc_manager *m;
    conc_proxy *d = NULL;
    conc_obj *k = conc_obj_str("k"), *v = conc_obj_int(7), *got = NULL;
    int r = k && v ? conc_manager_new("127.0.0.1:0", NULL, &m) : CONC_ENOMEM;
    if (r)
        goto out;
    if ((r = conc_manager_start(m)) ||
        (r = conc_manager_create(m, "dict", NULL, &d)) ||
        (r = conc_dictproxy_set(d, k, v)) ||
        (r = conc_dictproxy_get(d, k, &got)))
        goto stop;
    r = conc_obj_equal(v, got) == 1 ? 0 : CONC_EPROTO;
stop:
    conc_proxy_free(d);
    conc_manager_free(m);
out:
    conc_obj_decref(got);
    conc_obj_decref(k);
    conc_obj_decref(v);
    return r;
}

/* A client that connects to a manager of this process: a queue, a lock,
 * an event and a list. The server is made in each run too: a proxy's
 * free whose decref fails for want of memory leaves the server's object
 * alive until the server is freed. */
static int
manager_client_op(void *arg)
{
    (void)arg;
    conc_manager *m, *c = NULL;
    conc_proxy *q = NULL, *lk = NULL, *ev = NULL, *l = NULL;
    conc_obj *v = conc_obj_int(3), *got = NULL;
    conc_buf addr = CONC_BUF_INIT;
    int r = v ? conc_manager_new("127.0.0.1:0", NULL, &m) : CONC_ENOMEM;
    if (r)
        goto out;
    if ((r = conc_manager_start(m)) || (r = conc_manager_address(m, &addr)) ||
        (r = conc_manager_connect((const char *)addr.data, NULL, &c)))
        goto free;
    if ((r = conc_manager_create(c, "Queue", NULL, &q)) ||
        (r = conc_queueproxy_put(q, v, BOUND)) ||
        (r = conc_queueproxy_get(q, BOUND, &got)) ||
        (r = conc_manager_create(c, "Lock", NULL, &lk)) ||
        (r = conc_lockproxy_acquire(lk, BOUND)) ||
        (r = conc_lockproxy_release(lk)) ||
        (r = conc_manager_create(c, "Event", NULL, &ev)) ||
        (r = conc_eventproxy_set(ev)) || (r = conc_eventproxy_wait(ev, 0)) ||
        (r = conc_manager_create(c, "list", NULL, &l)) ||
        (r = conc_listproxy_append(l, v)))
        goto free;
free:
    conc_proxy_free(q);
    conc_proxy_free(lk);
    conc_proxy_free(ev);
    conc_proxy_free(l);
    conc_manager_free(c);
    conc_manager_free(m);
out:
    conc_buf_free(&addr);
    conc_obj_decref(got);
    conc_obj_decref(v);
    return r;
}

/* A server that lives across the runs and a client of it. */
struct mgr_fixture {
    conc_manager *m, *c;
};

static size_t
server_objects(conc_manager *m)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    size_t n = m->n_objs;
    conc_cond_release(m->cond);
    return n;
}

/* A create whose reply the client cannot read for want of memory still
 * drops the server's object: after each run the server holds none (1, a
 * failure of the harness, if it does). Only the create runs with an
 * allocation failing: the proxy's free, which cannot report a failure,
 * runs without. A failed create closes the client's kept connection; a
 * create and free after it open and keep another, as before the run (and
 * the server accepts connections in order, so it has taken the closed
 * one's before it answers, and the harness waits for that one's end). */
static int
manager_create_op(void *arg)
{
    struct mgr_fixture *f = arg;
    conc_proxy *l = NULL;
    int r = conc_manager_create(f->c, "list", NULL, &l);
    long left = conc_test_fail_alloc_left();
    conc_test_fail_alloc_after(0);
    conc_proxy_free(l);
    l = NULL;
    if (r != 0 && conc_manager_create(f->c, "list", NULL, &l) == 0)
        conc_proxy_free(l);
    conc_test_fail_alloc_after(left);
    if (server_objects(f->m) != 0) {
        fprintf(stderr, "create returned %s, the server kept %zu objects\n",
                conc_err_name(r), server_objects(f->m));
        return 1;
    }
    return r;
}

/* A Redis executor against a port nobody listens on, told to keep
 * trying: made, a task registered, a map made and freed, shut down. */
static int
dist_op(void *arg)
{
    (void)arg;
    static int item_values[2];
    conc_items items = {item_values, sizeof item_values[0], 2, NULL, NULL};
    conc_dist_executor *dx;
    conc_map_iter *it;
    int r = conc_dist_register("conc_contract_task", dummy_task);
    if (r ||
        (r = conc_dist_executor_new(
             "redis://127.0.0.1:1", "pw", "conc_contract",
             &(conc_dist_opts){.retry_on_startup = 1, .connect_timeout = 0.1},
             &dx)))
        return r;
    r = conc_dist_map(dx, "conc_contract_task", &items, NULL, &it);
    if (r == 0)
        conc_map_free(it);
    int s = conc_dist_shutdown(dx, 0, 1, 0);
    conc_dist_executor_free(dx);
    if (r || (r = s))
        return r;
    conc_dist_worker *w;
    r = conc_dist_worker_new(
        "redis://:pw@127.0.0.1:1", NULL, "conc_contract",
        &(conc_dist_worker_opts){.retry_on_startup = 1, .connect_timeout = 0.1},
        &w);
    if (r == 0) {
        r = conc_dist_worker_stop(w);
        conc_dist_worker_free(w);
    }
    return r;
}

static void
test_oom_dist(void **state)
{
    (void)state;
    conc_dist_executor *dx;
    int r = conc_dist_executor_new(
        "redis://127.0.0.1:1", NULL, "q",
        &(conc_dist_opts){.retry_on_startup = 1, .connect_timeout = 0.1}, &dx);
    if (r == -ENOSYS)
        skip(); /* built without hiredis */
    assert_conc_ok(r);
    conc_dist_executor_free(dx);
    assert_true(oom_each(dist_op, NULL, "a Redis executor") > 0);
}

static void
test_oom_manager(void **state)
{
    (void)state;
    assert_true(oom_each(manager_op, NULL, "a manager's calls") > 0);
    assert_true(oom_each(manager_client_op, NULL, "a manager's client") > 0);
    struct mgr_fixture f;
    conc_buf addr = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &f.m));
    assert_conc_ok(conc_manager_start(f.m));
    assert_conc_ok(conc_manager_address(f.m, &addr));
    assert_conc_ok(conc_manager_connect((const char *)addr.data, NULL, &f.c));
    assert_true(oom_each(manager_create_op, &f, "a client's create") > 0);
    conc_manager_free(f.c);
    conc_manager_free(f.m);
    conc_buf_free(&addr);
}

/* -- The loop's sockets, streams, WebSockets, subprocesses -- */

/* A main to run in a new loop under allocation failures. */
struct loop_case {
    conc_task_fn main;
    const char *what;
};

/* Runs a loop_case's main in a new loop (conc_aio_run, itself under
 * failure). */
static int
loop_op(void *arg)
{
    const struct loop_case *c = arg;
    return conc_aio_run(c->main, NULL, 0, NULL);
}

/* oom_each over each case in turn: each must have had allocations fail. */
static void
oom_each_loop_case(const struct loop_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_true(oom_each(loop_op, (void *)&cases[i], cases[i].what) > 0);
}

/* Closes stream s and waits until it has closed. */
static int
stream_close_wait(conc_aio_stream *s)
{
    int r = conc_aio_stream_close(s);
    return r ? r : conc_aio_stream_wait_closed(s, BOUND);
}

static int
stream_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    conc_aio_stream *a = NULL, *b = NULL;
    conc_buf got = CONC_BUF_INIT;
    int r = conc_aio_stream_from_fd(sv[0], NULL, &a);
    if (r) {
        close(sv[0]);
        close(sv[1]);
        return r;
    }
    r = conc_aio_stream_from_fd(sv[1], NULL, &b);
    if (r) {
        close(sv[1]);
        goto out;
    }
    conc_buf parts[2] = {{(uint8_t *)"b\n", 2, 0, 1},
                         {(uint8_t *)"c", 1, 0, 1}};
    if ((r = conc_aio_stream_write(a, "a", 1)) ||
        (r = conc_aio_stream_writelines(a, parts, 2)) ||
        (r = conc_aio_stream_drain(a, BOUND)) ||
        (r = conc_aio_stream_write_eof(a)) ||
        (r = conc_aio_stream_readline(b, BOUND, &got)) ||
        (r = conc_aio_stream_read(b, CONC_AIO_READ_ALL, BOUND, &got)) ||
        (r = conc_aio_stream_peername(b, &got)))
        goto out;
    r = stream_close_wait(a);
out:
    conc_buf_free(&got);
    conc_aio_stream_free(a);
    conc_aio_stream_free(b);
    return r;
}

/* The loop's socket calls: a connection made and accepted with them, a
 * send, two receives, and a numeric name resolved. */
static int
sock_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int a = -1, r = l < 0 || c < 0 ? -errno : 0;
    char got[4];
    size_t n = 0;
    conc_buf b = CONC_BUF_INIT;
    if (r == 0 &&
        (bind(l, (struct sockaddr *)&sa, salen) < 0 || listen(l, 1) < 0 ||
         getsockname(l, (struct sockaddr *)&sa, &salen) < 0))
        r = -errno;
    if (r || (r = conc_aio_sock_connect(c, &sa, salen, BOUND)) ||
        (r = conc_aio_sock_accept(l, BOUND, &a)) ||
        (r = conc_aio_sock_sendall(c, "abcd", 4, BOUND)) ||
        (r = conc_aio_sock_recv(a, 2, BOUND, &b)) ||
        (r = conc_aio_sock_recv_into(a, got, sizeof got, BOUND, &n)) ||
        (r = conc_aio_getaddrinfo("127.0.0.1", 80, BOUND, &b)))
        goto out;
    r = n == 2 ? 0 : CONC_EPROTO;
out:
    conc_buf_free(&b);
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return r;
}

static int
datagram_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_datagram *a, *b = NULL;
    conc_buf data = CONC_BUF_INIT, from = CONC_BUF_INIT;
    int r = conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &a);
    if (r)
        return r;
    int port = conc_aio_datagram_port(a);
    if (port < 0) {
        r = port;
        goto out;
    }
    if ((r = conc_aio_datagram_open(NULL, 0, "127.0.0.1", port, NULL, &b)) ||
        (r = conc_aio_datagram_sendto(b, "ping", 4, NULL, 0, BOUND)) ||
        (r = conc_aio_datagram_recvfrom(a, BOUND, &data, &from)))
        goto out;
    r = data.len == 4 ? 0 : CONC_EPROTO;
out:
    conc_buf_free(&data);
    conc_buf_free(&from);
    conc_aio_datagram_free(a);
    conc_aio_datagram_free(b);
    return r;
}

/* Closes the loop's server srv, waits until it has closed and frees it.
 * Returns r, or when r is 0 the wait's code. */
static int
ws_server_end(conc_ws_server *srv, int r)
{
    conc_ws_server_close(srv);
    int w = conc_ws_server_wait_closed(srv, BOUND);
    conc_ws_server_free(srv);
    return r ? r : w;
}

/* Serves ws_echo on a loopback port with the options `so`, connects to
 * it at "<origin>:<port>/" with `co`, sends "hello", reads the echo and
 * closes with `reason`; with a reason, reads back the close code too. */
static int
ws_echo_round(const char *origin, const conc_ws_opts *so,
              const conc_ws_opts *co, const char *reason)
{
    conc_aio_loop *lp;
    conc_ws_server *srv;
    conc_ws *ws = NULL;
    conc_buf m = CONC_BUF_INIT;
    char url[64];
    int r = conc_aio_get_running_loop(&lp);
    if (r || (r = conc_ws_serve(lp, "127.0.0.1", 0, ws_echo, NULL, so, &srv)))
        return r;
    snprintf(url, sizeof url, "%s:%d/", origin, conc_ws_server_port(srv));
    if ((r = conc_ws_connect(url, co, BOUND, &ws)) ||
        (r = conc_ws_send(ws, CONC_WS_TEXT, "hello", 5, BOUND)) ||
        (r = conc_ws_recv(ws, BOUND, NULL, &m)))
        goto out;
    r = conc_ws_close(ws, 1000, reason);
    if (r == 0 && reason)
        r = conc_ws_close_code(ws, &(unsigned){0}, &m);
out:
    conc_buf_free(&m);
    conc_ws_free(ws);
    return ws_server_end(srv, r);
}

static int
ws_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return ws_echo_round("ws://127.0.0.1", NULL, NULL, "bye");
}

/* A server that answers a fragmented message with a broadcast of it. */
static int
ws_parts_echo(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf piece = CONC_BUF_INIT, whole = CONC_BUF_INIT;
    int fin = 0, r = 0;
    size_t sent;
    while (r == 0 && !fin &&
           (r = conc_ws_recv_stream(ws, BOUND, NULL, &piece, &fin)) == 0)
        r = conc_buf_append(&whole, piece.data, piece.len);
    if (r == 0)
        r = conc_ws_broadcast(&ws, 1, CONC_WS_BINARY, whole.data, whole.len, 0,
                              &sent);
    if (r == 0 && sent != 1)
        r = CONC_EBROKEN; /* what was broadcast never reaches the client */
    if (r == 0)
        r = conc_ws_recv(ws, BOUND, NULL, &piece); /* until the close */
    conc_buf_free(&piece);
    conc_buf_free(&whole);
    return r == CONC_ECLOSED ? 0 : r;
}

/* Over a Unix socket, without compression: a ping and its pong, a
 * message in parts, and the broadcast answer. */
static int
ws_more_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    /* Named after the process: two runs of this test at once must not
     * unlink each other's socket. */
    char path[64], url[80];
    snprintf(path, sizeof path, "/tmp/conc_contract_ws_%d.sock", (int)getpid());
    snprintf(url, sizeof url, "ws+unix://%s", path);
    conc_aio_loop *lp;
    conc_ws_server *srv;
    conc_ws *ws = NULL;
    conc_future *pong = NULL;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_part parts[2] = {{"he", 2}, {"llo", 3}};
    conc_ws_opts o = {.no_compression = 1};
    unlink(path);
    int r = conc_aio_get_running_loop(&lp);
    if (r || (r = conc_ws_unix_serve(lp, path, ws_parts_echo, NULL, &o, &srv)))
        return r;
    if ((r = conc_ws_connect(url, &o, BOUND, &ws)) ||
        (r = conc_ws_ping(ws, "p", 1, &pong)) || (r = conc_aio_await(pong)) ||
        (r = conc_ws_send_parts(ws, CONC_WS_BINARY, parts, 2, BOUND)) ||
        (r = conc_ws_recv(ws, BOUND, NULL, &m)))
        goto out;
    r = m.len == 5 ? conc_ws_close(ws, 1000, NULL) : CONC_EPROTO;
out:
    conc_future_free(pong);
    conc_buf_free(&m);
    conc_ws_free(ws);
    r = ws_server_end(srv, r);
    unlink(path);
    return r;
}

/* wss://: the echo over TLS, with the fixture's contexts. */
static int
wss_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_stream_opts ss = {.ssl = tls_fx->server};
    conc_aio_stream_opts cs = {.ssl = tls_fx->client};
    return ws_echo_round("wss://localhost", &(conc_ws_opts){.stream = &ss},
                         &(conc_ws_opts){.stream = &cs}, NULL);
}

static int
subprocess_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    static char *argv[] = {"cat", NULL};
    conc_aio_subprocess *p;
    conc_aio_subprocess_opts o = {.popen = {.stdin_mode = CONC_STDIO_PIPE,
                                            .stdout_mode = CONC_STDIO_PIPE}};
    conc_buf out = CONC_BUF_INIT;
    int rc = -1;
    int r = conc_aio_create_subprocess_exec(argv, &o, &p);
    if (r)
        return r;
    r = conc_aio_subprocess_communicate(p, "x", 1, BOUND, &out, NULL);
    if (r) /* the pipe's stream could not be made: end the child */
        conc_aio_subprocess_kill(p);
    int w = conc_aio_subprocess_wait(p, BOUND, &rc);
    conc_aio_subprocess_free(p);
    conc_buf_free(&out);
    return r ? r : w;
}

/* A TLS echo: a server of the loop over the fixture's contexts, a client
 * that connects over TLS, writes a line and reads it back. */
static int
tls_echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf line = CONC_BUF_INIT;
    int r = conc_aio_stream_readline(s, BOUND, &line);
    if (r == 0 && (r = conc_aio_stream_write(s, line.data, line.len)) == 0)
        r = conc_aio_stream_drain(s, BOUND);
    conc_buf_free(&line);
    return r;
}

static int
tls_stream_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_loop *lp;
    conc_aio_server *srv;
    conc_aio_stream *c = NULL;
    conc_buf line = CONC_BUF_INIT;
    conc_tls_session *ts;
    int r = conc_aio_get_running_loop(&lp);
    if (r || (r = conc_aio_start_server(
                  lp, "127.0.0.1", 0, tls_echo, NULL,
                  &(conc_aio_stream_opts){.ssl = tls_fx->server}, &srv)))
        return r;
    conc_aio_stream_opts co = {.ssl = tls_fx->client,
                               .server_hostname = "localhost"};
    if ((r = conc_aio_open_connection("127.0.0.1", conc_aio_server_port(srv),
                                      &co, BOUND, &c)) ||
        (r = conc_aio_stream_write(c, "hi\n", 3)) ||
        (r = conc_aio_stream_readline(c, BOUND, &line)) ||
        (r = conc_aio_stream_ssl_object(c, &ts)) ||
        (r = conc_tls_session_peer_subject(ts, &line)))
        goto out;
    r = stream_close_wait(c);
out:
    conc_buf_free(&line);
    conc_aio_stream_free(c);
    conc_aio_server_close(srv);
    int w = conc_aio_server_wait_closed(srv, BOUND);
    conc_aio_server_free(srv);
    return r ? r : w;
}

static int
server_group_op(void *arg)
{
    (void)arg;
    conc_aio_server_group *g;
    int r =
        conc_aio_server_group_start("127.0.0.1", 0, 2, ws_none, NULL, NULL, &g);
    if (r)
        return r;
    r = conc_aio_server_group_stop(g, BOUND);
    conc_aio_server_group_free(g);
    return r;
}

static void
test_oom_tls_stream(void **state)
{
    (void)state;
    static const struct loop_case cases[] = {
        {tls_stream_main, "TLS streams"},
        {wss_main, "WebSockets over TLS"},
    };
    struct tls_fixture f;
    assert_int_equal(tls_certs_make(&f.certs), 0);
    tls_contexts_new(&f, NULL);
    tls_fx = &f;
    oom_each_loop_case(cases, sizeof cases / sizeof *cases);
    tls_fixture_free(&f);
}

static void
test_oom_aio(void **state)
{
    (void)state;
    static const struct loop_case cases[] = {
        {stream_main, "streams"},
        {datagram_main, "datagram endpoints"},
        {sock_main, "the loop's socket calls"},
        {subprocess_main, "async subprocesses"},
    };
    oom_each_loop_case(cases, sizeof cases / sizeof *cases);
    assert_true(oom_each(server_group_op, NULL, "server groups") > 0);
}

static void
test_oom_ws(void **state)
{
    (void)state;
    static const struct loop_case cases[] = {
        {ws_main, "WebSockets"},
        {ws_more_main, "WebSockets over a Unix socket"},
    };
    oom_each_loop_case(cases, sizeof cases / sizeof *cases);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_oom_tls),     conc_unit_test(test_oom_listener_obj),
        conc_unit_test(test_oom_manager), conc_unit_test(test_oom_dist),
        conc_unit_test(test_oom_aio),     conc_unit_test(test_oom_tls_stream),
        conc_unit_test(test_oom_ws),
    };
    warm_up_threads();
    /* The task registry lives as long as the process: its first entry is
     * made before the leak guard's baselines (dist_op registers again). */
    conc_dist_register("conc_contract_task", dummy_task);
    return conc_run_tests(tests);
}
