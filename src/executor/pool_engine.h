/* What a Pool (pool.c) may ask of the executor under it: the whole of its
 * access to the executor's internals. A Pool is an executor plus Python's
 * lifecycle and callbacks; it starts an engine with a hook, submits jobs
 * tagged with its own kind and record, reads a finished job's tag in the
 * hook, and stops the engine. It never touches an engine's or a job's
 * fields.
 *
 * Lock order: a Pool's callback lock is taken before an engine's lock
 * (a callback may submit), so the hook must not be called with an engine
 * lock held; the engines call it with none held. */
#ifndef CONC_EXECUTOR_POOL_ENGINE_H
#define CONC_EXECUTOR_POOL_ENGINE_H

#include <stdint.h>

#include "conc/arena.h"
#include "conc/executor.h"
#include "future/future_internal.h"

/* The Pool's hook, run once per job just before its future completes:
 * `code` (0 or the failure) and `msg` ("" on success) say how the job
 * ended; the result is in conc__future_result_buf(f). In the thread that
 * completes the job: a thread worker, or a process engine's result thread,
 * with no engine lock held. */
typedef void (*conc__job_done_fn)(conc_future *f, int code, const char *msg);

/* A new thread or process engine whose jobs end through `on_done` (may
 * be NULL). Returns 0 or the constructor's error (conc_executor.h). */
int conc__thread_engine_new(const conc_executor_opts *opts,
                            conc__job_done_fn on_done, conc_executor **out);
int conc__process_engine_new(const conc_executor_opts *opts,
                             conc__job_done_fn on_done, conc_executor **out);

/* Submits a job of `fn` on a copy of `len` bytes at `arg`, with descriptor
 * `fd` (-1: none; the executor dups it), tagged `kind` (0: the hook has
 * nothing to do) with record `owner`: the pointer itself, or, with
 * `rec_len` non-zero, a copy of the `rec_len` bytes at `owner` kept in the
 * job's block (no allocation of its own, gone with the job). Returns its
 * future (a new reference in *out, or none if out is NULL). Returns 0,
 * CONC_ENOMEM, CONC_EBADF, or the engine's refusal (CONC_ECLOSED,
 * CONC_EBROKEN, CONC_EFULL, CONC_ETIMEDOUT). Any thread. */
int conc__executor_submit(conc_executor *ex, conc_task_fn fn, const void *arg,
                          size_t len, int fd, uint32_t kind, void *owner,
                          size_t rec_len, conc_future **out);

/* A job's tag, record (the copy, for a record kept in the block) and
 * argument, for the hook: `f` is a future of conc__executor_submit. */
uint32_t conc__job_kind(conc_future *f);
void *conc__job_owner(conc_future *f);
const void *conc__job_arg(conc_future *f);

/* Stops at once: pending jobs fail with CONC_ECLOSED, process workers are
 * killed. Does not wait. Returns 0. */
int conc__executor_terminate(conc_executor *ex);

/* Waits up to `timeout` for every worker to end after a shutdown or
 * terminate. Returns 0 or CONC_ETIMEDOUT. */
int conc__executor_join(conc_executor *ex, double timeout);

/* Whether the calling thread runs one of ex's tasks or hooks (a join from
 * there would wait for itself). */
int conc__executor_in_task(const conc_executor *ex);

/* The shared arena a process engine's workers see, or NULL. */
conc_arena *conc__executor_arena(conc_executor *ex);

/* The number of CPUs (a Pool's default number of workers). */
size_t conc__cpu_count(void);

/* A lazy map iterator over ex (map.c): in input order or not; the whole
 * map ends at the absolute `deadline` (CONC__FOREVER: no bound). */
int conc__map_new(conc_executor *ex, conc_task_fn fn, const conc_items *items,
                  const conc_map_opts *opts, int ordered, int64_t deadline,
                  conc_map_iter **out);

/* A map iterator whose results come from elsewhere (the Redis
 * executor's map, src/dist/map.c): conc_map_next, conc_map_index and
 * conc_map_free forward to these with `self`, which free releases. */
struct conc__map_ops {
    int (*next)(void *self, double timeout, const void **data, size_t *len);
    size_t (*index)(const void *self);
    void (*free)(void *self);
};
int conc__map_new_ops(const struct conc__map_ops *ops, void *self,
                      conc_map_iter **out);

/* An array chunk (chunk.c): fn over `count` elements of in_size bytes at
 * `in`, the results (exactly out_size bytes each, or dropped when out_size
 * is 0) stored at `out`. Both pointers are valid in the worker: the
 * caller's memory in a thread pool, shared memory in a process pool. */
struct conc__array_chunk {
    conc_task_fn fn;
    const uint8_t *in;
    uint8_t *out;
    size_t count, in_size, out_size;
    size_t first; /* index of the first element, for messages */
    struct conc__chunk_progress *progress; /* or NULL */
};

/* How far an array chunk got, where the parent reads it if the chunk's
 * worker dies: in a process pool's shared memory, one line per chunk.
 * The worker writes the failure first, then `done`. */
struct conc__chunk_progress {
    _Alignas(64) _Atomic uint64_t done; /* items finished */
    uint64_t failed; /* index of the first failing item, or UINT64_MAX */
    int32_t fcode;
    char fmsg[172];
};

/* Set while a pool re-submits what a dead worker's chunk did not run: the
 * chunk belongs to a map accepted before any close, so the process engine
 * takes it after a close too, when it comes from its result thread (a
 * pool's hook). */
extern _Thread_local int conc__chunk_rerun;

/* Runs an array chunk. Succeeds with an empty result, or fails with the
 * first failing element's code and message (the others still run); the
 * failing index is in the message's first 8 bytes of the result. */
int conc__array_chunk_task(const void *arg, size_t len, conc_buf *result);

#endif
