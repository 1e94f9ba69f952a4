/* Incremental, fail-fast UTF-8 validation (RFC 3629, the Unicode
 * standard's table 3-7 of well-formed byte sequences).
 *
 * A lead byte fixes how many continuation bytes follow and the range the
 * first of them must fall in; that range is what rules out overlong forms
 * (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points past
 * U+10FFFF (F4 90..BF) at the earliest byte, as Autobahn's group 6.4
 * requires. Every later continuation byte is 80..BF. The state between
 * calls is that expectation, so a character may straddle two frames.
 *
 * ASCII, the common case, is skipped eight bytes at a time. */
#include <string.h>

#include "core/internal.h"
#include "ws/proto.h"

#define CONT_LO    0x80
#define CONT_HI    0xBF
#define HIGH_BITS8 0x8080808080808080ULL

void
conc__utf8_reset(struct conc__utf8 *s)
{
    s->need = 0;
    s->lo = CONT_LO;
    s->hi = CONT_HI;
}

/* Sets the expectation after lead byte b; returns 0 or CONC_EVALUE. */
static int
lead(struct conc__utf8 *s, uint8_t b)
{
    s->lo = CONT_LO;
    s->hi = CONT_HI;
    if (b >= 0xC2 && b <= 0xDF) {
        s->need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        s->need = 2;
        if (b == 0xE0)
            s->lo = 0xA0;
        else if (b == 0xED)
            s->hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        s->need = 3;
        if (b == 0xF0)
            s->lo = 0x90;
        else if (b == 0xF4)
            s->hi = 0x8F;
    } else {
        return CONC_EVALUE; /* 80..C1 and F5..FF never start a character */
    }
    return 0;
}

int
conc__utf8_feed(struct conc__utf8 *s, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->need == 0) {
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & HIGH_BITS8)
                    break;
                i += 8;
            }
            if (i == n)
                break;
            uint8_t b = p[i++];
            if (b < 0x80)
                continue;
            if (lead(s, b))
                return CONC_EVALUE;
            continue;
        }
        uint8_t b = p[i++];
        if (b < s->lo || b > s->hi)
            return CONC_EVALUE;
        s->need--;
        s->lo = CONT_LO;
        s->hi = CONT_HI;
    }
    return 0;
}

int
conc__utf8_finish(const struct conc__utf8 *s)
{
    return s->need ? CONC_EVALUE : 0;
}

int
conc__utf8_check(const uint8_t *p, size_t n)
{
    struct conc__utf8 s;
    conc__utf8_reset(&s);
    int r = conc__utf8_feed(&s, p, n);
    return r ? r : conc__utf8_finish(&s);
}
