/* TLS (tls.h) and streams over it (aio_stream.h's ssl options): two
 * sessions talking through buffers; conc's client and server over
 * loopback with SNI, ALPN, half-close and start_tls; CPython's asyncio
 * with ssl as the client and the server; and the failures, each with its
 * error and nothing leaked: wrong host name, untrusted CA, expired
 * certificate, a plain client, a peer that closes mid-handshake, a peer
 * that never answers. The certificates are made by the test (support/
 * tls_certs.c) in a temporary directory removed at the end. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc_test.h"
#include "tls_certs.h"

#ifndef CONC_PEERS_DIR
#error "CONC_PEERS_DIR must name tests/peers"
#endif
#define PYTHON    "/usr/bin/python3"
#define PEER      CONC_PEERS_DIR "/tls_peer.py"
#define PEER_WAIT 30.0 /* seconds: bound on any wait for the peer */

#define BOUND    5.0 /* seconds: a wait that must end well before this */
#define SHORT    0.2 /* seconds: a timeout meant to run out */
#define BLOB     (256 * 1024)
#define PIECE    4096 /* bytes moved between sessions per step */
#define RCHUNK   (64 * 1024)
#define ROUNDS   20   /* rounds of connections for the memory check */
#define PER      25   /* connections per round */
#define WARM     12   /* rounds for the allocator to settle */
#define RSS_GROW 2048 /* KiB the later rounds may add at most */
#define CONN_KIB 512  /* KiB an open connection may cost at most */

#define MAIN(name)                                                             \
    static int name(const void *arg, size_t len, conc_buf *result)
#define UNUSED_ARGS (void)arg, (void)len, (void)result

static struct tls_certs certs;

static conc_tls_context *
server_ctx(const char *cert, const char *key, const char *alpn)
{
    conc_tls_context *c;
    conc_tls_opts o = {
        .server = 1, .cert_file = cert, .key_file = key, .alpn = alpn};
    assert_conc_ok(conc_tls_context_new(&o, &c));
    return c;
}

static conc_tls_context *
client_ctx(const char *ca, const char *alpn)
{
    conc_tls_context *c;
    conc_tls_opts o = {.ca_file = ca, .alpn = alpn};
    assert_conc_ok(conc_tls_context_new(&o, &c));
    return c;
}

static void
assert_buf(const conc_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void
assert_message(const char *part)
{
    const char *m = conc_failure_message();
    if (!strstr(m, part))
        fail_msg("message \"%s\" lacks \"%s\"", m, part);
}

/* ---- Sessions through buffers ------------------------------------------ */

/* Moves up to PIECE bytes of ciphertext from a to b; the count. */
static size_t
move(conc_tls_session *a, conc_tls_session *b)
{
    uint8_t buf[PIECE];
    size_t n = 0, taken = 0, pending;
    assert_conc_ok(conc_tls_session_pending(a, &pending));
    assert_conc_ok(conc_tls_session_take(a, buf, sizeof buf, &n));
    assert_int_equal(n, pending < sizeof buf ? pending : sizeof buf);
    size_t at = 0;
    while (at < n) {
        assert_conc_ok(conc_tls_session_feed(b, buf + at, n - at, &taken));
        assert_true(taken > 0);
        at += taken;
    }
    return n;
}

static void
pump_handshake(conc_tls_session *c, conc_tls_session *s)
{
    int rc = CONC_EAGAIN, rs = CONC_EAGAIN;
    for (int i = 0; i < 100 && (rc || rs); i++) {
        rc = conc_tls_session_handshake(c);
        move(c, s);
        rs = conc_tls_session_handshake(s);
        move(s, c);
        assert_true(rc == 0 || rc == CONC_EAGAIN);
        assert_true(rs == 0 || rs == CONC_EAGAIN);
    }
    assert_conc_ok(rc);
    assert_conc_ok(rs);
}

/* Sends n bytes from a to b through the buffers; checks they arrive. */
static void
transfer(conc_tls_session *a, conc_tls_session *b, const uint8_t *data,
         size_t n)
{
    uint8_t *got = malloc(n);
    assert_non_null(got);
    size_t sent = 0, recvd = 0;
    while (recvd < n) {
        size_t k = 0;
        if (sent < n) {
            int r = conc_tls_session_write(a, data + sent, n - sent, &k);
            assert_true(r == 0 || r == CONC_EAGAIN);
            sent += k;
        }
        move(a, b);
        int r = conc_tls_session_read(b, got + recvd, n - recvd, &k);
        assert_true(r == 0 || r == CONC_EAGAIN);
        if (r == 0)
            assert_true(k > 0);
        recvd += r == 0 ? k : 0;
    }
    assert_memory_equal(got, data, n);
    free(got);
}

static void
test_sessions(void **state)
{
    (void)state;
    conc_tls_context *sc =
        server_ctx(certs.server, certs.server_key, "h2,http/1.1");
    conc_tls_context *cc = client_ctx(certs.ca, "http/1.1,h2");
    conc_tls_session *c, *s;
    assert_conc_ok(conc_tls_session_new(cc, "localhost", &c));
    assert_conc_ok(conc_tls_session_new(sc, NULL, &s));
    /* The sessions keep the contexts. */
    conc_tls_context_free(sc);
    conc_tls_context_free(cc);
    assert_int_equal(conc_tls_session_is_ready(c), 0);
    uint8_t x[1];
    size_t n;
    assert_conc(conc_tls_session_read(s, x, 1, &n), CONC_EAGAIN);
    pump_handshake(c, s);
    assert_int_equal(conc_tls_session_is_ready(c), 1);

    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_tls_session_alpn(c, &b));
    assert_buf(&b, "h2"); /* the server's preference */
    assert_conc_ok(conc_tls_session_peer_subject(c, &b));
    assert_buf(&b, "CN=localhost,O=conc");
    assert_conc_ok(conc_tls_session_peer_subject(s, &b));
    assert_int_equal(b.len, 0); /* the client sent no certificate */
    assert_conc_ok(conc_tls_session_server_name(s, &b));
    assert_buf(&b, "localhost");
    int v;
    assert_conc_ok(conc_tls_session_version(c, &v));
    assert_int_equal(v, CONC_TLS_1_3);

    uint8_t *blob = malloc(BLOB);
    assert_non_null(blob);
    for (size_t i = 0; i < BLOB; i++)
        blob[i] = (uint8_t)(i * 7);
    transfer(c, s, blob, BLOB);
    transfer(s, c, blob, BLOB);
    free(blob);

    /* close_notify: the peer reads the end, and can still answer. */
    assert_conc_ok(conc_tls_session_close(c));
    assert_conc_ok(conc_tls_session_close(c));
    assert_conc(conc_tls_session_write(c, "x", 1, &n), CONC_ECLOSED);
    move(c, s);
    n = 1;
    assert_conc_ok(conc_tls_session_read(s, x, 1, &n));
    assert_int_equal(n, 0);
    transfer(s, c, (const uint8_t *)"bye", 3);
    conc_tls_session_free(c);
    conc_tls_session_free(s);
    conc_buf_free(&b);
}

/* A session fed garbage, or a peer's end mid-handshake, fails with
 * CONC_ETLS and a message. */
static void
test_session_failures(void **state)
{
    (void)state;
    conc_tls_context *sc = server_ctx(certs.server, certs.server_key, NULL);
    conc_tls_session *s;
    assert_conc_ok(conc_tls_session_new(sc, NULL, &s));
    size_t n;
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_conc_ok(conc_tls_session_feed(s, junk, sizeof junk - 1, &n));
    assert_int_equal(n, sizeof junk - 1);
    assert_conc(conc_tls_session_handshake(s), CONC_ETLS);
    conc_tls_session_free(s);

    conc_tls_context *cc = client_ctx(certs.ca, NULL);
    conc_tls_session *c;
    assert_conc_ok(conc_tls_session_new(sc, NULL, &s));
    assert_conc_ok(conc_tls_session_new(cc, "localhost", &c));
    assert_conc(conc_tls_session_handshake(c), CONC_EAGAIN);
    move(c, s);
    assert_conc_ok(conc_tls_session_feed_eof(c));
    assert_conc(conc_tls_session_feed(c, "x", 1, &n), CONC_ECLOSED);
    assert_conc(conc_tls_session_handshake(c), CONC_ETLS);
    assert_message("closed");
    conc_tls_session_free(c);
    conc_tls_session_free(s);

    /* ALPN lists that share nothing: no protocol, and no failure. */
    conc_tls_context *c2 = client_ctx(certs.ca, "h2");
    conc_tls_context *s2 =
        server_ctx(certs.server, certs.server_key, "http/1.1");
    assert_conc_ok(conc_tls_session_new(c2, "localhost", &c));
    assert_conc_ok(conc_tls_session_new(s2, NULL, &s));
    pump_handshake(c, s);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_tls_session_alpn(c, &b));
    assert_int_equal(b.len, 0);
    conc_buf_free(&b);
    conc_tls_session_free(c);
    conc_tls_session_free(s);
    conc_tls_context_free(c2);
    conc_tls_context_free(s2);

    /* Verifying without a name to check is refused, as in Python. */
    assert_conc(conc_tls_session_new(cc, NULL, &c), CONC_EINVAL);
    conc_tls_context_free(cc);
    conc_tls_context_free(sc);
}

static void
test_context_errors(void **state)
{
    (void)state;
    conc_tls_context *c;
    conc_tls_opts o = {.server = 1, .cert_file = "/nonexistent.pem"};
    assert_conc(conc_tls_context_new(&o, &c), CONC_ETLS);
    assert_message("/nonexistent.pem");
    o = (conc_tls_opts){
        .server = 1, .cert_file = certs.server, .key_file = certs.expired_key};
    assert_conc(conc_tls_context_new(&o, &c), CONC_ETLS);
    assert_message(certs.expired_key);
    o = (conc_tls_opts){.ca_file = "/nonexistent.pem"};
    assert_conc(conc_tls_context_new(&o, &c), CONC_ETLS);
    o = (conc_tls_opts){.alpn = "h2,,x"};
    assert_conc(conc_tls_context_new(&o, &c), CONC_EINVAL);
    o = (conc_tls_opts){.min_version = 0x0301};
    assert_conc(conc_tls_context_new(&o, &c), CONC_EINVAL);
    o = (conc_tls_opts){.verify = 7};
    assert_conc(conc_tls_context_new(&o, &c), CONC_EINVAL);
    /* Python's default client context: the system's CA store. */
    assert_conc_ok(conc_tls_context_new(NULL, &c));
    conc_tls_context_free(c);
    conc_tls_context_free(NULL);
    conc_tls_session_free(NULL);
}

/* ---- Streams: conc's client and server ---------------------------------- */

static void
run(conc_task_fn main)
{
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
}

/* What the server's handlers saw. */
struct seen {
    int handled; /* handlers that ran */
    int rc;      /* the last handler's result */
    conc_buf sni, alpn;
    conc_aio_event *done;
};

static int
echo(conc_aio_stream *s)
{
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_aio_stream_read(s, RCHUNK, BOUND, &b)) == 0 && b.len) {
        if ((r = conc_aio_stream_write(s, b.data, b.len)) < 0 ||
            (r = conc_aio_stream_drain(s, BOUND)) < 0)
            break;
    }
    conc_buf_free(&b);
    return r;
}

static int
tls_echo(void *arg, conc_aio_stream *s)
{
    struct seen *sv = arg;
    conc_tls_session *t;
    sv->handled++;
    sv->rc = conc_aio_stream_ssl_object(s, &t);
    if (sv->rc == 0)
        sv->rc = conc_tls_session_server_name(t, &sv->sni);
    if (sv->rc == 0)
        sv->rc = conc_tls_session_alpn(t, &sv->alpn);
    if (sv->rc == 0)
        sv->rc = echo(s);
    if (sv->done)
        conc_aio_event_set(sv->done);
    return sv->rc;
}

static conc_aio_server *
tls_server(conc_aio_stream_handler fn, void *arg, const char *cert,
           const char *key, double handshake_timeout)
{
    conc_aio_loop *loop;
    conc_aio_server *srv;
    conc_tls_context *sc = server_ctx(cert, key, "h2,http/1.1");
    conc_aio_stream_opts o = {.ssl = sc,
                              .ssl_handshake_timeout = handshake_timeout};
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(
        conc_aio_start_server(loop, "127.0.0.1", 0, fn, arg, &o, &srv));
    conc_tls_context_free(sc); /* the server keeps its own reference */
    return srv;
}

static void
stop_server(conc_aio_server *srv)
{
    assert_conc_ok(conc_aio_server_close(srv));
    assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
}

static void
close_stream(conc_aio_stream *s)
{
    assert_conc_ok(conc_aio_stream_close(s));
    assert_conc_ok(conc_aio_stream_wait_closed(s, BOUND));
    conc_aio_stream_free(s);
}

/* Connects with the trusted CA; server_hostname NULL checks the IP. */
static int
tls_connect(int port, const char *name, const char *ca, double hs_timeout,
            conc_aio_stream **s)
{
    conc_tls_context *cc = client_ctx(ca, "http/1.1");
    conc_aio_stream_opts o = {.ssl = cc,
                              .server_hostname = name,
                              .ssl_handshake_timeout = hs_timeout};
    int r = conc_aio_open_connection("127.0.0.1", port, &o, BOUND, s);
    conc_tls_context_free(cc);
    return r;
}

/* Lines, a blob, half-close (close_notify) and the server's end. */
static void
talk(conc_aio_stream *s)
{
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_write(s, "hello\n", 6));
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "hello\n");
    uint8_t *blob = malloc(BLOB);
    assert_non_null(blob);
    for (size_t i = 0; i < BLOB; i++)
        blob[i] = (uint8_t)(i * 13);
    assert_conc_ok(conc_aio_stream_write(s, blob, BLOB));
    assert_conc_ok(conc_aio_stream_readexactly(s, BLOB, BOUND, &b));
    assert_memory_equal(b.data, blob, BLOB);
    free(blob);
    assert_conc_ok(conc_aio_stream_write_eof(s));
    assert_conc_ok(conc_aio_stream_read(s, CONC_AIO_READ_ALL, BOUND, &b));
    assert_int_equal(b.len, 0);
    assert_int_equal(conc_aio_stream_at_eof(s), 1);
    conc_buf_free(&b);
}

MAIN(echo_main)
{
    UNUSED_ARGS;
    struct seen sv = {0};
    conc_aio_server *srv =
        tls_server(tls_echo, &sv, certs.server, certs.server_key, 0);
    int port = conc_aio_server_port(srv);
    conc_aio_stream *s;
    assert_conc_ok(tls_connect(port, "localhost", certs.ca, 0, &s));
    conc_tls_session *t;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_ssl_object(s, &t));
    assert_conc_ok(conc_tls_session_alpn(t, &b));
    assert_buf(&b, "http/1.1");
    assert_conc_ok(conc_tls_session_peer_subject(t, &b));
    assert_buf(&b, "CN=localhost,O=conc");
    talk(s);
    close_stream(s);
    assert_int_equal(sv.handled, 1);
    assert_conc_ok(sv.rc);
    assert_buf(&sv.sni, "localhost");
    assert_buf(&sv.alpn, "http/1.1");

    /* By address: the certificate's IP is checked, and no SNI is sent. */
    assert_conc_ok(tls_connect(port, NULL, certs.ca, 0, &s));
    talk(s);
    close_stream(s);
    stop_server(srv);
    assert_int_equal(sv.handled, 2);
    assert_int_equal(sv.sni.len, 0);
    conc_buf_free(&sv.sni);
    conc_buf_free(&sv.alpn);
    conc_buf_free(&b);
    return 0;
}

static void
test_stream_echo(void **state)
{
    (void)state;
    run(echo_main);
}

/* A plain stream is not TLS. */
MAIN(plain_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s;
    conc_tls_session *t;
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &s));
    assert_conc(conc_aio_stream_ssl_object(s, &t), CONC_ESTATE);
    /* A peer that closes at once: start_tls fails, and says so. */
    close(sv[1]);
    conc_tls_context *cc = client_ctx(certs.ca, NULL);
    assert_conc(conc_aio_stream_start_tls(s, cc, "localhost", BOUND),
                CONC_ETLS);
    assert_message("closed");
    assert_conc(conc_aio_stream_start_tls(s, cc, "localhost", BOUND),
                CONC_ESTATE);
    conc_tls_context_free(cc);
    close_stream(s);
    return 0;
}

static void
test_plain_stream(void **state)
{
    (void)state;
    run(plain_main);
}

/* ---- Failures ------------------------------------------------------------ */

/* A handshake the client refuses: CONC_ETLS, the reason in the message,
 * and no handler runs on the server. */
static void
refused(const char *cert, const char *key, const char *name, const char *ca,
        const char *why)
{
    struct seen sv = {0};
    conc_aio_server *srv = tls_server(tls_echo, &sv, cert, key, 0);
    conc_aio_stream *s = NULL;
    assert_conc(tls_connect(conc_aio_server_port(srv), name, ca, 0, &s),
                CONC_ETLS);
    assert_message(why);
    assert_null(s);
    stop_server(srv);
    assert_int_equal(sv.handled, 0);
}

/* Reads from the peer until its end, then returns: a server that takes a
 * ClientHello and closes (close_after_read) or never answers. */
static int
mute(void *arg, conc_aio_stream *s)
{
    int *close_after_read = arg;
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_aio_stream_read(s, RCHUNK, BOUND, &b)) == 0 && b.len &&
           !*close_after_read)
        ;
    conc_buf_free(&b);
    return r;
}

static conc_aio_server *
plain_server(conc_aio_stream_handler fn, void *arg)
{
    conc_aio_loop *loop;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(
        conc_aio_start_server(loop, "127.0.0.1", 0, fn, arg, NULL, &srv));
    return srv;
}

MAIN(failures_main)
{
    UNUSED_ARGS;
    refused(certs.server, certs.server_key, "wrong.example", certs.ca,
            "hostname mismatch");
    refused(certs.untrusted, certs.untrusted_key, "localhost", certs.ca,
            "unable to get local issuer certificate");
    refused(certs.expired, certs.expired_key, "localhost", certs.ca,
            "certificate has expired");
    /* The system's store does not know the test's CA. */
    refused(certs.server, certs.server_key, "localhost", NULL,
            "certificate verify failed");

    /* A peer that closes mid-handshake. */
    int close_after_read = 1;
    conc_aio_server *srv = plain_server(mute, &close_after_read);
    conc_aio_stream *s = NULL;
    assert_conc(
        tls_connect(conc_aio_server_port(srv), "localhost", certs.ca, 0, &s),
        CONC_ETLS);
    assert_message("closed the connection during the handshake");
    stop_server(srv);

    /* A peer that never answers: the handshake's own timeout. */
    close_after_read = 0;
    srv = plain_server(mute, &close_after_read);
    int64_t t0 = conc_monotonic_ns();
    assert_conc(tls_connect(conc_aio_server_port(srv), "localhost", certs.ca,
                            SHORT, &s),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic_ns() - t0 >= (int64_t)(SHORT * 1e9));
    stop_server(srv);
    return 0;
}

static void
test_failures(void **state)
{
    (void)state;
    run(failures_main);
}

/* A plain client of a TLS server, and one that says nothing: the server
 * drops both (the second at its handshake timeout); no handler runs. */
MAIN(plain_client_main)
{
    UNUSED_ARGS;
    struct seen sv = {0};
    conc_aio_server *srv =
        tls_server(tls_echo, &sv, certs.server, certs.server_key, SHORT);
    int port = conc_aio_server_port(srv);
    conc_aio_stream *s;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(
        conc_aio_open_connection("127.0.0.1", port, NULL, BOUND, &s));
    assert_conc_ok(conc_aio_stream_write(s, "GET / HTTP/1.0\r\n\r\n", 18));
    /* An alert, perhaps, then the end (or a reset). */
    int r = conc_aio_stream_read(s, CONC_AIO_READ_ALL, BOUND, &b);
    assert_true(r == 0 || r == -ECONNRESET);
    close_stream(s);

    assert_conc_ok(
        conc_aio_open_connection("127.0.0.1", port, NULL, BOUND, &s));
    int64_t t0 = conc_monotonic_ns();
    assert_conc_ok(conc_aio_stream_read(s, CONC_AIO_READ_ALL, BOUND, &b));
    assert_int_equal(b.len, 0);
    assert_true(conc_monotonic_ns() - t0 >= (int64_t)(SHORT * 1e9 / 2));
    close_stream(s);
    stop_server(srv);
    assert_int_equal(sv.handled, 0);
    conc_buf_free(&b);
    return 0;
}

static void
test_plain_client(void **state)
{
    (void)state;
    run(plain_client_main);
}

/* A handshake whose task is cancelled: CONC_ECANCELED, nothing left open. */
struct heard {
    conc_aio_event *hello; /* the server got the ClientHello */
};

static int
hear_and_hold(void *arg, conc_aio_stream *s)
{
    struct heard *h = arg;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_stream_read(s, RCHUNK, BOUND, &b);
    conc_aio_event_set(h->hello);
    while (r == 0 && b.len)
        r = conc_aio_stream_read(s, RCHUNK, BOUND, &b);
    conc_buf_free(&b);
    return 0;
}

static int
connect_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s = NULL;
    int r = tls_connect(*(const int *)arg, "localhost", certs.ca, 0, &s);
    assert_null(s);
    return r;
}

MAIN(cancel_main)
{
    UNUSED_ARGS;
    struct heard h;
    assert_conc_ok(conc_aio_event_new(&h.hello));
    conc_aio_server *srv = plain_server(hear_and_hold, &h);
    int port = conc_aio_server_port(srv);
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(connect_task, &port, sizeof port, NULL, &f));
    assert_conc_ok(conc_aio_event_wait(h.hello, BOUND));
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    stop_server(srv);
    conc_aio_event_free(h.hello);
    return 0;
}

static void
test_cancel_handshake(void **state)
{
    (void)state;
    run(cancel_main);
}

/* ---- start_tls -------------------------------------------------------- */

/* STARTTLS as SMTP does it, except that the client does not wait for an
 * answer: its ClientHello may come in the same read as the command, and
 * the server's start_tls must take it from the read buffer. */
static int
starttls_server(void *arg, conc_aio_stream *s)
{
    struct seen *sv = arg;
    conc_buf b = CONC_BUF_INIT;
    conc_tls_context *sc = server_ctx(certs.server, certs.server_key, NULL);
    sv->handled++;
    sv->rc = conc_aio_stream_readline(s, BOUND, &b);
    if (sv->rc == 0 && (b.len != 9 || memcmp(b.data, "STARTTLS\n", 9)))
        sv->rc = CONC_EVALUE;
    if (sv->rc == 0)
        sv->rc = conc_aio_stream_start_tls(s, sc, NULL, BOUND);
    conc_tls_context_free(sc);
    if (sv->rc == 0)
        sv->rc = echo(s);
    conc_buf_free(&b);
    return sv->rc;
}

MAIN(starttls_main)
{
    UNUSED_ARGS;
    struct seen sv = {0};
    conc_aio_server *srv = plain_server(starttls_server, &sv);
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_open_connection(
        "127.0.0.1", conc_aio_server_port(srv), NULL, BOUND, &s));
    assert_conc_ok(conc_aio_stream_write(s, "STARTTLS\n", 9));
    conc_tls_context *cc = client_ctx(certs.ca, NULL);
    assert_conc_ok(conc_aio_stream_start_tls(s, cc, "localhost", BOUND));
    conc_tls_context_free(cc);
    conc_tls_session *t;
    assert_conc_ok(conc_aio_stream_ssl_object(s, &t));
    talk(s);
    close_stream(s);
    stop_server(srv);
    assert_int_equal(sv.handled, 1);
    assert_conc_ok(sv.rc);
    return 0;
}

static void
test_start_tls(void **state)
{
    (void)state;
    run(starttls_main);
}

/* ---- Backpressure and client certificates -------------------------------- */

struct held {
    conc_aio_event *go; /* the handler reads once this is set */
    size_t total;       /* bytes it read before the end */
    int rc;
};

static int
held_reader(void *arg, conc_aio_stream *s)
{
    struct held *h = arg;
    conc_buf b = CONC_BUF_INIT;
    h->rc = conc_aio_event_wait(h->go, BOUND);
    while (h->rc == 0 &&
           (h->rc = conc_aio_stream_read(s, RCHUNK, BOUND, &b)) == 0 && b.len)
        h->total += b.len;
    conc_buf_free(&b);
    return h->rc;
}

/* A peer that stops reading: write says CONC_EFULL, drain times out, and
 * the buffer stays within the write limit; once the peer reads, every
 * byte arrives. */
MAIN(backpressure_main)
{
    UNUSED_ARGS;
    struct held h = {0};
    assert_conc_ok(conc_aio_event_new(&h.go));
    conc_aio_server *srv =
        tls_server(held_reader, &h, certs.server, certs.server_key, 0);
    conc_aio_stream *s;
    assert_conc_ok(
        tls_connect(conc_aio_server_port(srv), "localhost", certs.ca, 0, &s));
    static uint8_t chunk[RCHUNK];
    size_t sent = 0, rd, wr;
    int r;
    while ((r = conc_aio_stream_write(s, chunk, sizeof chunk)) == 0)
        sent += sizeof chunk;
    assert_conc(r, CONC_EFULL);
    assert_conc_ok(conc_aio_stream_buffered(s, &rd, &wr));
    assert_true(wr <= 4 * 64 * 1024);
    assert_conc(conc_aio_stream_drain(s, SHORT), CONC_ETIMEDOUT);
    assert_conc_ok(conc_aio_event_set(h.go));
    assert_conc_ok(conc_aio_stream_drain(s, BOUND));
    assert_conc_ok(conc_aio_stream_write_eof(s));
    close_stream(s);
    stop_server(srv);
    assert_conc_ok(h.rc);
    assert_int_equal(h.total, sent);
    conc_aio_event_free(h.go);
    return 0;
}

static void
test_backpressure(void **state)
{
    (void)state;
    run(backpressure_main);
}

/* A server that requires client certificates (CERT_REQUIRED): a client
 * with one is seen by its subject; one without is refused, and learns it
 * on its first read (TLS 1.3 checks the client after the client is done). */
MAIN(client_cert_main)
{
    UNUSED_ARGS;
    conc_aio_loop *loop;
    conc_aio_server *srv;
    conc_tls_context *sc, *cc;
    struct seen sv = {0};
    conc_tls_opts so = {.server = 1,
                        .verify = CONC_TLS_VERIFY_REQUIRED,
                        .ca_file = certs.ca,
                        .cert_file = certs.server,
                        .key_file = certs.server_key};
    assert_conc_ok(conc_tls_context_new(&so, &sc));
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_aio_start_server(loop, "127.0.0.1", 0, tls_echo, &sv,
                                         &(conc_aio_stream_opts){.ssl = sc},
                                         &srv));
    conc_tls_context_free(sc);
    conc_tls_opts co = {.ca_file = certs.ca,
                        .cert_file = certs.client,
                        .key_file = certs.client_key};
    assert_conc_ok(conc_tls_context_new(&co, &cc));
    conc_aio_stream_opts o = {.ssl = cc, .server_hostname = "localhost"};
    conc_aio_stream *s;
    int port = conc_aio_server_port(srv);
    assert_conc_ok(conc_aio_open_connection("127.0.0.1", port, &o, BOUND, &s));
    conc_tls_context_free(cc);
    talk(s);
    close_stream(s);
    assert_int_equal(sv.handled, 1);

    assert_conc_ok(tls_connect(port, "localhost", certs.ca, 0, &s));
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_stream_read(s, RCHUNK, BOUND, &b), CONC_ETLS);
    assert_message("certificate required");
    assert_conc(conc_aio_stream_write(s, "x", 1), CONC_ETLS);
    close_stream(s);
    stop_server(srv);
    assert_int_equal(sv.handled, 1);
    conc_buf_free(&sv.sni);
    conc_buf_free(&sv.alpn);
    return 0;
}

static void
test_client_cert(void **state)
{
    (void)state;
    run(client_cert_main);
}

/* ---- CPython's asyncio with ssl as the peer ------------------------------ */

static conc_popen *
peer_start(const char *mode, const char *a, const char *b)
{
    char *argv[] = {PYTHON, PEER, (char *)mode, (char *)a, (char *)b, NULL};
    return conc_test_peer_start(argv);
}

/* conc's client against asyncio's TLS echo server. */
static int
client_of_python(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s;
    assert_conc_ok(
        tls_connect(*(const int *)arg, "localhost", certs.ca, PEER_WAIT, &s));
    conc_tls_session *t;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_ssl_object(s, &t));
    assert_conc_ok(conc_tls_session_alpn(t, &b));
    assert_buf(&b, "http/1.1");
    conc_buf_free(&b);
    talk(s);
    close_stream(s);
    return 0;
}

/* asyncio's TLS client against conc's TLS echo server. */
static int
server_for_python(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_popen **pp = *(conc_popen * *const *)arg;
    struct seen sv = {0};
    assert_conc_ok(conc_aio_event_new(&sv.done));
    conc_aio_server *srv =
        tls_server(tls_echo, &sv, certs.server, certs.server_key, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", conc_aio_server_port(srv));
    *pp = peer_start("client", port, certs.ca);
    assert_conc_ok(conc_aio_event_wait(sv.done, PEER_WAIT));
    assert_conc_ok(sv.rc);
    stop_server(srv);
    assert_buf(&sv.sni, "localhost");
    assert_buf(&sv.alpn, "h2");
    conc_buf_free(&sv.sni);
    conc_buf_free(&sv.alpn);
    conc_aio_event_free(sv.done);
    return 0;
}

static void
test_python_peer(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0)
        skip();
    conc_popen *p = peer_start("server", certs.server, certs.server_key);
    int port = conc_test_peer_port(p, PEER_WAIT, NULL);
    assert_conc_ok(conc_aio_run(client_of_python, &port, sizeof port, NULL));
    conc_test_peer_finish_has(p, PEER_WAIT, "done");

    conc_popen **pp = &p;
    p = NULL;
    assert_conc_ok(conc_aio_run(server_for_python, &pp, sizeof pp, NULL));
    assert_non_null(p);
    conc_test_peer_finish_has(p, PEER_WAIT, "ok");
}

/* ---- Memory per connection ------------------------------------------------
 */

/* The resident set in KiB. */
static long
rss_kib(void)
{
    long size = 0, pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &size, &pages), 2);
    fclose(f);
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Opens PER connections, echoes a message on each, and closes them. Returns
 * the RSS growth while they were open, in KiB. */
static long
round_of_connections(int port)
{
    conc_aio_stream *ss[PER];
    conc_buf b = CONC_BUF_INIT;
    long before = rss_kib();
    for (int i = 0; i < PER; i++) {
        assert_conc_ok(tls_connect(port, "localhost", certs.ca, 0, &ss[i]));
        assert_conc_ok(conc_aio_stream_write(ss[i], "ping\n", 5));
    }
    for (int i = 0; i < PER; i++) {
        assert_conc_ok(conc_aio_stream_readline(ss[i], BOUND, &b));
        assert_buf(&b, "ping\n");
    }
    long open = rss_kib() - before;
    for (int i = 0; i < PER; i++)
        close_stream(ss[i]);
    conc_buf_free(&b);
    return open;
}

/* Rounds of connections: once the allocator has warmed up, the resident
 * set stays flat (asyncio and uvloop grew here), and each open
 * connection (both ends, in this one process) costs a bounded amount. */
MAIN(memory_main)
{
    UNUSED_ARGS;
    struct seen sv = {0};
    conc_aio_server *srv =
        tls_server(tls_echo, &sv, certs.server, certs.server_key, 0);
    int port = conc_aio_server_port(srv);
    long base = 0, open = round_of_connections(port);
    for (int r = 1; r < ROUNDS; r++) {
        round_of_connections(port);
        if (r == WARM)
            base = rss_kib();
    }
    long grown = rss_kib() - base;
    printf("# TLS: the first %d connections took %ld KiB each (both ends, "
           "first use included); RSS then grew %ld KiB over %d rounds\n",
           PER, open / PER, grown, ROUNDS - 1 - WARM);
    assert_true(grown < RSS_GROW);
    assert_true(open / PER < CONN_KIB);
    stop_server(srv);
    conc_buf_free(&sv.sni);
    conc_buf_free(&sv.alpn);
    return 0;
}

static void
test_memory_bounded(void **state)
{
    (void)state;
#ifdef CONC_SANITIZER
    skip(); /* the sanitizers' allocators keep freed memory on purpose */
#endif
    run(memory_main);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (tls_certs_make(&certs) < 0) {
        fprintf(stderr, "cannot make the test certificates\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_sessions),
        conc_unit_test(test_session_failures),
        conc_unit_test(test_context_errors),
        conc_unit_test(test_stream_echo),
        conc_unit_test(test_plain_stream),
        conc_unit_test(test_failures),
        conc_unit_test(test_plain_client),
        conc_unit_test(test_start_tls),
        conc_unit_test(test_cancel_handshake),
        conc_unit_test(test_backpressure),
        conc_unit_test(test_client_cert),
        conc_unit_test(test_python_peer),
        conc_unit_test(test_memory_bounded),
    };
    warm_up_threads();
    int r = conc_run_tests(tests);
    tls_certs_remove(&certs);
    return r;
}
