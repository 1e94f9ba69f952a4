/* Fuzzes the WebSocket handshake parsers (src/ws/handshake.c,
 * deflate.c): a server reading a client's request, and a client reading
 * a server's response, with the Sec-WebSocket-Extensions grammar under
 * both. The first input byte picks the side. Invariants: every span
 * points inside the input; an upgrade the server accepts yields a 101
 * response that a client holding the same key accepts, with the same
 * negotiated permessage-deflate parameters; a response never passes a
 * client's check with a key it was not made for. */
#include "conc/error.h"
#include "fuzz.h"
#include "ws/proto.h"

static struct conc__ws_http req, resp;

static int
inside(struct conc__ws_span s, const char *p, size_t n)
{
    return !s.n || (s.p >= p && s.p + s.n <= p + n);
}

static void
check_spans(const struct conc__ws_http *h, const char *p, size_t n)
{
    FUZZ_CHECK(h->nheaders <= CONC__WS_HTTP_MAX_HEADERS);
    for (size_t i = 0; i < h->nheaders; i++) {
        FUZZ_CHECK(inside(h->headers[i].name, p, n) && h->headers[i].name.n);
        FUZZ_CHECK(inside(h->headers[i].value, p, n));
    }
}

/* The server's answer, read back by a client that offered everything. */
static void
answer(const struct conc__ws_upgrade *u)
{
    char key[CONC__WS_KEY_LEN + 1], accept[CONC__WS_ACCEPT_LEN + 1];
    memcpy(key, u->key.p, CONC__WS_KEY_LEN);
    key[CONC__WS_KEY_LEN] = 0;
    FUZZ_CHECK(conc__ws_accept(key, CONC__WS_KEY_LEN, accept) == 0);
    struct conc__ws_deflate_opts so = {0}, co = {0};
    struct conc__ws_deflate_params sp, cp;
    conc_buf ext = CONC_BUF_INIT, out = CONC_BUF_INIT;
    int r = conc__ws_deflate_accept_offer(&req, &so, &sp, &ext);
    FUZZ_CHECK(r == 0 || r == CONC_ENOENT || r == CONC_EPROTO);
    if (r == 0)
        FUZZ_CHECK(conc_buf_append(&ext, "", 1) == 0); /* NUL-terminate */
    FUZZ_CHECK(conc__ws_response_build(&out, accept, NULL,
                                       r == 0 ? (char *)ext.data : NULL,
                                       NULL) == 0);
    size_t used;
    FUZZ_CHECK(
        conc__ws_http_parse((char *)out.data, out.len, 0, &resp, &used) == 0 &&
        used == out.len);
    const char *sub;
    FUZZ_CHECK(conc__ws_response_check(&resp, key, NULL, 0, &sub) == 0);
    int cr = conc__ws_deflate_accept_response(&resp, &co, &cp);
    /* A client that asked for nothing may still refuse the server's
     * choice of 8 bits for the client; otherwise both sides agree. */
    if (r == 0 && cr == 0)
        FUZZ_CHECK(memcmp(&sp, &cp, sizeof sp) == 0);
    else if (r == 0)
        FUZZ_CHECK(cr == CONC_EPROTO && sp.client_max_window_bits == 8);
    else if (r != 0)
        FUZZ_CHECK(cr == CONC_ENOENT);
    conc_buf_free(&ext);
    conc_buf_free(&out);
}

static void
server_side(const char *p, size_t n)
{
    size_t used;
    int r = conc__ws_http_parse(p, n, 1, &req, &used);
    if (r) {
        FUZZ_CHECK(r == CONC_EAGAIN || r == CONC_EPROTO || r == CONC_EMSGSIZE);
        return;
    }
    FUZZ_CHECK(used <= n);
    check_spans(&req, p, used);
    struct conc__ws_upgrade u;
    r = conc__ws_upgrade_check(&req, &u);
    FUZZ_CHECK(r == 0 || r == CONC_ENOENT || r == CONC_EPROTO ||
               r == CONC_EVALUE);
    const char *supported[] = {"chat", "superchat"}, *chosen;
    r = conc__ws_subprotocol_select(&req, supported, 2, &chosen);
    FUZZ_CHECK(r == 0 ? chosen != NULL : (r == CONC_ENOENT && !chosen));
    if (conc__ws_upgrade_check(&req, &u) == 0) {
        FUZZ_CHECK(u.key.n == CONC__WS_KEY_LEN && inside(u.key, p, n));
        answer(&u);
    }
}

static void
client_side(const char *p, size_t n)
{
    size_t used;
    int r = conc__ws_http_parse(p, n, 0, &resp, &used);
    if (r)
        return;
    check_spans(&resp, p, used);
    const char *offered[] = {"chat"}, *sub;
    r = conc__ws_response_check(&resp, "dGhlIHNhbXBsZSBub25jZQ==", offered, 1,
                                &sub);
    FUZZ_CHECK(r == 0 || r == CONC_EPROTO);
    FUZZ_CHECK(r != 0 || sub == NULL || sub == offered[0]);
    struct conc__ws_deflate_opts co = {.server_max_window_bits = 12};
    struct conc__ws_deflate_params cp;
    r = conc__ws_deflate_accept_response(&resp, &co, &cp);
    FUZZ_CHECK(r == 0 || r == CONC_ENOENT || r == CONC_EPROTO);
    if (r == 0)
        FUZZ_CHECK(cp.server_max_window_bits <= 12 &&
                   cp.client_max_window_bits >= 9 &&
                   cp.client_max_window_bits <= 15);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    if (data[0] & 1)
        client_side(p, size - 1);
    else
        server_side(p, size - 1);
    /* The whole input as an extension header value. */
    struct conc__ws_span rest = {p, size - 1};
    struct conc__ws_ext ext;
    int r;
    while ((r = conc__ws_ext_next(&rest, &ext)) == 0) {
        FUZZ_CHECK(inside(ext.name, p, size - 1) && ext.name.n);
        FUZZ_CHECK(ext.nparams <= CONC__WS_EXT_MAX_PARAMS);
    }
    FUZZ_CHECK(r == CONC_ENOENT || r == CONC_EPROTO);
    return 0;
}
