/* The WebSocket connection state machine: bytes in -> events out,
 * messages in -> bytes out (RFC 6455 sections 5 to 7).
 *
 * Receiving. Bytes are parsed straight from the caller's buffer; only an
 * incomplete header, or an incomplete control frame (at most 139 bytes),
 * waits in `in` for the rest. A data frame's payload is taken piece by
 * piece as it arrives: unmasked (at its offset in the frame) straight into
 * the message being assembled, or, compressed, into `scratch` and inflated
 * from there. So a large frame is never buffered twice, and text is
 * validated byte by byte as it arrives, across frames and after
 * decompression: invalid UTF-8 fails before the rest of its frame comes
 * (Autobahn 6.4.3 and 6.4.4 chop such frames). Everything a header alone
 * tells is checked before its payload (a frame announcing 2^62 bytes fails
 * at once with 1009).
 *
 * Failing. A peer that breaks the protocol gets a close frame with the
 * matching code (1002, 1007, 1009; 1011 when we run out of memory), and
 * nothing it sends afterwards is read (section 7.1.7).
 *
 * Closing (section 7):
 *
 *            send close                  close received
 *   OPEN ----------------> CLOSING ------------------------> CLOSED
 *     |                       ^                                 ^
 *     |  protocol failure     |                                 |
 *     +-----------------------+                                 |
 *     |  close received: the answer is queued at once           |
 *     +---------------------------------------------------------+
 *   any state --receive_eof--> CLOSED
 *
 * Sending. One frame per fragment; a client masks with a fresh key per
 * frame, drawn from OpenSSL's generator in batches. A compressed message
 * has RSV1 on its first frame only. Control frames may go out between
 * the fragments of a message. */
#include <string.h>

#include <openssl/rand.h>

#include "core/internal.h"
#include "ws/proto.h"

#define KEY_BATCH        256 /* bytes of mask keys fetched at a time */
#define EVENTS_INITIAL   4
#define CLOSE_REASON_MAX (CONC__WS_CONTROL_MAX - 2)

struct conc__ws_conn {
    enum conc__ws_role role;
    enum conc__ws_state state;
    size_t max_message, max_frame;
    int no_auto_pong;
    int stream;                /* hand messages out in pieces */
    conc__ws_deflate *deflate; /* NULL without permessage-deflate */

    conc_buf in;      /* the start of a frame not yet whole */
    conc_buf out;     /* bytes to send */
    conc_buf scratch; /* unmasked compressed payload, compressed output */

    /* The message being received: rx_opcode is 0 between messages. The
     * data frame being received, while rx_in_frame: rx_done of its
     * rx_frame.len payload bytes are taken. */
    unsigned rx_opcode;
    int rx_in_frame;
    struct conc__ws_frame rx_frame;
    uint64_t rx_done;
    int rx_compressed;
    struct conc__utf8 rx_utf8;
    conc_buf rx_msg;
    size_t rx_total; /* stream mode: bytes of the message handed out */

    /* The message being sent in fragments: tx_opcode 0 between them. */
    unsigned tx_opcode;
    int tx_compressed;
    struct conc__utf8 tx_utf8;

    int close_sent, close_received, failed, eof;
    unsigned close_code;

    struct conc__ws_event *ev; /* a ring of ev_cap events */
    size_t ev_head, ev_len, ev_cap;

    uint8_t keys[KEY_BATCH];
    size_t keys_left;
};

/* ---- Set-up ------------------------------------------------------------- */

int
conc__ws_conn_new(const struct conc__ws_conn_opts *o, conc__ws_conn **out)
{
    if (!o || !out ||
        (o->role != CONC__WS_SERVER && o->role != CONC__WS_CLIENT))
        return CONC_EINVAL;
    conc__ws_conn *c = conc__calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->role = o->role;
    c->state = CONC__WS_OPEN;
    c->max_message =
        o->max_message ? o->max_message : CONC__WS_MAX_MESSAGE_DEFAULT;
    c->max_frame = o->max_frame ? o->max_frame : c->max_message;
    c->no_auto_pong = o->no_auto_pong;
    c->stream = o->stream;
    if (o->deflate) {
        int r = conc__ws_deflate_new(o->role, o->deflate, o->deflate_opts,
                                     &c->deflate);
        if (r) {
            conc__free(c);
            return r;
        }
    }
    *out = c;
    return 0;
}

void
conc__ws_conn_free(conc__ws_conn *c)
{
    if (!c)
        return;
    conc__ws_deflate_free(c->deflate);
    conc_buf_free(&c->in);
    conc_buf_free(&c->out);
    conc_buf_free(&c->scratch);
    conc_buf_free(&c->rx_msg);
    for (size_t i = 0; i < c->ev_len; i++)
        conc_buf_free(&c->ev[(c->ev_head + i) % c->ev_cap].data);
    conc__free(c->ev);
    conc__free(c);
}

/* ---- Output ------------------------------------------------------------- */

static int
next_key(conc__ws_conn *c, uint8_t key[4])
{
    if (c->keys_left < 4) {
        if (RAND_bytes(c->keys, KEY_BATCH) != 1)
            return -EIO;
        c->keys_left = KEY_BATCH;
    }
    memcpy(key, c->keys + KEY_BATCH - c->keys_left, 4);
    c->keys_left -= 4;
    return 0;
}

static int
queue_frame(conc__ws_conn *c, uint8_t first, const void *p, size_t n)
{
    uint8_t key[4];
    if (c->role == CONC__WS_CLIENT) {
        int r = next_key(c, key);
        if (r)
            return r;
    }
    return conc__ws_frame_append(&c->out, first, p, n,
                                 c->role == CONC__WS_CLIENT ? key : NULL);
}

static int
queue_close(conc__ws_conn *c, unsigned code, const void *reason, size_t n)
{
    uint8_t payload[CONC__WS_CONTROL_MAX];
    size_t len = 0;
    if (code != 0 && code != CONC__WS_CLOSE_NO_STATUS) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        if (n)
            memcpy(payload + 2, reason, n);
        len = 2 + n;
    }
    c->close_sent = 1;
    return queue_frame(c, 0x80 | CONC__WS_CLOSE, payload, len);
}

/* Fails the connection (section 7.1.7) and returns err. */
static int
fail(conc__ws_conn *c, int err)
{
    if (c->failed)
        return err;
    c->failed = 1;
    unsigned code = conc__ws_close_code_for(err);
    if (!c->close_sent)
        (void)queue_close(c, code, NULL, 0); /* best effort: we give up */
    if (!c->close_received)
        c->close_code = code;
    if (c->state == CONC__WS_OPEN)
        c->state = CONC__WS_CLOSING;
    return err;
}

int
conc__ws_conn_take_output(conc__ws_conn *c, conc_buf *out)
{
    if (!c || !out)
        return CONC_EINVAL;
    conc_buf old = *out;
    *out = c->out;
    if (old.borrowed) {
        conc_buf_init(&c->out); /* never keep the caller's storage */
    } else {
        c->out = old;
        c->out.len = 0;
    }
    return 0;
}

/* ---- Events ------------------------------------------------------------- */

static int
push_event(conc__ws_conn *c, enum conc__ws_event_type type, conc_buf *data,
           unsigned code)
{
    if (c->ev_len == c->ev_cap) {
        size_t cap = c->ev_cap ? c->ev_cap * 2 : EVENTS_INITIAL;
        struct conc__ws_event *ev = conc__calloc(cap, sizeof *ev);
        if (!ev)
            return CONC_ENOMEM;
        for (size_t i = 0; i < c->ev_len; i++)
            ev[i] = c->ev[(c->ev_head + i) % c->ev_cap];
        conc__free(c->ev);
        c->ev = ev;
        c->ev_cap = cap;
        c->ev_head = 0;
    }
    struct conc__ws_event *e = &c->ev[(c->ev_head + c->ev_len) % c->ev_cap];
    e->type = type;
    e->data = *data;
    e->code = code;
    e->more = 0;
    conc_buf_init(data);
    c->ev_len++;
    return 0;
}

static int
push_copy(conc__ws_conn *c, enum conc__ws_event_type type, const void *p,
          size_t n, unsigned code)
{
    conc_buf b = CONC_BUF_INIT;
    int r = n ? conc_buf_append(&b, p, n) : 0;
    if (!r)
        r = push_event(c, type, &b, code);
    conc_buf_free(&b);
    return r;
}

int
conc__ws_conn_next_event(conc__ws_conn *c, struct conc__ws_event *ev)
{
    if (!c || !ev)
        return CONC_EINVAL;
    if (!c->ev_len)
        return CONC_EEMPTY;
    *ev = c->ev[c->ev_head];
    c->ev_head = (c->ev_head + 1) % c->ev_cap;
    c->ev_len--;
    return 0;
}

/* ---- Receiving ---------------------------------------------------------- */

/* What the header tells before the payload is there. */
static int
check_header(conc__ws_conn *c, const struct conc__ws_frame *f)
{
    int data = f->opcode < CONC__WS_CLOSE;
    unsigned allowed = 0;
    if (c->deflate &&
        (f->opcode == CONC__WS_TEXT || f->opcode == CONC__WS_BINARY))
        allowed = CONC__WS_RSV1; /* RFC 7692: on a message's first frame */
    if (f->rsv & ~allowed)
        return CONC_EPROTO;
    if (!data)
        return 0;
    if (f->opcode == CONC__WS_CONT ? !c->rx_opcode : c->rx_opcode)
        return CONC_EPROTO;
    if (f->len > c->max_frame)
        return CONC_EMSGSIZE;
    int compressed = f->opcode == CONC__WS_CONT ? c->rx_compressed
                                                : !!(f->rsv & CONC__WS_RSV1);
    size_t have = f->opcode == CONC__WS_CONT ? c->rx_total + c->rx_msg.len : 0;
    if (!compressed && f->len > c->max_message - have)
        return CONC_EMSGSIZE;
    return 0;
}

static int
finish_message(conc__ws_conn *c)
{
    int text = c->rx_opcode == CONC__WS_TEXT;
    if (text && conc__utf8_finish(&c->rx_utf8))
        return CONC_EVALUE;
    c->rx_opcode = 0;
    c->rx_total = 0;
    return push_event(c, text ? CONC__WS_EV_TEXT : CONC__WS_EV_BINARY,
                      &c->rx_msg, 0);
}

/* Stream mode: hands out what the message has so far as a piece. */
static int
push_piece(conc__ws_conn *c)
{
    size_t n = c->rx_msg.len;
    int text = c->rx_opcode == CONC__WS_TEXT;
    int r = push_event(c, text ? CONC__WS_EV_TEXT : CONC__WS_EV_BINARY,
                       &c->rx_msg, 0);
    if (r)
        return r;
    c->ev[(c->ev_head + c->ev_len - 1) % c->ev_cap].more = 1;
    c->rx_total += n;
    return 0;
}

/* A data frame's header was read: start it (and its message). */
static void
start_data(conc__ws_conn *c, const struct conc__ws_frame *f)
{
    if (f->opcode != CONC__WS_CONT) {
        c->rx_opcode = f->opcode;
        c->rx_compressed = !!(f->rsv & CONC__WS_RSV1);
        conc__utf8_reset(&c->rx_utf8);
        c->rx_msg.len = 0;
        c->rx_total = 0;
    }
    c->rx_frame = *f;
    c->rx_done = 0;
    c->rx_in_frame = 1;
}

/* Takes the next n payload bytes of the current data frame. */
static int
on_payload(conc__ws_conn *c, const uint8_t *p, size_t n)
{
    const struct conc__ws_frame *f = &c->rx_frame;
    size_t off = (size_t)c->rx_done, before = c->rx_msg.len;
    int last = c->rx_done + n == f->len, r;
    if (c->rx_compressed) {
        c->scratch.len = 0;
        r = conc_buf_reserve(&c->scratch, n);
        if (r)
            return r;
        conc__ws_mask_copy(c->scratch.data, p, n, f->mask, off);
        r = conc__ws_deflate_decompress(
            c->deflate, c->scratch.data, n, last && f->fin,
            c->max_message - c->rx_total, &c->rx_msg);
        if (r)
            return r;
    } else {
        r = conc_buf_reserve(&c->rx_msg, n);
        if (r)
            return r;
        if (n)
            conc__ws_mask_copy(c->rx_msg.data + before, p, n, f->mask, off);
        c->rx_msg.len += n;
    }
    c->rx_done += n;
    if (c->rx_opcode == CONC__WS_TEXT && c->rx_msg.len > before &&
        conc__utf8_feed(&c->rx_utf8, c->rx_msg.data + before,
                        c->rx_msg.len - before))
        return CONC_EVALUE;
    if (last)
        c->rx_in_frame = 0;
    if (last && f->fin)
        return finish_message(c);
    if (c->stream && c->rx_msg.len &&
        (last || c->rx_msg.len >= CONC__WS_STREAM_PIECE))
        return push_piece(c);
    return 0;
}

static int
on_close(conc__ws_conn *c, const uint8_t *p, size_t n)
{
    unsigned code;
    const uint8_t *reason;
    size_t rlen;
    int r = conc__ws_close_parse(p, n, &code, &reason, &rlen);
    if (r)
        return r;
    c->close_received = 1;
    c->close_code = code;
    r = push_copy(c, CONC__WS_EV_CLOSE, reason, rlen, code);
    /* Section 5.5.1: answer, echoing the code, unless we closed first. */
    if (!r && !c->close_sent)
        r = queue_close(c, code, NULL, 0);
    c->state = CONC__WS_CLOSED;
    return r;
}

static int
on_control(conc__ws_conn *c, const struct conc__ws_frame *f, const uint8_t *p)
{
    uint8_t payload[CONC__WS_CONTROL_MAX];
    size_t n = (size_t)f->len;
    conc__ws_mask_copy(payload, p, n, f->mask, 0);
    switch (f->opcode) {
    case CONC__WS_PING: {
        int r = push_copy(c, CONC__WS_EV_PING, payload, n, 0);
        if (!r && !c->no_auto_pong && !c->close_sent)
            r = queue_frame(c, 0x80 | CONC__WS_PONG, payload, n);
        return r;
    }
    case CONC__WS_PONG:
        return push_copy(c, CONC__WS_EV_PONG, payload, n, 0);
    default:
        return on_close(c, payload, n);
    }
}

/* Takes what it can of the current data frame's payload from p[0..n). */
static int
take_payload(conc__ws_conn *c, const uint8_t *p, size_t n, size_t *pos)
{
    uint64_t left = c->rx_frame.len - c->rx_done;
    size_t take = left < n - *pos ? (size_t)left : n - *pos;
    if (take == 0 && left)
        return CONC_EAGAIN;
    *pos += take;
    return on_payload(c, p + *pos - take, take);
}

/* Handles what p[0..n) holds: whole control frames, headers, and data
 * payloads piece by piece. *used is how far it got. */
static int
parse_frames(conc__ws_conn *c, const uint8_t *p, size_t n, size_t *used)
{
    size_t pos = 0;
    int r = 0;
    while (c->state != CONC__WS_CLOSED && !c->failed) {
        if (c->rx_in_frame) {
            r = take_payload(c, p, n, &pos);
        } else {
            struct conc__ws_frame f;
            r = conc__ws_frame_parse(p + pos, n - pos, c->role, &f);
            if (!r)
                r = check_header(c, &f);
            if (!r && f.opcode < CONC__WS_CLOSE) {
                start_data(c, &f);
                pos += f.header_len;
            } else if (!r && f.len > n - pos - f.header_len) {
                r = CONC_EAGAIN; /* a control frame is taken whole */
            } else if (!r) {
                r = on_control(c, &f, p + pos + f.header_len);
                pos += f.header_len + (size_t)f.len;
            }
        }
        if (r)
            break;
    }
    *used = pos;
    return r == CONC_EAGAIN ? 0 : r;
}

int
conc__ws_conn_receive(conc__ws_conn *c, const void *p, size_t n)
{
    if (!c || (!p && n))
        return CONC_EINVAL;
    if (c->eof)
        return CONC_ECLOSED;
    if (c->failed || c->state == CONC__WS_CLOSED || !n)
        return 0; /* section 7.1.7: nothing more is read */
    size_t used = 0;
    int r;
    if (c->in.len == 0) {
        r = parse_frames(c, p, n, &used);
        if (!r && used < n && !c->failed && c->state != CONC__WS_CLOSED)
            r = conc_buf_append(&c->in, (const uint8_t *)p + used, n - used);
    } else {
        r = conc_buf_append(&c->in, p, n);
        if (!r)
            r = parse_frames(c, c->in.data, c->in.len, &used);
        conc_buf_consume(&c->in, used);
    }
    return r ? fail(c, r) : 0;
}

int
conc__ws_conn_receive_eof(conc__ws_conn *c)
{
    if (!c)
        return CONC_EINVAL;
    if (!c->close_received && !c->failed)
        c->close_code = CONC__WS_CLOSE_ABNORMAL;
    c->eof = 1;
    c->state = CONC__WS_CLOSED;
    conc_buf_free(&c->in);
    return 0;
}

/* ---- Sending ------------------------------------------------------------ */

static int
send_allowed(const conc__ws_conn *c)
{
    if (c->state == CONC__WS_CLOSED)
        return CONC_ECLOSED;
    return c->close_sent ? CONC_ESTATE : 0;
}

static int
send_checks(conc__ws_conn *c, unsigned op, const void *p, size_t n, int fin,
            struct conc__utf8 *utf8)
{
    if (!c || (!p && n))
        return CONC_EINVAL;
    if (op != CONC__WS_TEXT && op != CONC__WS_BINARY && op != CONC__WS_CONT)
        return CONC_EINVAL;
    int r = send_allowed(c);
    if (r)
        return r;
    if (op == CONC__WS_CONT ? !c->tx_opcode : c->tx_opcode)
        return CONC_ESTATE;
    unsigned msg_op = op == CONC__WS_CONT ? c->tx_opcode : op;
    if (op != CONC__WS_CONT)
        conc__utf8_reset(utf8);
    else
        *utf8 = c->tx_utf8;
    if (msg_op == CONC__WS_TEXT &&
        (conc__utf8_feed(utf8, p, n) || (fin && conc__utf8_finish(utf8))))
        return CONC_EVALUE;
    return 0;
}

int
conc__ws_conn_send_fragment(conc__ws_conn *c, enum conc__ws_opcode opcode,
                            const void *p, size_t n, int fin)
{
    struct conc__utf8 utf8;
    int r = send_checks(c, opcode, p, n, fin, &utf8);
    if (r)
        return r;
    int first = opcode != CONC__WS_CONT;
    int compressed =
        first ? conc__ws_deflate_wants(c->deflate, n) : c->tx_compressed;
    uint8_t b0 = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (compressed) {
        c->scratch.len = 0;
        r = conc__ws_deflate_compress(c->deflate, p, n, fin, &c->scratch);
        if (r)
            return fail(c, r); /* the stream's state is now unknown */
        p = c->scratch.data;
        n = c->scratch.len;
        if (first)
            b0 |= CONC__WS_RSV1;
    }
    r = queue_frame(c, b0, p, n);
    if (r)
        return compressed ? fail(c, r) : r;
    c->tx_utf8 = utf8;
    c->tx_opcode = fin ? 0 : (first ? opcode : c->tx_opcode);
    c->tx_compressed = compressed;
    return 0;
}

int
conc__ws_conn_send(conc__ws_conn *c, enum conc__ws_opcode opcode, const void *p,
                   size_t n)
{
    if (!c)
        return CONC_EINVAL;
    if (opcode == CONC__WS_CONT)
        return CONC_EINVAL;
    return conc__ws_conn_send_fragment(c, opcode, p, n, 1);
}

static int
send_control(conc__ws_conn *c, unsigned op, const void *p, size_t n)
{
    if (!c || (!p && n) || n > CONC__WS_CONTROL_MAX)
        return CONC_EINVAL;
    int r = send_allowed(c);
    return r ? r : queue_frame(c, (uint8_t)(0x80 | op), p, n);
}

int
conc__ws_conn_ping(conc__ws_conn *c, const void *p, size_t n)
{
    return send_control(c, CONC__WS_PING, p, n);
}

int
conc__ws_conn_pong(conc__ws_conn *c, const void *p, size_t n)
{
    return send_control(c, CONC__WS_PONG, p, n);
}

int
conc__ws_conn_close(conc__ws_conn *c, unsigned code, const void *reason,
                    size_t n)
{
    if (!c || (!reason && n) || n > CLOSE_REASON_MAX || (code == 0 && n))
        return CONC_EINVAL;
    if (code != 0 && !conc__ws_close_code_valid(code))
        return CONC_EINVAL;
    if (n && conc__utf8_check(reason, n))
        return CONC_EINVAL;
    int r = send_allowed(c);
    if (r)
        return r;
    r = queue_close(c, code, reason, n);
    if (r) {
        c->close_sent = 0;
        return r;
    }
    c->state = CONC__WS_CLOSING;
    return 0;
}

/* ---- State -------------------------------------------------------------- */

enum conc__ws_state
conc__ws_conn_state(const conc__ws_conn *c)
{
    return c ? c->state : CONC__WS_CLOSED;
}

int
conc__ws_conn_close_expected(const conc__ws_conn *c)
{
    return !c || c->failed || c->eof || (c->close_sent && c->close_received);
}

unsigned
conc__ws_conn_close_code(const conc__ws_conn *c)
{
    return c ? c->close_code : 0;
}
