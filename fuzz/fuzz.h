/* Shared helpers of the fuzz targets: the libFuzzer entry point's
 * prototype, a check that aborts (so that libFuzzer records the input),
 * and a reader that draws numbers from the input bytes. */
#ifndef CONC_FUZZ_H
#define CONC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test. A failure is a finding: it prints
 * where and aborts, and libFuzzer saves the input that caused it. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Reads little-endian numbers from the input; past its end every read
 * gives 0, so that any input is a complete program of operations. */
struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

static inline uint64_t
fuzz_take(struct fuzz_in *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes && in->left; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static inline int
fuzz_done(const struct fuzz_in *in)
{
    return in->left == 0;
}

/* A deterministic byte pattern, so that a long payload needs only its
 * length and a seed in the input, and can be checked on the way out. */
static inline uint8_t
fuzz_pattern(uint32_t seed, size_t i)
{
    return (uint8_t)(seed + i * 131 + (i >> 8));
}

static inline void
fuzz_fill(uint8_t *dst, size_t n, uint32_t seed, size_t from)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = fuzz_pattern(seed, from + i);
}

static inline int
fuzz_matches(const uint8_t *src, size_t n, uint32_t seed, size_t from)
{
    for (size_t i = 0; i < n; i++)
        if (src[i] != fuzz_pattern(seed, from + i))
            return 0;
    return 1;
}

#endif
