/* The WebSocket protocol engine without I/O (src/ws/proto.h): what the
 * engine costs per frame before any socket is involved. No CPython twin:
 * python websockets' engine is measured through its sockets in the
 * WebSockets rows of PERF.md, which need the I/O binding.
 *
 * Rows:
 *   ws_parse_1k      a masked 1 KiB binary frame received by a server
 *                    connection: parse, unmask, event out (ns per frame)
 *   ws_send_mask_1k  a 1 KiB binary message sent by a client connection:
 *                    header, fresh mask key, masked copy (ns per frame)
 *   ws_mask_64k      unmasking 64 KiB in place: the word-at-a-time XOR
 *                    beside a byte-at-a-time loop (ns per 64 KiB)
 *
 * INFO lines give the engine's memory per connection once a message has
 * gone each way (the part of PERF.md's "memory per idle connection" that
 * the engine owns; the binding adds its task stack and buffers): plain,
 * with permessage-deflate at the default window bits 12 and memLevel 5,
 * and at zlib's own defaults (15, 8) for comparison. conc's allocations
 * are counted through conc_replace_allocator.
 *
 * Every run checks its output (event type and length, output size), so a
 * broken engine cannot report a fast time. */
#include <malloc.h>

#include "bench_common.h"

#include "conc/alloc.h"
#include "ws/proto.h"

#define FRAME_PAYLOAD 1024
#define BATCH         64 /* frames per receive call */
#define MASK_BYTES    65536

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- Memory: a counting wrapper around malloc ---------------------------- */

static atomic_long live_bytes;

static void *
count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live_bytes, (long)malloc_usable_size(p));
    return p;
}

static void *
count_calloc(size_t k, size_t n)
{
    void *p = calloc(k, n);
    if (p)
        atomic_fetch_add(&live_bytes, (long)malloc_usable_size(p));
    return p;
}

static void
count_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_bytes, (long)malloc_usable_size(p));
    free(p);
}

static void *
count_realloc(void *p, size_t n)
{
    long before = p ? (long)malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q)
        atomic_fetch_add(&live_bytes, (long)malloc_usable_size(q) - before);
    return q;
}

/* Bytes a server connection holds after one 1 KiB message each way
 * (its queued output included). */
static long
conn_memory(const struct conc__ws_deflate_params *pd,
            const struct conc__ws_deflate_opts *dopts)
{
    static uint8_t msg[FRAME_PAYLOAD];
    struct conc__ws_conn_opts so = {
        .role = CONC__WS_SERVER, .deflate = pd, .deflate_opts = dopts};
    struct conc__ws_conn_opts co = so;
    co.role = CONC__WS_CLIENT;
    conc__ws_conn *cl, *sv;
    conc_buf out = CONC_BUF_INIT;
    struct conc__ws_event ev;
    /* The client's own streams are made before counting starts. */
    BENCH_CHECK(conc__ws_conn_new(&co, &cl));
    BENCH_CHECK(conc__ws_conn_send(cl, CONC__WS_BINARY, msg, sizeof msg));
    BENCH_CHECK(conc__ws_conn_take_output(cl, &out));
    long base = atomic_load(&live_bytes);
    BENCH_CHECK(conc__ws_conn_new(&so, &sv));
    BENCH_CHECK(conc__ws_conn_receive(sv, out.data, out.len));
    BENCH_CHECK(conc__ws_conn_next_event(sv, &ev));
    conc_buf_free(&ev.data);
    BENCH_CHECK(conc__ws_conn_send(sv, CONC__WS_BINARY, msg, sizeof msg));
    BENCH_CHECK(conc__ws_conn_take_output(sv, &out));
    long used = atomic_load(&live_bytes) - base;
    conc_buf_free(&out);
    conc__ws_conn_free(sv);
    conc__ws_conn_free(cl);
    return used;
}

static void
memory_info(void)
{
    struct conc__ws_deflate_params d12 = {0, 0, 12, 12};
    struct conc__ws_deflate_params d15 = {0, 0, 15, 15};
    struct conc__ws_deflate_opts zlib_defaults = {.server_max_window_bits = 15,
                                                  .client_max_window_bits = 15,
                                                  .mem_level = 8};
    printf("INFO ws engine memory per connection: %ld B plain, %ld B with "
           "deflate (12 bits, memLevel 5), %ld B with zlib's defaults\n",
           conn_memory(NULL, NULL), conn_memory(&d12, NULL),
           conn_memory(&d15, &zlib_defaults));
}

/* ---- Throughput -----------------------------------------------------------
 */

static double
parse_run(void *ctx, long n, long *ops)
{
    conc_buf *frames = ctx; /* BATCH frames back to back */
    struct conc__ws_conn_opts o = {.role = CONC__WS_SERVER};
    conc__ws_conn *c;
    BENCH_CHECK(conc__ws_conn_new(&o, &c));
    long done = 0;
    long long t0 = bench_now_ns();
    while (done < n) {
        BENCH_CHECK(conc__ws_conn_receive(c, frames->data, frames->len));
        struct conc__ws_event ev;
        while (conc__ws_conn_next_event(c, &ev) == 0) {
            BENCH_ASSERT(ev.type == CONC__WS_EV_BINARY &&
                         ev.data.len == FRAME_PAYLOAD);
            conc_buf_free(&ev.data);
        }
        done += BATCH;
    }
    double s = bench_seconds_since(t0);
    conc__ws_conn_free(c);
    *ops = done;
    return s;
}

static double
send_run(void *ctx, long n, long *ops)
{
    const uint8_t *payload = ctx;
    struct conc__ws_conn_opts o = {.role = CONC__WS_CLIENT};
    conc__ws_conn *c;
    conc_buf out = CONC_BUF_INIT;
    BENCH_CHECK(conc__ws_conn_new(&o, &c));
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        BENCH_CHECK(
            conc__ws_conn_send(c, CONC__WS_BINARY, payload, FRAME_PAYLOAD));
        if ((i + 1) % BATCH == 0 || i + 1 == n) {
            BENCH_CHECK(conc__ws_conn_take_output(c, &out));
            BENCH_ASSERT(out.len % (FRAME_PAYLOAD + 8) == 0);
        }
    }
    double s = bench_seconds_since(t0);
    conc_buf_free(&out);
    conc__ws_conn_free(c);
    *ops = n;
    return s;
}

static double
mask_word_run(void *ctx, long n, long *ops)
{
    uint8_t *buf = ctx;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc__ws_mask_copy(buf, buf, MASK_BYTES, KEY, (size_t)i);
        bench_clobber();
    }
    *ops = n;
    return bench_seconds_since(t0);
}

static double
mask_byte_run(void *ctx, long n, long *ops)
{
    uint8_t *buf = ctx;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < MASK_BYTES; j++) {
            buf[j] ^= KEY[(j + (size_t)i) & 3];
            bench_clobber(); /* keep it a byte loop, as a naive one is */
        }
    }
    *ops = n;
    return bench_seconds_since(t0);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    BENCH_CHECK(conc_replace_allocator(count_malloc, count_realloc,
                                       count_calloc, count_free));
    memory_info();
    static uint8_t payload[FRAME_PAYLOAD];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    conc_buf frames = CONC_BUF_INIT;
    for (int i = 0; i < BATCH; i++)
        BENCH_CHECK(
            conc__ws_frame_append(&frames, 0x82, payload, sizeof payload, KEY));
    bench_impl parse = {"conc", parse_run, &frames};
    bench_row(&o, "ws_parse_1k", &parse, 1, 0, BATCH);
    conc_buf_free(&frames);

    bench_impl send = {"conc", send_run, payload};
    bench_row(&o, "ws_send_mask_1k", &send, 1, 0, BATCH);

    uint8_t *buf = calloc(1, MASK_BYTES);
    BENCH_ASSERT(buf != NULL);
    bench_impl mask[2] = {{"conc", mask_word_run, buf},
                          {"bytewise", mask_byte_run, buf}};
    bench_row(&o, "ws_mask_64k", mask, 2, 0, 4);
    free(buf);
    return 0;
}
