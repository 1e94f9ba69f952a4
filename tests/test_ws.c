/* WebSocket client and server (ws.h): conc's client against conc's
 * server in one loop. Text, binary, empty and 1 MiB messages, the size
 * limit (1009), fragmented messages and concurrent fragmented senders,
 * messages sent from a producer (and abandoned mid-way: 1011),
 * ping/pong, keepalive against a peer that never answers, close codes
 * both ways, permessage-deflate on and off, backpressure against a peer
 * that stops reading, broadcast with a slow peer, a peer that vanishes,
 * the process_request hook, Unix sockets, and wss:// over the streams'
 * TLS.
 *
 * Every wait a test expects to end has a bounded timeout; the leak guard
 * checks that nothing is left open or allocated. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"
#include "tls_certs.h"
#include "ws/io.h"
#include "ws/proto.h"

#define BOUND  5.0 /* seconds: a wait that must end well before this */
#define SHORT  0.2 /* seconds: a timeout meant to run out */
#define MIB    ((size_t)1 << 20)
#define NSEND  4    /* concurrent senders */
#define NPARTS 8    /* fragments per message */
#define PART   1000 /* bytes per fragment */
#define CHUNK  (64 * 1024)
#define SPAM   (256 * 1024 * 1024) /* bytes a blocked sender gives up at */
#define NBCAST 400                 /* broadcast messages */
#define BCAST  (16 * 1024)

#define MAIN(name)                                                             \
    static int name(const void *arg, size_t len, conc_buf *result)
#define UNUSED_ARGS (void)arg, (void)len, (void)result

/* What a server handler saw, for the test to check. */
struct seen {
    int recv_end;    /* the code recv ended with */
    unsigned code;   /* the peer's close code */
    conc_buf reason; /* ... and reason */
    int compressed;
    conc_ws *conns[2]; /* held connections (hold handler) */
    size_t nconns;
    conc_aio_event *ready; /* set once `want` connections are held */
    conc_aio_event *done;  /* set by the test to let handlers return */
    conc_aio_event *ended; /* set by the echo handler as it returns */
    size_t want;
    unsigned close_with; /* the echo handler closes with this, if set */
    char message[256];   /* the failure message recv left */
};

static struct seen seen;
static int compress_on = 1; /* the deflate variant of the echo tests */

static void
seen_init(void)
{
    memset(&seen, 0, sizeof seen);
    assert_conc_ok(conc_aio_event_new(&seen.ready));
    assert_conc_ok(conc_aio_event_new(&seen.done));
    assert_conc_ok(conc_aio_event_new(&seen.ended));
}

static void
seen_free(void)
{
    conc_aio_event_free(seen.ready);
    conc_aio_event_free(seen.done);
    conc_aio_event_free(seen.ended);
    conc_buf_free(&seen.reason);
}

/* Echoes until the connection ends, then records how. */
static int
echo(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    int r;
    seen.compressed = conc_ws_compressed(ws);
    while ((r = conc_ws_recv(ws, BOUND, &kind, &m)) == 0) {
        if (m.len == 5 && memcmp(m.data, "close", 5) == 0 && seen.close_with)
            conc_ws_close(ws, seen.close_with, "server says bye");
        else if ((r = conc_ws_send(ws, kind, m.data, m.len, BOUND)) < 0)
            break;
    }
    seen.recv_end = r;
    snprintf(seen.message, sizeof seen.message, "%s", conc_failure_message());
    conc_ws_close_code(ws, &seen.code, &seen.reason);
    conc_buf_free(&m);
    conc_aio_event_set(seen.ended);
    return 0;
}

/* Holds the connection, without reading, until the test is done. */
static int
hold(void *arg, conc_ws *ws)
{
    (void)arg;
    seen.conns[seen.nconns++] = ws;
    if (seen.nconns == seen.want)
        conc_aio_event_set(seen.ready);
    conc_aio_event_wait(seen.done, BOUND * 4);
    return 0;
}

static conc_ws_server *
server(conc_ws_handler fn, const conc_ws_opts *opts, char *url, size_t cap)
{
    conc_aio_loop *loop;
    conc_ws_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_ws_serve(loop, "127.0.0.1", 0, fn, NULL, opts, &srv));
    snprintf(url, cap, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    return srv;
}

/* An echo server, and a connection to it with the options `o` (NULL: the
 * defaults) in *ws. */
static conc_ws_server *
echo_pair(const conc_ws_opts *o, conc_ws **ws)
{
    char url[64];
    conc_ws_server *srv = server(echo, NULL, url, sizeof url);
    assert_conc_ok(conc_ws_connect(url, o, BOUND, ws));
    return srv;
}

static void
server_end(conc_ws_server *srv)
{
    assert_conc_ok(conc_ws_server_close(srv));
    assert_conc_ok(conc_ws_server_wait_closed(srv, BOUND));
    conc_ws_server_free(srv);
}

/* A server with the options `so` whose handler holds its connections
 * without reading (hold), and a connection to it with `co` in *ws, once
 * the handler holds it. */
static conc_ws_server *
held_pair(const conc_ws_opts *so, const conc_ws_opts *co, conc_ws **ws)
{
    char url[64];
    conc_ws_server *srv = server(hold, so, url, sizeof url);
    seen.want = 1;
    assert_conc_ok(conc_ws_connect(url, co, BOUND, ws));
    assert_conc_ok(conc_aio_event_wait(seen.ready, BOUND));
    return srv;
}

/* Lets the holding handler return, frees ws and ends the server. */
static void
held_pair_end(conc_ws_server *srv, conc_ws *ws)
{
    conc_aio_event_set(seen.done);
    conc_ws_free(ws);
    server_end(srv);
}

/* A server of raw streams on a loopback port (for peers that speak
 * WebSocket by hand), its ws:// URL in url, and the running loop in
 * *loop (unless NULL). */
static conc_aio_server *
raw_server(conc_aio_stream_handler fn, char *url, size_t cap,
           conc_aio_loop **loop)
{
    conc_aio_loop *lp;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&lp));
    assert_conc_ok(
        conc_aio_start_server(lp, "127.0.0.1", 0, fn, NULL, NULL, &srv));
    snprintf(url, cap, "ws://127.0.0.1:%d/", conc_aio_server_port(srv));
    if (loop)
        *loop = lp;
    return srv;
}

static void
raw_server_end(conc_aio_server *srv)
{
    conc_aio_server_close(srv);
    assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
}

/* The connection ended with the close code `want`. */
static void
expect_close_code(conc_ws *ws, unsigned want)
{
    unsigned code;
    assert_conc_ok(conc_ws_close_code(ws, &code, NULL));
    assert_int_equal(code, want);
}

/* The next message is `n` bytes `want` of kind `kind` (n may be 0). */
static void
expect(conc_ws *ws, conc_ws_kind kind, const void *want, size_t n)
{
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind got;
    assert_conc_ok(conc_ws_recv(ws, BOUND, &got, &m));
    assert_int_equal(got, kind);
    assert_int_equal(m.len, n);
    assert_memory_equal(m.data, want, n);
    conc_buf_free(&m);
}

static void
round_trip(conc_ws *ws, conc_ws_kind kind, const void *p, size_t n)
{
    assert_conc_ok(conc_ws_send(ws, kind, p, n, BOUND));
    expect(ws, kind, p, n);
}

static void
run(conc_task_fn main)
{
    seen_init();
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
    seen_free();
}

/* ---- Messages ------------------------------------------------------------ */

MAIN(echo_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_opts o = {.no_compression = !compress_on};
    conc_ws_server *srv = server(echo, &o, url, sizeof url);
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    assert_int_equal(conc_ws_compressed(ws), compress_on);
    round_trip(ws, CONC_WS_TEXT, "hello", 5);
    round_trip(ws, CONC_WS_TEXT, "h\xc3\xa9llo", 6);
    round_trip(ws, CONC_WS_BINARY, "\x00\xff\x01", 3);
    round_trip(ws, CONC_WS_TEXT, "", 0);
    round_trip(ws, CONC_WS_BINARY, "", 0);
    uint8_t *big = malloc(MIB);
    assert_non_null(big);
    for (size_t i = 0; i < MIB; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    round_trip(ws, CONC_WS_BINARY, big, MIB);
    free(big);
    assert_int_equal(seen.compressed, compress_on);
    assert_conc(conc_ws_send(ws, CONC_WS_TEXT, "\xff", 1, BOUND), CONC_EVALUE);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc(conc_ws_send(ws, CONC_WS_TEXT, "x", 1, BOUND), CONC_ECLOSED);
    expect_close_code(ws, 1000);
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc(seen.recv_end, CONC_ECLOSED);
    assert_int_equal(seen.code, 1000);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_echo_deflate(void **state)
{
    (void)state;
    compress_on = 1;
    run(echo_main);
}

static void
test_echo_plain(void **state)
{
    (void)state;
    compress_on = 0;
    run(echo_main);
}

/* A message over max_size fails the connection with 1009 on the side
 * that receives it. */
MAIN(too_big_main)
{
    UNUSED_ARGS;
    conc_ws *ws;
    conc_ws_server *srv = echo_pair(&(conc_ws_opts){.max_size = 2 * MIB}, &ws);
    uint8_t *big = calloc(1, MIB + 1);
    assert_non_null(big);
    assert_conc_ok(conc_ws_send(ws, CONC_WS_BINARY, big, MIB + 1, BOUND));
    free(big);
    conc_buf m = CONC_BUF_INIT;
    assert_conc(conc_ws_recv(ws, BOUND, NULL, &m), CONC_ECLOSED);
    expect_close_code(ws, 1009);
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc(seen.recv_end, CONC_EMSGSIZE);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_too_big(void **state)
{
    (void)state;
    run(too_big_main);
}

/* ---- Fragmentation and concurrent senders -------------------------------- */

struct sender {
    conc_ws *ws;
    char fill;
};

static int
send_fragmented(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct sender *s = arg;
    char part[PART];
    conc_ws_part parts[NPARTS];
    memset(part, s->fill, sizeof part);
    for (size_t i = 0; i < NPARTS; i++)
        parts[i] = (conc_ws_part){part, sizeof part};
    return conc_ws_send_parts(s->ws, CONC_WS_TEXT, parts, NPARTS, BOUND);
}

MAIN(fragments_main)
{
    UNUSED_ARGS;
    conc_ws *ws; /* drains between every fragment */
    conc_ws_server *srv = echo_pair(&(conc_ws_opts){.write_limit = 1}, &ws);
    conc_future *f[NSEND];
    for (int i = 0; i < NSEND; i++) {
        struct sender s = {ws, (char)('a' + i)};
        assert_conc_ok(
            conc_aio_create_task(send_fragmented, &s, sizeof s, NULL, &f[i]));
    }
    assert_conc_ok(conc_aio_gather(f, NSEND, 0));
    int got[NSEND] = {0};
    conc_buf m = CONC_BUF_INIT;
    for (int i = 0; i < NSEND; i++) {
        conc_ws_kind kind;
        assert_conc_ok(conc_ws_recv(ws, BOUND, &kind, &m));
        assert_int_equal(kind, CONC_WS_TEXT);
        assert_int_equal(m.len, NPARTS * PART);
        int c = m.data[0] - 'a';
        assert_true(c >= 0 && c < NSEND);
        for (size_t j = 0; j < m.len; j++)
            assert_int_equal(m.data[j], 'a' + c); /* never interleaved */
        got[c]++;
    }
    for (int i = 0; i < NSEND; i++) {
        assert_int_equal(got[i], 1);
        conc_future_free(f[i]);
    }
    conc_buf_free(&m);
    assert_conc(conc_ws_send_parts(ws, CONC_WS_TEXT, NULL, 1, BOUND),
                CONC_EINVAL);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_fragments(void **state)
{
    (void)state;
    run(fragments_main);
}

/* ---- Sending from a producer --------------------------------------------- */

/* A producer's script: parts, the last part, a failure, or a pause (set
 * `waiting`, then wait for `go`). */
enum step_kind { STEP_PART, STEP_LAST, STEP_FAIL, STEP_PAUSE };

struct step {
    enum step_kind what;
    const char *data;
    size_t len;
};

#define STEP(what, s)                                                          \
    {                                                                          \
        STEP_##what, s, sizeof s - 1                                           \
    }

struct script {
    const struct step *steps;
    size_t next;
    conc_aio_event *waiting, *go;
    int calls;
};

static int
scripted(void *arg, conc_buf *part, int *last)
{
    struct script *s = arg;
    const struct step *st = &s->steps[s->next++];
    s->calls++;
    assert_int_equal(part->len, 0);
    assert_int_equal(*last, 0);
    if (st->what == STEP_PAUSE) {
        assert_conc_ok(conc_aio_event_set(s->waiting));
        int r = conc_aio_event_wait(s->go, CONC_FOREVER);
        if (r < 0)
            return r;
        st = &s->steps[s->next++];
    }
    if (st->what == STEP_FAIL)
        return CONC_ENOENT;
    *last = st->what == STEP_LAST;
    return conc_buf_append(part, st->data, st->len);
}

static int
send_script(conc_ws *ws, conc_ws_kind kind, const struct step *steps,
            double timeout)
{
    struct script s = {steps, 0, NULL, NULL, 0};
    return conc_ws_send_stream(ws, kind, scripted, &s, timeout);
}

/* 1 MiB in parts of CHUNK, each counting bytes on from the last. */
static int
counting(void *arg, conc_buf *part, int *last)
{
    size_t *sent = arg;
    for (size_t i = 0; i < CHUNK; i++)
        assert_conc_ok(
            conc_buf_append(part, &(uint8_t){(uint8_t)(*sent + i)}, 1));
    *sent += CHUNK;
    *last = *sent == MIB;
    return 0;
}

static int
never_called(void *arg, conc_buf *part, int *last)
{
    (void)arg, (void)part, (void)last;
    fail_msg("the producer was called");
    return 0;
}

/* Parts arrive as one message: a character split between parts, an end
 * told only after the last part, an empty message, 1 MiB; text that is
 * not UTF-8, and a producer that fails at once, leave the connection as
 * it was. */
MAIN(send_stream_main)
{
    UNUSED_ARGS;
    conc_ws *ws; /* drains between every frame */
    conc_ws_server *srv = echo_pair(&(conc_ws_opts){.write_limit = 1}, &ws);
    static const struct step snowman[] = {
        STEP(PART, "h\xc3"), STEP(PART, "\xa9llo "), STEP(PART, "\xe2\x98"),
        STEP(LAST, "\x83")};
    assert_conc_ok(send_script(ws, CONC_WS_TEXT, snowman, BOUND));
    expect(ws, CONC_WS_TEXT, "h\xc3\xa9llo \xe2\x98\x83", 10);
    static const struct step late_end[] = {STEP(PART, "ab"), STEP(PART, "cd"),
                                           STEP(LAST, "")};
    assert_conc_ok(send_script(ws, CONC_WS_BINARY, late_end, BOUND));
    expect(ws, CONC_WS_BINARY, "abcd", 4);
    static const struct step empty[] = {STEP(LAST, "")};
    assert_conc_ok(send_script(ws, CONC_WS_TEXT, empty, BOUND));
    expect(ws, CONC_WS_TEXT, "", 0);
    size_t sent = 0;
    assert_conc_ok(
        conc_ws_send_stream(ws, CONC_WS_BINARY, counting, &sent, BOUND));
    conc_buf m = CONC_BUF_INIT;
    assert_conc_ok(conc_ws_recv(ws, BOUND, NULL, &m));
    assert_int_equal(m.len, MIB);
    for (size_t i = 0; i < MIB; i++)
        assert_int_equal(m.data[i], (uint8_t)i);
    conc_buf_free(&m);
    static const struct step bad[] = {STEP(LAST, "\xff")};
    static const struct step cut[] = {STEP(LAST, "\xc3")};
    static const struct step fails[] = {STEP(FAIL, "")};
    assert_conc(send_script(ws, CONC_WS_TEXT, bad, BOUND), CONC_EVALUE);
    assert_conc(send_script(ws, CONC_WS_TEXT, cut, BOUND), CONC_EVALUE);
    assert_conc(send_script(ws, CONC_WS_TEXT, fails, BOUND), CONC_ENOENT);
    assert_int_equal(conc_ws_is_open(ws), 1);
    round_trip(ws, CONC_WS_TEXT, "still open", 10);
    assert_conc(conc_ws_send_stream(ws, CONC_WS_TEXT, NULL, NULL, BOUND),
                CONC_EINVAL);
    assert_conc(conc_ws_send_stream(ws, 3, never_called, NULL, BOUND),
                CONC_EINVAL);
    assert_conc(conc_ws_send_stream(ws, CONC_WS_TEXT, never_called, NULL, NAN),
                CONC_EINVAL);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc(
        conc_ws_send_stream(ws, CONC_WS_TEXT, never_called, NULL, BOUND),
        CONC_ECLOSED);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_send_stream(void **state)
{
    (void)state;
    run(send_stream_main);
}

/* The connection's end as the client and the echo handler saw it after
 * a message was abandoned: failed with 1011 by the client, answered with
 * 1011 by the server, whose recv ends. */
static void
expect_failed_1011(conc_ws *ws)
{
    assert_int_equal(conc_ws_is_open(ws), 0);
    assert_conc_ok(conc_ws_wait_closed(ws, BOUND));
    expect_close_code(ws, 1011);
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc_ok(conc_aio_event_clear(seen.ended));
    assert_conc(seen.recv_end, CONC_ECLOSED);
    assert_int_equal(seen.code, 1011);
}

/* A failure after the first frame went out: the producer's error, then
 * text that stops being UTF-8 in a later part. */
MAIN(send_stream_fail_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_server *srv = server(echo, NULL, url, sizeof url);
    conc_ws *ws;
    static const struct step fails[] = {STEP(PART, "part one"), STEP(FAIL, "")};
    static const struct step bad[] = {STEP(PART, "fine"), STEP(LAST, "\xff")};
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    assert_conc(send_script(ws, CONC_WS_TEXT, fails, BOUND), CONC_ENOENT);
    expect_failed_1011(ws);
    assert_conc(conc_ws_send(ws, CONC_WS_TEXT, "x", 1, BOUND), CONC_ECLOSED);
    conc_ws_free(ws);
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    assert_conc(send_script(ws, CONC_WS_TEXT, bad, BOUND), CONC_EVALUE);
    expect_failed_1011(ws);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_send_stream_fail(void **state)
{
    (void)state;
    run(send_stream_fail_main);
}

/* A sender task: sends the script's message and keeps what it returned. */
struct stream_sender {
    conc_ws *ws;
    struct script *script;
    double timeout;
    int *rc;
};

static int
stream_sender(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct stream_sender *s = arg;
    *s->rc = conc_ws_send_stream(s->ws, CONC_WS_TEXT, scripted, s->script,
                                 s->timeout);
    return *s->rc;
}

static void
script_events(struct script *s)
{
    assert_conc_ok(conc_aio_event_new(&s->waiting));
    assert_conc_ok(conc_aio_event_new(&s->go));
}

static void
script_free(struct script *s)
{
    conc_aio_event_free(s->waiting);
    conc_aio_event_free(s->go);
}

static const struct step paused[] = {STEP(PART, "first "), STEP(PAUSE, ""),
                                     STEP(LAST, "second")};

/* An echo server, a connection to it, and a task (f) that sends the
 * paused script over it: started, it waits mid-message. The task's
 * arguments point into this struct, which must stay where it is. */
struct paused_send {
    char url[64];
    conc_ws_server *srv;
    conc_ws *ws;
    struct script s;
    int rc; /* what the task's send returned; 1 until it returns */
    struct stream_sender a;
    conc_future *f;
};

static void
paused_send_start(struct paused_send *p)
{
    p->srv = server(echo, NULL, p->url, sizeof p->url);
    p->s = (struct script){paused, 0, NULL, NULL, 0};
    p->rc = 1;
    script_events(&p->s);
    assert_conc_ok(conc_ws_connect(p->url, NULL, BOUND, &p->ws));
    p->a = (struct stream_sender){p->ws, &p->s, BOUND, &p->rc};
    assert_conc_ok(
        conc_aio_create_task(stream_sender, &p->a, sizeof p->a, NULL, &p->f));
    assert_conc_ok(conc_aio_event_wait(p->s.waiting, BOUND));
}

/* Frees the script's events and ends the server; the test frees the
 * connection and the task. */
static void
paused_send_end(struct paused_send *p)
{
    script_free(&p->s);
    server_end(p->srv);
}

/* A cancel while the producer waits, mid-message, and a timeout there. */
MAIN(send_stream_cancel_main)
{
    UNUSED_ARGS;
    struct paused_send p;
    paused_send_start(&p);
    assert_int_equal(conc_aio_task_cancel(p.f, NULL), 1);
    assert_conc(conc_aio_await(p.f), CONC_ECANCELED);
    conc_future_free(p.f);
    assert_conc(p.rc, CONC_ECANCELED);
    expect_failed_1011(p.ws);
    conc_ws_free(p.ws);
    /* The timeout runs out while the producer waits. */
    p.s.next = 0;
    assert_conc_ok(conc_aio_event_clear(p.s.waiting));
    assert_conc_ok(conc_ws_connect(p.url, NULL, BOUND, &p.ws));
    assert_conc(conc_ws_send_stream(p.ws, CONC_WS_TEXT, scripted, &p.s, SHORT),
                CONC_ETIMEDOUT);
    assert_int_equal(conc_aio_event_is_set(p.s.waiting), 1);
    expect_failed_1011(p.ws);
    conc_ws_free(p.ws);
    paused_send_end(&p);
    return 0;
}

static void
test_send_stream_cancel(void **state)
{
    (void)state;
    run(send_stream_cancel_main);
}

struct plain_sender {
    conc_ws *ws;
    const char *text;
};

static int
plain_sender(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct plain_sender *s = arg;
    return conc_ws_send(s->ws, CONC_WS_TEXT, s->text, strlen(s->text), BOUND);
}

/* While a producer waits mid-message, other senders wait for the whole
 * message (one with a short timeout gives up having sent nothing) and
 * broadcast skips the connection; then the messages come out whole, in
 * order. */
MAIN(send_stream_waits_main)
{
    UNUSED_ARGS;
    struct paused_send p;
    paused_send_start(&p);
    conc_ws *ws = p.ws;
    struct plain_sender b = {ws, "other"};
    conc_future *f[2] = {p.f, NULL};
    assert_conc_ok(
        conc_aio_create_task(plain_sender, &b, sizeof b, NULL, &f[1]));
    /* the other task runs meanwhile and waits too */
    assert_conc(conc_ws_send(ws, CONC_WS_TEXT, "late", 4, SHORT),
                CONC_ETIMEDOUT);
    assert_int_equal(conc_future_done(f[1]), 0);
    size_t sent = 1;
    assert_conc_ok(
        conc_ws_broadcast(&ws, 1, CONC_WS_TEXT, "all", 3, 1008, &sent));
    assert_int_equal(sent, 0);
    assert_conc_ok(conc_aio_event_set(p.s.go));
    assert_conc_ok(conc_aio_gather(f, 2, 0));
    assert_conc_ok(p.rc);
    expect(ws, CONC_WS_TEXT, "first second", 12);
    expect(ws, CONC_WS_TEXT, "other", 5);
    assert_int_equal(p.s.calls, 2);
    conc_future_free(f[0]);
    conc_future_free(f[1]);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    paused_send_end(&p);
    return 0;
}

static void
test_send_stream_waits(void **state)
{
    (void)state;
    run(send_stream_waits_main);
}

/* conc_ws_send_parts whose timeout runs out while it drains between
 * frames, to a peer that stopped reading: the message cannot be
 * finished, so the connection is failed (before, it stayed open with
 * the engine in the middle of the message, refusing every later send). */
MAIN(parts_unfinished_main)
{
    UNUSED_ARGS;
    conc_ws_opts so = {
        .no_compression = 1, .max_queue = 2, .max_size = SIZE_MAX};
    conc_ws_opts o = {.no_compression = 1, .close_timeout = SHORT};
    conc_ws *ws;
    conc_ws_server *srv = held_pair(&so, &o, &ws);
    uint8_t *chunk = calloc(1, CHUNK);
    size_t n = SPAM / CHUNK;
    conc_ws_part *parts = calloc(n, sizeof *parts);
    assert_non_null(chunk);
    assert_non_null(parts);
    for (size_t i = 0; i < n; i++)
        parts[i] = (conc_ws_part){chunk, CHUNK};
    assert_conc(conc_ws_send_parts(ws, CONC_WS_BINARY, parts, n, SHORT),
                CONC_ETIMEDOUT);
    assert_int_equal(conc_ws_is_open(ws), 0);
    assert_conc_ok(conc_ws_wait_closed(ws, BOUND));
    free(parts);
    free(chunk);
    held_pair_end(srv, ws);
    return 0;
}

static void
test_send_parts_unfinished(void **state)
{
    (void)state;
    run(parts_unfinished_main);
}

/* ---- The streaming receive ----------------------------------------------- */

/* Receives one message piece by piece and answers "pieces total". */
static int
count_pieces(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    char reply[64];
    int fin = 0, pieces = 0, r = 0;
    size_t total = 0;
    while (!fin && (r = conc_ws_recv_stream(ws, BOUND, NULL, &m, &fin)) == 0) {
        pieces++;
        total += m.len;
    }
    int n = snprintf(reply, sizeof reply, "%d %zu", pieces, total);
    if (r == 0)
        r = conc_ws_send(ws, CONC_WS_TEXT, reply, (size_t)n, BOUND);
    conc_buf_free(&m);
    return r;
}

MAIN(recv_stream_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_server *srv = server(count_pieces, NULL, url, sizeof url);
    conc_ws *ws;
    conc_buf m = CONC_BUF_INIT;
    /* Three fragments come out as three pieces. */
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    conc_ws_part parts[] = {{"ab", 2}, {"cd", 2}, {"ef", 2}};
    assert_conc_ok(conc_ws_send_parts(ws, CONC_WS_TEXT, parts, 3, BOUND));
    assert_conc_ok(conc_ws_recv(ws, BOUND, NULL, &m));
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "3 6", 3);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    /* One 1 MiB frame comes out in pieces of 64 KiB or so. */
    assert_conc_ok(
        conc_ws_connect(url, &(conc_ws_opts){.no_compression = 1}, BOUND, &ws));
    uint8_t *big = calloc(1, MIB);
    assert_non_null(big);
    assert_conc_ok(conc_ws_send(ws, CONC_WS_BINARY, big, MIB, BOUND));
    free(big);
    assert_conc_ok(conc_ws_recv(ws, BOUND, NULL, &m));
    assert_conc_ok(conc_buf_append(&m, "", 1));
    int pieces = 0;
    size_t total = 0;
    assert_int_equal(sscanf((char *)m.data, "%d %zu", &pieces, &total), 2);
    assert_int_equal(total, MIB);
    /* a piece is handed out once it holds 64 KiB, so it has less than
     * 64 KiB plus one read */
    assert_true(pieces >= (int)(MIB / (2 * CONC__WS_STREAM_PIECE)));
    int fin;
    assert_conc(conc_ws_recv_stream(ws, 0, NULL, NULL, &fin), CONC_EINVAL);
    assert_conc(conc_ws_recv_stream(ws, 0, NULL, &m, NULL), CONC_EINVAL);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    conc_buf_free(&m);
    server_end(srv);
    return 0;
}

static void
test_recv_stream(void **state)
{
    (void)state;
    run(recv_stream_main);
}

/* ---- Ping, keepalive ----------------------------------------------------- */

MAIN(ping_main)
{
    UNUSED_ARGS;
    conc_ws *ws;
    conc_ws_server *srv = echo_pair(NULL, &ws);
    conc_future *p1, *p2;
    assert_conc_ok(conc_ws_ping(ws, "one", 3, &p1));
    assert_conc(conc_ws_ping(ws, "one", 3, &p2), CONC_EEXIST);
    assert_conc_ok(conc_ws_ping(ws, NULL, 0, &p2));
    assert_conc_ok(conc_aio_wait_for(p1, BOUND));
    assert_conc_ok(conc_aio_wait_for(p2, BOUND));
    conc_future_free(p1);
    conc_future_free(p2);
    assert_conc_ok(conc_ws_pong(ws, "beat", 4));
    assert_conc(conc_ws_ping(ws, NULL, 126, &p1), CONC_EINVAL);
    round_trip(ws, CONC_WS_TEXT, "still here", 10);
    /* A ping still waiting when the connection ends fails with it. */
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    assert_conc(conc_ws_ping(ws, NULL, 0, &p1), CONC_ECLOSED);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_ping(void **state)
{
    (void)state;
    run(ping_main);
}

/* A server that completes the handshake and then reads and ignores
 * everything: it never answers a ping, nor a close. */
static int
deaf_handshake(conc_aio_stream *s)
{
    conc_buf head = CONC_BUF_INIT, rsp = CONC_BUF_INIT;
    struct conc__ws_http *h = malloc(sizeof *h);
    struct conc__ws_upgrade u;
    char accept[CONC__WS_ACCEPT_LEN + 1];
    size_t used;
    int r = conc_aio_stream_readuntil(s, "\r\n\r\n", 4, BOUND, &head);
    if (!r)
        r = conc__ws_http_parse((char *)head.data, head.len, 1, h, &used);
    if (!r)
        r = conc__ws_upgrade_check(h, &u);
    if (!r)
        r = conc__ws_accept(u.key.p, u.key.n, accept);
    if (!r)
        r = conc__ws_response_build(&rsp, accept, NULL, NULL, NULL);
    if (!r)
        r = conc_aio_stream_write(s, rsp.data, rsp.len);
    free(h);
    conc_buf_free(&head);
    conc_buf_free(&rsp);
    return r;
}

static int
deaf(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    int r = deaf_handshake(s);
    while (r == 0 && (r = conc_aio_stream_read(s, CHUNK, BOUND, &b)) == 0 &&
           b.len)
        ;
    conc_buf_free(&b);
    return 0;
}

/* A server that answers pings through the engine and counts them,
 * setting seen.ready at the third. */
#define PINGS 3
static int pings_seen;

static int
ping_counter(void *arg, conc_aio_stream *s)
{
    conc__ws_conn *c = NULL;
    struct conc__ws_conn_opts co = {.role = CONC__WS_SERVER};
    struct conc__ws_event ev;
    conc_buf in = CONC_BUF_INIT, out = CONC_BUF_INIT;
    int r = deaf_handshake(s);
    if (!r)
        r = conc__ws_conn_new(&co, &c);
    while (!r && (r = conc_aio_stream_read(s, CHUNK, BOUND, &in)) == 0 &&
           in.len) {
        conc__ws_conn_receive(c, in.data, in.len);
        while (conc__ws_conn_next_event(c, &ev) == 0) {
            if (ev.type == CONC__WS_EV_PING && ++pings_seen == PINGS)
                conc_aio_event_set(seen.ready);
            conc_buf_free(&ev.data);
        }
        conc__ws_conn_take_output(c, &out);
        r = conc_aio_stream_write(s, out.data, out.len);
    }
    (void)arg;
    conc__ws_conn_free(c);
    conc_buf_free(&in);
    conc_buf_free(&out);
    return 0;
}

/* With a peer that answers, keepalive pings on and the connection stays
 * open. */
MAIN(keepalive_ok_main)
{
    UNUSED_ARGS;
    pings_seen = 0;
    char url[64];
    conc_aio_server *srv = raw_server(ping_counter, url, sizeof url, NULL);
    conc_ws_opts o = {.ping_interval = 0.01, .ping_timeout = BOUND};
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    assert_conc_ok(conc_aio_event_wait(seen.ready, BOUND));
    assert_int_equal(conc_ws_is_open(ws), 1);
    conc_ws_free(ws);
    raw_server_end(srv);
    return 0;
}

static void
test_keepalive_ok(void **state)
{
    (void)state;
    run(keepalive_ok_main);
}

MAIN(keepalive_main)
{
    UNUSED_ARGS;
    conc_aio_loop *loop;
    char url[64];
    conc_aio_server *srv = raw_server(deaf, url, sizeof url, &loop);
    conc_ws_opts o = {
        .ping_interval = 0.05, .ping_timeout = 0.1, .close_timeout = BOUND * 4};
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    double t0 = conc_aio_loop_time(loop);
    conc_buf m = CONC_BUF_INIT;
    assert_conc(conc_ws_recv(ws, BOUND, NULL, &m), CONC_ETIMEDOUT);
    assert_true(conc_aio_loop_time(loop) - t0 < BOUND);
    assert_int_equal(conc_ws_is_open(ws), 0);
    conc_ws_free(ws);
    raw_server_end(srv);
    return 0;
}

static void
test_keepalive_timeout(void **state)
{
    (void)state;
    run(keepalive_main);
}

/* The close handshake with that peer ends at close_timeout. */
MAIN(close_timeout_main)
{
    UNUSED_ARGS;
    conc_aio_loop *loop;
    char url[64];
    conc_aio_server *srv = raw_server(deaf, url, sizeof url, &loop);
    conc_ws_opts o = {.close_timeout = SHORT};
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    double t0 = conc_aio_loop_time(loop);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    double took = conc_aio_loop_time(loop) - t0;
    assert_true(took >= SHORT && took < BOUND);
    expect_close_code(ws, 1006);
    conc_ws_free(ws);
    raw_server_end(srv);
    return 0;
}

static void
test_close_timeout(void **state)
{
    (void)state;
    run(close_timeout_main);
}

/* ---- Close codes --------------------------------------------------------- */

MAIN(close_codes_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_server *srv = server(echo, NULL, url, sizeof url);
    conc_ws *ws;
    conc_buf reason = CONC_BUF_INIT, m = CONC_BUF_INIT;
    unsigned code;
    /* The client closes with 4000 and a reason. */
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    assert_conc(conc_ws_close(ws, 1005, NULL), CONC_EINVAL);
    assert_conc_ok(conc_ws_close(ws, 4000, "bye"));
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc(seen.recv_end, CONC_ECLOSED);
    assert_int_equal(seen.code, 4000);
    assert_non_null(strstr(seen.message, "received 4000 bye"));
    assert_int_equal(seen.reason.len, 3);
    assert_memory_equal(seen.reason.data, "bye", 3);
    conc_ws_free(ws);
    /* The server closes with 1001. */
    conc_aio_event_clear(seen.ended);
    seen.close_with = 1001;
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    assert_conc_ok(conc_ws_send(ws, CONC_WS_TEXT, "close", 5, BOUND));
    assert_conc(conc_ws_recv(ws, BOUND, NULL, &m), CONC_ECLOSED);
    assert_conc_ok(conc_ws_wait_closed(ws, BOUND));
    assert_conc_ok(conc_ws_close_code(ws, &code, &reason));
    assert_int_equal(code, 1001);
    assert_int_equal(reason.len, strlen("server says bye"));
    assert_conc_ok(conc_ws_close(ws, 1000, NULL)); /* ended: a no-op */
    conc_ws_free(ws);
    /* Closing the server closes its connections with 1001. */
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    round_trip(ws, CONC_WS_TEXT, "hi", 2);
    assert_conc_ok(conc_ws_server_close(srv));
    assert_conc(conc_ws_recv(ws, BOUND, NULL, &m), CONC_ECLOSED);
    expect_close_code(ws, 1001);
    conc_ws_free(ws);
    conc_buf_free(&reason);
    server_end(srv);
    return 0;
}

static void
test_close_codes(void **state)
{
    (void)state;
    run(close_codes_main);
}

/* A client that sends its handshake, then a frame that breaks the
 * protocol (unmasked), gets 1002; one that vanishes gives EBROKEN. */
static conc_aio_stream *
raw_client(const char *host, int port, conc_buf *rest)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_open_connection(host, port, NULL, BOUND, &s));
    assert_conc_ok(conc_aio_stream_write(s, req, sizeof req - 1));
    assert_conc_ok(conc_aio_stream_readuntil(s, "\r\n\r\n", 4, BOUND, rest));
    assert_memory_equal(rest->data, "HTTP/1.1 101", 12);
    return s;
}

MAIN(protocol_error_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_server *srv = server(echo, NULL, url, sizeof url);
    int port = conc_ws_server_port(srv);
    conc_buf b = CONC_BUF_INIT;
    conc_aio_stream *s = raw_client("127.0.0.1", port, &b);
    static const uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    assert_conc_ok(conc_aio_stream_write(s, unmasked, sizeof unmasked));
    assert_conc_ok(conc_aio_stream_readexactly(s, 4, BOUND, &b));
    assert_int_equal(b.data[0], 0x88);                  /* close */
    assert_int_equal(b.data[2] << 8 | b.data[3], 1002); /* protocol error */
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc(seen.recv_end, CONC_EPROTO);
    conc_aio_stream_free(s);
    /* A peer that vanishes without a close frame. */
    conc_aio_event_clear(seen.ended);
    s = raw_client("127.0.0.1", port, &b);
    conc_aio_stream_free(s);
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc(seen.recv_end, CONC_EBROKEN);
    assert_int_equal(seen.code, 1006);
    conc_buf_free(&b);
    server_end(srv);
    return 0;
}

static void
test_protocol_error(void **state)
{
    (void)state;
    run(protocol_error_main);
}

/* A client whose close frame is followed by more bytes the server has not
 * read (Autobahn 7.1.6: a message, a close, then a ping): the server
 * answers the close, half-closes and drains, so the client reads the close
 * frame and then the end of stream. Closing with those bytes unread made
 * the kernel send a reset, which could destroy the close frame. */
#define AFTER_CLOSE_FRAMES 8     /* binary frames sent after the close */
#define AFTER_CLOSE_LEN    60000 /* bytes in each: well past one read */

MAIN(close_then_more_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_server *srv = server(echo, NULL, url, sizeof url);
    conc_buf b = CONC_BUF_INIT, out = CONC_BUF_INIT;
    conc_aio_stream *s = raw_client("127.0.0.1", conc_ws_server_port(srv), &b);
    /* Masked with a zero key, so the payload is sent as it is. */
    static const uint8_t close[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    assert_conc_ok(conc_buf_append(&out, close, sizeof close));
    for (int i = 0; i < AFTER_CLOSE_FRAMES; i++) {
        const uint8_t head[] = {0x82,
                                0x80 | 126,
                                AFTER_CLOSE_LEN >> 8,
                                AFTER_CLOSE_LEN & 0xff,
                                0,
                                0,
                                0,
                                0};
        assert_conc_ok(conc_buf_append(&out, head, sizeof head));
        assert_conc_ok(conc_buf_reserve(&out, AFTER_CLOSE_LEN));
        memset(out.data + out.len, 'x', AFTER_CLOSE_LEN);
        out.len += AFTER_CLOSE_LEN;
    }
    for (size_t at = 0; at < out.len;) { /* within the write limit */
        size_t n = out.len - at < 65536 ? out.len - at : 65536;
        assert_conc_ok(conc_aio_stream_write(s, out.data + at, n));
        assert_conc_ok(conc_aio_stream_drain(s, BOUND));
        at += n;
    }
    assert_conc_ok(conc_aio_stream_readexactly(s, 4, BOUND, &b));
    assert_int_equal(b.data[0], 0x88);
    assert_int_equal(b.data[2] << 8 | b.data[3], 1000);
    assert_conc_ok(conc_aio_stream_read(s, 4096, BOUND, &b));
    assert_int_equal(b.len, 0); /* the end of stream, not a reset */
    conc_aio_stream_free(s);
    conc_buf_free(&b);
    conc_buf_free(&out);
    server_end(srv);
    return 0;
}

static void
test_close_then_more(void **state)
{
    (void)state;
    run(close_then_more_main);
}

/* ---- Who reads: the receiving task or the reader ------------------------ */

#define HALVES_LEN  10 /* payload bytes of the message sent in two halves */
#define HALVES_HEAD 2  /* its frame header */
#define YIELDS_MAX  100

/* A server that sends a whole message, then the first half of a frame,
 * and the rest (with one more message) once the test sets seen.done. */
static int
halves(void *arg, conc_aio_stream *s)
{
    (void)arg;
    static const uint8_t first[] = {0x81, 0x05, 'f', 'i', 'r', 's', 't'};
    static const uint8_t frame[] = {0x82, HALVES_LEN, '0', '1', '2', '3',
                                    '4',  '5',        '6', '7', '8', '9'};
    static const uint8_t next[] = {0x81, 0x04, 'n', 'e', 'x', 't'};
    const size_t cut = HALVES_HEAD + HALVES_LEN / 2;
    conc_buf b = CONC_BUF_INIT;
    int r = deaf_handshake(s);
    if (!r)
        r = conc_aio_stream_write(s, first, sizeof first);
    if (!r)
        r = conc_aio_stream_write(s, frame, cut);
    if (!r)
        r = conc_aio_stream_drain(s, BOUND);
    if (!r)
        r = conc_aio_event_wait(seen.done, BOUND);
    if (!r)
        r = conc_aio_stream_write(s, frame + cut, sizeof frame - cut);
    if (!r)
        r = conc_aio_stream_write(s, next, sizeof next);
    while (r == 0 && (r = conc_aio_stream_read(s, CHUNK, BOUND, &b)) == 0 &&
           b.len)
        ;
    conc_buf_free(&b);
    return 0;
}

static int
recv_forever(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_ws *ws = *(conc_ws *const *)arg;
    conc_buf m = CONC_BUF_INIT;
    int r = conc_ws_recv(ws, CONC_FOREVER, NULL, &m);
    conc_buf_free(&m);
    return r;
}

/* A recv that times out, and one that is cancelled, while half a frame
 * has come: the half stays in the engine and the bytes after it in the
 * stream, so the next recv gets the whole message, then the next one. */
MAIN(recv_mid_frame_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_aio_server *srv = raw_server(halves, url, sizeof url, NULL);
    conc_ws_opts o = {.no_compression = 1};
    conc_ws *ws;
    conc_buf m = CONC_BUF_INIT;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    expect(ws, CONC_WS_TEXT, "first", 5);
    assert_conc(conc_ws_recv(ws, SHORT, NULL, &m), CONC_ETIMEDOUT);
    assert_int_equal(m.len, 0);
    conc_future *t;
    assert_conc_ok(
        conc_aio_create_task(recv_forever, &ws, sizeof ws, NULL, &t));
    for (int i = 0; i < YIELDS_MAX && !ws->receiving; i++)
        assert_conc_ok(conc_aio_sleep(0));
    assert_true(ws->receiving);
    assert_int_equal(conc_aio_task_cancel(t, NULL), 1);
    assert_conc(conc_aio_await(t), CONC_ECANCELED);
    conc_future_free(t);
    conc_aio_event_set(seen.done);
    expect(ws, CONC_WS_BINARY, "0123456789", HALVES_LEN);
    expect(ws, CONC_WS_TEXT, "next", 4);
    conc_ws_free(ws);
    raw_server_end(srv);
    return 0;
}

static void
test_recv_mid_frame(void **state)
{
    (void)state;
    run(recv_mid_frame_main);
}

/* Echoes three messages, then pings the client, which has stopped
 * receiving, and records whether the pong came; then sends "after" and
 * closes, recording how the close handshake went. */
static int idle_close;

static int
ping_idle(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    conc_future *pong = NULL;
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++)
        if ((r = conc_ws_recv(ws, BOUND, &kind, &m)) == 0)
            r = conc_ws_send(ws, kind, m.data, m.len, BOUND);
    if (r == 0)
        r = conc_ws_ping(ws, "idle", 4, &pong);
    if (r == 0)
        r = conc_aio_wait_for(pong, BOUND);
    seen.recv_end = r;
    conc_future_free(pong);
    conc_aio_event_set(seen.ready);
    if (r == 0)
        r = conc_ws_send(ws, CONC_WS_TEXT, "after", 5, BOUND);
    if (r == 0)
        r = conc_ws_close(ws, 1000, NULL);
    idle_close = r;
    conc_buf_free(&m);
    conc_aio_event_set(seen.ended);
    return 0;
}

/* After recvs that read on the caller's task, a client that stops
 * receiving still answers pings (its reader takes over), queues what
 * comes, and completes a close handshake the server starts. */
MAIN(reader_takes_over_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_opts o = {.no_compression = 1};
    idle_close = -1;
    conc_ws_server *srv = server(ping_idle, &o, url, sizeof url);
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, &o, BOUND, &ws));
    for (int i = 0; i < 3; i++)
        round_trip(ws, CONC_WS_TEXT, "hello", 5);
    assert_conc_ok(conc_aio_event_wait(seen.ready, BOUND));
    assert_conc_ok(seen.recv_end);
    assert_conc_ok(conc_aio_event_wait(seen.ended, BOUND));
    assert_conc_ok(idle_close);
    expect(ws, CONC_WS_TEXT, "after", 5);
    conc_buf m = CONC_BUF_INIT;
    assert_conc(conc_ws_recv(ws, BOUND, NULL, &m), CONC_ECLOSED);
    expect_close_code(ws, 1000);
    conc_ws_free(ws);
    server_end(srv);
    return 0;
}

static void
test_reader_takes_over(void **state)
{
    (void)state;
    run(reader_takes_over_main);
}

/* ---- Backpressure, broadcast --------------------------------------------- */

/* The server holds the connection without reading: its reader stops at
 * max_queue messages, the kernel's buffers fill, and the client's send
 * waits for drain, bounded by its timeout. Memory stays bounded. */
MAIN(backpressure_main)
{
    UNUSED_ARGS;
    conc_ws_opts o = {.no_compression = 1, .max_queue = 2};
    conc_ws *ws;
    conc_ws_server *srv = held_pair(&o, &o, &ws);
    uint8_t *chunk = calloc(1, CHUNK);
    assert_non_null(chunk);
    int r = 0;
    size_t total = 0;
    while (total < SPAM &&
           (r = conc_ws_send(ws, CONC_WS_BINARY, chunk, CHUNK, SHORT)) == 0)
        total += CHUNK;
    assert_conc(r, CONC_ETIMEDOUT);
    size_t rd, wr;
    assert_conc_ok(conc_aio_stream_buffered(conc_ws_stream(ws), &rd, &wr));
    assert_true(wr <= CONC__WS_HEADER_MAX + CHUNK + 32 * 1024);
    free(chunk);
    held_pair_end(srv, ws);
    return 0;
}

static void
test_backpressure(void **state)
{
    (void)state;
    run(backpressure_main);
}

/* Broadcast to a client that reads and one that does not: the slow one
 * is skipped once its buffer passes write_limit (its memory stays
 * bounded), then closed with 1008 when asked. */
static int
drain_client(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    conc_ws *ws = *(conc_ws *const *)arg;
    conc_buf m = CONC_BUF_INIT;
    int r, n = 0;
    while ((r = conc_ws_recv(ws, BOUND, NULL, &m)) == 0)
        n++;
    conc_buf_free(&m);
    conc_buf_appendf(result, "%d", n);
    return r == CONC_ECLOSED ? 0 : r;
}

MAIN(broadcast_main)
{
    UNUSED_ARGS;
    char url[64];
    conc_ws_opts o = {.no_compression = 1};
    conc_ws_server *srv = server(hold, &o, url, sizeof url);
    seen.want = 2;
    conc_ws *fast, *slow;
    conc_ws_opts fo = {.no_compression = 1};
    conc_ws_opts so = {.no_compression = 1, .max_queue = 1};
    assert_conc_ok(conc_ws_connect(url, &fo, BOUND, &fast));
    assert_conc_ok(conc_ws_connect(url, &so, BOUND, &slow));
    assert_conc_ok(conc_aio_event_wait(seen.ready, BOUND));
    conc_future *reader;
    assert_conc_ok(
        conc_aio_create_task(drain_client, &fast, sizeof fast, NULL, &reader));
    uint8_t *msg = calloc(1, BCAST);
    assert_non_null(msg);
    size_t sent, total = 0;
    for (int i = 0; i < NBCAST; i++) {
        assert_conc_ok(conc_ws_broadcast(seen.conns, 2, CONC_WS_BINARY, msg,
                                         BCAST, 0, &sent));
        total += sent;
        for (size_t j = 0; j < 2; j++) {
            size_t rd, wr;
            conc_aio_stream_buffered(conc_ws_stream(seen.conns[j]), &rd, &wr);
            assert_true(wr <= 32 * 1024 + BCAST + CONC__WS_HEADER_MAX);
        }
        assert_conc_ok(conc_aio_sleep(0));
    }
    assert_true(total < 2 * NBCAST); /* the slow one was skipped */
    assert_true(total > NBCAST / 2);
    /* Now close the slow one with 1008 (alone: on a slow machine the
     * fast one may fall behind too). */
    for (int i = 0; i < NBCAST && conc_ws_is_open(seen.conns[1]) == 1; i++) {
        assert_conc_ok(conc_ws_broadcast(&seen.conns[1], 1, CONC_WS_BINARY, msg,
                                         BCAST, 1008, &sent));
        assert_conc_ok(conc_aio_sleep(0));
    }
    free(msg);
    assert_int_equal(conc_ws_is_open(seen.conns[1]), 0);
    assert_int_equal(conc_ws_is_open(seen.conns[0]), 1);
    conc_aio_event_set(seen.done);
    assert_conc_ok(conc_aio_wait_for(reader, BOUND));
    conc_future_free(reader);
    conc_ws_free(fast);
    conc_ws_free(slow);
    server_end(srv);
    return 0;
}

static void
test_broadcast(void **state)
{
    (void)state;
    run(broadcast_main);
}

/* ---- Handshake options, Unix sockets ------------------------------------- */

static int
health(void *arg, const conc_ws_request *req, conc_ws_response *rsp)
{
    (void)arg;
    if (strcmp(req->path, "/health") != 0)
        return 0;
    *rsp = (conc_ws_response){.status = 200, .body = "OK\n", .body_len = 3};
    return 1;
}

MAIN(handshake_main)
{
    UNUSED_ARGS;
    static const char *const protos[] = {"chat.v2", "chat.v1"};
    static const char *const client_protos[] = {"chat.v1"};
    static const char *const origins[] = {"https://good.example"};
    conc_ws_opts so = {.process_request = health,
                       .subprotocols = protos,
                       .nsubprotocols = 2,
                       .origins = origins,
                       .norigins = 1};
    char url[64], hurl[80];
    conc_ws_server *srv = server(echo, &so, url, sizeof url);
    conc_ws *ws;
    snprintf(hurl, sizeof hurl, "%shealth", url);
    assert_conc(conc_ws_connect(hurl, NULL, BOUND, &ws), CONC_EPROTO);
    assert_non_null(strstr(conc_failure_message(), "answered 200"));
    conc_ws_opts bad = {.origin = "https://evil.example"};
    assert_conc(conc_ws_connect(url, &bad, BOUND, &ws), CONC_EPROTO);
    conc_ws_opts co = {.origin = "https://good.example",
                       .subprotocols = client_protos,
                       .nsubprotocols = 1,
                       .extra_headers = "X-Test: 1\r\n"};
    assert_conc_ok(conc_ws_connect(url, &co, BOUND, &ws));
    assert_string_equal(conc_ws_subprotocol(ws), "chat.v1");
    round_trip(ws, CONC_WS_TEXT, "ok", 2);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    assert_conc(conc_ws_connect("http://x/", NULL, BOUND, &ws), CONC_EINVAL);
    assert_conc(conc_ws_connect("ws://[::1/", NULL, BOUND, &ws), CONC_EINVAL);
    assert_conc(conc_ws_connect("ws://h:99999/", NULL, BOUND, &ws),
                CONC_EINVAL);
    server_end(srv);
    return 0;
}

static void
test_handshake(void **state)
{
    (void)state;
    run(handshake_main);
}

MAIN(unix_main)
{
    UNUSED_ARGS;
    char path[64], url[80];
    snprintf(path, sizeof path, "/tmp/conc_test_ws_%d.sock", (int)getpid());
    snprintf(url, sizeof url, "ws+unix://%s", path);
    conc_aio_loop *loop;
    conc_ws_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_ws_unix_serve(loop, path, echo, NULL, NULL, &srv));
    assert_int_equal(conc_ws_server_port(srv), 0);
    conc_ws *ws;
    assert_conc_ok(conc_ws_connect(url, NULL, BOUND, &ws));
    round_trip(ws, CONC_WS_TEXT, "over unix", 9);
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    server_end(srv);
    unlink(path);
    return 0;
}

static void
test_unix(void **state)
{
    (void)state;
    run(unix_main);
}

/* wss://: the streams' TLS option carries the WebSocket unchanged, with
 * certificates the test makes. */
static struct tls_certs certs;

MAIN(wss_main)
{
    UNUSED_ARGS;
    conc_tls_context *sc, *cc;
    conc_tls_opts so = {
        .server = 1, .cert_file = certs.server, .key_file = certs.server_key};
    conc_tls_opts co = {.ca_file = certs.ca};
    assert_conc_ok(conc_tls_context_new(&so, &sc));
    assert_conc_ok(conc_tls_context_new(&co, &cc));
    conc_aio_stream_opts sso = {.ssl = sc}, cso = {.ssl = cc};
    conc_ws_opts sopts = {.stream = &sso}, copts = {.stream = &cso};
    conc_aio_loop *loop;
    conc_ws_server *srv;
    conc_ws *ws;
    char url[64];
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(
        conc_ws_serve(loop, "127.0.0.1", 0, echo, NULL, &sopts, &srv));
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/", conc_ws_server_port(srv));
    assert_conc_ok(conc_ws_connect(url, &copts, BOUND, &ws));
    round_trip(ws, CONC_WS_TEXT, "over TLS", 8);
    uint8_t *big = calloc(1, MIB);
    assert_non_null(big);
    round_trip(ws, CONC_WS_BINARY, big, MIB);
    free(big);
    conc_tls_session *tls;
    assert_conc_ok(conc_aio_stream_ssl_object(conc_ws_stream(ws), &tls));
    assert_conc_ok(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    /* Without a context, wss:// verifies against the system's CAs, which
     * do not know the test's CA. */
    assert_conc(conc_ws_connect(url, NULL, BOUND, &ws), CONC_ETLS);
    /* A plain client gets no WebSocket from a TLS server. */
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    assert_true(conc_ws_connect(url, NULL, BOUND, &ws) < 0);
    /* A TLS context with ws:// is a mistake, said at once. */
    assert_conc(conc_ws_connect(url, &copts, BOUND, &ws), CONC_EINVAL);
    server_end(srv);
    conc_tls_context_free(sc);
    conc_tls_context_free(cc);
    return 0;
}

static void
test_wss(void **state)
{
    (void)state;
    assert_int_equal(tls_certs_make(&certs), 0);
    run(wss_main);
    tls_certs_remove(&certs);
}

static void
test_contract(void **state)
{
    (void)state;
    conc_buf b = CONC_BUF_INIT;
    unsigned code;
    assert_conc(conc_ws_recv(NULL, 0, NULL, &b), CONC_EINVAL);
    assert_conc(conc_ws_send(NULL, CONC_WS_TEXT, "", 0, 0), CONC_EINVAL);
    assert_conc(conc_ws_close(NULL, 1000, NULL), CONC_EINVAL);
    assert_conc(conc_ws_close_code(NULL, &code, NULL), CONC_EINVAL);
    assert_conc(conc_ws_broadcast(NULL, 1, CONC_WS_TEXT, "", 0, 0, NULL),
                CONC_EINVAL);
    assert_conc_ok(conc_ws_broadcast(NULL, 0, CONC_WS_TEXT, "", 0, 0, NULL));
    assert_conc(conc_ws_connect(NULL, NULL, 0, NULL), CONC_EINVAL);
    conc_ws_free(NULL);
    conc_ws_server_free(NULL);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_echo_deflate),
        conc_unit_test(test_echo_plain),
        conc_unit_test(test_too_big),
        conc_unit_test(test_fragments),
        conc_unit_test(test_send_stream),
        conc_unit_test(test_send_stream_fail),
        conc_unit_test(test_send_stream_cancel),
        conc_unit_test(test_send_stream_waits),
        conc_unit_test(test_send_parts_unfinished),
        conc_unit_test(test_recv_stream),
        conc_unit_test(test_ping),
        conc_unit_test(test_keepalive_ok),
        conc_unit_test(test_keepalive_timeout),
        conc_unit_test(test_close_timeout),
        conc_unit_test(test_close_codes),
        conc_unit_test(test_protocol_error),
        conc_unit_test(test_close_then_more),
        conc_unit_test(test_recv_mid_frame),
        conc_unit_test(test_reader_takes_over),
        conc_unit_test(test_backpressure),
        conc_unit_test(test_broadcast),
        conc_unit_test(test_handshake),
        conc_unit_test(test_unix),
        conc_unit_test(test_wss),
        conc_unit_test(test_contract),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
