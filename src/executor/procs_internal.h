/* The process engine's shared structures: what the parent and its worker
 * processes both see. */
#ifndef CONC_EXECUTOR_PROCS_INTERNAL_H
#define CONC_EXECUTOR_PROCS_INTERNAL_H

#include "conc/arena.h"
#include "executor/executor_internal.h"
#include "executor/ring.h"

/* Task frame flags. */
#define CONC__TASK_FD    1u /* a descriptor waits on the worker's socket */
#define CONC__TASK_ARENA 2u /* the argument lies in the arena */
#define CONC__TASK_EXIT  4u /* no task: the worker should leave */

struct conc__task_hdr {
    uint64_t seq;
    uint64_t fn; /* the task function's address (the same after fork) */
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

/* One worker's shared region, mapped before it is forked. */
struct conc__wshared {
    struct conc__ring task;     /* parent -> worker */
    struct conc__ring res;      /* worker -> parent */
    _Atomic uint64_t started;   /* seq of the running task, 0 for none */
    _Atomic int64_t started_ns; /* when it started (monotonic) */
};

/* What a worker process is started with (its argument bytes). */
struct conc__worker_arg {
    struct conc__wshared *sh;
    _Atomic uint32_t *parent_sleeping;
    int wake_fd; /* eventfd: wakes the parent's result thread */
    int sock;    /* the worker's end of the descriptor socket */
    conc_arena *arena;
    conc_task_fn initializer;
    const uint8_t *initarg; /* the parent's copy, inherited by fork */
    size_t initarg_len;
    size_t max_tasks; /* 0: no limit */
};

/* The worker process's main function. */
int conc__worker_main(const void *arg, size_t len);

#endif
