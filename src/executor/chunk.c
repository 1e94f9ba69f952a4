/* Chunks: several map items run as one task, so that a map pays one
 * submission per chunk rather than per item. A chunk is itself an ordinary
 * task (its argument names the item task), so every engine runs it
 * unchanged, in a thread or in a worker process. */
#include <stdio.h>
#include <string.h>

#include "executor/executor_internal.h"

/* In size_t before adding, so that a 32-bit length near its top does not
 * wrap to a small padded size. */
#define PAD8(n) (((size_t)(n) + 7u) & ~(size_t)7u)

static const uint8_t zeros[8];

int
conc__chunk_begin(conc_buf *chunk, conc_task_fn fn)
{
    chunk->len = 0;
    return conc_buf_append(chunk, &fn, sizeof fn);
}

int
conc__chunk_add(conc_buf *chunk, const void *item, size_t len)
{
    uint64_t n = len;
    int r = conc_buf_reserve(chunk, 8 + PAD8(len));
    if (r < 0)
        return r;
    conc_buf_append(chunk, &n, 8);
    conc_buf_append(chunk, item, len);
    conc_buf_append(chunk, zeros, PAD8(len) - len);
    return 0;
}

/* Appends one item's outcome to a chunk result. */
static int
put_outcome(conc_buf *res, int code, const char *msg, const conc_buf *data)
{
    uint32_t head[2] = {(uint32_t)code, 0};
    size_t mlen = code < 0 ? strlen(msg) : 0;
    uint64_t dlen = code < 0 ? 0 : data->len;
    head[1] = (uint32_t)mlen;
    int r = conc_buf_reserve(res, 16 + PAD8(mlen) + PAD8(dlen));
    if (r < 0)
        return r;
    conc_buf_append(res, head, 8);
    conc_buf_append(res, &dlen, 8);
    conc_buf_append(res, msg, mlen);
    conc_buf_append(res, zeros, PAD8(mlen) - mlen);
    if (dlen)
        conc_buf_append(res, data->data, dlen);
    conc_buf_append(res, zeros, PAD8(dlen) - dlen);
    return 0;
}

/* Copies the outcome just appended to `result` (from `from` on) into the
 * log, if it fits. Returns 1 if it did. */
static int
log_outcome(struct conc__chunk_log *log, const conc_buf *result, size_t from)
{
    uint64_t used = atomic_load_explicit(&log->used, memory_order_relaxed);
    size_t n = result->len - from;
    if (n > sizeof log->bytes - used)
        return 0;
    memcpy(log->bytes + used, result->data + from, n);
    atomic_store_explicit(&log->used, used + n, memory_order_release);
    atomic_fetch_add_explicit(&log->done, 1, memory_order_release);
    return 1;
}

/* Runs the items from `p` to `end` through fn, appending their outcomes
 * to `result`, and with a log, to the log too: a chunk whose next outcome
 * does not fit in its log ends after that item (the caller runs the rest
 * as a new chunk), so that the log always holds every outcome but the
 * last one's. */
static int
run_items(conc_task_fn fn, const uint8_t *p, const uint8_t *end,
          conc_buf *result, struct conc__chunk_log *log)
{
    conc_buf out = CONC_BUF_INIT;
    int r = 0;
    while (r == 0 && end - p >= 8) {
        uint64_t n;
        memcpy(&n, p, 8);
        p += 8;
        if ((uint64_t)(end - p) < n) {
            conc_buf_free(&out);
            return conc_fail(CONC_EPROTO, "a chunk item overruns its chunk");
        }
        out.len = 0;
        conc_clear_failure();
        size_t from = result->len;
        int code = fn(n ? p : NULL, (size_t)n, &out);
        r = put_outcome(result, code < 0 ? code : 0,
                        code < 0 ? conc_failure_message() : "", &out);
        if (r == 0 && log && !log_outcome(log, result, from))
            break;
        /* The last item's padding may be cut off: stop at the end. */
        p += PAD8(n) < (size_t)(end - p) ? PAD8(n) : (size_t)(end - p);
    }
    conc_buf_free(&out);
    return r;
}

int
conc__chunk_put_failure(conc_buf *res, int code, const char *msg)
{
    return put_outcome(res, code, msg, NULL);
}

int
conc__chunk_task(const void *arg, size_t len, conc_buf *result)
{
    const uint8_t *p = arg;
    conc_task_fn fn;
    if (len < sizeof fn)
        return conc_fail(CONC_EPROTO, "a chunk without its task");
    memcpy(&fn, p, sizeof fn);
    return run_items(fn, p + sizeof fn, p + len, result, NULL);
}

int
conc__chunk_task_logged(const void *arg, size_t len, conc_buf *result)
{
    const uint8_t *p = arg;
    conc_task_fn fn;
    struct conc__chunk_log *log;
    if (len < sizeof fn + sizeof log)
        return conc_fail(CONC_EPROTO, "a chunk without its task");
    memcpy(&fn, p, sizeof fn);
    memcpy(&log, p + sizeof fn, sizeof log);
    p += sizeof fn + sizeof log;
    return run_items(fn, p, (const uint8_t *)arg + len, result, log);
}

int
conc__chunk_next(const conc_buf *res, size_t *pos, int *code, const char **msg,
                 size_t *msglen, const void **data, size_t *len)
{
    if (*pos >= res->len)
        return 0;
    const uint8_t *p = res->data + *pos;
    size_t left = res->len - *pos;
    uint32_t head[2];
    uint64_t dlen;
    if (left < 16)
        return CONC_EPROTO;
    memcpy(head, p, 8);
    memcpy(&dlen, p + 8, 8);
    /* Lengths are checked against the room left before they are padded:
     * a length near 2^64 would wrap to a small padded one. */
    size_t room = left - 16;
    if (PAD8(head[1]) > room)
        return CONC_EPROTO;
    room -= PAD8(head[1]);
    if (dlen > room || PAD8(dlen) > room)
        return CONC_EPROTO;
    *code = (int32_t)head[0];
    *msg = (const char *)p + 16;
    *msglen = head[1];
    *data = dlen ? p + 16 + PAD8(head[1]) : NULL;
    *len = (size_t)dlen;
    *pos += 16 + PAD8(head[1]) + PAD8(dlen);
    return 1;
}

/* ---- Array chunks ------------------------------------------------------- */

_Thread_local int conc__chunk_rerun;

/* Records the chunk's first failure where the parent can read it. */
static void
note_failure(struct conc__chunk_progress *p, uint64_t idx, int code)
{
    if (!p)
        return;
    p->failed = idx;
    p->fcode = code;
    snprintf(p->fmsg, sizeof p->fmsg, "%s", conc_failure_message());
}

int
conc__array_chunk_task(const void *arg, size_t len, conc_buf *result)
{
    struct conc__array_chunk c;
    if (len != sizeof c)
        return conc_fail(CONC_EPROTO, "a malformed array chunk");
    memcpy(&c, arg, sizeof c);
    conc_buf out = CONC_BUF_INIT;
    uint64_t failed = UINT64_MAX;
    int fcode = 0;
    for (size_t i = 0; i < c.count; i++) {
        out.len = 0;
        int code = c.fn(c.in + i * c.in_size, c.in_size, &out);
        if (code >= 0 && c.out_size && out.len != c.out_size)
            code = conc_fail(CONC_EVALUE,
                             "item %zu: the task returned %zu bytes, the map "
                             "expects %zu",
                             c.first + i, out.len, c.out_size);
        if (code < 0) {
            if (failed == UINT64_MAX) {
                failed = c.first + i;
                fcode = code;
                conc_buf_append(result, &failed, 8);
                conc_buf_append(result, &fcode, sizeof fcode);
                conc_buf_appendf(result, "%s", conc_failure_message());
                note_failure(c.progress, failed, fcode);
            }
            conc_clear_failure();
        } else if (c.out_size) {
            memcpy(c.out + i * c.out_size, out.data, c.out_size);
        }
        if (c.progress) /* one line per chunk: no other writer shares it */
            atomic_store_explicit(&c.progress->done, i + 1,
                                  memory_order_release);
    }
    conc_buf_free(&out);
    return 0;
}
