/* Fuzzes permessage-deflate (src/ws/deflate.c): the negotiation of its
 * parameters and the inflating of what a peer sends, with its limits.
 *
 * Input: a flags byte, a length byte L, L bytes of a
 * Sec-WebSocket-Extensions value, then compressed payload. The flags pick
 * the server's wishes (context takeover, window bits), the decompressing
 * role, the message limit, and how the payload is cut into frames and
 * into two messages.
 *
 * Checked: an offer the server accepts gives parameters in range, and the
 * client reading the server's answer agrees on the same ones; any
 * response a client reads gives parameters in range or a clean refusal;
 * inflating gives 0 or one of the expected errors, never more than the
 * limit (but for the one byte that shows it passed); and what inflated,
 * compressed again by the other side, inflates back to the same bytes. */
#include "conc/error.h"
#include "fuzz.h"
#include "ws/proto.h"

#define SMALL_LIMIT 100
#define HEAD_MAX    512

static const size_t STEPS[4] = {1, 13, 200, SIZE_MAX};

static int
params_ok(const struct conc__ws_deflate_params *p)
{
    return p->server_max_window_bits >= 8 && p->server_max_window_bits <= 15 &&
           p->client_max_window_bits >= 8 && p->client_max_window_bits <= 15;
}

/* Wraps an extension value in an HTTP head and parses it. */
static int
parse_head(const uint8_t *v, size_t n, int request, struct conc__ws_http *h,
           char *buf)
{
    const char *first = request ? "GET / HTTP/1.1\r\nHost: h\r\n"
                                : "HTTP/1.1 101 Switching Protocols\r\n";
    size_t len = strlen(first);
    memcpy(buf, first, len);
    len += (size_t)snprintf(buf + len, HEAD_MAX - len,
                            "Sec-WebSocket-Extensions: %.*s\r\n\r\n", (int)n,
                            (const char *)v);
    size_t used;
    return conc__ws_http_parse(buf, len, request, h, &used);
}

/* The server accepts or declines the offer; the client must agree. */
static void
negotiate(const uint8_t *v, size_t n, const struct conc__ws_deflate_opts *so,
          struct conc__ws_deflate_params *agreed, int *have)
{
    static struct conc__ws_http h, resp;
    char buf[HEAD_MAX], rbuf[HEAD_MAX];
    struct conc__ws_deflate_opts co = {0};
    struct conc__ws_deflate_params p, cp;
    conc_buf answer = CONC_BUF_INIT;
    if (parse_head(v, n, 0, &resp, rbuf) == 0) {
        int r = conc__ws_deflate_accept_response(&resp, &co, &cp);
        FUZZ_CHECK(r == 0 || r == CONC_ENOENT || r == CONC_EPROTO);
        FUZZ_CHECK(r || params_ok(&cp));
    }
    if (parse_head(v, n, 1, &h, buf))
        return;
    int r = conc__ws_deflate_accept_offer(&h, so, &p, &answer);
    FUZZ_CHECK(r == 0 || r == CONC_ENOENT || r == CONC_EPROTO);
    if (r == 0) {
        FUZZ_CHECK(params_ok(&p));
        FUZZ_CHECK(answer.len < 200);
        FUZZ_CHECK(parse_head(answer.data, answer.len, 0, &resp, rbuf) == 0);
        r = conc__ws_deflate_accept_response(&resp, &co, &cp);
        /* A client refuses to send with 8 bits, which it did not offer. */
        FUZZ_CHECK(r == 0 ||
                   (r == CONC_EPROTO && p.client_max_window_bits < 9));
        FUZZ_CHECK(r || memcmp(&p, &cp, sizeof p) == 0);
        *agreed = p;
        *have = r == 0;
    }
    conc_buf_free(&answer);
}

/* Compresses `msg` as the other side and checks it inflates back. */
static void
round_trip(enum conc__ws_role role, const struct conc__ws_deflate_params *p,
           const conc_buf *msg)
{
    conc__ws_deflate *tx = NULL, *rx = NULL;
    conc_buf z = CONC_BUF_INIT, back = CONC_BUF_INIT;
    FUZZ_CHECK(conc__ws_deflate_new(!role, p, NULL, &tx) == 0);
    FUZZ_CHECK(conc__ws_deflate_new(role, p, NULL, &rx) == 0);
    FUZZ_CHECK(conc__ws_deflate_compress(tx, msg->data, msg->len, 1, &z) == 0);
    FUZZ_CHECK(conc__ws_deflate_decompress(rx, z.data, z.len, 1, SIZE_MAX,
                                           &back) == 0);
    FUZZ_CHECK(back.len == msg->len);
    FUZZ_CHECK(!msg->len || memcmp(back.data, msg->data, msg->len) == 0);
    conc_buf_free(&z);
    conc_buf_free(&back);
    conc__ws_deflate_free(tx);
    conc__ws_deflate_free(rx);
}

/* Inflates one message from data[0..n) in frames of `step` bytes. */
static void
inflate_message(conc__ws_deflate *d, enum conc__ws_role role,
                const struct conc__ws_deflate_params *p, const uint8_t *data,
                size_t n, size_t step, size_t limit)
{
    conc_buf out = CONC_BUF_INIT;
    int r = 0;
    size_t i = 0;
    do {
        size_t k = n - i < step ? n - i : step;
        r = conc__ws_deflate_decompress(d, data + i, k, i + k == n, limit,
                                        &out);
        i += k;
        FUZZ_CHECK(r == 0 || r == CONC_EMSGSIZE || r == CONC_EPROTO ||
                   r == CONC_ENOMEM);
        /* One byte past the limit is how inflating sees it passed. */
        FUZZ_CHECK(out.len <= limit ||
                   (r == CONC_EMSGSIZE && out.len == limit + 1));
    } while (r == 0 && i < n);
    if (r == 0)
        round_trip(role, p, &out);
    conc_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || (size_t)data[1] > size - 2)
        return 0;
    uint8_t f = data[0];
    struct conc__ws_deflate_opts so = {.server_no_context_takeover = f & 1,
                                       .client_no_context_takeover = !!(f & 2),
                                       .server_max_window_bits = f & 4 ? 9 : 0,
                                       .client_max_window_bits =
                                           f & 4 ? 10 : 0};
    struct conc__ws_deflate_params p = {!!(f & 1), !!(f & 2), 15, 15};
    int have = 0;
    negotiate(data + 2, data[1], &so, &p, &have);
    if (!have)
        p = (struct conc__ws_deflate_params){!!(f & 1), !!(f & 2), 15, 15};
    enum conc__ws_role role = f & 8 ? CONC__WS_CLIENT : CONC__WS_SERVER;
    size_t limit = f & 16 ? SMALL_LIMIT : CONC__WS_MAX_MESSAGE_DEFAULT;
    size_t step = STEPS[(f >> 5) & 3];
    const uint8_t *z = data + 2 + data[1];
    size_t zn = size - 2 - data[1];
    conc__ws_deflate *d = NULL;
    FUZZ_CHECK(conc__ws_deflate_new(role, &p, NULL, &d) == 0);
    /* Two messages, so that context takeover carries a window over. */
    size_t half = f & 128 ? zn / 2 : zn;
    inflate_message(d, role, &p, z, half, step, limit);
    if (half < zn)
        inflate_message(d, role, &p, z + half, zn - half, step, limit);
    conc__ws_deflate_free(d);
    return 0;
}
