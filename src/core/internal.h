/* Internal core: allocation through the replaceable hook, deadlines,
 * invariant failures, and small helpers shared by every module. */
#ifndef CONC_CORE_INTERNAL_H
#define CONC_CORE_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "conc/common.h"
#include "conc/error.h"

/* ---- Allocation (all of conc's memory goes through these) ------------- */
void *conc__malloc(size_t size);
void *conc__calloc(size_t count, size_t size);
void *conc__realloc(void *ptr, size_t size);
void conc__free(void *ptr);
char *conc__strdup(const char *s);
/* A zeroed block of `size` bytes at a multiple of `align` (a power of two
 * of at most 4096), for structures laid out by cache line; freed with
 * conc__free_aligned. NULL without memory. */
void *conc__calloc_aligned(size_t align, size_t size);
void conc__free_aligned(void *ptr);

/* Replaces b's content with `n` bytes at `data` (not inside b). Returns 0
 * or an error of conc_buf_reserve, leaving b unchanged on failure: the rule
 * for every conc_buf out-parameter. */
struct conc_buf;
int conc__buf_set(struct conc_buf *b, const void *data, size_t n);

/* ---- Deadlines --------------------------------------------------------
 * Absolute times in nanoseconds on CLOCK_MONOTONIC. CONC__FOREVER never
 * expires; CONC__POLL is already past, for calls that must not block. */
#define CONC__FOREVER INT64_MAX
#define CONC__POLL    ((int64_t)0)

/* Converts a public relative timeout to a deadline. Returns 0, or
 * CONC_EINVAL for NaN. CONC_FOREVER means forever; 0 and any other
 * negative value mean poll. */
int conc__deadline(double timeout, int64_t *deadline);

/* Monotonic now, in ns. */
int64_t conc__now_ns(void);

/* ---- At exit (exit.c) --------------------------------------------------
 * One atexit handler runs conc's end-of-program work in a fixed order, the
 * order Python follows, whichever feature the program touched first (with
 * one atexit handler per module, the last registered ran first, so the
 * order depended on that):
 *
 *   1. CONC__EXIT_THREADS: join the non-daemon threads conc started
 *      (threading._shutdown, which runs before any atexit callback);
 *   2. CONC__EXIT_CHILDREN: terminate the daemon children, join the
 *      others, stop the fork server (multiprocessing's _exit_function);
 *   3. CONC__EXIT_SHM: unlink the named segments this process created and
 *      left (the resource tracker, which runs once its program has ended).
 *
 * So a non-daemon thread still running at exit may start, use and join
 * processes and segments, and a child still running may use the segments,
 * until their stage is over. A module registers its stage when it is first
 * used; the handler itself is registered with atexit once, at the first
 * stage registered, so that it runs where a user's handlers registered
 * earlier or later expect it (atexit's last-in, first-out order). A stage
 * registered while the handler runs (a thread at exit starting the first
 * process) still runs, in its turn. _exit, quick_exit and fatal signals run
 * no stage; a child started by conc_process_start ends with _exit after its
 * own sequence (process.h). */
enum conc__exit_stage {
    CONC__EXIT_THREADS,
    CONC__EXIT_CHILDREN,
    CONC__EXIT_SHM,
    CONC__EXIT_NSTAGES
};

/* Makes `fn` run at normal exit as `stage`. Each stage has one function:
 * a second registration of the same stage is ignored. Any thread. */
void conc__at_exit(enum conc__exit_stage stage, void (*fn)(void));

/* ---- Failure messages (error.c) ---------------------------------------- */

/* The size of a failure message's buffer (conc_fail cuts at it). */
#define CONC__FAILURE_MAX 256

/* Where the calling thread's failure messages go and are read from, when
 * not its own buffer: a coroutine task's (CONC__FAILURE_MAX bytes). */
extern __thread char *conc__task_message
    __attribute__((tls_model("initial-exec")));

/* Makes `buf` (NULL: the thread's own) the calling thread's failure
 * message buffer and returns the one used before (NULL: the thread's
 * own). For the loop, on every switch into a task: inline, as it costs a
 * pair of TLS accesses. */
static inline char *
conc__failure_buffer_swap(char *buf)
{
    char *old = conc__task_message;
    conc__task_message = buf;
    return old;
}

/* ---- Invariants -------------------------------------------------------- */
_Noreturn void conc__panic(const char *fmt, ...) CONC_PRINTF(1, 2);

#define CONC__ASSERT(cond)                                                     \
    do {                                                                       \
        if (!(cond))                                                           \
            conc__panic("%s:%d: assertion failed: %s", __FILE__, __LINE__,     \
                        #cond);                                                \
    } while (0)

#define CONC__UNUSED(x)   ((void)(x))
#define CONC__LIKELY(x)   __builtin_expect(!!(x), 1)
#define CONC__UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
