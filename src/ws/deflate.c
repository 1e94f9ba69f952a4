/* permessage-deflate (RFC 7692): negotiation in the handshake, then one
 * raw DEFLATE stream per direction.
 *
 * A message is compressed with Z_SYNC_FLUSH, which ends the output on an
 * empty stored block 0x00 0x00 0xff 0xff; those four bytes are removed
 * before sending (section 7.2.1) and added back by the receiver before
 * inflating (section 7.2.2). Where zlib has nothing to flush (an empty
 * message right after another) the output has no such block, and one is
 * appended first, as step 2 of section 7.2.1 says. Without context
 * takeover a stream is reset after each message; with it the sliding
 * window carries over.
 *
 * zlib refuses a raw deflate window of 8 bits, so a sender never agrees
 * to 8 bits for its own direction: a server declines such an offer, a
 * client fails a response that imposes it. Receiving with 8 bits is fine.
 *
 * Memory: window bits 12 and memLevel 5 by default (PERF.md), and each
 * stream is made on first use, so a connection that never sends (or never
 * receives) a compressed message never pays for that direction. */
#include <string.h>

#include <zlib.h>

#include "core/internal.h"
#include "ws/proto.h"

static const uint8_t TAIL[4] = {0x00, 0x00, 0xff, 0xff};
/* An empty non-final stored block at a byte boundary, then its tail. */
static const uint8_t EMPTY_STORED[5] = {0x00, 0x00, 0x00, 0xff, 0xff};

#define EXT_NAME     "permessage-deflate"
#define WBITS_MIN    8
#define WBITS_MAX    15
#define WBITS_ZMIN   9 /* the smallest raw window zlib's deflate accepts */
#define OUT_CHUNK    4096
#define MEMLEVEL_MAX 9

struct conc__ws_deflate {
    int out_bits, in_bits;   /* window bits we send with, peer sends with */
    int out_reset, in_reset; /* no context takeover, per direction */
    int mem_level;
    size_t threshold;
    int zc_ready, zd_ready;
    int zd_ended; /* the peer's message held a BFINAL block */
    z_stream zc, zd;
};

/* ---- Negotiation -------------------------------------------------------- */

enum { P_SNCT, P_CNCT, P_SMWB, P_CMWB, P_COUNT };
static const char *const PARAM_NAMES[P_COUNT] = {
    "server_no_context_takeover", "client_no_context_takeover",
    "server_max_window_bits", "client_max_window_bits"};

/* The parameters of one offer or response, checked for the grammar of
 * section 7: each at most once, known names, values where allowed. */
struct pmd {
    int seen[P_COUNT];
    int bits[P_COUNT]; /* 0 where the parameter had no value */
};

static int
parse_bits(struct conc__ws_span v)
{
    /* 8..15 without leading zeros. */
    if (v.n == 1 && v.p[0] >= '8' && v.p[0] <= '9')
        return v.p[0] - '0';
    if (v.n == 2 && v.p[0] == '1' && v.p[1] >= '0' && v.p[1] <= '5')
        return 10 + v.p[1] - '0';
    return 0;
}

static int
read_params(const struct conc__ws_ext *ext, struct pmd *m)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < ext->nparams; i++) {
        struct conc__ws_span n = ext->params[i].name, v = ext->params[i].value;
        int k = 0;
        while (k < P_COUNT && (strlen(PARAM_NAMES[k]) != n.n ||
                               strncasecmp(PARAM_NAMES[k], n.p, n.n) != 0))
            k++;
        if (k == P_COUNT || m->seen[k])
            return CONC_EPROTO;
        m->seen[k] = 1;
        if (k == P_SNCT || k == P_CNCT) {
            if (v.p)
                return CONC_EPROTO;
        } else if (v.p) {
            if (!(m->bits[k] = parse_bits(v)))
                return CONC_EPROTO;
        } else if (k == P_SMWB) {
            return CONC_EPROTO; /* server_max_window_bits needs a value */
        }
    }
    return 0;
}

static int
is_pmd(const struct conc__ws_ext *ext)
{
    return ext->name.n == strlen(EXT_NAME) &&
           strncasecmp(ext->name.p, EXT_NAME, ext->name.n) == 0;
}

static int
opts_ok(const struct conc__ws_deflate_opts *o)
{
    int s = o->server_max_window_bits, c = o->client_max_window_bits;
    return (s == 0 || (s >= WBITS_ZMIN && s <= WBITS_MAX)) &&
           (c == 0 || (c >= WBITS_ZMIN && c <= WBITS_MAX)) &&
           o->mem_level >= 0 && o->mem_level <= MEMLEVEL_MAX;
}

static int
pref(int bits)
{
    return bits ? bits : CONC__WS_DEFLATE_WBITS;
}

static int
min_int(int a, int b)
{
    return a < b ? a : b;
}

int
conc__ws_deflate_offer(conc_buf *out, const struct conc__ws_deflate_opts *o)
{
    if (!out || !o || !opts_ok(o))
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_buf_appendf(&b, EXT_NAME);
    if (!r && o->server_no_context_takeover)
        r = conc_buf_appendf(&b, "; server_no_context_takeover");
    if (!r && o->client_no_context_takeover)
        r = conc_buf_appendf(&b, "; client_no_context_takeover");
    if (!r && o->server_max_window_bits)
        r = conc_buf_appendf(&b, "; server_max_window_bits=%d",
                             o->server_max_window_bits);
    if (!r)
        r = conc_buf_appendf(&b, "; client_max_window_bits");
    if (!r && o->client_max_window_bits)
        r = conc_buf_appendf(&b, "=%d", o->client_max_window_bits);
    if (r) {
        conc_buf_free(&b);
        return r;
    }
    conc_buf_free(out);
    *out = b;
    return 0;
}

/* Server: can it honour this offer? Fills *p and the response text. */
static int
server_try(const struct pmd *m, const struct conc__ws_deflate_opts *o,
           struct conc__ws_deflate_params *p, conc_buf *resp)
{
    p->server_no_context_takeover =
        m->seen[P_SNCT] || o->server_no_context_takeover;
    p->client_no_context_takeover =
        m->seen[P_CNCT] || o->client_no_context_takeover;
    /* The params say what the response announces; the compressor may
     * still use a smaller window of its own (conc__ws_deflate_new). */
    int sb = pref(o->server_max_window_bits);
    if (m->seen[P_SMWB])
        sb = min_int(sb, m->bits[P_SMWB]);
    if (sb < WBITS_ZMIN)
        return CONC_ENOENT;
    p->server_max_window_bits = m->seen[P_SMWB] ? sb : WBITS_MAX;
    /* Without client_max_window_bits in the offer the client may use the
     * full window and the response must not name the parameter. */
    p->client_max_window_bits = WBITS_MAX;
    if (m->seen[P_CMWB]) {
        int c = pref(o->client_max_window_bits);
        p->client_max_window_bits =
            m->bits[P_CMWB] ? min_int(c, m->bits[P_CMWB]) : c;
    }
    int r = conc_buf_appendf(resp, EXT_NAME);
    if (!r && p->server_no_context_takeover)
        r = conc_buf_appendf(resp, "; server_no_context_takeover");
    if (!r && p->client_no_context_takeover)
        r = conc_buf_appendf(resp, "; client_no_context_takeover");
    if (!r && m->seen[P_SMWB])
        r = conc_buf_appendf(resp, "; server_max_window_bits=%d",
                             p->server_max_window_bits);
    if (!r && m->seen[P_CMWB])
        r = conc_buf_appendf(resp, "; client_max_window_bits=%d",
                             p->client_max_window_bits);
    return r;
}

int
conc__ws_deflate_accept_offer(const struct conc__ws_http *request,
                              const struct conc__ws_deflate_opts *o,
                              struct conc__ws_deflate_params *params,
                              conc_buf *response)
{
    if (!request || !o || !params || !response || !opts_ok(o))
        return CONC_EINVAL;
    struct conc__ws_span v;
    for (size_t i = 0;
         conc__ws_http_header(request, "Sec-WebSocket-Extensions", i, &v) == 0;
         i++) {
        struct conc__ws_ext ext;
        int r;
        while ((r = conc__ws_ext_next(&v, &ext)) == 0) {
            struct pmd m;
            /* Section 5: an offer with bad parameters is declined, not
             * refused; the next offer may do. */
            if (!is_pmd(&ext) || read_params(&ext, &m))
                continue;
            conc_buf b = CONC_BUF_INIT;
            struct conc__ws_deflate_params p;
            r = server_try(&m, o, &p, &b);
            if (r == CONC_ENOENT)
                continue;
            if (r) {
                conc_buf_free(&b);
                return r;
            }
            conc_buf_free(response);
            *response = b;
            *params = p;
            return 0;
        }
        if (r != CONC_ENOENT)
            return r;
    }
    return CONC_ENOENT;
}

/* Client: reads the one extension the server accepted. */
static int
client_check(const struct pmd *m, const struct conc__ws_deflate_opts *o,
             struct conc__ws_deflate_params *p)
{
    /* A limit the client asked for must be acknowledged (7.1.2.1). */
    if (o->server_max_window_bits &&
        (!m->seen[P_SMWB] || m->bits[P_SMWB] > o->server_max_window_bits))
        return CONC_EPROTO;
    if (m->seen[P_CMWB] && !m->bits[P_CMWB])
        return CONC_EPROTO; /* a response's value is mandatory */
    if (m->seen[P_CMWB] && o->client_max_window_bits &&
        m->bits[P_CMWB] > o->client_max_window_bits)
        return CONC_EPROTO;
    /* zlib cannot send with an 8-bit window; see the top of the file. */
    if (m->seen[P_CMWB] && m->bits[P_CMWB] < WBITS_ZMIN)
        return CONC_EPROTO;
    p->server_no_context_takeover = m->seen[P_SNCT];
    p->client_no_context_takeover = m->seen[P_CNCT];
    p->server_max_window_bits = m->seen[P_SMWB] ? m->bits[P_SMWB] : WBITS_MAX;
    p->client_max_window_bits = m->seen[P_CMWB] ? m->bits[P_CMWB] : WBITS_MAX;
    return 0;
}

int
conc__ws_deflate_accept_response(const struct conc__ws_http *response,
                                 const struct conc__ws_deflate_opts *o,
                                 struct conc__ws_deflate_params *params)
{
    if (!response || !o || !params || !opts_ok(o))
        return CONC_EINVAL;
    struct conc__ws_span v;
    struct conc__ws_ext ext;
    struct pmd m;
    size_t found = 0;
    int r = 0;
    for (size_t i = 0;
         conc__ws_http_header(response, "Sec-WebSocket-Extensions", i, &v) == 0;
         i++) {
        struct conc__ws_ext e;
        while ((r = conc__ws_ext_next(&v, &e)) == 0) {
            /* Only one extension was offered: anything else, or a second
             * one, fails the connection (RFC 6455 section 9.1). */
            if (found++ || !is_pmd(&e))
                return CONC_EPROTO;
            ext = e;
        }
        if (r != CONC_ENOENT)
            return r;
    }
    if (!found)
        return CONC_ENOENT;
    r = read_params(&ext, &m);
    return r ? r : client_check(&m, o, params);
}

/* ---- Streams ------------------------------------------------------------ */

/* malloc, not calloc, as zlib's own allocator does: zlib initializes
 * what it reads, and zeroing its window and hash tables would make every
 * page of them resident on a connection's first compressed message
 * (bench_ws: about 163 KiB per idle connection pair instead of 113). */
static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return conc__malloc((size_t)items * size);
}

static void
z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    conc__free(p);
}

int
conc__ws_deflate_new(enum conc__ws_role role,
                     const struct conc__ws_deflate_params *params,
                     const struct conc__ws_deflate_opts *o,
                     conc__ws_deflate **out)
{
    static const struct conc__ws_deflate_opts defaults;
    if (!params || !out)
        return CONC_EINVAL;
    if (!o)
        o = &defaults;
    if (!opts_ok(o))
        return CONC_EINVAL;
    int srv = role == CONC__WS_SERVER;
    int sb = params->server_max_window_bits,
        cb = params->client_max_window_bits;
    if (sb < WBITS_MIN || sb > WBITS_MAX || cb < WBITS_MIN || cb > WBITS_MAX)
        return CONC_EINVAL;
    int out_bits =
        min_int(srv ? sb : cb, pref(srv ? o->server_max_window_bits
                                        : o->client_max_window_bits));
    if (out_bits < WBITS_ZMIN)
        return CONC_EINVAL;
    conc__ws_deflate *d = conc__calloc(1, sizeof *d);
    if (!d)
        return CONC_ENOMEM;
    d->out_bits = out_bits;
    d->in_bits = srv ? cb : sb;
    d->out_reset = srv ? params->server_no_context_takeover
                       : params->client_no_context_takeover;
    d->in_reset = srv ? params->client_no_context_takeover
                      : params->server_no_context_takeover;
    d->mem_level = o->mem_level ? o->mem_level : CONC__WS_DEFLATE_MEMLEVEL;
    d->threshold = o->threshold;
    *out = d;
    return 0;
}

void
conc__ws_deflate_free(conc__ws_deflate *d)
{
    if (!d)
        return;
    if (d->zc_ready)
        deflateEnd(&d->zc);
    if (d->zd_ready)
        inflateEnd(&d->zd);
    conc__free(d);
}

int
conc__ws_deflate_wants(const conc__ws_deflate *d, size_t n)
{
    return d && n >= d->threshold;
}

static int
zc_init(conc__ws_deflate *d)
{
    if (d->zc_ready)
        return 0;
    memset(&d->zc, 0, sizeof d->zc);
    d->zc.zalloc = z_alloc;
    d->zc.zfree = z_free;
    int r = deflateInit2(&d->zc, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                         -d->out_bits, d->mem_level, Z_DEFAULT_STRATEGY);
    if (r != Z_OK)
        return r == Z_MEM_ERROR ? CONC_ENOMEM : -EIO;
    d->zc_ready = 1;
    return 0;
}

static int
ends_with_tail(const conc_buf *b, size_t start)
{
    return b->len - start >= 4 && memcmp(b->data + b->len - 4, TAIL, 4) == 0;
}

/* Runs deflate over the input until it is consumed and flushed. */
static int
deflate_all(conc__ws_deflate *d, conc_buf *out)
{
    for (;;) {
        int r = conc_buf_reserve(out, OUT_CHUNK);
        if (r)
            return r;
        size_t room = out->cap - out->len;
        room = room > UINT_MAX ? UINT_MAX : room;
        d->zc.next_out = out->data + out->len;
        d->zc.avail_out = (uInt)room;
        int zr = deflate(&d->zc, Z_SYNC_FLUSH);
        out->len += room - d->zc.avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EIO;
        if (d->zc.avail_out != 0 || zr == Z_BUF_ERROR)
            return 0;
    }
}

int
conc__ws_deflate_compress(conc__ws_deflate *d, const void *p, size_t n, int fin,
                          conc_buf *out)
{
    if (!d || !out || (!p && n))
        return CONC_EINVAL;
    int r = zc_init(d);
    if (r)
        return r;
    size_t start = out->len;
    const uint8_t *in = p;
    do {
        /* zlib counts in uInt: feed a huge message in slices. */
        uInt take = n > UINT_MAX ? UINT_MAX : (uInt)n;
        d->zc.next_in = (Bytef *)(uintptr_t)in;
        d->zc.avail_in = take;
        r = deflate_all(d, out);
        size_t used = take - d->zc.avail_in;
        n -= used;
        if (used) /* never an offset on NULL, for an empty message */
            in += used;
    } while (!r && n);
    if (!r && fin && !ends_with_tail(out, start))
        r = conc_buf_append(out, EMPTY_STORED, sizeof EMPTY_STORED);
    if (r) {
        out->len = start;
        return r;
    }
    if (fin) {
        out->len -= 4;
        if (d->out_reset)
            deflateReset(&d->zc);
    }
    return 0;
}

static int
zd_init(conc__ws_deflate *d)
{
    if (d->zd_ready)
        return 0;
    memset(&d->zd, 0, sizeof d->zd);
    d->zd.zalloc = z_alloc;
    d->zd.zfree = z_free;
    int r = inflateInit2(&d->zd, -d->in_bits);
    if (r != Z_OK)
        return r == Z_MEM_ERROR ? CONC_ENOMEM : -EIO;
    d->zd_ready = 1;
    return 0;
}

/* Room for the next inflate step, never past limit + 1 bytes, so that one
 * byte too many is enough to see the limit passed. */
static int
inflate_room(conc_buf *out, size_t limit, size_t *room)
{
    size_t left = limit - out->len; /* out->len <= limit holds here */
    size_t want = left < OUT_CHUNK ? left + 1 : OUT_CHUNK;
    int r = conc_buf_reserve(out, want);
    if (r)
        return r;
    *room = out->cap - out->len;
    if (*room > left && left < SIZE_MAX)
        *room = left + 1;
    if (*room > UINT_MAX)
        *room = UINT_MAX;
    return 0;
}

static int
inflate_all(conc__ws_deflate *d, const uint8_t *p, size_t n, size_t limit,
            conc_buf *out)
{
    d->zd.next_in = (Bytef *)(uintptr_t)p;
    d->zd.avail_in = 0;
    while (!d->zd_ended && (n || d->zd.avail_in)) {
        if (!d->zd.avail_in) {
            uInt take = n > UINT_MAX ? UINT_MAX : (uInt)n;
            d->zd.next_in = (Bytef *)(uintptr_t)p;
            d->zd.avail_in = take;
            p += take;
            n -= take;
        }
        size_t room;
        int r = inflate_room(out, limit, &room);
        if (r)
            return r;
        d->zd.next_out = out->data + out->len;
        d->zd.avail_out = (uInt)room;
        int zr = inflate(&d->zd, Z_SYNC_FLUSH);
        out->len += room - d->zd.avail_out;
        if (out->len > limit)
            return CONC_EMSGSIZE;
        if (zr == Z_STREAM_END)
            d->zd_ended = 1;
        else if (zr == Z_MEM_ERROR)
            return CONC_ENOMEM;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return CONC_EPROTO; /* Z_BUF_ERROR: all input taken, go on */
    }
    return 0;
}

int
conc__ws_deflate_decompress(conc__ws_deflate *d, const void *p, size_t n,
                            int fin, size_t limit, conc_buf *out)
{
    if (!d || !out || (!p && n))
        return CONC_EINVAL;
    if (out->len > limit)
        return CONC_EMSGSIZE;
    int r = zd_init(d);
    if (!r)
        r = inflate_all(d, p, n, limit, out);
    if (!r && fin)
        r = inflate_all(d, TAIL, sizeof TAIL, limit, out);
    if (fin || r) {
        /* A BFINAL block ends the stream: the next message starts a new
         * one, as it does without context takeover. */
        if (d->zd_ended || d->in_reset || r)
            inflateReset(&d->zd);
        d->zd_ended = 0;
    }
    return r;
}
