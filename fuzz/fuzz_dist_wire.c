/* Fuzzes the scale-out wire format (src/dist/wire.c): what another
 * process, in any language, wrote into Redis. The first byte picks the
 * reader: a result value, a task entry (fields split at NUL bytes), or a
 * server address. Whatever a reader accepts must hold its promises: a
 * decoded result re-encodes to the same bytes (a cancel with no message,
 * which another worker may spell "e<CONC_ECANCELED> ", to "c": the two
 * mean the same to a future), a decoded task has valid names and a ttl,
 * an address has a host and a port in range. */
#include "conc/buf.h"
#include "conc/error.h"
#include "core/internal.h"
#include "dist/dist_internal.h"
#include "fuzz.h"

#define MAX_FIELDS 32

static void
fuzz_result(const uint8_t *data, size_t size)
{
    struct conc__dist_result r;
    uint8_t *v = malloc(size ? size : 1); /* exact: overreads hit a redzone */
    FUZZ_CHECK(v);
    memcpy(v, data, size);
    if (conc__dist_result_decode(v, size, &r) == 0) {
        FUZZ_CHECK(r.code <= 0);
        FUZZ_CHECK(r.len <= size);
        conc_buf b = CONC_BUF_INIT;
        FUZZ_CHECK(conc__dist_result_encode(&b, r.code, r.data, r.len) == 0);
        if (r.code == CONC_ECANCELED && r.len == 0) /* "c", or e<code> */
            FUZZ_CHECK(b.len == 1 && b.data[0] == 'c');
        else
            FUZZ_CHECK(b.len == size && memcmp(b.data, v, size) == 0);
        conc_buf_free(&b);
    }
    free(v);
}

static void
fuzz_task(const uint8_t *data, size_t size)
{
    const char *vals[MAX_FIELDS];
    size_t lens[MAX_FIELDS], n = 0, start = 0;
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    for (size_t i = 0; i <= size && n < MAX_FIELDS; i++)
        if (i == size || copy[i] == '\0') {
            vals[n] = copy + start;
            lens[n++] = i - start;
            start = i + 1;
        }
    struct conc__dist_task t;
    const char *why = NULL;
    if (conc__dist_task_decode(n, vals, lens, &t, &why) == 0) {
        FUZZ_CHECK(conc__dist_name_ok(t.id, t.id_len));
        FUZZ_CHECK(conc__dist_name_ok(t.fn, t.fn_len));
        FUZZ_CHECK(conc__dist_name_ok(t.sub, t.sub_len));
        FUZZ_CHECK(t.ttl_ms > 0 && why == NULL);
    } else {
        FUZZ_CHECK(why != NULL);
    }
    free(copy);
}

static void
fuzz_address(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    char *host = NULL, *pw = NULL;
    int port = 0;
    if (conc__dist_parse_address(s, &host, &port, &pw) == 0) {
        FUZZ_CHECK(host && host[0] && port > 0 && port <= 65535);
        conc__free(host);
        conc__free(pw);
    }
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_result(data + 1, size - 1);
        break;
    case 1:
        fuzz_task(data + 1, size - 1);
        break;
    default:
        fuzz_address(data + 1, size - 1);
        break;
    }
    return 0;
}
