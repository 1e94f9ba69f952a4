/* Fuzzes the worker's reader of task frames, conc__task_check (src/
 * executor/frames.c): what the parent writes into a worker's task ring,
 * as a task with a wild pointer may have rewritten it. The input is the
 * frame's length, the task number due and the header's bytes. A frame the
 * check accepts must be exactly what the parent writes: the number due, a
 * length that matches the header, known flags, an argument inside the
 * arena; a refusal says why in the buffer it was given. */
#include "conc/error.h"
#include "executor/frames.h"
#include "fuzz.h"

#define HDR        sizeof(struct conc__task_hdr)
#define ARENA_SIZE ((uint64_t)1 << 30)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    int64_t len = (int64_t)fuzz_take(&in, 8);
    uint64_t due = fuzz_take(&in, 8);
    size_t n = len > 0 && (uint64_t)len < HDR ? (size_t)len : HDR;
    uint8_t *hdr = malloc(n); /* exact: overreads hit a redzone */
    FUZZ_CHECK(hdr);
    for (size_t i = 0; i < n; i++)
        hdr[i] = (uint8_t)fuzz_take(&in, 1);
    struct conc__task_hdr h;
    char why[64];
    memset(why, 0x55, sizeof why);
    int r = conc__task_check(hdr, len, due, ARENA_SIZE, &h, why, sizeof why);
    if (r < 0) {
        FUZZ_CHECK(r == CONC_EPROTO && why[0] && memchr(why, 0, sizeof why));
    } else if (r == 0) {
        FUZZ_CHECK(len >= (int64_t)HDR && (h.flags & CONC__TASK_EXIT));
        FUZZ_CHECK(memcmp(&h, hdr, HDR) == 0);
    } else {
        FUZZ_CHECK(r == 1 && h.wseq == due && !(h.flags & CONC__TASK_EXIT));
        FUZZ_CHECK((uint64_t)len <= CONC__TASK_FRAME_MAX);
        FUZZ_CHECK(!(h.flags & ~(uint32_t)(CONC__TASK_FD | CONC__TASK_ARENA)));
        if (h.flags & CONC__TASK_ARENA)
            FUZZ_CHECK((uint64_t)len == HDR && h.arena_off &&
                       h.len <= ARENA_SIZE &&
                       h.arena_off <= ARENA_SIZE - h.len);
        else
            FUZZ_CHECK((uint64_t)len == HDR + h.len);
    }
    free(hdr);
    return 0;
}
