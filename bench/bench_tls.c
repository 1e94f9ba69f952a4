/* TLS echo of 1 KiB messages over loopback, server and client in one
 * thread; the twin is bench_tls.py (asyncio streams with ssl, and
 * uvloop's).
 *
 * Row (round trips per second):
 *   tls_echo_1   one connection, TLS 1.3 (OpenSSL's default suite)
 *
 * Implementation:
 *   conc   conc_aio_start_server's echo handler and a client task over
 *          streams with an ssl context, one loop
 *
 * The certificates are made at start (tests/support/tls_certs.c) in a
 * temporary directory removed at the end; the handshake is outside the
 * timed part. */
#include "bench_common.h"

#include "conc/aio.h"
#include "conc/aio_stream.h"
#include "conc/tls.h"
#include "tls_certs.h"

#define MSG   1024
#define BOUND 60.0 /* seconds: no wait of a run lasts this long */

static struct tls_certs certs;

static int
echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    while (conc_aio_stream_read(s, 64 * 1024, BOUND, &b) == 0 && b.len)
        if (conc_aio_stream_write(s, b.data, b.len) < 0)
            break;
    conc_buf_free(&b);
    return 0;
}

struct run_arg {
    long n;
    double secs;
};

static conc_aio_server *
start(void)
{
    conc_aio_loop *loop;
    conc_aio_server *srv;
    conc_tls_context *sc;
    conc_tls_opts so = {
        .server = 1, .cert_file = certs.server, .key_file = certs.server_key};
    BENCH_CHECK(conc_tls_context_new(&so, &sc));
    conc_aio_stream_opts o = {.ssl = sc};
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(
        conc_aio_start_server(loop, "127.0.0.1", 0, echo, NULL, &o, &srv));
    conc_tls_context_free(sc);
    return srv;
}

static int
conc_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    conc_aio_server *srv = start();
    conc_tls_context *cc;
    conc_tls_opts co = {.ca_file = certs.ca};
    BENCH_CHECK(conc_tls_context_new(&co, &cc));
    conc_aio_stream_opts o = {.ssl = cc, .server_hostname = "localhost"};
    conc_aio_stream *s;
    BENCH_CHECK(conc_aio_open_connection(
        "127.0.0.1", conc_aio_server_port(srv), &o, BOUND, &s));
    conc_tls_context_free(cc);
    static const uint8_t msg[MSG];
    conc_buf b = CONC_BUF_INIT;
    long long t0 = bench_now_ns();
    for (long i = 0; i < ra->n; i++) {
        BENCH_CHECK(conc_aio_stream_write(s, msg, MSG));
        BENCH_CHECK(conc_aio_stream_readexactly(s, MSG, BOUND, &b));
    }
    ra->secs = bench_seconds_since(t0);
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    BENCH_CHECK(conc_aio_server_close(srv));
    BENCH_CHECK(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
    return 0;
}

static double
conc_run(void *ctx, long n, long *ops)
{
    (void)ctx;
    struct run_arg ra = {n > 0 ? n : 1, 0};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run(conc_main, &p, sizeof p, NULL));
    *ops = ra.n;
    return ra.secs;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    BENCH_ASSERT(tls_certs_make(&certs) == 0);
    bench_impl e1[] = {{"conc", conc_run, NULL}};
    bench_row(&o, "tls_echo_1", e1, 1, 1, 100);
    tls_certs_remove(&certs);
    return 0;
}
