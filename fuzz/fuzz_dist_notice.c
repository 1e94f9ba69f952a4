/* Fuzzes the result notices of scale-out (src/dist/notice.c): the entries
 * of a submitter's done stream, which workers in any language write, each
 * carrying one or several results (fields id, task id, r, value, ...).
 * The input is a list of fields split at NUL bytes (a field of the one
 * byte 255 stands for one that is not a string): a split, not lengths,
 * so that the fuzzer's byte insertions keep fields whole. Whatever the
 * decoder hands over must hold: the value is the field after an "r", the
 * last "id" before that "r" (with no "r" in between) is exactly "SUB:SEQ"
 * as this submitter writes it, and the count matches a plain model of the
 * rules. */
#include <inttypes.h>

#include "conc/error.h"
#include "core/internal.h"
#include "dist/dist_internal.h"
#include "fuzz.h"

#define SUB        "p1-ab"
#define MAX_FIELDS 1100 /* more than a notice of 256 results */
#define NOT_STRING 255  /* a field of this one byte */

struct fields {
    const char *vals[MAX_FIELDS];
    size_t lens[MAX_FIELDS];
    size_t n;
    size_t got;
};

static int
is(const struct fields *fs, size_t i, const char *want)
{
    return fs->vals[i] && fs->lens[i] == strlen(want) &&
           memcmp(fs->vals[i], want, fs->lens[i]) == 0;
}

/* The field index of value v, by identity (the decoder points into the
 * fields, never copies). */
static size_t
index_of(const struct fields *fs, const char *v)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->vals[i] == v)
            return i;
    FUZZ_CHECK(!"a value that is no field");
    return 0;
}

static void
on_result(void *arg, uint64_t seq, const char *v, size_t len)
{
    struct fields *fs = arg;
    size_t i = index_of(fs, v);
    FUZZ_CHECK(i % 2 == 1 && len == fs->lens[i] && is(fs, i - 1, "r"));
    /* Its id: the last "id" before it, with no other "r" in between
     * (fields the decoder does not know may be). */
    size_t j = i - 1;
    do {
        FUZZ_CHECK(j >= 2);
        j -= 2;
        FUZZ_CHECK(!is(fs, j, "r"));
    } while (!is(fs, j, "id"));
    char want[64];
    int n = snprintf(want, sizeof want, SUB ":%" PRIu64, seq);
    FUZZ_CHECK(fs->lens[j + 1] == (size_t)n &&
               memcmp(fs->vals[j + 1], want, (size_t)n) == 0);
    struct conc__dist_result r; /* the value itself is checked like input */
    (void)conc__dist_result_decode(v, len, &r);
    fs->got++;
}

/* Whether the id field i is one of ours: "SUB:" then 1 to 20 digits, no
 * leading zero, at most UINT64_MAX. */
static int
model_ours(const struct fields *fs, size_t i)
{
    static const char max[] = "18446744073709551615";
    size_t pl = strlen(SUB ":");
    if (!fs->vals[i] || fs->lens[i] <= pl || memcmp(fs->vals[i], SUB ":", pl))
        return 0;
    size_t n = fs->lens[i] - pl;
    const char *d = fs->vals[i] + pl;
    if (n > 20 || (n > 1 && d[0] == '0'))
        return 0;
    for (size_t k = 0; k < n; k++)
        if (d[k] < '0' || d[k] > '9')
            return 0;
    return n < 20 || memcmp(d, max, 20) <= 0;
}

static size_t
model_count(const struct fields *fs)
{
    size_t count = 0, id = SIZE_MAX;
    for (size_t i = 0; i + 1 < fs->n; i += 2) {
        if (is(fs, i, "id"))
            id = i + 1;
        else if (is(fs, i, "r") && id != SIZE_MAX) {
            count += fs->vals[i + 1] && model_ours(fs, id);
            id = SIZE_MAX;
        }
    }
    return count;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fields fs;
    /* An exact copy: a read past a field's end hits the redzone. */
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    fs.n = fs.got = 0;
    for (size_t i = 0, start = 0; i <= size && fs.n < MAX_FIELDS; i++) {
        if (i < size && copy[i] != '\0')
            continue;
        int not_string = i - start == 1 && (uint8_t)copy[start] == NOT_STRING;
        fs.vals[fs.n] = not_string ? NULL : copy + start;
        fs.lens[fs.n++] = not_string ? 0 : i - start;
        start = i + 1;
    }
    size_t found =
        conc__dist_notice_decode(SUB, fs.n, fs.vals, fs.lens, on_result, &fs);
    FUZZ_CHECK(found == fs.got);
    FUZZ_CHECK(found == model_count(&fs));
    free(copy);
    return 0;
}
