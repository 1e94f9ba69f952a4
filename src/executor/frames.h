/* The frames between a process pool and its workers (procs_internal.h),
 * and their decoding. Each side reads frames the other process wrote, so
 * each frame is checked as input before it is used. The checks are pure
 * functions over the frame's bytes and the reader's own state, with no
 * engine behind them, so that fuzz targets drive them alone
 * (fuzz/fuzz_res_frame.c, fuzz/fuzz_task_frame.c). Any thread. */
#ifndef CONC_EXECUTOR_FRAMES_H
#define CONC_EXECUTOR_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "executor/ring.h"

/* The longest task frame: the ring's longest. */
#define CONC__TASK_FRAME_MAX CONC__RING_MAX_FRAME

/* Task frame flags. */
#define CONC__TASK_FD    1u /* a descriptor waits on the worker's socket */
#define CONC__TASK_ARENA 2u /* the argument lies in the arena */
#define CONC__TASK_EXIT  4u /* no task: the worker should leave */

struct conc__task_hdr {
    uint64_t seq;
    uint64_t wseq; /* its number among the worker's tasks: its claim word */
    uint64_t fn;   /* the task function's address (the same after fork) */
    uint64_t len;
    uint64_t arena_off; /* offset of the argument in the arena */
    uint32_t flags;
    uint32_t pad;
};

/* Result frame flags. */
#define CONC__RES_MORE 1u /* more data follows in continuation frames */
#define CONC__RES_CONT 2u /* a continuation frame: data only */
#define CONC__RES_INIT 4u /* the initializer failed (seq 0) */

struct conc__res_hdr {
    uint64_t seq;
    uint64_t total; /* result bytes in all the frames */
    int32_t code;
    uint32_t msglen;
    uint32_t flags;
    uint32_t pad;
    uint64_t run_ns; /* how long the task ran */
};

/* The longest failure message a result frame carries. */
#define CONC__RES_MSG_MAX 1024

/* Where a worker's result stream stands, as the parent reads it: a result
 * may come in several frames. */
struct conc__res_stream {
    uint64_t seq;   /* the task whose result is arriving in pieces, or 0 */
    uint64_t total; /* its announced size */
    uint64_t got;   /* its bytes so far */
};

/* A result frame, decoded: its header, and where its parts lie in its
 * payload. */
struct conc__res_frame {
    struct conc__res_hdr h;
    size_t msg_off, msglen; /* the failure message */
    size_t data_off, piece; /* this frame's bytes of the result */
    int init;               /* an initializer's failure: no task */
    int first;              /* a result's first frame: task h.seq must be
                               the worker's next one */
    int last;               /* the result is whole after this frame */
};

/* Decodes the result frame of `len` payload bytes whose first
 * min(len, sizeof(struct conc__res_hdr)) bytes are at `hdr`, against where
 * the stream `st` stands. Returns 0 with *out filled, or CONC_EPROTO with
 * *why saying what does not fit (a frame shorter than its header, a
 * message too long or beyond the frame, a result for task 0, a new result
 * before the last one's end, a continuation of no result or an empty one,
 * more bytes than announced, a last frame short of them). */
int conc__res_decode(const struct conc__res_stream *st, const void *hdr,
                     uint64_t len, struct conc__res_frame *out,
                     const char **why);

/* Moves the stream past a frame conc__res_decode accepted (not an
 * initializer's failure). */
void conc__res_advance(struct conc__res_stream *st,
                       const struct conc__res_frame *fr);

/* Checks a task frame of `len` payload bytes whose first
 * min(len, sizeof(struct conc__task_hdr)) bytes are at `hdr` (copied to
 * *h), against what the parent writes: task number `due` next, a length
 * that matches the header, known flags, an argument inside an arena of
 * `arena_size` bytes. Returns 1 for a task, 0 for the exit frame, or
 * CONC_EPROTO with what does not fit written to `why` (`size` bytes). */
int conc__task_check(const void *hdr, int64_t len, uint64_t due,
                     uint64_t arena_size, struct conc__task_hdr *h, char *why,
                     size_t size);

#endif
