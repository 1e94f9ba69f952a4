/* Fuzzes the WebSocket connection's receiving side, conc__ws_conn_receive
 * (src/ws/conn.c, frame.c, utf8.c, deflate.c): whatever a peer sends.
 * The first input byte picks the role, permessage-deflate and its context
 * takeover, a small or the default message limit, and the size of the
 * pieces the rest of the input is fed in. Every verdict is checked: an
 * error is one of the three protocol failures (or out of memory) and
 * leaves the matching close code; text events are valid UTF-8 and no
 * message passes the limit; each message, sent back by a connection of
 * the other role, arrives unchanged. */
#include "conc/error.h"
#include "fuzz.h"
#include "ws/proto.h"

static const size_t STEPS[4] = {1, 7, 64, SIZE_MAX};

static conc__ws_conn *
make(enum conc__ws_role role, size_t max,
     const struct conc__ws_deflate_params *pd)
{
    struct conc__ws_conn_opts o = {
        .role = role, .max_message = max, .deflate = pd};
    conc__ws_conn *c = NULL;
    FUZZ_CHECK(conc__ws_conn_new(&o, &c) == 0);
    return c;
}

/* Sends a received message back through a pair of the other roles and
 * checks that it arrives intact. */
static void
echo(const struct conc__ws_event *ev, enum conc__ws_role role,
     const struct conc__ws_deflate_params *pd)
{
    conc__ws_conn *tx = make(role, SIZE_MAX, pd);
    conc__ws_conn *rx = make(!role, SIZE_MAX, pd);
    unsigned op =
        ev->type == CONC__WS_EV_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
    conc_buf out = CONC_BUF_INIT;
    FUZZ_CHECK(conc__ws_conn_send(tx, op, ev->data.data, ev->data.len) == 0);
    FUZZ_CHECK(conc__ws_conn_take_output(tx, &out) == 0);
    FUZZ_CHECK(conc__ws_conn_receive(rx, out.data, out.len) == 0);
    struct conc__ws_event back;
    FUZZ_CHECK(conc__ws_conn_next_event(rx, &back) == 0);
    FUZZ_CHECK(back.type == ev->type && back.data.len == ev->data.len);
    FUZZ_CHECK(!back.data.len ||
               memcmp(back.data.data, ev->data.data, back.data.len) == 0);
    conc_buf_free(&back.data);
    conc_buf_free(&out);
    conc__ws_conn_free(tx);
    conc__ws_conn_free(rx);
}

static void
check_events(conc__ws_conn *c, size_t max, enum conc__ws_role role,
             const struct conc__ws_deflate_params *pd)
{
    struct conc__ws_event ev;
    while (conc__ws_conn_next_event(c, &ev) == 0) {
        switch (ev.type) {
        case CONC__WS_EV_TEXT:
            FUZZ_CHECK(conc__utf8_check(ev.data.data, ev.data.len) == 0);
            /* fall through */
        case CONC__WS_EV_BINARY:
            FUZZ_CHECK(ev.data.len <= max);
            echo(&ev, role, pd);
            break;
        case CONC__WS_EV_CLOSE:
            FUZZ_CHECK(ev.code == CONC__WS_CLOSE_NO_STATUS ||
                       conc__ws_close_code_valid(ev.code));
            FUZZ_CHECK(conc__utf8_check(ev.data.data, ev.data.len) == 0);
            /* fall through */
        default:
            FUZZ_CHECK(ev.data.len <= CONC__WS_CONTROL_MAX);
        }
        conc_buf_free(&ev.data);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    enum conc__ws_role role = flags & 1 ? CONC__WS_CLIENT : CONC__WS_SERVER;
    struct conc__ws_deflate_params pd = {!!(flags & 4), !!(flags & 8), 15, 15};
    const struct conc__ws_deflate_params *pdp = flags & 2 ? &pd : NULL;
    size_t max = flags & 16 ? 64 : 0;
    size_t step = STEPS[(flags >> 5) & 3];
    conc__ws_conn *c = make(role, max, pdp);
    max = max ? max : CONC__WS_MAX_MESSAGE_DEFAULT;
    data++;
    size--;
    for (size_t i = 0; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        int r = conc__ws_conn_receive(c, data + i, n);
        if (r) {
            FUZZ_CHECK(r == CONC_EPROTO || r == CONC_EVALUE ||
                       r == CONC_EMSGSIZE || r == CONC_ENOMEM);
            FUZZ_CHECK(conc__ws_conn_close_code(c) ==
                       conc__ws_close_code_for(r));
            FUZZ_CHECK(conc__ws_conn_close_expected(c));
        }
        check_events(c, max, role, pdp);
    }
    conc_buf out = CONC_BUF_INIT;
    FUZZ_CHECK(conc__ws_conn_take_output(c, &out) == 0);
    conc_buf_free(&out);
    FUZZ_CHECK(conc__ws_conn_receive_eof(c) == 0);
    FUZZ_CHECK(conc__ws_conn_state(c) == CONC__WS_CLOSED);
    conc__ws_conn_free(c);
    return 0;
}
