/* Layer 5: the WebSocket protocol engine without I/O (src/ws/proto.h):
 * frames, masking, UTF-8, the handshake, permessage-deflate and the
 * connection state machine, driven with bytes only.
 *
 * Byte-for-byte vectors come from RFC 6455 section 5.7 (frames) and 1.3
 * (the accept key), and RFC 7692 section 7.2.3 (compressed messages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc_test.h"
#include "ws/proto.h"

#define U8(...) ((const uint8_t[]){__VA_ARGS__})

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7 */

static void
assert_bytes(const conc_buf *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static conc__ws_conn *
new_conn(enum conc__ws_role role, size_t max_message,
         const struct conc__ws_deflate_params *deflate)
{
    struct conc__ws_conn_opts o = {
        .role = role, .max_message = max_message, .deflate = deflate};
    conc__ws_conn *c = NULL;
    assert_conc_ok(conc__ws_conn_new(&o, &c));
    return c;
}

/* Takes the next event and checks its type and data. */
static void
expect_event(conc__ws_conn *c, enum conc__ws_event_type type, const void *data,
             size_t n)
{
    struct conc__ws_event ev;
    assert_conc_ok(conc__ws_conn_next_event(c, &ev));
    assert_int_equal(ev.type, type);
    assert_int_equal(ev.data.len, n);
    if (n)
        assert_memory_equal(ev.data.data, data, n);
    conc_buf_free(&ev.data);
}

static void
expect_no_event(conc__ws_conn *c)
{
    struct conc__ws_event ev;
    assert_conc(conc__ws_conn_next_event(c, &ev), CONC_EEMPTY);
}

static void
expect_output(conc__ws_conn *c, const uint8_t *want, size_t n)
{
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_conn_take_output(c, &out));
    assert_bytes(&out, want, n);
    conc_buf_free(&out);
}

/* ---- Frames: RFC 6455 section 5.7 ------------------------------------- */

static void
test_rfc6455_examples_serialize(void **state)
{
    (void)state;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&b, 0x81, "Hello", 5, NULL));
    assert_bytes(&b, U8(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), 7);
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x81, "Hello", 5, KEY));
    assert_bytes(
        &b,
        U8(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
        11);
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x01, "Hel", 3, NULL));
    assert_conc_ok(conc__ws_frame_append(&b, 0x80, "lo", 2, NULL));
    assert_bytes(&b, U8(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f),
                 9);
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x89, "Hello", 5, NULL));
    assert_bytes(&b, U8(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), 7);
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x8a, "Hello", 5, KEY));
    assert_bytes(
        &b,
        U8(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
        11);
    /* 256 bytes and 64 KiB of binary data in one unmasked frame. */
    static uint8_t big[65536];
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x82, big, 256, NULL));
    assert_int_equal(b.len, 4 + 256);
    assert_memory_equal(b.data, U8(0x82, 0x7e, 0x01, 0x00), 4);
    b.len = 0;
    assert_conc_ok(conc__ws_frame_append(&b, 0x82, big, sizeof big, NULL));
    assert_int_equal(b.len, 10 + sizeof big);
    assert_memory_equal(b.data, U8(0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00),
                        10);
    conc_buf_free(&b);
    assert_conc(conc__ws_frame_append(NULL, 0x81, "", 0, NULL), CONC_EINVAL);
}

static void
test_rfc6455_examples_parse(void **state)
{
    (void)state;
    struct conc__ws_frame f;
    const uint8_t *masked =
        U8(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    assert_conc_ok(conc__ws_frame_parse(masked, 11, CONC__WS_SERVER, &f));
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, CONC__WS_TEXT);
    assert_int_equal(f.len, 5);
    assert_int_equal(f.header_len, 6);
    assert_memory_equal(f.mask, KEY, 4);
    uint8_t plain[5];
    conc__ws_mask_copy(plain, masked + 6, 5, f.mask, 0);
    assert_memory_equal(plain, "Hello", 5);
    /* The same frame is refused by a client: servers never mask. */
    assert_conc(conc__ws_frame_parse(masked, 11, CONC__WS_CLIENT, &f),
                CONC_EPROTO);
    /* Every prefix of a header is incomplete, never an error. */
    const uint8_t *len64 = U8(0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
    for (size_t n = 0; n < 10; n++)
        assert_conc(conc__ws_frame_parse(len64, n, CONC__WS_CLIENT, &f),
                    CONC_EAGAIN);
    assert_conc_ok(conc__ws_frame_parse(len64, 10, CONC__WS_CLIENT, &f));
    assert_int_equal(f.len, 65536);
    assert_int_equal(f.header_len, 10);
    const uint8_t *len16 = U8(0x82, 0x7e, 0x01, 0x00);
    assert_conc_ok(conc__ws_frame_parse(len16, 4, CONC__WS_CLIENT, &f));
    assert_int_equal(f.len, 256);
    /* The top bit of a 64-bit length must be 0. */
    const uint8_t *huge = U8(0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0);
    assert_conc(conc__ws_frame_parse(huge, 10, CONC__WS_CLIENT, &f),
                CONC_EPROTO);
    assert_conc(conc__ws_frame_parse(NULL, 0, CONC__WS_CLIENT, &f),
                CONC_EINVAL);
}

static void
test_mask_word_at_a_time(void **state)
{
    (void)state;
    uint8_t src[301], fast[301], slow[301];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (size_t off = 0; off < 5; off++)
        for (size_t start = 0; start < 9; start++)
            for (size_t n = 0; n + start <= 40; n += 3) {
                for (size_t i = 0; i < n; i++)
                    slow[i] = src[start + i] ^ KEY[(off + i) & 3];
                conc__ws_mask_copy(fast, src + start, n, KEY, off);
                assert_memory_equal(fast, slow, n);
            }
    /* In place, in pieces: the same as all at once. */
    memcpy(fast, src, sizeof src);
    conc__ws_mask_copy(fast, fast, 13, KEY, 0);
    conc__ws_mask_copy(fast + 13, fast + 13, sizeof src - 13, KEY, 13);
    conc__ws_mask_copy(slow, src, sizeof src, KEY, 0);
    assert_memory_equal(fast, slow, sizeof src);
}

static void
test_close_payload(void **state)
{
    (void)state;
    unsigned code;
    const uint8_t *reason;
    size_t rn;
    assert_conc_ok(conc__ws_close_parse(NULL, 0, &code, &reason, &rn));
    assert_int_equal(code, CONC__WS_CLOSE_NO_STATUS);
    assert_conc_ok(
        conc__ws_close_parse(U8(0x03, 0xe8, 'o', 'k'), 4, &code, &reason, &rn));
    assert_int_equal(code, 1000);
    assert_int_equal(rn, 2);
    assert_memory_equal(reason, "ok", 2);
    assert_conc(conc__ws_close_parse(U8(0x03), 1, &code, &reason, &rn),
                CONC_EPROTO);
    /* Autobahn 7.9.x's invalid codes, and 7.7.x's valid ones. */
    static const unsigned bad[] = {0,    999,  1004, 1005, 1006, 1015,
                                   1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(conc__ws_close_code_valid(bad[i]), 0);
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(conc__ws_close_code_valid(good[i]), 1);
    assert_conc(
        conc__ws_close_parse(U8(0x03, 0xe8, 0xff), 3, &code, &reason, &rn),
        CONC_EVALUE);
    assert_int_equal(conc__ws_close_code_for(CONC_EPROTO), 1002);
    assert_int_equal(conc__ws_close_code_for(CONC_EVALUE), 1007);
    assert_int_equal(conc__ws_close_code_for(CONC_EMSGSIZE), 1009);
    assert_int_equal(conc__ws_close_code_for(CONC_ENOMEM), 1011);
}

/* ---- UTF-8 ----------------------------------------------------------------
 */

static void
test_utf8(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "",
        "Hello",
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        "\xef\xbf\xbd",
        "\xf4\x8f\xbf\xbf",
        "\xf0\x90\x80\x80",
        "long ASCII text that runs past one word"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        assert_conc_ok(
            conc__utf8_check((const uint8_t *)valid[i], strlen(valid[i])));
    static const char *const invalid[] = {"\x80",
                                          "\xbf",
                                          "\xc0\x80",
                                          "\xc1\xbf",
                                          "\xe0\x80\x80",
                                          "\xe0\x9f\xbf",
                                          "\xed\xa0\x80",
                                          "\xed\xbf\xbf",
                                          "\xf0\x80\x80\x80",
                                          "\xf4\x90\x80\x80",
                                          "\xf5\x80\x80\x80",
                                          "\xff",
                                          "\xce",
                                          "abc\xe1\xbd",
                                          "12345678\xc3"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_conc(
            conc__utf8_check((const uint8_t *)invalid[i], strlen(invalid[i])),
            CONC_EVALUE);
    /* Across pieces, and fail-fast: "\xf4\x90" fails at its second byte,
     * before the character could be completed (Autobahn 6.4.1). */
    struct conc__utf8 s;
    conc__utf8_reset(&s);
    const uint8_t *k = (const uint8_t *)"\xce\xba\xe1\xbd\xb9";
    for (size_t i = 0; i < 5; i++)
        assert_conc_ok(conc__utf8_feed(&s, k + i, 1));
    assert_conc_ok(conc__utf8_finish(&s));
    assert_conc_ok(conc__utf8_feed(&s, U8(0xf4), 1));
    assert_conc(conc__utf8_finish(&s), CONC_EVALUE);
    assert_conc(conc__utf8_feed(&s, U8(0x90), 1), CONC_EVALUE);
}

/* ---- Handshake --------------------------------------------------------------
 */

static void
test_accept_key_rfc_example(void **state)
{
    (void)state;
    char out[CONC__WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_conc_ok(conc__ws_accept(key, strlen(key), out));
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char k1[CONC__WS_KEY_LEN + 1], k2[CONC__WS_KEY_LEN + 1];
    assert_conc_ok(conc__ws_key_new(k1));
    assert_conc_ok(conc__ws_key_new(k2));
    assert_int_equal(strlen(k1), CONC__WS_KEY_LEN);
    assert_string_not_equal(k1, k2);
    assert_conc(conc__ws_accept(NULL, 0, out), CONC_EINVAL);
}

static int
parse_request(const char *text, struct conc__ws_http *h)
{
    size_t used = 0;
    int r = conc__ws_http_parse(text, strlen(text), 1, h, &used);
    if (r == 0)
        assert_int_equal(used, strlen(text));
    return r;
}

static void
test_handshake_round_trip(void **state)
{
    (void)state;
    static struct conc__ws_http h;
    char key[CONC__WS_KEY_LEN + 1], accept[CONC__WS_ACCEPT_LEN + 1];
    const char *offered[] = {"chat", "superchat"};
    struct conc__ws_request_opts ro = {.host = "example.com:80",
                                       .path = "/chat?x=1",
                                       .origin = "http://example.com",
                                       .subprotocols = offered,
                                       .nsubprotocols = 2,
                                       .extra_headers = "X-Trace: 1\r\n"};
    conc_buf req = CONC_BUF_INIT, resp = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_key_new(key));
    assert_conc_ok(conc__ws_request_build(&req, &ro, key));
    /* The server side. */
    size_t used;
    for (size_t n = 0; n < req.len; n++)
        assert_conc(conc__ws_http_parse((char *)req.data, n, 1, &h, &used),
                    CONC_EAGAIN);
    assert_conc_ok(
        conc__ws_http_parse((char *)req.data, req.len, 1, &h, &used));
    assert_int_equal(used, req.len);
    struct conc__ws_upgrade u;
    assert_conc_ok(conc__ws_upgrade_check(&h, &u));
    assert_int_equal(u.key.n, CONC__WS_KEY_LEN);
    assert_memory_equal(u.key.p, key, CONC__WS_KEY_LEN);
    assert_int_equal(u.origin.n, strlen("http://example.com"));
    struct conc__ws_span v;
    assert_conc_ok(conc__ws_http_header(&h, "x-trace", 0, &v));
    assert_int_equal(v.n, 1);
    const char *supported[] = {"superchat", "chat"};
    const char *chosen;
    assert_conc_ok(conc__ws_subprotocol_select(&h, supported, 2, &chosen));
    assert_string_equal(chosen, "superchat");
    assert_conc(
        conc__ws_subprotocol_select(&h, (const char *[]){"x"}, 1, &chosen),
        CONC_ENOENT);
    assert_conc_ok(conc__ws_accept(u.key.p, u.key.n, accept));
    assert_conc_ok(
        conc__ws_response_build(&resp, accept, "superchat", NULL, NULL));
    /* The client side. */
    const char *sub;
    assert_conc_ok(
        conc__ws_http_parse((char *)resp.data, resp.len, 0, &h, &used));
    assert_int_equal(h.status, 101);
    assert_conc_ok(conc__ws_response_check(&h, key, offered, 2, &sub));
    assert_string_equal(sub, "superchat");
    assert_conc(conc__ws_response_check(&h, key, offered, 1, &sub),
                CONC_EPROTO);
    char other[CONC__WS_KEY_LEN + 1];
    assert_conc_ok(conc__ws_key_new(other));
    assert_conc(conc__ws_response_check(&h, other, offered, 2, &sub),
                CONC_EPROTO);
    conc_buf_free(&req);
    conc_buf_free(&resp);
}

static void
test_handshake_refusals(void **state)
{
    (void)state;
    static struct conc__ws_http h;
    struct conc__ws_upgrade u;
    const char *good = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
                       "Connection: keep-alive, Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_conc_ok(parse_request(good, &h));
    assert_conc_ok(conc__ws_upgrade_check(&h, &u));
    /* Plain HTTP (a health check) is for the caller to answer. */
    assert_conc_ok(
        parse_request("GET /health HTTP/1.1\r\nHost: h\r\n\r\n", &h));
    assert_conc(conc__ws_upgrade_check(&h, &u), CONC_ENOENT);
    assert_conc_ok(parse_request(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 8\r\n\r\n",
        &h));
    assert_conc(conc__ws_upgrade_check(&h, &u), CONC_EVALUE);
    assert_conc_ok(parse_request(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: short==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        &h));
    assert_conc(conc__ws_upgrade_check(&h, &u), CONC_EPROTO);
    assert_conc_ok(parse_request(
        "POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        &h));
    assert_conc(conc__ws_upgrade_check(&h, &u), CONC_EPROTO);
    /* Malformed heads. */
    assert_conc(parse_request("GET / HTTP/1.0\r\n\r\n", &h), CONC_EPROTO);
    assert_conc(parse_request("GET / HTTP/1.1\r\nA\nB: c\r\n\r\n", &h),
                CONC_EPROTO);
    assert_conc(parse_request("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &h),
                CONC_EPROTO);
    assert_conc(parse_request("GET / HTTP/1.1\r\nBad Name: b\r\n\r\n", &h),
                CONC_EPROTO);
    assert_conc(parse_request("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", &h),
                CONC_EPROTO);
    size_t used;
    char *big = malloc(CONC__WS_HTTP_MAX_HEAD + 1);
    memset(big, 'a', CONC__WS_HTTP_MAX_HEAD + 1);
    assert_conc(
        conc__ws_http_parse(big, CONC__WS_HTTP_MAX_HEAD + 1, 1, &h, &used),
        CONC_EMSGSIZE);
    free(big);
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(
        conc__ws_http_response_build(&out, 403, "Forbidden", NULL, "no", 2));
    assert_conc_ok(
        conc__ws_http_parse((char *)out.data, out.len, 0, &h, &used));
    assert_int_equal(h.status, 403);
    assert_int_equal(out.len - used, 2);
    /* A header value with a line break is refused, and out is unchanged. */
    struct conc__ws_request_opts ro = {.host = "h\r\nX: y", .path = "/"};
    assert_conc(conc__ws_request_build(&out, &ro, "k"), CONC_EINVAL);
    assert_int_equal(h.status, 403);
    assert_memory_equal(out.data, "HTTP/1.1 403", 12);
    conc_buf_free(&out);
}

static void
test_extension_header_grammar(void **state)
{
    (void)state;
    const char *text = "permessage-deflate; client_max_window_bits, ,"
                       "permessage-deflate ; server_max_window_bits=\"10\" ;"
                       "client_no_context_takeover,x-other";
    struct conc__ws_span rest = {text, strlen(text)};
    struct conc__ws_ext e;
    assert_conc_ok(conc__ws_ext_next(&rest, &e));
    assert_int_equal(e.nparams, 1);
    assert_null(e.params[0].value.p);
    assert_conc_ok(conc__ws_ext_next(&rest, &e));
    assert_int_equal(e.nparams, 2);
    assert_int_equal(e.params[0].value.n, 2);
    assert_memory_equal(e.params[0].value.p, "10", 2);
    assert_conc_ok(conc__ws_ext_next(&rest, &e));
    assert_int_equal(e.name.n, 7);
    assert_conc(conc__ws_ext_next(&rest, &e), CONC_ENOENT);
    static const char *const bad[] = {"a;",  "a; =1",        "a; b=\"1",
                                      "a b", "a; b=\"\\1\"", "a; b=1 c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct conc__ws_span s = {bad[i], strlen(bad[i])};
        assert_conc(conc__ws_ext_next(&s, &e), CONC_EPROTO);
    }
}

static void
negotiate(const char *offer_header, const struct conc__ws_deflate_opts *so,
          int want, struct conc__ws_deflate_params *p, const char *want_resp)
{
    static struct conc__ws_http h;
    char req[512];
    snprintf(
        req, sizeof req,
        "GET / HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Extensions: %s\r\n\r\n",
        offer_header);
    assert_conc_ok(parse_request(req, &h));
    conc_buf resp = CONC_BUF_INIT;
    assert_conc(conc__ws_deflate_accept_offer(&h, so, p, &resp), want);
    if (want_resp) {
        assert_int_equal(resp.len, strlen(want_resp));
        assert_memory_equal(resp.data, want_resp, resp.len);
    }
    conc_buf_free(&resp);
}

static void
test_deflate_negotiation(void **state)
{
    (void)state;
    struct conc__ws_deflate_opts dflt = {0};
    struct conc__ws_deflate_params p;
    /* Chromium's offer: the server picks 12 bits for the client too. */
    negotiate("permessage-deflate; client_max_window_bits", &dflt, 0, &p,
              "permessage-deflate; client_max_window_bits=12");
    assert_int_equal(p.server_max_window_bits, 15); /* not announced */
    assert_int_equal(p.client_max_window_bits, 12);
    /* Without client_max_window_bits the client may use 15 bits. */
    negotiate("permessage-deflate", &dflt, 0, &p, "permessage-deflate");
    assert_int_equal(p.client_max_window_bits, 15);
    negotiate("permessage-deflate; server_max_window_bits=10; "
              "server_no_context_takeover",
              &dflt, 0, &p,
              "permessage-deflate; server_no_context_takeover; "
              "server_max_window_bits=10");
    assert_int_equal(p.server_max_window_bits, 10);
    assert_int_equal(p.server_no_context_takeover, 1);
    /* Declined offers, then one that fits. */
    negotiate("permessage-deflate; server_max_window_bits=8, "
              "permessage-deflate; foo, permessage-deflate; "
              "client_max_window_bits=16, x-webkit-deflate-frame, "
              "permessage-deflate; client_max_window_bits=9",
              &dflt, 0, &p, "permessage-deflate; client_max_window_bits=9");
    negotiate("permessage-deflate; server_no_context_takeover=1", &dflt,
              CONC_ENOENT, &p, NULL);
    negotiate("permessage-deflate; client_max_window_bits=08", &dflt,
              CONC_ENOENT, &p, NULL);
    negotiate("permessage-deflate;;", &dflt, CONC_EPROTO, &p, NULL);
    /* The client's side of it. */
    conc_buf offer = CONC_BUF_INIT;
    struct conc__ws_deflate_opts co = {.server_max_window_bits = 10};
    assert_conc_ok(conc__ws_deflate_offer(&offer, &co));
    assert_int_equal(offer.len, strlen("permessage-deflate; "
                                       "server_max_window_bits=10; "
                                       "client_max_window_bits"));
    conc_buf_free(&offer);
    static struct conc__ws_http h;
    size_t used;
    const char *ok = "HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: "
                     "permessage-deflate; server_max_window_bits=10; "
                     "client_max_window_bits=11\r\n\r\n";
    assert_conc_ok(conc__ws_http_parse(ok, strlen(ok), 0, &h, &used));
    assert_conc_ok(conc__ws_deflate_accept_response(&h, &co, &p));
    assert_int_equal(p.server_max_window_bits, 10);
    assert_int_equal(p.client_max_window_bits, 11);
    static const char *const bad[] = {
        "permessage-deflate; server_max_window_bits=11",
        "permessage-deflate; client_max_window_bits=9",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate, permessage-deflate",
        "x-other",
        "permessage-deflate; bogus"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char resp[256];
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: %s\r\n\r\n",
                 bad[i]);
        assert_conc_ok(conc__ws_http_parse(resp, strlen(resp), 0, &h, &used));
        assert_conc(conc__ws_deflate_accept_response(&h, &co, &p), CONC_EPROTO);
    }
}

/* ---- The connection: protocol violations -------------------------------- */

/* Feeds one masked client frame to a fresh server and checks that it fails
 * the connection with `code` and queues the matching close frame. */
static void
expect_failure(uint8_t first, const void *payload, size_t n, size_t max,
               const struct conc__ws_deflate_params *deflate, int err,
               unsigned code)
{
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, max, deflate);
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, first, payload, n, KEY));
    assert_conc(conc__ws_conn_receive(c, in.data, in.len), err);
    assert_int_equal(conc__ws_conn_close_code(c), code);
    assert_int_equal(conc__ws_conn_state(c), CONC__WS_CLOSING);
    assert_true(conc__ws_conn_close_expected(c));
    expect_output(c, U8(0x88, 0x02, (uint8_t)(code >> 8), (uint8_t)code), 4);
    /* Later input is ignored. */
    assert_conc_ok(conc__ws_conn_receive(c, in.data, in.len));
    expect_no_event(c);
    conc_buf_free(&in);
    conc__ws_conn_free(c);
}

static void
test_violations_1002(void **state)
{
    (void)state;
    static const uint8_t ping126[126];
    expect_failure(0x83, "x", 1, 0, NULL, CONC_EPROTO, 1002); /* opcode 3 */
    expect_failure(0x8b, "", 0, 0, NULL, CONC_EPROTO, 1002);  /* opcode B */
    expect_failure(0xa1, "x", 1, 0, NULL, CONC_EPROTO, 1002); /* RSV2 */
    expect_failure(0x91, "x", 1, 0, NULL, CONC_EPROTO, 1002); /* RSV3 */
    expect_failure(0xc1, "x", 1, 0, NULL, CONC_EPROTO, 1002); /* RSV1 */
    expect_failure(0x09, "", 0, 0, NULL, CONC_EPROTO, 1002);  /* ping, !FIN */
    expect_failure(0x89, ping126, 126, 0, NULL, CONC_EPROTO, 1002);
    expect_failure(0x80, "x", 1, 0, NULL, CONC_EPROTO, 1002); /* lone CONT */
    expect_failure(0x88, "\x03", 1, 0, NULL, CONC_EPROTO, 1002);
    expect_failure(0x88, "\x03\xed", 2, 0, NULL, CONC_EPROTO, 1002); /* 1005 */
    expect_failure(0x88, "\x03\xe7", 2, 0, NULL, CONC_EPROTO, 1002); /* 999 */
    struct conc__ws_deflate_params pd = {0, 0, 15, 15};
    expect_failure(0xc9, "", 0, 0, &pd, CONC_EPROTO, 1002); /* RSV1 ping */
    /* RSV1 belongs on a compressed message's first frame only. */
    conc__ws_conn *d = new_conn(CONC__WS_SERVER, 0, &pd);
    conc_buf fr = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&fr, 0x41, "\xf2\x48", 2, KEY));
    assert_conc_ok(conc__ws_frame_append(&fr, 0xc0, "\xcd", 1, KEY));
    assert_conc(conc__ws_conn_receive(d, fr.data, fr.len), CONC_EPROTO);
    conc_buf_free(&fr);
    conc__ws_conn_free(d);
    /* An unmasked frame sent to a server. */
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
    assert_conc(conc__ws_conn_receive(c, U8(0x81, 0x01, 'x'), 3), CONC_EPROTO);
    assert_int_equal(conc__ws_conn_close_code(c), 1002);
    conc__ws_conn_free(c);
    /* A new message while a fragmented one is open. */
    c = new_conn(CONC__WS_SERVER, 0, NULL);
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x01, "a", 1, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x81, "b", 1, KEY));
    assert_conc(conc__ws_conn_receive(c, in.data, in.len), CONC_EPROTO);
    assert_int_equal(conc__ws_conn_close_code(c), 1002);
    expect_no_event(c);
    conc_buf_free(&in);
    conc__ws_conn_free(c);
}

static void
test_violations_1007_1009(void **state)
{
    (void)state;
    expect_failure(0x81, "\xce\xba\xff", 3, 0, NULL, CONC_EVALUE, 1007);
    expect_failure(0x81, "\xce", 1, 0, NULL, CONC_EVALUE, 1007); /* cut */
    /* Fail fast: a fragment that cannot begin valid text fails at once,
     * before the message ends (Autobahn 6.4.x). */
    expect_failure(0x01, "\xce\xba\xf4\x90", 4, 0, NULL, CONC_EVALUE, 1007);
    /* ... and before the rest of its frame arrives (Autobahn 6.4.3 sends
     * such a frame in chops). */
    conc__ws_conn *ff = new_conn(CONC__WS_SERVER, 0, NULL);
    conc_buf part = CONC_BUF_INIT;
    assert_conc_ok(
        conc__ws_frame_append(&part, 0x81, "\xce\xba\xf4\x90 rest", 9, KEY));
    assert_conc_ok(conc__ws_conn_receive(ff, part.data, 6 + 3));
    assert_conc(conc__ws_conn_receive(ff, part.data + 9, 1), CONC_EVALUE);
    assert_int_equal(conc__ws_conn_close_code(ff), 1007);
    conc_buf_free(&part);
    conc__ws_conn_free(ff);
    expect_failure(0x88, "\x03\xe8\xff", 3, 0, NULL, CONC_EVALUE, 1007);
    expect_failure(0x82, "0123456789abcdefg", 17, 16, NULL, CONC_EMSGSIZE,
                   1009);
    /* A header announcing a huge frame fails before any payload comes. */
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
    assert_conc(conc__ws_conn_receive(c,
                                      U8(0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0,
                                         0x37, 0xfa, 0x21, 0x3d),
                                      14),
                CONC_EMSGSIZE);
    assert_int_equal(conc__ws_conn_close_code(c), 1009);
    conc__ws_conn_free(c);
    /* Fragments that add up past the limit. */
    c = new_conn(CONC__WS_SERVER, 16, NULL);
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x02, "01234567", 8, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x00, "01234567", 8, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x80, "8", 1, KEY));
    assert_conc(conc__ws_conn_receive(c, in.data, in.len), CONC_EMSGSIZE);
    conc_buf_free(&in);
    conc__ws_conn_free(c);
    /* Text checked after decompression: a compressed TEXT frame whose
     * inflated bytes are not UTF-8. */
    struct conc__ws_deflate_params pd8 = {0, 0, 15, 15};
    conc__ws_conn *tx8 = new_conn(CONC__WS_CLIENT, 0, &pd8);
    conc__ws_conn *rx8 = new_conn(CONC__WS_SERVER, 0, &pd8);
    assert_conc_ok(conc__ws_conn_send(tx8, CONC__WS_BINARY, "ok\xff", 3));
    conc_buf z = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_conn_take_output(tx8, &z));
    z.data[0] = 0xc1; /* the same payload, now claimed as text */
    assert_conc(conc__ws_conn_receive(rx8, z.data, z.len), CONC_EVALUE);
    assert_int_equal(conc__ws_conn_close_code(rx8), 1007);
    conc_buf_free(&z);
    conc__ws_conn_free(tx8);
    conc__ws_conn_free(rx8);
    /* A compressed message whose inflated size passes the limit, though
     * its frame is small: the limit applies after decompression. */
    struct conc__ws_deflate_params pd = {0, 0, 15, 15};
    conc__ws_conn *tx = new_conn(CONC__WS_CLIENT, 0, &pd);
    c = new_conn(CONC__WS_SERVER, 1000, &pd);
    static uint8_t zeros[4096];
    assert_conc_ok(
        conc__ws_conn_send(tx, CONC__WS_BINARY, zeros, sizeof zeros));
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_conn_take_output(tx, &out));
    assert_true(out.len < 100);
    assert_conc(conc__ws_conn_receive(c, out.data, out.len), CONC_EMSGSIZE);
    assert_int_equal(conc__ws_conn_close_code(c), 1009);
    conc_buf_free(&out);
    conc__ws_conn_free(tx);
    conc__ws_conn_free(c);
}

/* ---- The connection: normal traffic ----------------------------------------
 */

/* Feeds `n` bytes to c in pieces of `step` bytes. */
static void
feed(conc__ws_conn *c, const uint8_t *p, size_t n, size_t step)
{
    for (size_t i = 0; i < n; i += step)
        assert_conc_ok(
            conc__ws_conn_receive(c, p + i, n - i < step ? n - i : step));
}

static void
test_fragments_interleaved_with_control(void **state)
{
    (void)state;
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x01, "Hel", 3, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x89, "p1", 2, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x00, "", 0, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x8a, "p2", 2, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x80, "lo", 2, KEY));
    /* All at once, then a byte at a time, then in 3-byte pieces. */
    static const size_t steps[] = {SIZE_MAX, 1, 3};
    for (size_t s = 0; s < 3; s++) {
        conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
        feed(c, in.data, in.len, steps[s] == SIZE_MAX ? in.len : steps[s]);
        expect_event(c, CONC__WS_EV_PING, "p1", 2);
        expect_event(c, CONC__WS_EV_PONG, "p2", 2);
        expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
        expect_no_event(c);
        expect_output(c, U8(0x8a, 0x02, 'p', '1'), 4); /* the auto-pong */
        conc__ws_conn_free(c);
    }
    conc_buf_free(&in);
}

static void
test_rfc6455_examples_received(void **state)
{
    (void)state;
    conc__ws_conn *c = new_conn(CONC__WS_CLIENT, 0, NULL);
    feed(c, U8(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), 7, 7);
    feed(c, U8(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f), 9, 2);
    feed(c, U8(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), 7, 7);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    expect_event(c, CONC__WS_EV_PING, "Hello", 5);
    /* The client answers with a masked pong: unmask it to check. */
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_conn_take_output(c, &out));
    struct conc__ws_frame f;
    assert_conc_ok(
        conc__ws_frame_parse(out.data, out.len, CONC__WS_SERVER, &f));
    assert_int_equal(f.opcode, CONC__WS_PONG);
    assert_int_equal(out.len, f.header_len + 5);
    conc__ws_mask_copy(out.data + 6, out.data + 6, 5, f.mask, 0);
    assert_memory_equal(out.data + 6, "Hello", 5);
    conc_buf_free(&out);
    conc__ws_conn_free(c);
}

/* Sends messages from a to b through the engine and checks b's events. */
static void
pump(conc__ws_conn *from, conc__ws_conn *to, size_t step)
{
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_conn_take_output(from, &out));
    feed(to, out.data, out.len, step ? step : out.len + 1);
    conc_buf_free(&out);
}

static void
round_trips(const struct conc__ws_deflate_params *pd)
{
    conc__ws_conn *cl = new_conn(CONC__WS_CLIENT, SIZE_MAX, pd);
    conc__ws_conn *sv = new_conn(CONC__WS_SERVER, SIZE_MAX, pd);
    size_t big_n = 200000;
    uint8_t *big = malloc(big_n);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (uint8_t)(i % 251 ^ i >> 9);
    for (int round = 0; round < 3; round++) {
        assert_conc_ok(conc__ws_conn_send(cl, CONC__WS_TEXT, "Hello", 5));
        assert_conc_ok(conc__ws_conn_send(cl, CONC__WS_BINARY, NULL, 0));
        assert_conc_ok(conc__ws_conn_send(cl, CONC__WS_BINARY, big, big_n));
        assert_conc_ok(conc__ws_conn_send_fragment(cl, CONC__WS_TEXT,
                                                   "\xce\xba\xe1", 3, 0));
        assert_conc_ok(conc__ws_conn_ping(cl, "x", 1));
        assert_conc(conc__ws_conn_send(cl, CONC__WS_TEXT, "no", 2),
                    CONC_ESTATE);
        assert_conc_ok(
            conc__ws_conn_send_fragment(cl, CONC__WS_CONT, "", 0, 0));
        assert_conc_ok(
            conc__ws_conn_send_fragment(cl, CONC__WS_CONT, "\xbd\xb9", 2, 1));
        pump(cl, sv, round == 1 ? 7 : 0);
        expect_event(sv, CONC__WS_EV_TEXT, "Hello", 5);
        expect_event(sv, CONC__WS_EV_BINARY, NULL, 0);
        expect_event(sv, CONC__WS_EV_BINARY, big, big_n);
        expect_event(sv, CONC__WS_EV_PING, "x", 1);
        expect_event(sv, CONC__WS_EV_TEXT, "\xce\xba\xe1\xbd\xb9", 5);
        expect_no_event(sv);
        assert_conc_ok(conc__ws_conn_send(sv, CONC__WS_BINARY, big, big_n));
        pump(sv, cl, round == 2 ? 1000 : 0);
        expect_event(cl, CONC__WS_EV_PONG, "x", 1);
        expect_event(cl, CONC__WS_EV_BINARY, big, big_n);
    }
    free(big);
    conc__ws_conn_free(cl);
    conc__ws_conn_free(sv);
}

static void
test_round_trips(void **state)
{
    (void)state;
    round_trips(NULL);
    struct conc__ws_deflate_params pd = {0, 0, 12, 12};
    round_trips(&pd);
    struct conc__ws_deflate_params nct = {1, 1, 9, 15};
    round_trips(&nct);
}

static void
test_send_checks(void **state)
{
    (void)state;
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
    assert_conc(conc__ws_conn_send(c, CONC__WS_TEXT, "\xff", 1), CONC_EVALUE);
    assert_conc(conc__ws_conn_send(c, CONC__WS_PING, "", 0), CONC_EINVAL);
    assert_conc(conc__ws_conn_send_fragment(c, CONC__WS_CONT, "", 0, 1),
                CONC_ESTATE);
    static const uint8_t p126[126];
    assert_conc(conc__ws_conn_ping(c, p126, 126), CONC_EINVAL);
    assert_conc(conc__ws_conn_close(c, 1005, NULL, 0), CONC_EINVAL);
    assert_conc(conc__ws_conn_close(c, 1000, "\xff", 1), CONC_EINVAL);
    assert_conc(conc__ws_conn_close(c, 0, "x", 1), CONC_EINVAL);
    expect_output(c, NULL, 0);
    assert_conc(conc__ws_conn_send(NULL, CONC__WS_TEXT, "", 0), CONC_EINVAL);
    assert_conc(conc__ws_conn_new(NULL, &c), CONC_EINVAL);
    conc__ws_conn_free(c);
    conc__ws_conn_free(NULL);
}

/* ---- The close handshake ---------------------------------------------------
 */

static void
test_close_handshake_peer_first(void **state)
{
    (void)state;
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x88,
                                         "\x03\xe8"
                                         "bye",
                                         5, KEY));
    feed(c, in.data, in.len, in.len);
    struct conc__ws_event ev;
    assert_conc_ok(conc__ws_conn_next_event(c, &ev));
    assert_int_equal(ev.type, CONC__WS_EV_CLOSE);
    assert_int_equal(ev.code, 1000);
    assert_bytes(&ev.data, (const uint8_t *)"bye", 3);
    conc_buf_free(&ev.data);
    expect_output(c, U8(0x88, 0x02, 0x03, 0xe8), 4); /* the echo */
    assert_int_equal(conc__ws_conn_state(c), CONC__WS_CLOSED);
    assert_true(conc__ws_conn_close_expected(c));
    assert_int_equal(conc__ws_conn_close_code(c), 1000);
    assert_conc(conc__ws_conn_send(c, CONC__WS_TEXT, "x", 1), CONC_ECLOSED);
    assert_conc(conc__ws_conn_close(c, 1000, NULL, 0), CONC_ECLOSED);
    assert_conc_ok(conc__ws_conn_receive_eof(c));
    assert_int_equal(conc__ws_conn_close_code(c), 1000);
    assert_conc(conc__ws_conn_receive(c, in.data, in.len), CONC_ECLOSED);
    conc_buf_free(&in);
    conc__ws_conn_free(c);
}

static void
test_close_handshake_we_first(void **state)
{
    (void)state;
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
    assert_conc_ok(conc__ws_conn_close(c, 4000, "done", 4));
    assert_int_equal(conc__ws_conn_state(c), CONC__WS_CLOSING);
    assert_false(conc__ws_conn_close_expected(c));
    expect_output(c, U8(0x88, 0x06, 0x0f, 0xa0, 'd', 'o', 'n', 'e'), 8);
    assert_conc(conc__ws_conn_close(c, 1000, NULL, 0), CONC_ESTATE);
    assert_conc(conc__ws_conn_ping(c, NULL, 0), CONC_ESTATE);
    /* Data still arriving is delivered; pings are no longer answered. */
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x81, "late", 4, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x89, "", 0, KEY));
    assert_conc_ok(conc__ws_frame_append(&in, 0x88, NULL, 0, KEY));
    feed(c, in.data, in.len, in.len);
    expect_event(c, CONC__WS_EV_TEXT, "late", 4);
    expect_event(c, CONC__WS_EV_PING, NULL, 0);
    expect_event(c, CONC__WS_EV_CLOSE, NULL, 0);
    expect_output(c, NULL, 0);
    assert_int_equal(conc__ws_conn_state(c), CONC__WS_CLOSED);
    assert_int_equal(conc__ws_conn_close_code(c), 1005);
    assert_true(conc__ws_conn_close_expected(c));
    conc_buf_free(&in);
    conc__ws_conn_free(c);
    /* The transport ends without a close handshake: 1006. */
    c = new_conn(CONC__WS_CLIENT, 0, NULL);
    assert_conc_ok(conc__ws_conn_receive(c, U8(0x81, 0x05, 'H'), 3));
    assert_conc_ok(conc__ws_conn_receive_eof(c));
    assert_int_equal(conc__ws_conn_close_code(c), 1006);
    assert_int_equal(conc__ws_conn_state(c), CONC__WS_CLOSED);
    expect_no_event(c);
    conc__ws_conn_free(c);
}

/* ---- permessage-deflate: RFC 7692 section 7.2.3 -----------------------------
 */

static void
test_rfc7692_examples_received(void **state)
{
    (void)state;
    struct conc__ws_deflate_params pd = {0, 0, 15, 15};
    conc__ws_conn *c = new_conn(CONC__WS_CLIENT, 0, &pd);
    /* 7.2.3.1: one frame, then the same message in two fragments. */
    feed(c, U8(0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00), 9, 9);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    conc__ws_conn_free(c);
    c = new_conn(CONC__WS_CLIENT, 0, &pd);
    feed(c,
         U8(0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00),
         11, 11);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* 7.2.3.2: the second message uses the first one's window. */
    feed(c, U8(0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00), 7, 7);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* 7.2.3.3: a stored block. */
    feed(c,
         U8(0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c,
            0x6f, 0x00),
         13, 13);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* 7.2.3.4: BFINAL set. */
    feed(c, U8(0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00), 10,
         10);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* 7.2.3.5: two blocks in one message. */
    feed(c,
         U8(0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca,
            0xc9, 0xc9, 0x07, 0x00),
         15, 15);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* 7.2.3.6: an empty last fragment (0x00) after a flushed one. */
    feed(c,
         U8(0x41, 0x0b, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00,
            0xff, 0xff, 0x80, 0x01, 0x00),
         16, 16);
    expect_event(c, CONC__WS_EV_TEXT, "Hello", 5);
    /* Data that is not DEFLATE is a protocol error. */
    assert_conc(conc__ws_conn_receive(c, U8(0xc2, 0x02, 0xff, 0xff), 4),
                CONC_EPROTO);
    assert_int_equal(conc__ws_conn_close_code(c), 1002);
    conc__ws_conn_free(c);
}

static void
test_rfc7692_examples_sent(void **state)
{
    (void)state;
    struct conc__ws_deflate_params pd = {0, 0, 15, 15};
    conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, &pd);
    const uint8_t *first =
        U8(0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);
    assert_conc_ok(conc__ws_conn_send(c, CONC__WS_TEXT, "Hello", 5));
    expect_output(c, first, 9);
    assert_conc_ok(conc__ws_conn_send(c, CONC__WS_TEXT, "Hello", 5));
    expect_output(c, U8(0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00), 7);
    /* An empty message right after another still ends on a block. */
    assert_conc_ok(conc__ws_conn_send(c, CONC__WS_BINARY, NULL, 0));
    expect_output(c, U8(0xc2, 0x01, 0x00), 3);
    conc__ws_conn_free(c);
    /* Without context takeover every message starts afresh. */
    struct conc__ws_deflate_params nct = {1, 0, 15, 15};
    c = new_conn(CONC__WS_SERVER, 0, &nct);
    for (int i = 0; i < 2; i++) {
        assert_conc_ok(conc__ws_conn_send(c, CONC__WS_TEXT, "Hello", 5));
        expect_output(c, first, 9);
    }
    conc__ws_conn_free(c);
    /* A threshold keeps small messages uncompressed. */
    struct conc__ws_deflate_opts o = {.threshold = 6};
    struct conc__ws_conn_opts co = {
        .role = CONC__WS_SERVER, .deflate = &pd, .deflate_opts = &o};
    assert_conc_ok(conc__ws_conn_new(&co, &c));
    assert_conc_ok(conc__ws_conn_send(c, CONC__WS_TEXT, "Hello", 5));
    expect_output(c, U8(0x81, 0x05, 'H', 'e', 'l', 'l', 'o'), 7);
    conc__ws_conn_free(c);
    /* zlib cannot send with an 8-bit window. */
    struct conc__ws_deflate_params eight = {0, 0, 8, 15};
    struct conc__ws_conn_opts bad = {.role = CONC__WS_SERVER,
                                     .deflate = &eight};
    assert_conc(conc__ws_conn_new(&bad, &c), CONC_EINVAL);
    bad.role = CONC__WS_CLIENT;
    assert_conc_ok(conc__ws_conn_new(&bad, &c)); /* receiving with 8 is fine */
    conc__ws_conn_free(c);
}

/* ---- Out of memory
 * ------------------------------------------------------------ */

static void
test_enomem_fails_with_1011(void **state)
{
    (void)state;
    conc_buf in = CONC_BUF_INIT;
    assert_conc_ok(conc__ws_frame_append(&in, 0x82, "payload", 7, KEY));
    int failed = 0;
    for (long n = 1; n < 10; n++) {
        conc__ws_conn *c = new_conn(CONC__WS_SERVER, 0, NULL);
        conc_test_fail_alloc_after(n);
        int r = conc__ws_conn_receive(c, in.data, in.len);
        conc_test_fail_alloc_after(0);
        if (r == CONC_ENOMEM) {
            failed++;
            assert_int_equal(conc__ws_conn_close_code(c), 1011);
        } else {
            assert_conc_ok(r);
            expect_event(c, CONC__WS_EV_BINARY, "payload", 7);
        }
        conc__ws_conn_free(c);
    }
    assert_true(failed > 0);
    conc_buf_free(&in);
}

/* Stream mode: a message comes out in pieces as its fragments (and every
 * CONC__WS_STREAM_PIECE bytes of a long frame) arrive, `more` set on all
 * but the last; max_message still bounds the whole message. */
static conc__ws_conn *
new_stream_conn(size_t max_message)
{
    struct conc__ws_conn_opts o = {
        .role = CONC__WS_CLIENT, .max_message = max_message, .stream = 1};
    conc__ws_conn *c = NULL;
    assert_conc_ok(conc__ws_conn_new(&o, &c));
    return c;
}

static void
expect_piece(conc__ws_conn *c, const void *data, size_t n, int more)
{
    struct conc__ws_event ev;
    assert_conc_ok(conc__ws_conn_next_event(c, &ev));
    assert_int_equal(ev.type, CONC__WS_EV_TEXT);
    assert_int_equal(ev.more, more);
    assert_int_equal(ev.data.len, n);
    assert_memory_equal(ev.data.data, data, n);
    conc_buf_free(&ev.data);
}

static void
test_stream_mode(void **state)
{
    (void)state;
    conc__ws_conn *c = new_stream_conn(0);
    /* RFC 6455 section 5.7: "Hel" then "lo", unmasked. */
    assert_conc_ok(conc__ws_conn_receive(
        c, U8(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f), 9));
    expect_piece(c, "Hel", 3, 1);
    expect_piece(c, "lo", 2, 0);
    expect_no_event(c);
    /* One long frame comes out every CONC__WS_STREAM_PIECE bytes. */
    size_t n = 3 * CONC__WS_STREAM_PIECE + 10, got = 0;
    conc_buf f = CONC_BUF_INIT;
    uint8_t *text = malloc(n);
    assert_non_null(text);
    memset(text, 'a', n);
    assert_conc_ok(conc__ws_frame_append(&f, 0x81, text, n, NULL));
    for (size_t off = 0; off < f.len; off += 1000)
        assert_conc_ok(conc__ws_conn_receive(
            c, f.data + off, f.len - off < 1000 ? f.len - off : 1000));
    struct conc__ws_event ev;
    int more = 1, pieces = 0;
    while (more) {
        assert_conc_ok(conc__ws_conn_next_event(c, &ev));
        assert_true(ev.data.len <= CONC__WS_STREAM_PIECE + 1000);
        got += ev.data.len;
        more = ev.more;
        pieces++;
        conc_buf_free(&ev.data);
    }
    assert_int_equal(got, n);
    assert_true(pieces >= 3);
    conc__ws_conn_free(c);
    /* Fragments of 6 bytes each against a limit of 10. */
    c = new_stream_conn(10);
    assert_conc_ok(conc__ws_conn_receive(
        c, U8(0x01, 0x06, 'a', 'b', 'c', 'd', 'e', 'f'), 8));
    assert_conc(conc__ws_conn_receive(
                    c, U8(0x80, 0x06, 'a', 'b', 'c', 'd', 'e', 'f'), 8),
                CONC_EMSGSIZE);
    conc_buf_free(&f);
    free(text);
    conc__ws_conn_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_rfc6455_examples_serialize),
        conc_unit_test(test_rfc6455_examples_parse),
        conc_unit_test(test_mask_word_at_a_time),
        conc_unit_test(test_close_payload),
        conc_unit_test(test_utf8),
        conc_unit_test(test_accept_key_rfc_example),
        conc_unit_test(test_handshake_round_trip),
        conc_unit_test(test_handshake_refusals),
        conc_unit_test(test_extension_header_grammar),
        conc_unit_test(test_deflate_negotiation),
        conc_unit_test(test_violations_1002),
        conc_unit_test(test_violations_1007_1009),
        conc_unit_test(test_fragments_interleaved_with_control),
        conc_unit_test(test_rfc6455_examples_received),
        conc_unit_test(test_round_trips),
        conc_unit_test(test_send_checks),
        conc_unit_test(test_close_handshake_peer_first),
        conc_unit_test(test_close_handshake_we_first),
        conc_unit_test(test_rfc7692_examples_received),
        conc_unit_test(test_rfc7692_examples_sent),
        conc_unit_test(test_enomem_fails_with_1011),
        conc_unit_test(test_stream_mode),
    };
    return conc_run_tests(tests);
}
