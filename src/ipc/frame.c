/* CPython's framing (multiprocessing.connection, Connection._send_bytes
 * and _recv_bytes), for connections made by conc_listener_accept and
 * conc_client_connect, which talk to Python's Listener and Client.
 *
 * Each message is a 4-byte signed big-endian length and the payload. A
 * payload longer than 0x7fffffff bytes is announced by the length -1
 * followed by an 8-byte unsigned big-endian length. Python accepts the
 * escape for any length, so this reader does too; any other negative
 * length is not Python's framing.
 *
 * The functions here are pure over bytes, so the fuzzer drives them
 * directly (fuzz/fuzz_frame.c); recv.c and send.c choose them over conc's
 * own header for a connection flagged CONC__CONN_PYWIRE. */
#include "ipc/ipc_internal.h"

#define PY_SHORT_HDR 4
#define PY_LONG_HDR  12
#define PY_SHORT_MAX UINT64_C(0x7fffffff)
#define PY_ESCAPE    UINT32_C(0xffffffff) /* struct.pack("!i", -1) */

static uint64_t
get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

size_t
conc__pyframe_put(uint8_t *p, uint64_t len)
{
    if (len <= PY_SHORT_MAX) {
        put_be(p, len, PY_SHORT_HDR);
        return PY_SHORT_HDR;
    }
    put_be(p, PY_ESCAPE, PY_SHORT_HDR);
    put_be(p + PY_SHORT_HDR, len, PY_LONG_HDR - PY_SHORT_HDR);
    return PY_LONG_HDR;
}

int
conc__pyframe_get(const uint8_t *p, size_t have, uint64_t *len, size_t *hdr)
{
    if (have < PY_SHORT_HDR)
        return 1;
    uint32_t n = (uint32_t)get_be(p, PY_SHORT_HDR);
    if (n <= PY_SHORT_MAX) {
        *len = n;
        *hdr = PY_SHORT_HDR;
        return 0;
    }
    if (n != PY_ESCAPE)
        return CONC_EPROTO; /* a negative length other than -1 */
    if (have < PY_LONG_HDR)
        return 1;
    *len = get_be(p + PY_SHORT_HDR, PY_LONG_HDR - PY_SHORT_HDR);
    *hdr = PY_LONG_HDR;
    return 0;
}

int
conc__conn_frame_get(const conc_conn *c, const uint8_t *p, size_t have,
                     unsigned *kind, uint64_t *len, size_t *hdr)
{
    if (c->flags & CONC__CONN_PYWIRE) {
        *kind = CONC__KIND_BYTES;
        return conc__pyframe_get(p, have, len, hdr);
    }
    if (have < CONC__FRAME_HDR)
        return 1;
    conc__frame_get(p, kind, len);
    *hdr = CONC__FRAME_HDR;
    return 0;
}
