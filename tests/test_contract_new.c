/* The contract of DESIGN.md "Conventions" over the newest modules (ws,
 * tls, aio_net, aio_subprocess, aio_stream, dist, manager, obj,
 * listener), where a generated test cannot reach: calls after close or
 * shutdown give CONC_ECLOSED, closing twice is harmless, `_free(NULL)`
 * does nothing; CONC_FOREVER is accepted; and error messages name their
 * cause. (NULL arguments, NaN and negative timeouts are checked over the
 * whole API by test_contract_null, generated from the headers;
 * allocation failures by test_contract_oom.) */
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

/* ---- Argument checks come before state checks ----------------------------
 */

static int
always_true(void *arg)
{
    (void)arg;
    return 1;
}

/* A NaN timeout is bad input whatever the state: CONC_EINVAL, not the
 * CONC_ENOTOWNER of a caller that does not hold the lock. */
static void
test_cond_wait_nan_not_owner(void **state)
{
    (void)state;
    conc_cond *c;
    assert_conc_ok(conc_cond_new(NULL, &c));
    assert_conc(conc_cond_wait(c, NAN), CONC_EINVAL);
    assert_conc(conc_cond_wait_for(c, always_true, NULL, NAN), CONC_EINVAL);
    assert_conc(conc_cond_wait(c, 0), CONC_ENOTOWNER);
    conc_cond_free(c);
}

/* ---- After close or shutdown ----------------------------------------------
 *
 * Every call on a closed object gives CONC_ECLOSED (or what its header
 * says), closing again does nothing, and `_free(NULL)` does nothing. */

static void
test_closed_tls(void **state)
{
    (void)state;
    conc_tls_context *cx;
    conc_tls_session *s;
    size_t n = 9;
    assert_conc_ok(conc_tls_context_new(
        &(conc_tls_opts){.verify = CONC_TLS_VERIFY_NONE}, &cx));
    assert_conc_ok(conc_tls_session_new(cx, NULL, &s));
    assert_conc_ok(conc_tls_session_close(s));
    assert_conc_ok(conc_tls_session_close(s));
    assert_conc(conc_tls_session_write(s, "x", 1, &n), CONC_ECLOSED);
    assert_conc_ok(conc_tls_session_feed_eof(s));
    assert_conc(conc_tls_session_feed(s, "x", 1, &n), CONC_ECLOSED);
    conc_tls_session_free(s);
    conc_tls_context_free(cx);
    conc_tls_session_free(NULL);
    conc_tls_context_free(NULL);
}

static void
test_closed_listener(void **state)
{
    (void)state;
    conc_listener *l;
    conc_conn *c, *a;
    conc_buf b = CONC_BUF_INIT;
    conc_obj *o = conc_obj_int(1), *got = NULL;
    int port, fd;
    assert_conc_ok(conc_listener_new("127.0.0.1:0", NULL, &l));
    assert_conc_ok(conc_listener_address(l, &b));
    assert_conc_ok(conc_client_connect((const char *)b.data, NULL, BOUND, &c));
    assert_conc_ok(conc_listener_accept(l, BOUND, &a));
    assert_conc_ok(conc_listener_close(l));
    assert_conc_ok(conc_listener_close(l));
    assert_conc(conc_listener_accept(l, 0, &a), CONC_ECLOSED);
    assert_conc(conc_listener_address(l, &b), CONC_ECLOSED);
    assert_conc(conc_listener_port(l, &port), CONC_ECLOSED);
    assert_conc(conc_listener_fileno(l, &fd), CONC_ECLOSED);
    assert_conc_ok(conc_conn_close(c));
    assert_conc(conc_conn_send_obj(c, o, 0), CONC_ECLOSED);
    assert_conc(conc_conn_recv_obj(c, 0, &got), CONC_ECLOSED);
    conc_conn_free(c);
    /* The peer's end: what the closed side never sent is the end. */
    assert_conc(conc_conn_recv_obj(a, BOUND, &got), CONC_ECLOSED);
    assert_null(got);
    conc_conn_free(a);
    conc_listener_free(l);
    conc_listener_free(NULL);
    conc_obj_decref(o);
    conc_obj_decref(NULL);
    conc_buf_free(&b);
}

static int
closed_stream_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s;
    conc_tls_context *cx;
    conc_buf b = CONC_BUF_INIT, part = {(uint8_t *)"x", 1, 0, 1};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &s));
    assert_conc_ok(conc_aio_stream_close(s));
    assert_conc_ok(conc_aio_stream_close(s));
    assert_int_equal(conc_aio_stream_is_closing(s), 1);
    assert_conc(conc_aio_stream_write(s, "x", 1), CONC_ECLOSED);
    assert_conc(conc_aio_stream_writelines(s, &part, 1), CONC_ECLOSED);
    assert_conc(conc_aio_stream_write_eof(s), CONC_ECLOSED);
    assert_conc(conc_aio_stream_read(s, 1, 0, &b), CONC_ECLOSED);
    assert_conc(conc_aio_stream_readline(s, 0, &b), CONC_ECLOSED);
    assert_conc(conc_aio_stream_peername(s, &b), CONC_ECLOSED);
    assert_conc(conc_aio_stream_sockname(s, &b), CONC_ECLOSED);
    assert_conc_ok(conc_tls_context_new(
        &(conc_tls_opts){.verify = CONC_TLS_VERIFY_NONE}, &cx));
    assert_conc(conc_aio_stream_start_tls(s, cx, NULL, 0), CONC_ECLOSED);
    conc_tls_context_free(cx);
    assert_conc_ok(conc_aio_stream_wait_closed(s, BOUND));
    conc_aio_stream_free(s);
    conc_aio_stream_free(NULL);
    close(sv[1]);
    return 0;
}

static int
closed_net_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_datagram *d;
    conc_aio_loop *lp;
    conc_aio_server *srv;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &d));
    assert_conc_ok(conc_aio_datagram_close(d));
    assert_conc_ok(conc_aio_datagram_close(d));
    assert_conc(conc_aio_datagram_port(d), CONC_ECLOSED);
    assert_conc(conc_aio_datagram_sendto(d, "x", 1, "127.0.0.1", 9, 0),
                CONC_ECLOSED);
    assert_conc(conc_aio_datagram_recvfrom(d, 0, &b, NULL), CONC_ECLOSED);
    conc_aio_datagram_free(d);
    conc_aio_datagram_free(NULL);
    assert_conc_ok(conc_aio_get_running_loop(&lp));
    assert_conc_ok(
        conc_aio_start_server(lp, "127.0.0.1", 0, ws_none, NULL, NULL, &srv));
    assert_conc_ok(conc_aio_server_close(srv));
    assert_conc_ok(conc_aio_server_close(srv));
    assert_int_equal(conc_aio_server_is_serving(srv), 0);
    assert_conc(conc_aio_server_socket(srv, 0), CONC_ECLOSED);
    assert_conc_ok(conc_aio_server_serve_forever(srv));
    assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
    conc_aio_server_free(NULL);
    return 0;
}

static void
test_closed_aio(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(closed_stream_main, NULL, 0, NULL));
    assert_conc_ok(conc_aio_run(closed_net_main, NULL, 0, NULL));
    conc_aio_server_group *g;
    assert_conc_ok(conc_aio_server_group_start("127.0.0.1", 0, 1, ws_none, NULL,
                                               NULL, &g));
    assert_conc_ok(conc_aio_server_group_stop(g, BOUND));
    assert_conc_ok(conc_aio_server_group_stop(g, BOUND));
    conc_aio_server_group_free(g);
    conc_aio_server_group_free(NULL);
}

static int
closed_subprocess_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    static char *argv[] = {"true", NULL};
    conc_aio_subprocess *p;
    int rc = -1;
    assert_conc_ok(conc_aio_create_subprocess_exec(argv, NULL, &p));
    assert_conc_ok(conc_aio_subprocess_wait(p, BOUND, &rc));
    assert_int_equal(rc, 0);
    assert_conc_ok(conc_aio_subprocess_wait(p, 0, &rc));
    assert_int_equal(conc_aio_subprocess_returncode(p, &rc), 1);
    assert_conc_ok(conc_aio_subprocess_send_signal(p, SIGTERM));
    assert_conc_ok(conc_aio_subprocess_terminate(p));
    assert_conc_ok(conc_aio_subprocess_kill(p));
    conc_aio_subprocess_free(p);
    conc_aio_subprocess_free(NULL);
    return 0;
}

static void
test_closed_subprocess(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(closed_subprocess_main, NULL, 0, NULL));
}

static void
test_closed_manager(void **state)
{
    (void)state;
    conc_manager *m;
    conc_proxy *d, *d2 = NULL;
    conc_obj *k = conc_obj_str("k"), *got = NULL;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &m));
    assert_conc_ok(conc_manager_start(m));
    assert_conc_ok(conc_manager_create(m, "dict", NULL, &d));
    assert_conc_ok(conc_manager_shutdown(m));
    assert_conc_ok(conc_manager_shutdown(m));
    assert_conc(conc_manager_create(m, "dict", NULL, &d2), CONC_ECLOSED);
    assert_null(d2);
    assert_conc(conc_dictproxy_get(d, k, &got), CONC_ECLOSED);
    assert_conc(conc_proxy_call(d, "__len__", NULL, NULL, &got), CONC_ECLOSED);
    assert_null(got);
    conc_proxy_free(d);
    conc_proxy_free(NULL);
    conc_manager_free(m);
    conc_manager_free(NULL);
    conc_obj_decref(k);
}

static void
test_closed_dist(void **state)
{
    (void)state;
    conc_dist_executor *dx;
    conc_future *f = NULL;
    conc_map_iter *it = NULL;
    size_t n = 9;
    int r = conc_dist_executor_new(
        "redis://127.0.0.1:1", NULL, "q",
        &(conc_dist_opts){.retry_on_startup = 1, .connect_timeout = 0.1}, &dx);
    if (r == -ENOSYS)
        skip(); /* built without hiredis */
    assert_conc_ok(r);
    assert_conc_ok(conc_dist_shutdown(dx, 1, 1, BOUND));
    assert_conc_ok(conc_dist_shutdown(dx, 1, 1, BOUND));
    assert_conc(conc_dist_submit(dx, "t", "x", 1, 0, &f), CONC_ECLOSED);
    assert_null(f);
    static int item_values[1];
    conc_items items = {item_values, sizeof item_values[0], 1, NULL, NULL};
    assert_conc(conc_dist_submit_many(dx, "t", &items, 0, &f, &n),
                CONC_ECLOSED);
    assert_int_equal(n, 0);
    assert_conc(conc_dist_map(dx, "t", &items, NULL, &it), CONC_ECLOSED);
    conc_dist_executor_free(dx);
    conc_dist_executor_free(NULL);
    conc_dist_worker_free(NULL);
}

/* ---- CONC_FOREVER --------------------------------------------------------
 *
 * Every blocking call takes CONC_FOREVER: where what it waits for is
 * there already, it returns at once. */

static int
forever_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    const double F = CONC_FOREVER;
    conc_aio_loop *lp;
    conc_ws_server *srv;
    conc_ws *ws;
    conc_buf m = CONC_BUF_INIT;
    char url[64];
    int sv[2], rc = -1;
    assert_conc_ok(conc_aio_get_running_loop(&lp));
    /* WebSockets: an echo. */
    assert_conc_ok(
        conc_ws_serve(lp, "127.0.0.1", 0, ws_echo, NULL, NULL, &srv));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    assert_conc_ok(conc_ws_connect(url, NULL, F, &ws));
    assert_conc_ok(conc_ws_send(ws, CONC_WS_TEXT, "x", 1, F));
    assert_conc_ok(conc_ws_recv(ws, F, NULL, &m));
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc_ok(conc_ws_wait_closed(ws, F));
    conc_ws_free(ws);
    assert_conc_ok(conc_ws_server_close(srv));
    assert_conc_ok(conc_ws_server_wait_closed(srv, F));
    conc_ws_server_free(srv);
    /* Streams and sockets over a socket pair. */
    conc_aio_stream *a;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &a));
    assert_conc_ok(conc_aio_stream_write(a, "x\n", 2));
    assert_conc_ok(conc_aio_stream_drain(a, F));
    assert_conc_ok(conc_aio_sock_recv(sv[1], 2, F, &m));
    assert_conc_ok(conc_aio_sock_sendall(sv[1], "y\n", 2, F));
    assert_conc_ok(conc_aio_stream_readline(a, F, &m));
    assert_conc_ok(conc_aio_stream_close(a));
    assert_conc_ok(conc_aio_stream_wait_closed(a, F));
    conc_aio_stream_free(a);
    close(sv[1]);
    /* A datagram sent to itself. */
    conc_aio_datagram *d;
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &d));
    assert_conc_ok(conc_aio_datagram_sendto(d, "x", 1, "127.0.0.1",
                                            conc_aio_datagram_port(d), F));
    assert_conc_ok(conc_aio_datagram_recvfrom(d, F, &m, NULL));
    conc_aio_datagram_free(d);
    /* A child that exits. */
    static char *argv[] = {"true", NULL};
    conc_aio_subprocess *p;
    assert_conc_ok(conc_aio_create_subprocess_exec(argv, NULL, &p));
    assert_conc_ok(conc_aio_subprocess_wait(p, F, &rc));
    assert_int_equal(rc, 0);
    conc_aio_subprocess_free(p);
    conc_buf_free(&m);
    return 0;
}

static void
test_forever(void **state)
{
    (void)state;
    const double F = CONC_FOREVER;
    assert_conc_ok(conc_aio_run(forever_main, NULL, 0, NULL));
    /* Listeners and connections. */
    conc_listener *l;
    conc_conn *c, *a;
    conc_buf b = CONC_BUF_INIT;
    conc_obj *o = conc_obj_int(5), *got = NULL;
    assert_conc_ok(conc_listener_new("127.0.0.1:0", NULL, &l));
    assert_conc_ok(conc_listener_address(l, &b));
    assert_conc_ok(conc_client_connect((const char *)b.data, NULL, F, &c));
    assert_conc_ok(conc_listener_accept(l, F, &a));
    assert_conc_ok(conc_conn_send_obj(c, o, F));
    assert_conc_ok(conc_conn_recv_obj(a, F, &got));
    assert_int_equal(conc_obj_equal(o, got), 1);
    conc_obj_decref(got);
    got = NULL;
    conc_conn_free(a);
    conc_conn_free(c);
    conc_listener_free(l);
    conc_buf_free(&b);
    /* Manager proxies. */
    conc_manager *m;
    conc_proxy *q, *lk, *ev;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &m));
    assert_conc_ok(conc_manager_start(m));
    assert_conc_ok(conc_manager_create(m, "Queue", NULL, &q));
    assert_conc_ok(conc_queueproxy_put(q, o, F));
    assert_conc_ok(conc_queueproxy_get(q, F, &got));
    conc_obj_decref(got);
    assert_conc_ok(conc_manager_create(m, "Lock", NULL, &lk));
    assert_conc_ok(conc_lockproxy_acquire(lk, F));
    assert_conc_ok(conc_lockproxy_release(lk));
    assert_conc_ok(conc_manager_create(m, "Event", NULL, &ev));
    assert_conc_ok(conc_eventproxy_set(ev));
    assert_conc_ok(conc_eventproxy_wait(ev, F));
    conc_proxy_free(q);
    conc_proxy_free(lk);
    conc_proxy_free(ev);
    conc_manager_free(m);
    conc_obj_decref(o);
    /* A server group. */
    conc_aio_server_group *g;
    assert_conc_ok(conc_aio_server_group_start("127.0.0.1", 0, 1, ws_none, NULL,
                                               NULL, &g));
    assert_conc_ok(conc_aio_server_group_stop(g, F));
    conc_aio_server_group_free(g);
}

/* ---- Error messages -------------------------------------------------------
 *
 * Every code has a name and a message of its own; a failure that leaves a
 * message (conc_failure_message) names its cause. */

/* Asserts that the calling thread's failure message holds `part`. */
#define assert_message_has(part)                                               \
    do {                                                                       \
        const char *m_ = conc_failure_message();                               \
        if (!strstr(m_, part))                                                 \
            fail_msg("failure message \"%s\" does not name \"%s\"", m_, part); \
    } while (0)

static void
test_message_codes(void **state)
{
    (void)state;
    static const int codes[] = {
#define X(name, value, msg) value,
        CONC_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *m = conc_strerror(codes[i]),
                   *name = conc_err_name(codes[i]);
        assert_true(m[0] && strcmp(m, "unknown error") != 0);
        assert_true(strncmp(name, "CONC_E", 6) == 0);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(m, conc_strerror(codes[j]));
        }
    }
    /* The system errors the network calls return have theirs too. */
    static const int sys[] = {-ECONNREFUSED, -ECONNRESET, -EADDRINUSE,
                              -EHOSTUNREACH, -ENOSYS};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        assert_string_not_equal(conc_strerror(sys[i]), "unknown error");
        assert_string_not_equal(conc_err_name(sys[i]), "CONC_EUNKNOWN");
    }
}

static void
test_message_tls(void **state)
{
    (void)state;
    conc_tls_context *cx;
    const char *missing = "/nonexistent/conc-contract-cert.pem";
    assert_conc(conc_tls_context_new(
                    &(conc_tls_opts){.server = 1, .cert_file = missing}, &cx),
                CONC_ETLS);
    assert_message_has(missing);
    assert_conc(conc_tls_context_new(&(conc_tls_opts){.alpn = "h2,,x"}, &cx),
                CONC_EINVAL);
    assert_message_has("h2,,x");
    conc_tls_session *s;
    assert_conc_ok(conc_tls_context_new(NULL, &cx));
    assert_conc(conc_tls_session_new(cx, NULL, &s), CONC_EINVAL);
    assert_message_has("server_hostname");
    conc_tls_context_free(cx);
}

static int
no_answer(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf head = CONC_BUF_INIT;
    conc_aio_stream_readuntil(s, "\r\n\r\n", 4, BOUND, &head);
    conc_buf_free(&head);
    return 0; /* the server closes the stream */
}

static int
answer_404(void *arg, conc_aio_stream *s)
{
    (void)arg;
    static const char resp[] =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    conc_buf head = CONC_BUF_INIT;
    conc_aio_stream_readuntil(s, "\r\n\r\n", 4, BOUND, &head);
    conc_buf_free(&head);
    conc_aio_stream_write(s, resp, sizeof resp - 1);
    return conc_aio_stream_drain(s, BOUND);
}

static int
message_net_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_loop *lp;
    conc_aio_server *srv;
    conc_aio_datagram *d;
    conc_ws *ws;
    char url[64];
    assert_conc_ok(conc_aio_get_running_loop(&lp));
    assert_conc(conc_aio_start_server(lp, "localhost.invalid", 0, ws_none, NULL,
                                      NULL, &srv),
                CONC_EINVAL);
    assert_message_has("localhost.invalid");
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &d));
    assert_conc(conc_aio_datagram_sendto(d, "x", 1, NULL, 0, 0), CONC_EINVAL);
    assert_message_has("not connected");
    conc_aio_datagram_free(d);
    /* WebSocket handshakes the server does not complete. */
    conc_aio_stream_handler servers[] = {answer_404, no_answer};
    const char *why[] = {"404", "closed"};
    for (size_t i = 0; i < 2; i++) {
        assert_conc_ok(conc_aio_start_server(lp, "127.0.0.1", 0, servers[i],
                                             NULL, NULL, &srv));
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/",
                 conc_aio_server_port(srv));
        conc_clear_failure();
        assert_conc(conc_ws_connect(url, NULL, BOUND, &ws), CONC_EPROTO);
        assert_message_has(why[i]);
        conc_aio_server_close(srv);
        assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
        conc_aio_server_free(srv);
    }
    return 0;
}

static void
test_message_net(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(message_net_main, NULL, 0, NULL));
}

static void
test_message_manager(void **state)
{
    (void)state;
    conc_manager *m;
    conc_proxy *d = NULL;
    conc_obj *got = NULL;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &m));
    assert_conc_ok(conc_manager_start(m));
    assert_conc(conc_manager_create(m, "NoSuchType", NULL, &d), CONC_ETASK);
    assert_message_has("NoSuchType");
    assert_conc_ok(conc_manager_create(m, "dict", NULL, &d));
    /* AttributeError, as CPython's server raises it. */
    assert_conc(conc_proxy_call(d, "no_such_method", NULL, NULL, &got),
                CONC_EKEY);
    assert_message_has("no_such_method");
    conc_proxy_free(d);
    conc_manager_free(m);
}

static int
closed_ws_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_loop *lp;
    conc_ws_server *srv;
    conc_ws *ws;
    conc_future *pong = NULL;
    conc_buf m = CONC_BUF_INIT;
    unsigned code = 0;
    char url[64];
    conc_ws_part part = {"x", 1};
    int fin;
    assert_conc_ok(conc_aio_get_running_loop(&lp));
    assert_conc_ok(
        conc_ws_serve(lp, "127.0.0.1", 0, ws_echo, NULL, NULL, &srv));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc_ok(conc_ws_wait_closed(ws, BOUND));
    assert_int_equal(conc_ws_is_open(ws), 0);
    assert_conc(conc_ws_send(ws, CONC_WS_TEXT, "x", 1, 0), CONC_ECLOSED);
    assert_conc(conc_ws_send_parts(ws, CONC_WS_TEXT, &part, 1, 0),
                CONC_ECLOSED);
    assert_conc(conc_ws_recv(ws, 0, NULL, &m), CONC_ECLOSED);
    assert_conc(conc_ws_recv_stream(ws, 0, NULL, &m, &fin), CONC_ECLOSED);
    assert_conc(conc_ws_ping(ws, NULL, 0, &pong), CONC_ECLOSED);
    assert_null(pong);
    assert_conc(conc_ws_pong(ws, NULL, 0), CONC_ECLOSED);
    assert_conc_ok(conc_ws_close_code(ws, &code, NULL));
    assert_int_equal(code, 1000);
    conc_ws_free(ws);
    conc_ws_free(NULL);
    assert_conc_ok(conc_ws_server_close(srv));
    assert_conc_ok(conc_ws_server_close(srv));
    assert_conc_ok(conc_ws_server_wait_closed(srv, BOUND));
    conc_ws_server_free(srv);
    conc_ws_server_free(NULL);
    return 0;
}

static void
test_closed_ws(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(closed_ws_main, NULL, 0, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_cond_wait_nan_not_owner),
        conc_unit_test(test_closed_tls),
        conc_unit_test(test_closed_listener),
        conc_unit_test(test_closed_aio),
        conc_unit_test(test_closed_subprocess),
        conc_unit_test(test_closed_manager),
        conc_unit_test(test_closed_dist),
        conc_unit_test(test_forever),
        conc_unit_test(test_message_codes),
        conc_unit_test(test_message_tls),
        conc_unit_test(test_message_net),
        conc_unit_test(test_message_manager),
        conc_unit_test(test_closed_ws),
    };
    warm_up_threads();
    /* The task registry lives as long as the process: its first entry is
     * made before the leak guard's baselines. */
    conc_dist_register("conc_contract_task", dummy_task);
    return conc_run_tests(tests);
}
