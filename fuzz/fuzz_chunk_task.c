/* Fuzzes the reader of chunk arguments, conc__chunk_task (src/executor/
 * chunk.c): a chunk's argument names the item task, then holds the items,
 * each as a 64-bit length and its bytes padded to 8. The target puts its
 * own item task in front of the input and reads the rest as items. Each
 * item must reach the task as exactly its bytes, an item that overruns the
 * chunk must fail the chunk with CONC_EPROTO, and the result must read
 * back, with conc__chunk_next, as one outcome per item that an independent
 * walk of the input predicts. */
#include "executor/executor_internal.h"
#include "fuzz.h"

#define PAD8(n)   (((uint64_t)(n) + 7u) & ~(uint64_t)7u)
#define MAX_ITEMS 4096

static volatile unsigned sink;

/* The item task: reads every byte it is given, then by the first byte
 * fails, echoes the item, returns nothing, or echoes with a positive code
 * (which counts as success). */
static int
item_task(const void *arg, size_t len, conc_buf *result)
{
    const uint8_t *p = arg;
    FUZZ_CHECK((p == NULL) == (len == 0));
    unsigned s = 0;
    for (size_t i = 0; i < len; i++)
        s += p[i];
    sink = s;
    switch (len ? p[0] % 4 : 2) {
    case 0:
        return conc_fail(CONC_EVALUE, "item of %zu bytes", len);
    case 1:
        return conc_buf_append(result, p, len);
    case 2:
        return 0;
    default:
        return conc_buf_append(result, p, len) ? CONC_ENOMEM : 1;
    }
}

struct item {
    size_t off, len;
};

/* Walks the items of `data` as the format says. Returns how many whole
 * items there are, and in *overrun whether one claims more bytes than
 * are left. */
static size_t
walk(const uint8_t *data, size_t size, struct item *items, int *overrun)
{
    size_t n = 0, off = 0;
    *overrun = 0;
    while (size - off >= 8 && n < MAX_ITEMS) {
        uint64_t len;
        memcpy(&len, data + off, 8);
        off += 8;
        if (len > size - off) {
            *overrun = 1;
            break;
        }
        items[n++] = (struct item){off, (size_t)len};
        off += PAD8(len) < size - off ? (size_t)PAD8(len) : size - off;
    }
    return n;
}

/* Checks the outcome of one item against what item_task does with it. */
static void
check_item(const conc_buf *res, size_t *pos, const uint8_t *bytes, size_t len)
{
    int code;
    const char *msg;
    size_t mlen, olen;
    const void *out;
    FUZZ_CHECK(conc__chunk_next(res, pos, &code, &msg, &mlen, &out, &olen) ==
               1);
    int kind = len ? bytes[0] % 4 : 2;
    if (kind == 0) {
        char want[64];
        snprintf(want, sizeof want, "item of %zu bytes", len);
        FUZZ_CHECK(code == CONC_EVALUE && olen == 0);
        FUZZ_CHECK(mlen == strlen(want) && memcmp(msg, want, mlen) == 0);
        return;
    }
    FUZZ_CHECK(code == 0 && mlen == 0);
    if (kind == 2) {
        FUZZ_CHECK(olen == 0 && out == NULL);
        return;
    }
    FUZZ_CHECK(olen == len && memcmp(out, bytes, len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct item items[MAX_ITEMS];
    int overrun;
    size_t n = walk(data, size, items, &overrun);
    if (n == MAX_ITEMS)
        return 0; /* too many to predict cheaply; the walk stopped early */
    conc_task_fn fn = item_task;
    size_t len = sizeof fn + size;
    uint8_t *arg = malloc(len); /* exact size: overruns hit a redzone */
    FUZZ_CHECK(arg);
    memcpy(arg, &fn, sizeof fn);
    if (size)
        memcpy(arg + sizeof fn, data, size);
    conc_buf res = CONC_BUF_INIT;
    int r = conc__chunk_task(arg, len, &res);
    FUZZ_CHECK(r == (overrun ? CONC_EPROTO : 0));
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        check_item(&res, &pos, data + items[i].off, items[i].len);
    int code;
    const char *msg;
    size_t mlen, olen;
    const void *out;
    FUZZ_CHECK(conc__chunk_next(&res, &pos, &code, &msg, &mlen, &out, &olen) ==
               0);
    conc_buf_free(&res);

    /* A chunk too short to name its task is refused and writes nothing. */
    r = conc__chunk_task(arg, size % sizeof fn, &res);
    FUZZ_CHECK(r == CONC_EPROTO && res.len == 0);
    conc_buf_free(&res);
    free(arg);
    return 0;
}
