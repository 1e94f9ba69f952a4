/* Ints of any size: the few operations values need (conversion from and
 * to pickle's two's complement bytes, decimal text both ways, Python's
 * hash, exact comparison with floats), not arithmetic.
 *
 * An int that fits in int64_t is stored inline; a larger one as a sign and
 * a magnitude of 32-bit limbs, least significant first, without leading
 * zero limbs (obj_internal.h). normalize() keeps that one representation.
 * Decimal conversion divides by 10^9 limb by limb: quadratic, which the
 * pickle reader bounds through its limit on an int's bytes (Python itself
 * refuses to print ints of more than 4300 digits). */
#include <math.h>
#include <string.h>

#include "obj/obj_internal.h"

#define LIMB_BITS  32
#define DEC_CHUNK  1000000000u /* 10^9: nine decimal digits per limb step */
#define DEC_DIGITS 9
/* Python's modulus for numeric hashes: the Mersenne prime 2^61 - 1. */
#define HASH_BITS    61
#define HASH_MODULUS (((uint64_t)1 << HASH_BITS) - 1)
/* Longest decimal text conc_obj_int_parse reads. */
#define PARSE_MAX_DIGITS 100000
/* Limbs of the largest finite double: 2^1024 needs 33. */
#define DOUBLE_LIMBS 34

/* A big int of magnitude limbs[0..n) and `sign`, or a small one if it
 * fits: a new reference, or NULL out of memory. */
static conc_obj *
make_int(int sign, const uint32_t *limbs, size_t n)
{
    while (n && limbs[n - 1] == 0)
        n--;
    uint64_t mag = 0;
    if (n <= 2) {
        for (size_t i = n; i-- > 0;)
            mag = mag << LIMB_BITS | limbs[i];
        if (mag <= (uint64_t)INT64_MAX)
            return conc_obj_int(sign < 0 ? -(int64_t)mag : (int64_t)mag);
        if (sign < 0 && mag == (uint64_t)INT64_MAX + 1)
            return conc_obj_int(INT64_MIN);
    }
    conc_obj *o = conc__obj_alloc(CONC_OBJ_INT, sizeof(struct conc__int) +
                                                    n * sizeof(*limbs));
    if (!o)
        return NULL;
    struct conc__int *b = CONC__INT(o);
    b->sign = sign;
    b->nlimbs = (uint32_t)n;
    memcpy(b->limbs, limbs, n * sizeof *limbs);
    return o;
}

/* The magnitude of `o` as limbs into `tmp` (room for 2) for a small int,
 * or its own limbs. Returns the limbs; *n and *sign receive the rest. */
static const uint32_t *
magnitude(const conc_obj *o, uint32_t tmp[2], size_t *n, int *sign)
{
    const struct conc__int *b = CONC__INT(o);
    if (b->nlimbs) {
        *n = b->nlimbs;
        *sign = b->sign;
        return b->limbs;
    }
    int64_t v = b->small;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    *sign = v < 0 ? -1 : v > 0;
    tmp[0] = (uint32_t)mag;
    tmp[1] = (uint32_t)(mag >> LIMB_BITS);
    *n = tmp[1] ? 2 : tmp[0] ? 1 : 0;
    return tmp;
}

conc_obj *
conc__int_from_le(const uint8_t *p, size_t n)
{
    int neg = n && (p[n - 1] & 0x80);
    size_t nl = (n + 3) / 4;
    uint32_t *limbs = conc__calloc(nl ? nl : 1, sizeof *limbs);
    if (!limbs)
        return NULL;
    /* Negating two's complement: invert every byte, then add one. */
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned byte = p[i];
        if (neg) {
            byte = (~byte & 0xffu) + carry;
            carry = byte >> 8;
            byte &= 0xffu;
        }
        limbs[i / 4] |= (uint32_t)byte << (8 * (i % 4));
    }
    conc_obj *o = make_int(neg ? -1 : 1, limbs, nl);
    conc__free(limbs);
    return o;
}

/* Appends the minimal two's complement, as CPython's encode_long writes
 * it: (bit_length >> 3) + 1 bytes, less a redundant 0xff; 0 is empty. */
int
conc__int_to_le(const conc_obj *o, conc_buf *b)
{
    uint32_t tmp[2];
    size_t n;
    int sign;
    const uint32_t *l = magnitude(o, tmp, &n, &sign);
    if (n == 0)
        return 0;
    unsigned top = 0;
    for (uint32_t t = l[n - 1]; t; t >>= 1)
        top++;
    size_t bits = (n - 1) * LIMB_BITS + top, nbytes = (bits >> 3) + 1;
    int r = conc_buf_reserve(b, nbytes);
    if (r)
        return r;
    uint8_t *out = b->data + b->len;
    unsigned carry = 1;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned byte = i / 4 < n ? (l[i / 4] >> (8 * (i % 4))) & 0xffu : 0;
        if (sign < 0) {
            byte = (~byte & 0xffu) + carry;
            carry = byte >> 8;
            byte &= 0xffu;
        }
        out[i] = (uint8_t)byte;
    }
    if (sign < 0 && nbytes > 1 && out[nbytes - 1] == 0xff &&
        (out[nbytes - 2] & 0x80))
        nbytes--;
    b->len += nbytes;
    return 0;
}

/* The limbs of the integral double |v| into limbs[DOUBLE_LIMBS]. */
static size_t
double_limbs(double v, uint32_t *limbs)
{
    int e;
    double m = frexp(fabs(v), &e); /* |v| = m * 2^e, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int shift = e - 53;
    memset(limbs, 0, DOUBLE_LIMBS * sizeof *limbs);
    if (shift < 0) {
        mant >>= -shift;
        shift = 0;
    }
    size_t w = (size_t)shift / LIMB_BITS, s = (size_t)shift % LIMB_BITS;
    limbs[w] |= (uint32_t)(mant << s);
    limbs[w + 1] |= (uint32_t)((mant << s) >> LIMB_BITS);
    if (s)
        limbs[w + 2] |= (uint32_t)(mant >> (2 * LIMB_BITS - s));
    size_t n = DOUBLE_LIMBS;
    while (n && limbs[n - 1] == 0)
        n--;
    return n;
}

bool
conc__int_equal(const conc_obj *a, const conc_obj *b)
{
    const struct conc__int *x = CONC__INT(a), *y = CONC__INT(b);
    if (x->nlimbs != y->nlimbs)
        return false;
    if (!x->nlimbs)
        return x->small == y->small;
    return x->sign == y->sign &&
           memcmp(x->limbs, y->limbs, x->nlimbs * sizeof *x->limbs) == 0;
}

/* Whether the finite double f is integral, without libm: from 2^53 up
 * every double is. */
static bool
integral(double f)
{
    return fabs(f) >= 9007199254740992.0 || (double)(int64_t)f == f;
}

bool
conc__int_equal_double(const conc_obj *a, double f)
{
    if (!isfinite(f) || !integral(f))
        return false;
    const struct conc__int *x = CONC__INT(a);
    if (fabs(f) < 9.0e18)
        return !x->nlimbs && x->small == (int64_t)f;
    if (!x->nlimbs || (x->sign < 0) != (f < 0))
        return false;
    uint32_t limbs[DOUBLE_LIMBS];
    size_t n = double_limbs(f, limbs);
    return n == x->nlimbs && memcmp(limbs, x->limbs, n * sizeof *limbs) == 0;
}

/* Correctly rounded, as Python's float(int): the top 64 bits of the
 * magnitude with every lower bit folded into the lowest (a sticky bit,
 * below the 53 kept, so that the conversion's round-half-even sees
 * whether anything was cut), then scaled by the bits cut. */
int
conc__int_to_double(const conc_obj *o, double *v)
{
    const struct conc__int *x = CONC__INT(o);
    if (!x->nlimbs) {
        *v = (double)x->small;
        return 0;
    }
    size_t n = x->nlimbs;
    unsigned top_bits = 0;
    for (uint32_t t = x->limbs[n - 1]; t; t >>= 1)
        top_bits++;
    size_t bits = (n - 1) * LIMB_BITS + top_bits, cut = bits - 64;
    uint64_t top = 0, sticky = 0;
    for (size_t i = 0; i < n; i++) {
        size_t lo = i * LIMB_BITS; /* bit position of limb i */
        uint64_t limb = x->limbs[i];
        if (lo + LIMB_BITS <= cut)
            sticky |= limb;
        else if (lo >= cut)
            top |= limb << (lo - cut);
        else {
            top |= limb >> (cut - lo);
            sticky |= limb & (((uint64_t)1 << (cut - lo)) - 1);
        }
    }
    double d = ldexp((double)(top | (sticky != 0)), (int)cut);
    if (isinf(d))
        return CONC_EOVERFLOW;
    *v = x->sign < 0 ? -d : d;
    return 0;
}

/* Python's hash: the value modulo 2^61 - 1 with the int's sign, -1 being
 * reserved (it becomes -2). Limbs fold in from the most significant:
 * multiplying by 2^32 modulo a Mersenne prime is a rotation. */
int64_t
conc__int_hash(const conc_obj *o)
{
    uint32_t tmp[2];
    size_t n;
    int sign;
    const uint32_t *l = magnitude(o, tmp, &n, &sign);
    uint64_t h = 0;
    for (size_t i = n; i-- > 0;) {
        h = ((h << LIMB_BITS) & HASH_MODULUS) | h >> (HASH_BITS - LIMB_BITS);
        h += l[i];
        if (h >= HASH_MODULUS)
            h -= HASH_MODULUS;
    }
    int64_t r = sign < 0 ? -(int64_t)h : (int64_t)h;
    return r == -1 ? -2 : r;
}

/* Divides the magnitude l[0..*n) in place by `d`, returning the
 * remainder and trimming *n. */
static uint32_t
divmod_small(uint32_t *l, size_t *n, uint32_t d)
{
    uint64_t rem = 0;
    for (size_t i = *n; i-- > 0;) {
        uint64_t cur = rem << LIMB_BITS | l[i];
        l[i] = (uint32_t)(cur / d);
        rem = cur % d;
    }
    while (*n && l[*n - 1] == 0)
        (*n)--;
    return (uint32_t)rem;
}

int
conc__int_repr(const conc_obj *o, conc_buf *b)
{
    const struct conc__int *x = CONC__INT(o);
    if (!x->nlimbs)
        return conc_buf_appendf(b, "%lld", (long long)x->small);
    size_t n = x->nlimbs, nchunks = 0;
    uint32_t *l = conc__malloc(n * sizeof *l);
    /* Each limb gives at most 10 digits: chunks of 9 fit in 2 per limb. */
    uint32_t *chunks = conc__malloc(2 * n * sizeof *chunks);
    int r = CONC_ENOMEM;
    if (!l || !chunks)
        goto out;
    memcpy(l, x->limbs, n * sizeof *l);
    while (n)
        chunks[nchunks++] = divmod_small(l, &n, DEC_CHUNK);
    r = conc_buf_appendf(b, "%s%u", x->sign < 0 ? "-" : "", chunks[--nchunks]);
    while (!r && nchunks--)
        r = conc_buf_appendf(b, "%0*u", DEC_DIGITS, chunks[nchunks]);
out:
    conc__free(l);
    conc__free(chunks);
    return r;
}

/* Multiplies the magnitude by `mul` and adds `add`, growing it by one
 * limb when needed (room is the caller's). */
static void
muladd(uint32_t *l, size_t *n, uint32_t mul, uint32_t add)
{
    uint64_t carry = add;
    for (size_t i = 0; i < *n; i++) {
        uint64_t cur = (uint64_t)l[i] * mul + carry;
        l[i] = (uint32_t)cur;
        carry = cur >> LIMB_BITS;
    }
    if (carry)
        l[(*n)++] = (uint32_t)carry;
}

/* Reads the digits of `s` (with '_' only between digits) into the
 * magnitude; returns false for text Python's int() refuses. */
static bool
parse_digits(const char *s, uint32_t *l, size_t *n)
{
    uint32_t chunk = 0, mul = 1;
    bool digit_before = false;
    for (; *s; s++) {
        if (*s == '_') {
            if (!digit_before || !(s[1] >= '0' && s[1] <= '9'))
                return false;
            continue;
        }
        if (*s < '0' || *s > '9')
            return false;
        digit_before = true;
        chunk = chunk * 10 + (uint32_t)(*s - '0');
        mul *= 10;
        if (mul == DEC_CHUNK) {
            muladd(l, n, mul, chunk);
            chunk = 0, mul = 1;
        }
    }
    if (mul > 1)
        muladd(l, n, mul, chunk);
    return digit_before;
}

int
conc_obj_int_parse(const char *text, conc_obj **out)
{
    if (!text || !out)
        return CONC_EINVAL;
    while (*text == ' ' || (*text >= '\t' && *text <= '\r'))
        text++;
    int sign = 1;
    if (*text == '+' || *text == '-')
        sign = *text++ == '-' ? -1 : 1;
    size_t len = strlen(text);
    while (len && (text[len - 1] == ' ' ||
                   (text[len - 1] >= '\t' && text[len - 1] <= '\r')))
        len--;
    if (len == 0 || len > PARSE_MAX_DIGITS)
        return CONC_EVALUE;
    char *digits = conc__malloc(len + 1);
    /* log2(10) < 3.33: len digits need fewer than len / 9 + 2 limbs. */
    uint32_t *l = conc__calloc(len / DEC_DIGITS + 2, sizeof *l);
    size_t n = 0;
    int r = CONC_ENOMEM;
    if (!digits || !l)
        goto out;
    memcpy(digits, text, len);
    digits[len] = '\0';
    r = CONC_EVALUE;
    if (!parse_digits(digits, l, &n))
        goto out;
    r = CONC_ENOMEM;
    conc_obj *o = make_int(sign, l, n);
    if (o) {
        *out = o;
        r = 0;
    }
out:
    conc__free(digits);
    conc__free(l);
    return r;
}
