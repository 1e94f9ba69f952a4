/* conc's WebSockets against the implementations people use, run as
 * separate programs from tests/peers/: python websockets (Debian's
 * python3-websockets, under /usr/bin/python3) and Node's ws (tools/node,
 * installed by `make deps`). Each peer is a server for conc's client and
 * a client of conc's server, with permessage-deflate on and off, and over
 * wss:// (with deflate, certificates made by the test): text, binary,
 * empty and 1 MiB messages, fragmented messages both ways (conc's sent
 * from parts given at once and from a producer), ping/pong both ways,
 * close codes both ways, and a message conc abandons mid-way (1011).
 *
 * A peer that is missing fails its test with a message that says what to
 * install: CI installs everything. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"
#include "tls_certs.h"

#ifndef CONC_PEERS_DIR
#error "CONC_PEERS_DIR must name tests/peers"
#endif
#ifndef CONC_NODE
#define CONC_NODE ""
#endif
#define PYTHON    "/usr/bin/python3"
#define PY_PEER   CONC_PEERS_DIR "/ws_peer.py"
#define JS_PEER   CONC_PEERS_DIR "/ws_peer.js"
#define NODE_WS   CONC_PEERS_DIR "/../../tools/node/node_modules/ws/package.json"
#define PEER_WAIT 30.0 /* seconds: bound on any wait for a peer */
#define MIB       ((size_t)1 << 20)
#define LINE_MAX_ 128

struct peer {
    const char *prog;
    const char *script;
};

static const struct peer python = {PYTHON, PY_PEER};
static const struct peer node = {CONC_NODE, JS_PEER};

/* The certificates of the wss:// runs: a CA the peers and conc trust, and
 * the server's certificate for 127.0.0.1 it signed. */
static struct tls_certs certs;

static void
require_python(void)
{
    char *argv[] = {PYTHON, "-c", "import websockets", NULL};
    conc_popen *p;
    int rc = -1;
    if (access(PYTHON, X_OK) != 0 || conc_popen_new(argv, NULL, &p) < 0)
        fail_msg("%s is missing: install python3 (make deps)", PYTHON);
    conc_popen_wait(p, PEER_WAIT, &rc);
    conc_popen_free(p);
    if (rc != 0)
        fail_msg("python websockets is missing: install Debian's "
                 "python3-websockets (make deps)");
}

static void
require_node(void)
{
    if (!*CONC_NODE || access(CONC_NODE, X_OK) != 0)
        fail_msg("node is missing: install nodejs (make deps)");
    if (access(NODE_WS, R_OK) != 0)
        fail_msg("Node's ws is missing from tools/node/node_modules: run "
                 "make deps (npm ci in tools/node)");
}

/* ---- conc's client against the peer's server ----------------------------- */

static void
round_trip(conc_ws *ws, conc_ws_kind kind, const void *p, size_t n)
{
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind got;
    assert_conc_ok(conc_ws_send(ws, kind, p, n, PEER_WAIT));
    assert_conc_ok(conc_ws_recv(ws, PEER_WAIT, &got, &m));
    assert_int_equal(got, kind);
    assert_int_equal(m.len, n);
    assert_true(n == 0 || memcmp(m.data, p, n) == 0);
    conc_buf_free(&m);
}

static void
expect_text(conc_ws *ws, const char *want)
{
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    assert_conc_ok(conc_ws_recv(ws, PEER_WAIT, &kind, &m));
    assert_int_equal(kind, CONC_WS_TEXT);
    assert_int_equal(m.len, strlen(want));
    assert_memory_equal(m.data, want, m.len);
    conc_buf_free(&m);
}

struct client_args {
    char url[64];
    int compress;
    int tls;
};

/* A producer for conc_ws_send_stream over a list of parts: the last ends
 * the message, a NULL one fails it. It yields to the loop before each
 * part, as a producer that waits for its data does. */
struct part_list {
    const char *const *parts;
    size_t n, next;
};

static int
next_part(void *arg, conc_buf *part, int *last)
{
    struct part_list *l = arg;
    int r = conc_aio_sleep(0);
    if (r < 0)
        return r;
    const char *p = l->parts[l->next++];
    if (!p)
        return CONC_ENOENT;
    *last = l->next == l->n;
    return conc_buf_append(part, p, strlen(p));
}

static int
send_list(conc_ws *ws, const char *const *parts, size_t n)
{
    struct part_list l = {parts, n, 0};
    return conc_ws_send_stream(ws, CONC_WS_TEXT, next_part, &l, PEER_WAIT);
}

static void
messages(conc_ws *ws)
{
    round_trip(ws, CONC_WS_TEXT, "hello", 5);
    round_trip(ws, CONC_WS_TEXT, "h\xc3\xa9llo \xe2\x98\x83", 10);
    round_trip(ws, CONC_WS_BINARY, "\x00\xff\x01", 3);
    round_trip(ws, CONC_WS_TEXT, "", 0);
    round_trip(ws, CONC_WS_BINARY, "", 0);
    uint8_t *big = malloc(MIB);
    assert_non_null(big);
    for (size_t i = 0; i < MIB; i++)
        big[i] = (uint8_t)i;
    round_trip(ws, CONC_WS_BINARY, big, MIB);
    free(big);
    conc_ws_part parts[] = {{"fr", 2}, {"ag", 2}, {"ment", 4}};
    assert_conc_ok(conc_ws_send_parts(ws, CONC_WS_TEXT, parts, 3, PEER_WAIT));
    expect_text(ws, "fragment");
    assert_conc_ok(conc_ws_send(ws, CONC_WS_TEXT, "frag", 4, PEER_WAIT));
    expect_text(ws, "abcdef");
    /* From a producer, a character split between parts, the end told by
     * an empty last part. */
    static const char *const snow[] = {"sn", "\xe2\x98",
                                       "\x83"
                                       "w",
                                       ""};
    assert_conc_ok(send_list(ws, snow, 4));
    expect_text(ws, "sn\xe2\x98\x83"
                    "w");
}

/* A message abandoned after its first frame fails the connection with
 * 1011; the peer answers the close with the same code. */
static void
abandoned(const char *url, const conc_ws_opts *o)
{
    static const char *const parts[] = {"begun", NULL};
    conc_ws *ws;
    unsigned code;
    assert_conc_ok(conc_ws_connect(url, o, PEER_WAIT, &ws));
    assert_conc(send_list(ws, parts, 2), CONC_ENOENT);
    assert_conc_ok(conc_ws_wait_closed(ws, PEER_WAIT));
    assert_conc_ok(conc_ws_close_code(ws, &code, NULL));
    assert_int_equal(code, 1011);
    conc_ws_free(ws);
}

static int
client_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct client_args *a = arg;
    conc_tls_context *cc = NULL;
    conc_aio_stream_opts so = {0};
    conc_ws_opts o = {.no_compression = !a->compress, .max_size = 2 * MIB};
    if (a->tls) {
        conc_tls_opts co = {.ca_file = certs.ca};
        assert_conc_ok(conc_tls_context_new(&co, &cc));
        so.ssl = cc;
        o.stream = &so;
    }
    conc_ws *ws;
    conc_future *pong;
    unsigned code;
    conc_buf reason = CONC_BUF_INIT, m = CONC_BUF_INIT;
    assert_conc_ok(conc_ws_connect(a->url, &o, PEER_WAIT, &ws));
    assert_int_equal(conc_ws_compressed(ws), a->compress);
    messages(ws);
    assert_conc_ok(conc_ws_ping(ws, "c", 1, &pong));
    assert_conc_ok(conc_aio_wait_for(pong, PEER_WAIT));
    conc_future_free(pong);
    assert_conc_ok(conc_ws_send(ws, CONC_WS_TEXT, "ping-me", 7, PEER_WAIT));
    expect_text(ws, "pinged");
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc_ok(conc_ws_close_code(ws, &code, NULL));
    assert_int_equal(code, 1000);
    conc_ws_free(ws);
    /* The peer closes with 4001 "bye". */
    assert_conc_ok(conc_ws_connect(a->url, &o, PEER_WAIT, &ws));
    assert_conc_ok(conc_ws_send(ws, CONC_WS_TEXT, "close:4001", 10, PEER_WAIT));
    assert_conc(conc_ws_recv(ws, PEER_WAIT, NULL, &m), CONC_ECLOSED);
    assert_conc_ok(conc_ws_wait_closed(ws, PEER_WAIT));
    assert_conc_ok(conc_ws_close_code(ws, &code, &reason));
    assert_int_equal(code, 4001);
    assert_int_equal(reason.len, 3);
    assert_memory_equal(reason.data, "bye", 3);
    conc_ws_free(ws);
    conc_buf_free(&reason);
    abandoned(a->url, &o);
    conc_tls_context_free(cc);
    return 0;
}

static void
against_server(const struct peer *pr, int compress, int tls)
{
    char *argv[] = {(char *)pr->prog,
                    (char *)pr->script,
                    "server",
                    compress ? "deflate" : "plain",
                    tls ? certs.server : NULL,
                    certs.server_key,
                    NULL};
    conc_popen_opts po = {.stdin_mode = CONC_STDIO_PIPE,
                          .stdout_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    int out, rc = -1;
    char line[LINE_MAX_];
    assert_conc_ok(conc_popen_new(argv, &po, &p));
    assert_conc_ok(conc_popen_stdout_fd(p, &out));
    conc_test_read_line(out, PEER_WAIT, line, sizeof line);
    int port = 0;
    assert_int_equal(sscanf(line, "listening on %d", &port), 1);
    struct client_args a = {.compress = compress, .tls = tls};
    snprintf(a.url, sizeof a.url, "%s://127.0.0.1:%d/", tls ? "wss" : "ws",
             port);
    assert_conc_ok(conc_aio_run(client_main, &a, sizeof a, NULL));
    assert_conc_ok(conc_popen_close_stdin(p)); /* the peer's cue to stop */
    assert_conc_ok(conc_popen_wait(p, PEER_WAIT, &rc));
    assert_int_equal(rc, 0);
    conc_popen_free(p);
}

/* ---- The peer's client against conc's server ----------------------------- */

struct served {
    unsigned last_code; /* the close code of the last connection */
    int compressed;     /* -1 until a connection came */
    int mismatch;       /* a connection's compression was not the wanted */
    int want_compress;
};

static int
echo(void *arg, conc_ws *ws)
{
    struct served *sv = arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    conc_future *pong;
    int r;
    if (conc_ws_compressed(ws) != sv->want_compress)
        sv->mismatch = 1;
    while ((r = conc_ws_recv(ws, PEER_WAIT, &kind, &m)) == 0) {
        int text = kind == CONC_WS_TEXT;
        if (text && m.len == 4 && memcmp(m.data, "frag", 4) == 0) {
            conc_ws_part parts[] = {{"ab", 2}, {"cd", 2}, {"ef", 2}};
            r = conc_ws_send_parts(ws, CONC_WS_TEXT, parts, 3, PEER_WAIT);
        } else if (text && m.len == 7 && memcmp(m.data, "ping-me", 7) == 0) {
            r = conc_ws_ping(ws, NULL, 0, &pong);
            if (!r) {
                r = conc_aio_wait_for(pong, PEER_WAIT);
                conc_future_free(pong);
            }
            if (!r)
                r = conc_ws_send(ws, CONC_WS_TEXT, "pinged", 6, PEER_WAIT);
        } else if (text && m.len == 6 && memcmp(m.data, "stream", 6) == 0) {
            static const char *const parts[] = {"str", "\xc3",
                                                "\xa9"
                                                "am"};
            r = send_list(ws, parts, 3);
        } else if (text && m.len > 6 && memcmp(m.data, "close:", 6) == 0) {
            conc_buf_append(&m, "", 1);
            r = conc_ws_close(ws, (unsigned)atoi((char *)m.data + 6), "bye");
        } else {
            r = conc_ws_send(ws, kind, m.data, m.len, PEER_WAIT);
        }
        if (r < 0)
            break;
    }
    conc_ws_close_code(ws, &sv->last_code, NULL);
    conc_buf_free(&m);
    return 0;
}

struct server_args {
    const struct peer *pr;
    int compress;
    int tls;
};

/* In a thread of the loop's executor: the peer client's whole output
 * and its exit status (the loop serves it meanwhile). */
static int
communicate(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    conc_popen *p = *(conc_popen *const *)arg;
    int rc = -1;
    int r = conc_popen_communicate(p, NULL, 0, PEER_WAIT, result, NULL);
    if (r == 0)
        conc_popen_returncode(p, &rc);
    return r < 0 ? r : rc;
}

static int
server_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct server_args *a = arg;
    struct served sv = {.want_compress = a->compress};
    conc_tls_context *sc = NULL;
    conc_aio_stream_opts so = {0};
    conc_ws_opts o = {.no_compression = !a->compress, .max_size = 2 * MIB};
    if (a->tls) {
        conc_tls_opts to = {.server = 1,
                            .cert_file = certs.server,
                            .key_file = certs.server_key};
        assert_conc_ok(conc_tls_context_new(&to, &sc));
        so.ssl = sc;
        o.stream = &so;
    }
    conc_aio_loop *loop;
    conc_ws_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_ws_serve(loop, "127.0.0.1", 0, echo, &sv, &o, &srv));
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/", a->tls ? "wss" : "ws",
             conc_ws_server_port(srv));
    char *argv[] = {(char *)a->pr->prog,
                    (char *)a->pr->script,
                    "client",
                    url,
                    a->compress ? "deflate" : "plain",
                    a->tls ? certs.ca : NULL,
                    NULL};
    conc_popen_opts po = {.stdout_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    conc_buf out = CONC_BUF_INIT;
    int rc = -1;
    assert_conc_ok(conc_popen_new(argv, &po, &p));
    rc = conc_aio_to_thread(communicate, &p, sizeof p, &out);
    conc_popen_free(p);
    conc_buf_append(&out, "", 1);
    if (rc != 0 || !strstr((char *)out.data, "ok"))
        fail_msg("the peer client failed (%d): %s", rc, (char *)out.data);
    conc_buf_free(&out);
    conc_ws_server_close(srv);
    assert_conc_ok(conc_ws_server_wait_closed(srv, PEER_WAIT));
    conc_ws_server_free(srv);
    conc_tls_context_free(sc);
    assert_int_equal(sv.mismatch, 0);
    assert_int_equal(sv.last_code, 4002);
    return 0;
}

static void
against_client(const struct peer *pr, int compress, int tls)
{
    struct server_args a = {pr, compress, tls};
    assert_conc_ok(conc_aio_run(server_main, &a, sizeof a, NULL));
}

static void
test_python_server(void **state)
{
    (void)state;
    require_python();
    against_server(&python, 1, 0);
    against_server(&python, 0, 0);
}

static void
test_python_client(void **state)
{
    (void)state;
    require_python();
    against_client(&python, 1, 0);
    against_client(&python, 0, 0);
}

static void
test_node_server(void **state)
{
    (void)state;
    require_node();
    against_server(&node, 1, 0);
    against_server(&node, 0, 0);
}

static void
test_node_client(void **state)
{
    (void)state;
    require_node();
    against_client(&node, 1, 0);
    against_client(&node, 0, 0);
}

/* wss://: the same matrix over TLS, with permessage-deflate. */
static void
over_tls(const struct peer *pr, void (*side)(const struct peer *, int, int))
{
    assert_int_equal(tls_certs_make(&certs), 0);
    side(pr, 1, 1);
    tls_certs_remove(&certs);
}

static void
test_python_wss_server(void **state)
{
    (void)state;
    require_python();
    over_tls(&python, against_server);
}

static void
test_python_wss_client(void **state)
{
    (void)state;
    require_python();
    over_tls(&python, against_client);
}

static void
test_node_wss_server(void **state)
{
    (void)state;
    require_node();
    over_tls(&node, against_server);
}

static void
test_node_wss_client(void **state)
{
    (void)state;
    require_node();
    over_tls(&node, against_client);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_python_server),
        conc_unit_test(test_python_client),
        conc_unit_test(test_node_server),
        conc_unit_test(test_node_client),
        conc_unit_test(test_python_wss_server),
        conc_unit_test(test_python_wss_client),
        conc_unit_test(test_node_wss_server),
        conc_unit_test(test_node_wss_client),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
