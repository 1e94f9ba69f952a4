/* Fuzzes the WebSocket engine's streaming mode (src/ws/conn.c with
 * conc__ws_conn_opts.stream), the one conc_ws_recv_stream reads: a large
 * or fragmented message handed out piece by piece as it arrives.
 *
 * The input, after a flags byte as fuzz_ws_frame's (role, deflate and its
 * context takeover, a small or the default message limit, the size of the
 * pieces the rest is fed in; and the top bit for the size of the fragments
 * of the echo below), is fed to two connections, one in whole-message mode
 * and one in streaming mode, which must agree: the same verdict at every
 * step, the same close code and replies, the same messages once the
 * pieces of each are joined, the same control frames. Each piece keeps
 * its message's kind, a text's pieces are a valid UTF-8 prefix, no message
 * passes the limit. Each whole message is then sent back fragment by
 * fragment by a connection of the other role and received by a streaming
 * one, and must arrive unchanged. */
#include "conc/error.h"
#include "fuzz.h"
#include "ws/proto.h"

static const size_t STEPS[4] = {1, 7, 64, SIZE_MAX};
/* Fragment sizes of the echo: small ones, and ones past a stream piece. */
#define FRAG_SMALL 5
#define FRAG_LARGE (CONC__WS_STREAM_PIECE + 3)

struct setup {
    enum conc__ws_role role;
    const struct conc__ws_deflate_params *pd;
    size_t max;  /* the limit given (0: the default) */
    size_t frag; /* the echo's fragment size */
};

static conc__ws_conn *
make(enum conc__ws_role role, size_t max, int stream,
     const struct conc__ws_deflate_params *pd)
{
    struct conc__ws_conn_opts o = {
        .role = role, .max_message = max, .deflate = pd, .stream = stream};
    conc__ws_conn *c = NULL;
    FUZZ_CHECK(conc__ws_conn_new(&o, &c) == 0);
    return c;
}

/* Appends one record (type, length, bytes) to a transcript. */
static void
record(conc_buf *t, unsigned type, const conc_buf *data)
{
    uint8_t head[1 + sizeof(size_t)];
    head[0] = (uint8_t)type;
    memcpy(head + 1, &data->len, sizeof data->len);
    FUZZ_CHECK(conc_buf_append(t, head, sizeof head) == 0);
    FUZZ_CHECK(!data->len || conc_buf_append(t, data->data, data->len) == 0);
}

/* A connection in streaming mode, with the message it is joining. */
struct joiner {
    conc__ws_conn *c;
    unsigned type; /* of the message being joined; 0 between messages */
    unsigned done; /* of the message last joined */
    conc_buf msg;
    struct conc__utf8 utf8;
};

/* Joins one piece to the message; returns 1 if it was the last. */
static int
join_piece(struct joiner *j, size_t max, struct conc__ws_event *ev)
{
    if (!j->type) {
        j->type = ev->type;
        j->msg.len = 0;
        conc__utf8_reset(&j->utf8);
    }
    FUZZ_CHECK(ev->type == j->type);
    FUZZ_CHECK(!ev->more || ev->data.len > 0); /* no empty inner piece */
    FUZZ_CHECK(ev->data.len <= max - j->msg.len);
    if (ev->type == CONC__WS_EV_TEXT)
        FUZZ_CHECK(conc__utf8_feed(&j->utf8, ev->data.data, ev->data.len) == 0);
    FUZZ_CHECK(!ev->data.len ||
               conc_buf_append(&j->msg, ev->data.data, ev->data.len) == 0);
    conc_buf_free(&ev->data);
    if (ev->more)
        return 0;
    if (j->type == CONC__WS_EV_TEXT)
        FUZZ_CHECK(conc__utf8_finish(&j->utf8) == 0);
    j->done = j->type;
    j->type = 0;
    return 1;
}

/* Takes the events of a streaming connection until a message is whole
 * (left in j->msg; returns 1) or a control event comes (in *ev; returns
 * 2). Returns 0 when there are no more events. */
static int
join_next(struct joiner *j, size_t max, struct conc__ws_event *ev)
{
    while (conc__ws_conn_next_event(j->c, ev) == 0) {
        if (ev->type != CONC__WS_EV_TEXT && ev->type != CONC__WS_EV_BINARY)
            return 2;
        if (join_piece(j, max, ev))
            return 1;
    }
    return 0;
}

/* Sends a message back fragment by fragment through a pair of the other
 * roles; the streaming receiver must join it unchanged. */
static void
echo(unsigned type, const conc_buf *m, const struct setup *s)
{
    conc__ws_conn *tx = make(s->role, SIZE_MAX, 0, s->pd);
    struct joiner rx = {.c = make(!s->role, SIZE_MAX, 1, s->pd)};
    unsigned op = type == CONC__WS_EV_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
    conc_buf out = CONC_BUF_INIT;
    size_t off = 0;
    do {
        size_t n = m->len - off < s->frag ? m->len - off : s->frag;
        const uint8_t *p = n ? m->data + off : NULL;
        FUZZ_CHECK(conc__ws_conn_send_fragment(tx, off ? CONC__WS_CONT : op, p,
                                               n, off + n == m->len) == 0);
        off += n;
    } while (off < m->len);
    FUZZ_CHECK(conc__ws_conn_take_output(tx, &out) == 0);
    FUZZ_CHECK(conc__ws_conn_receive(rx.c, out.data, out.len) == 0);
    struct conc__ws_event ev;
    FUZZ_CHECK(join_next(&rx, SIZE_MAX, &ev) == 1);
    FUZZ_CHECK(rx.msg.len == m->len);
    FUZZ_CHECK(!m->len || memcmp(rx.msg.data, m->data, m->len) == 0);
    FUZZ_CHECK(join_next(&rx, SIZE_MAX, &ev) == 0);
    conc_buf_free(&rx.msg);
    conc_buf_free(&out);
    conc__ws_conn_free(tx);
    conc__ws_conn_free(rx.c);
}

/* The transcripts of both connections: messages and control frames. */
struct transcripts {
    conc_buf whole_msgs, whole_ctl, stream_msgs, stream_ctl;
};

static void
drain_whole(conc__ws_conn *c, const struct setup *s, size_t max,
            struct transcripts *t)
{
    struct conc__ws_event ev;
    while (conc__ws_conn_next_event(c, &ev) == 0) {
        FUZZ_CHECK(!ev.more);
        if (ev.type == CONC__WS_EV_TEXT || ev.type == CONC__WS_EV_BINARY) {
            FUZZ_CHECK(ev.data.len <= max);
            record(&t->whole_msgs, ev.type, &ev.data);
            echo(ev.type, &ev.data, s);
        } else {
            record(&t->whole_ctl, ev.type * 0x10000u + ev.code, &ev.data);
        }
        conc_buf_free(&ev.data);
    }
}

static void
drain_stream(struct joiner *j, size_t max, struct transcripts *t)
{
    struct conc__ws_event ev;
    int r;
    while ((r = join_next(j, max, &ev)) != 0) {
        if (r == 1) {
            record(&t->stream_msgs, j->done, &j->msg);
            continue;
        }
        record(&t->stream_ctl, ev.type * 0x10000u + ev.code, &ev.data);
        conc_buf_free(&ev.data);
    }
}

static int
same(const conc_buf *a, const conc_buf *b)
{
    return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* Both connections said the same to the peer: byte for byte from a
 * server; a client masks with fresh keys, so only the lengths. */
static void
same_output(conc__ws_conn *a, conc__ws_conn *b, enum conc__ws_role role)
{
    conc_buf oa = CONC_BUF_INIT, ob = CONC_BUF_INIT;
    FUZZ_CHECK(conc__ws_conn_take_output(a, &oa) == 0);
    FUZZ_CHECK(conc__ws_conn_take_output(b, &ob) == 0);
    FUZZ_CHECK(role == CONC__WS_CLIENT ? oa.len == ob.len : same(&oa, &ob));
    conc_buf_free(&oa);
    conc_buf_free(&ob);
}

static void
transcripts_free(struct transcripts *t)
{
    conc_buf_free(&t->whole_msgs);
    conc_buf_free(&t->whole_ctl);
    conc_buf_free(&t->stream_msgs);
    conc_buf_free(&t->stream_ctl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    struct conc__ws_deflate_params pd = {!!(flags & 4), !!(flags & 8), 15, 15};
    struct setup s = {flags & 1 ? CONC__WS_CLIENT : CONC__WS_SERVER,
                      flags & 2 ? &pd : NULL, flags & 16 ? 64 : 0,
                      flags & 128 ? FRAG_LARGE : FRAG_SMALL};
    size_t step = STEPS[(flags >> 5) & 3];
    size_t max = s.max ? s.max : CONC__WS_MAX_MESSAGE_DEFAULT;
    conc__ws_conn *whole = make(s.role, s.max, 0, s.pd);
    struct joiner j = {.c = make(s.role, s.max, 1, s.pd)};
    struct transcripts t = {CONC_BUF_INIT, CONC_BUF_INIT, CONC_BUF_INIT,
                            CONC_BUF_INIT};
    data++;
    size--;
    for (size_t i = 0; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        int rw = conc__ws_conn_receive(whole, data + i, n);
        int rs = conc__ws_conn_receive(j.c, data + i, n);
        FUZZ_CHECK(rw == rs);
        FUZZ_CHECK(conc__ws_conn_close_code(whole) ==
                   conc__ws_conn_close_code(j.c));
        drain_whole(whole, &s, max, &t);
        drain_stream(&j, max, &t);
        same_output(whole, j.c, s.role);
    }
    FUZZ_CHECK(same(&t.whole_msgs, &t.stream_msgs));
    FUZZ_CHECK(same(&t.whole_ctl, &t.stream_ctl));
    FUZZ_CHECK(conc__ws_conn_receive_eof(whole) == 0);
    FUZZ_CHECK(conc__ws_conn_receive_eof(j.c) == 0);
    FUZZ_CHECK(conc__ws_conn_close_code(whole) ==
               conc__ws_conn_close_code(j.c));
    transcripts_free(&t);
    conc_buf_free(&j.msg);
    conc__ws_conn_free(whole);
    conc__ws_conn_free(j.c);
    return 0;
}
