/* WebSocket frames (RFC 6455 section 5): header parsing and writing,
 * masking, and close frame payloads.
 *
 *   0                   1                   2                   3
 *   +-+-+-+-+-------+-+-------------+-------------------------------+
 *   |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *   |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *   |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *   +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *   |     Masking-key, if MASK set to 1 (4 bytes)                   |
 *   +---------------------------------------------------------------+
 *
 * Non-minimal length encodings are accepted, as python websockets and
 * Node's ws accept them: the RFC's "MUST" there protects nothing. */
#include <string.h>

#include "core/internal.h"
#include "ws/proto.h"

/* The 7-bit length values that announce a 16-bit or a 64-bit length. */
#define LEN16_MARK 126
#define LEN64_MARK 127

static int
opcode_known(unsigned op)
{
    return op <= CONC__WS_BINARY ||
           (op >= CONC__WS_CLOSE && op <= CONC__WS_PONG);
}

static int
parse_length(const uint8_t *p, size_t n, struct conc__ws_frame *f, size_t *pos)
{
    unsigned len7 = p[1] & 0x7F;
    if (len7 < LEN16_MARK) {
        f->len = len7;
        return 0;
    }
    size_t bytes = len7 == LEN16_MARK ? 2 : 8;
    if (n < *pos + bytes)
        return CONC_EAGAIN;
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = v << 8 | p[*pos + i];
    /* Section 5.2: the most significant bit of a 64-bit length is 0. */
    if (v >> 63)
        return CONC_EPROTO;
    f->len = v;
    *pos += bytes;
    return 0;
}

int
conc__ws_frame_parse(const uint8_t *p, size_t n, enum conc__ws_role role,
                     struct conc__ws_frame *f)
{
    if (!p || !f)
        return CONC_EINVAL;
    if (n < 2)
        return CONC_EAGAIN;
    f->fin = p[0] >> 7;
    f->rsv = p[0] & (CONC__WS_RSV1 | CONC__WS_RSV2 | CONC__WS_RSV3);
    f->opcode = p[0] & 0x0F;
    f->masked = p[1] >> 7;
    if (!opcode_known(f->opcode))
        return CONC_EPROTO;
    if (f->opcode >= CONC__WS_CLOSE &&
        (!f->fin || (p[1] & 0x7F) > CONC__WS_CONTROL_MAX))
        return CONC_EPROTO;
    /* A server must get masked frames, a client unmasked ones. */
    if (f->masked != (role == CONC__WS_SERVER))
        return CONC_EPROTO;
    size_t pos = 2;
    int r = parse_length(p, n, f, &pos);
    if (r)
        return r;
    if (f->masked) {
        if (n < pos + 4)
            return CONC_EAGAIN;
        memcpy(f->mask, p + pos, 4);
        pos += 4;
    } else {
        memset(f->mask, 0, 4);
    }
    f->header_len = pos;
    return 0;
}

size_t
conc__ws_header_write(uint8_t *out, uint8_t first, uint64_t len,
                      const uint8_t *mask)
{
    uint8_t mbit = mask ? 0x80 : 0;
    size_t pos = 2;
    out[0] = first;
    if (len < LEN16_MARK) {
        out[1] = mbit | (uint8_t)len;
    } else if (len <= UINT16_MAX) {
        out[1] = mbit | LEN16_MARK;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        pos = 4;
    } else {
        out[1] = mbit | LEN64_MARK;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        pos = 10;
    }
    if (mask) {
        memcpy(out + pos, mask, 4);
        pos += 4;
    }
    return pos;
}

int
conc__ws_frame_append(conc_buf *out, uint8_t first, const void *payload,
                      size_t n, const uint8_t *mask)
{
    if (!out || (!payload && n))
        return CONC_EINVAL;
    uint8_t hdr[CONC__WS_HEADER_MAX];
    size_t hl = conc__ws_header_write(hdr, first, n, mask);
    if (n > SIZE_MAX - hl)
        return CONC_EOVERFLOW;
    int r = conc_buf_reserve(out, hl + n);
    if (r)
        return r;
    uint8_t *dst = out->data + out->len;
    memcpy(dst, hdr, hl);
    if (mask)
        conc__ws_mask_copy(dst + hl, payload, n, mask, 0);
    else if (n)
        memcpy(dst + hl, payload, n);
    out->len += hl + n;
    return 0;
}

/* XORs a word at a time: the key, rotated to the payload offset, is
 * repeated across a 64-bit word, which is applied with memcpy loads and
 * stores (no alignment assumption; compilers turn them into plain moves
 * and vectorize the loop). The bytes before and after run one by one. */
void
conc__ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                   const uint8_t key[4], size_t offset)
{
    uint8_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = key[(offset + i) & 3];
    uint64_t kw;
    memcpy(&kw, k, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= kw;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k[i & 7];
}

int
conc__ws_close_code_valid(unsigned code)
{
    /* 1004-1006 and 1015 are reserved and never sent; 1012-1014 were
     * registered with IANA after the RFC and are in use. */
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

int
conc__ws_close_parse(const uint8_t *p, size_t n, unsigned *code,
                     const uint8_t **reason, size_t *reason_len)
{
    if (!code || !reason || !reason_len || (!p && n))
        return CONC_EINVAL;
    *reason = p;
    *reason_len = 0;
    if (n == 0) {
        *code = CONC__WS_CLOSE_NO_STATUS;
        return 0;
    }
    if (n == 1)
        return CONC_EPROTO;
    unsigned c = (unsigned)p[0] << 8 | p[1];
    if (!conc__ws_close_code_valid(c))
        return CONC_EPROTO;
    if (conc__utf8_check(p + 2, n - 2))
        return CONC_EVALUE;
    *code = c;
    *reason = p + 2;
    *reason_len = n - 2;
    return 0;
}

unsigned
conc__ws_close_code_for(int err)
{
    switch (err) {
    case CONC_EPROTO:
        return CONC__WS_CLOSE_PROTOCOL;
    case CONC_EVALUE:
        return CONC__WS_CLOSE_INVALID_DATA;
    case CONC_EMSGSIZE:
        return CONC__WS_CLOSE_TOO_BIG;
    default:
        return CONC__WS_CLOSE_INTERNAL;
    }
}
