/* The WebSocket opening handshake (RFC 6455 section 4): an HTTP/1.1 head
 * parser shared by both sides, the client's request, the server's checks
 * and answer, the client's checks of that answer, and the
 * Sec-WebSocket-Extensions grammar (RFC 6455 section 9.1).
 *
 * The parser copies nothing: a parsed head is spans into the caller's
 * buffer. It is strict where a lax reading could be abused (bare CR or LF,
 * obsolete line folding, control bytes, oversized heads) and lenient
 * where peers differ harmlessly (header name case, empty list elements).
 * SHA-1, base64 and the random key come from OpenSSL: no hand-written
 * crypto. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/internal.h"
#include "ws/proto.h"

/* Section 1.3: the GUID every server appends to the client's key. */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
#define KEY_RAW_LEN 16

/* ---- Lexical pieces ----------------------------------------------------- */

static int
is_tchar(unsigned char c)
{
    /* RFC 7230 section 3.2.6's token characters. */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
span_ieq(struct conc__ws_span s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && strncasecmp(s.p, z, n) == 0;
}

static int
span_eq(struct conc__ws_span s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && memcmp(s.p, z, n) == 0;
}

static void
skip_ows(struct conc__ws_span *s)
{
    while (s->n && (*s->p == ' ' || *s->p == '\t')) {
        s->p++;
        s->n--;
    }
}

static void
trim_ows(struct conc__ws_span *s)
{
    skip_ows(s);
    while (s->n && (s->p[s->n - 1] == ' ' || s->p[s->n - 1] == '\t'))
        s->n--;
}

/* Takes the next comma-separated element of *rest (trimmed; empty
 * elements are skipped). Returns 1 with *tok, 0 at the end. */
static int
next_element(struct conc__ws_span *rest, struct conc__ws_span *tok)
{
    while (rest->n) {
        const char *comma = memchr(rest->p, ',', rest->n);
        size_t len = comma ? (size_t)(comma - rest->p) : rest->n;
        tok->p = rest->p;
        tok->n = len;
        rest->p += comma ? len + 1 : len;
        rest->n -= comma ? len + 1 : len;
        trim_ows(tok);
        if (tok->n)
            return 1;
    }
    return 0;
}

/* ---- The HTTP/1.1 head ----------------------------------------------------
 */

static const char *
find_head_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && memcmp(p + i, "\r\n\r\n", 4) == 0)
            return p + i;
    return NULL;
}

/* Splits "a b c" (request line) or "HTTP/1.1 101 reason". */
static int
parse_start_line(struct conc__ws_span line, int is_request,
                 struct conc__ws_http *h)
{
    const char *sp1 = memchr(line.p, ' ', line.n);
    if (!sp1)
        return CONC_EPROTO;
    struct conc__ws_span a = {line.p, (size_t)(sp1 - line.p)};
    struct conc__ws_span rest = {sp1 + 1, line.n - a.n - 1};
    const char *sp2 = memchr(rest.p, ' ', rest.n);
    struct conc__ws_span b = {rest.p, sp2 ? (size_t)(sp2 - rest.p) : rest.n};
    struct conc__ws_span c = {sp2 ? sp2 + 1 : rest.p + rest.n,
                              sp2 ? rest.n - b.n - 1 : 0};
    if (is_request) {
        if (!a.n || !b.n || !span_eq(c, "HTTP/1.1"))
            return CONC_EPROTO;
        for (size_t i = 0; i < a.n; i++)
            if (!is_tchar((unsigned char)a.p[i]))
                return CONC_EPROTO;
        h->method = a;
        h->target = b;
        return 0;
    }
    if (!span_eq(a, "HTTP/1.1") || b.n != 3)
        return CONC_EPROTO;
    h->status = 0;
    for (size_t i = 0; i < 3; i++) {
        if (b.p[i] < '0' || b.p[i] > '9')
            return CONC_EPROTO;
        h->status = h->status * 10 + (unsigned)(b.p[i] - '0');
    }
    h->reason = c;
    return 0;
}

static int
parse_header_line(struct conc__ws_span line, struct conc__ws_http *h)
{
    const char *colon = memchr(line.p, ':', line.n);
    if (!colon || colon == line.p)
        return CONC_EPROTO; /* also rejects obsolete line folding */
    struct conc__ws_span name = {line.p, (size_t)(colon - line.p)};
    for (size_t i = 0; i < name.n; i++)
        if (!is_tchar((unsigned char)name.p[i]))
            return CONC_EPROTO;
    struct conc__ws_span value = {colon + 1, line.n - name.n - 1};
    for (size_t i = 0; i < value.n; i++) {
        unsigned char ch = (unsigned char)value.p[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7F)
            return CONC_EPROTO;
    }
    trim_ows(&value);
    if (h->nheaders == CONC__WS_HTTP_MAX_HEADERS)
        return CONC_EMSGSIZE;
    h->headers[h->nheaders].name = name;
    h->headers[h->nheaders].value = value;
    h->nheaders++;
    return 0;
}

int
conc__ws_http_parse(const char *p, size_t n, int is_request,
                    struct conc__ws_http *h, size_t *consumed)
{
    if (!p || !h || !consumed)
        return CONC_EINVAL;
    size_t scan = n < CONC__WS_HTTP_MAX_HEAD ? n : CONC__WS_HTTP_MAX_HEAD;
    const char *end = find_head_end(p, scan);
    if (!end)
        return n >= CONC__WS_HTTP_MAX_HEAD ? CONC_EMSGSIZE : CONC_EAGAIN;
    memset(h, 0, sizeof *h);
    const char *cur = p;
    int first = 1;
    while (cur < end + 2) {
        const char *cr = memchr(cur, '\r', (size_t)(end + 2 - cur));
        struct conc__ws_span line = {cur, (size_t)(cr - cur)};
        if (cr[1] != '\n' || memchr(line.p, '\n', line.n))
            return CONC_EPROTO;
        int r = first ? parse_start_line(line, is_request, h)
                      : parse_header_line(line, h);
        if (r)
            return r;
        first = 0;
        cur = cr + 2;
    }
    *consumed = (size_t)(end - p) + 4;
    return 0;
}

int
conc__ws_http_header(const struct conc__ws_http *h, const char *name,
                     size_t index, struct conc__ws_span *value)
{
    if (!h || !name || !value)
        return CONC_EINVAL;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (!span_ieq(h->headers[i].name, name))
            continue;
        if (index-- == 0) {
            *value = h->headers[i].value;
            return 0;
        }
    }
    return CONC_ENOENT;
}

static size_t
header_count(const struct conc__ws_http *h, const char *name)
{
    struct conc__ws_span v;
    size_t i = 0;
    while (conc__ws_http_header(h, name, i, &v) == 0)
        i++;
    return i;
}

int
conc__ws_http_has_token(const struct conc__ws_http *h, const char *name,
                        const char *token)
{
    struct conc__ws_span v, tok;
    for (size_t i = 0; conc__ws_http_header(h, name, i, &v) == 0; i++)
        while (next_element(&v, &tok))
            if (span_ieq(tok, token))
                return 1;
    return 0;
}

/* ---- Keys -------------------------------------------------------------- */

int
conc__ws_key_new(char key[CONC__WS_KEY_LEN + 1])
{
    unsigned char raw[KEY_RAW_LEN];
    if (!key)
        return CONC_EINVAL;
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    return 0;
}

int
conc__ws_accept(const char *key, size_t key_len,
                char out[CONC__WS_ACCEPT_LEN + 1])
{
    if (!key || !out)
        return CONC_EINVAL;
    unsigned char digest[SHA_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return CONC_ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) &&
             EVP_DigestFinal_ex(ctx, digest, NULL);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, digest, sizeof digest);
    return 0;
}

/* A key is the base64 of 16 bytes: 22 characters and "==". */
static int
key_valid(struct conc__ws_span k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    if (k.n != CONC__WS_KEY_LEN || memcmp(k.p + 22, "==", 2) != 0)
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!k.p[i] || !strchr(b64, k.p[i]))
            return 0;
    return 1;
}

/* ---- Requests and responses ------------------------------------------- */

static int
has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* Extra header lines must be whole lines and must not end the head. */
static int
extra_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n)
        return 1;
    return n >= 2 && memcmp(s + n - 2, "\r\n", 2) == 0 &&
           strstr(s, "\r\n\r\n") == NULL && strncmp(s, "\r\n", 2) != 0;
}

/* Moves tmp into out (the out-parameter rule: replaced only on success). */
static int
finish_build(conc_buf *tmp, conc_buf *out, int r)
{
    if (r) {
        conc_buf_free(tmp);
        return r;
    }
    conc_buf_free(out);
    *out = *tmp;
    return 0;
}

static int
append_subprotocols(conc_buf *b, const struct conc__ws_request_opts *o)
{
    int r = 0;
    if (!o->nsubprotocols)
        return 0;
    r = conc_buf_appendf(b, "Sec-WebSocket-Protocol: ");
    for (size_t i = 0; !r && i < o->nsubprotocols; i++)
        r = conc_buf_appendf(b, "%s%s", i ? ", " : "", o->subprotocols[i]);
    return r ? r : conc_buf_appendf(b, "\r\n");
}

static int
request_opts_ok(const struct conc__ws_request_opts *o, const char *key)
{
    if (!o->host || !o->path || !*o->host || !*o->path)
        return 0;
    if (has_crlf(o->host) || has_crlf(o->path) || has_crlf(o->origin) ||
        has_crlf(o->extensions) || has_crlf(key) || !extra_ok(o->extra_headers))
        return 0;
    if (o->nsubprotocols && !o->subprotocols)
        return 0;
    for (size_t i = 0; i < o->nsubprotocols; i++)
        if (!o->subprotocols[i] || !*o->subprotocols[i] ||
            has_crlf(o->subprotocols[i]) || strchr(o->subprotocols[i], ','))
            return 0;
    return 1;
}

int
conc__ws_request_build(conc_buf *out, const struct conc__ws_request_opts *o,
                       const char *key)
{
    if (!out || !o || !key || !request_opts_ok(o, key))
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_buf_appendf(&b,
                             "GET %s HTTP/1.1\r\nHost: %s\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: %s\r\n"
                             "Sec-WebSocket-Version: 13\r\n",
                             o->path, o->host, key);
    if (!r && o->origin)
        r = conc_buf_appendf(&b, "Origin: %s\r\n", o->origin);
    if (!r)
        r = append_subprotocols(&b, o);
    if (!r && o->extensions && *o->extensions)
        r = conc_buf_appendf(&b, "Sec-WebSocket-Extensions: %s\r\n",
                             o->extensions);
    if (!r && o->extra_headers)
        r = conc_buf_appendf(&b, "%s", o->extra_headers);
    if (!r)
        r = conc_buf_appendf(&b, "\r\n");
    return finish_build(&b, out, r);
}

int
conc__ws_upgrade_check(const struct conc__ws_http *h,
                       struct conc__ws_upgrade *u)
{
    if (!h || !u)
        return CONC_EINVAL;
    if (!conc__ws_http_has_token(h, "Upgrade", "websocket"))
        return CONC_ENOENT;
    memset(u, 0, sizeof *u);
    if (!span_eq(h->method, "GET") ||
        !conc__ws_http_has_token(h, "Connection", "upgrade"))
        return CONC_EPROTO;
    struct conc__ws_span v;
    if (header_count(h, "Sec-WebSocket-Version") != 1)
        return CONC_EPROTO;
    conc__ws_http_header(h, "Sec-WebSocket-Version", 0, &v);
    if (!span_eq(v, "13"))
        return CONC_EVALUE;
    if (header_count(h, "Sec-WebSocket-Key") != 1 ||
        header_count(h, "Host") != 1)
        return CONC_EPROTO;
    conc__ws_http_header(h, "Sec-WebSocket-Key", 0, &u->key);
    conc__ws_http_header(h, "Host", 0, &u->host);
    if (!key_valid(u->key) || header_count(h, "Origin") > 1)
        return CONC_EPROTO;
    conc__ws_http_header(h, "Origin", 0, &u->origin);
    return 0;
}

int
conc__ws_subprotocol_select(const struct conc__ws_http *h,
                            const char *const *supported, size_t n,
                            const char **chosen)
{
    if (!h || !chosen || (n && !supported))
        return CONC_EINVAL;
    *chosen = NULL;
    for (size_t s = 0; s < n; s++) {
        struct conc__ws_span v, tok;
        if (!supported[s])
            return CONC_EINVAL;
        for (size_t i = 0;
             conc__ws_http_header(h, "Sec-WebSocket-Protocol", i, &v) == 0; i++)
            while (next_element(&v, &tok))
                if (span_eq(tok, supported[s])) {
                    *chosen = supported[s];
                    return 0;
                }
    }
    return CONC_ENOENT;
}

int
conc__ws_response_build(conc_buf *out,
                        const char accept[CONC__WS_ACCEPT_LEN + 1],
                        const char *subprotocol, const char *extensions,
                        const char *extra_headers)
{
    if (!out || !accept || has_crlf(accept) || has_crlf(subprotocol) ||
        has_crlf(extensions) || !extra_ok(extra_headers))
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_buf_appendf(&b,
                             "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: %s\r\n",
                             accept);
    if (!r && subprotocol)
        r = conc_buf_appendf(&b, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    if (!r && extensions && *extensions)
        r = conc_buf_appendf(&b, "Sec-WebSocket-Extensions: %s\r\n",
                             extensions);
    if (!r && extra_headers)
        r = conc_buf_appendf(&b, "%s", extra_headers);
    if (!r)
        r = conc_buf_appendf(&b, "\r\n");
    return finish_build(&b, out, r);
}

int
conc__ws_http_response_build(conc_buf *out, unsigned status, const char *reason,
                             const char *extra_headers, const void *body,
                             size_t body_len)
{
    if (!out || !reason || status < 100 || status > 999 || has_crlf(reason) ||
        !extra_ok(extra_headers) || (!body && body_len))
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_buf_appendf(&b,
                             "HTTP/1.1 %u %s\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n%s\r\n",
                             status, reason, body_len,
                             extra_headers ? extra_headers : "");
    if (!r && body_len)
        r = conc_buf_append(&b, body, body_len);
    return finish_build(&b, out, r);
}

static int
check_subprotocol(const struct conc__ws_http *h, const char *const *offered,
                  size_t noffered, const char **subprotocol)
{
    struct conc__ws_span v;
    *subprotocol = NULL;
    size_t count = header_count(h, "Sec-WebSocket-Protocol");
    if (count == 0)
        return 0;
    if (count > 1)
        return CONC_EPROTO;
    conc__ws_http_header(h, "Sec-WebSocket-Protocol", 0, &v);
    for (size_t i = 0; i < noffered; i++)
        if (offered[i] && span_eq(v, offered[i])) {
            *subprotocol = offered[i];
            return 0;
        }
    return CONC_EPROTO;
}

int
conc__ws_response_check(const struct conc__ws_http *h, const char *key,
                        const char *const *offered, size_t noffered,
                        const char **subprotocol)
{
    if (!h || !key || !subprotocol || (noffered && !offered))
        return CONC_EINVAL;
    *subprotocol = NULL;
    if (h->status != 101 ||
        !conc__ws_http_has_token(h, "Upgrade", "websocket") ||
        !conc__ws_http_has_token(h, "Connection", "upgrade"))
        return CONC_EPROTO;
    char want[CONC__WS_ACCEPT_LEN + 1];
    int r = conc__ws_accept(key, strlen(key), want);
    if (r)
        return r;
    struct conc__ws_span v;
    if (header_count(h, "Sec-WebSocket-Accept") != 1)
        return CONC_EPROTO;
    conc__ws_http_header(h, "Sec-WebSocket-Accept", 0, &v);
    if (!span_eq(v, want))
        return CONC_EPROTO;
    return check_subprotocol(h, offered, noffered, subprotocol);
}

/* ---- Extension lists ---------------------------------------------------- */

static int
take_token(struct conc__ws_span *s, struct conc__ws_span *tok)
{
    tok->p = s->p;
    tok->n = 0;
    while (s->n && is_tchar((unsigned char)*s->p)) {
        s->p++;
        s->n--;
        tok->n++;
    }
    return tok->n ? 0 : CONC_EPROTO;
}

/* A quoted-string value: the quotes are dropped. RFC 7692's values are
 * tokens once unescaped, so a backslash is refused rather than unescaped
 * (the span could not hold the unescaped text). */
static int
take_value(struct conc__ws_span *s, struct conc__ws_span *val)
{
    if (!s->n || *s->p != '"')
        return take_token(s, val);
    s->p++;
    s->n--;
    const char *q = memchr(s->p, '"', s->n);
    if (!q)
        return CONC_EPROTO;
    val->p = s->p;
    val->n = (size_t)(q - s->p);
    if (memchr(val->p, '\\', val->n) || !val->n)
        return CONC_EPROTO;
    for (size_t i = 0; i < val->n; i++)
        if (!is_tchar((unsigned char)val->p[i]))
            return CONC_EPROTO;
    s->n -= val->n + 1;
    s->p = q + 1;
    return 0;
}

static int
take_param(struct conc__ws_span *s, struct conc__ws_ext *ext)
{
    if (ext->nparams == CONC__WS_EXT_MAX_PARAMS)
        return CONC_EPROTO;
    struct conc__ws_span name, value = {NULL, 0};
    skip_ows(s);
    int r = take_token(s, &name);
    if (r)
        return r;
    skip_ows(s);
    if (s->n && *s->p == '=') {
        s->p++;
        s->n--;
        skip_ows(s);
        r = take_value(s, &value);
        if (r)
            return r;
        skip_ows(s);
    }
    ext->params[ext->nparams].name = name;
    ext->params[ext->nparams].value = value;
    ext->nparams++;
    return 0;
}

int
conc__ws_ext_next(struct conc__ws_span *rest, struct conc__ws_ext *ext)
{
    if (!rest || !ext || (!rest->p && rest->n))
        return CONC_EINVAL;
    while (rest->n &&
           (*rest->p == ',' || *rest->p == ' ' || *rest->p == '\t')) {
        rest->p++;
        rest->n--;
    }
    if (!rest->n)
        return CONC_ENOENT;
    ext->nparams = 0;
    int r = take_token(rest, &ext->name);
    if (r)
        return r;
    skip_ows(rest);
    while (rest->n && *rest->p == ';') {
        rest->p++;
        rest->n--;
        r = take_param(rest, ext);
        if (r)
            return r;
    }
    if (rest->n && *rest->p != ',')
        return CONC_EPROTO;
    return 0;
}
