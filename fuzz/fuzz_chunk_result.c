/* Fuzzes the reader of chunk results, conc__chunk_next (src/executor/
 * chunk.c). A map reads the outcomes a chunk task wrote, in a process pool
 * after they crossed from a worker process, so the reader must walk any
 * bytes safely: each outcome it returns lies inside the buffer, positions
 * only move forward and never pass the end, the sizes it reports add up
 * to the distance moved, and the walk ends. */
#include "executor/executor_internal.h"
#include "fuzz.h"

#define PAD8(n) (((uint64_t)(n) + 7u) & ~(uint64_t)7u)

/* Keeps the reads of every outcome's bytes, so that AddressSanitizer sees
 * them. */
static volatile unsigned sink;

/* Checks one outcome that conc__chunk_next returned between `before` and
 * `after` in `buf` of `size` bytes. */
static void
check_outcome(const uint8_t *buf, size_t size, size_t before, size_t after,
              int code, const char *msg, size_t mlen, const void *out,
              size_t len)
{
    FUZZ_CHECK(after > before && after <= size);
    FUZZ_CHECK((after - before) % 8 == 0);
    FUZZ_CHECK((const uint8_t *)msg == buf + before + 16);
    FUZZ_CHECK(mlen <= size - before - 16);
    FUZZ_CHECK((out == NULL) == (len == 0));
    FUZZ_CHECK(len <= size);
    if (out) {
        const uint8_t *o = out;
        FUZZ_CHECK(o >= (const uint8_t *)msg + mlen);
        FUZZ_CHECK(len <= (size_t)(buf + size - o));
    }
    FUZZ_CHECK(after - before == 16 + PAD8(mlen) + PAD8(len));
    int32_t head;
    memcpy(&head, buf + before, 4);
    FUZZ_CHECK(code == head);
    unsigned s = 0;
    for (size_t i = 0; i < mlen; i++)
        s += (uint8_t)msg[i];
    for (size_t i = 0; i < len; i++)
        s += ((const uint8_t *)out)[i];
    sink = s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: a read past the end lands in a redzone. */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    if (size)
        memcpy(copy, data, size);
    conc_buf res = {copy, size, size, 0};
    size_t pos = 0;
    for (;;) {
        int code = 0;
        const char *msg = NULL;
        size_t mlen = 0, len = 0;
        const void *out = NULL;
        size_t before = pos;
        int r = conc__chunk_next(&res, &pos, &code, &msg, &mlen, &out, &len);
        FUZZ_CHECK(r == 1 || r == 0 || r == CONC_EPROTO);
        if (r != 1) {
            FUZZ_CHECK(pos == before);
            FUZZ_CHECK(r == 0 ? before >= size : before < size);
            break;
        }
        check_outcome(copy, size, before, pos, code, msg, mlen, out, len);
    }
    free(copy);
    return 0;
}
