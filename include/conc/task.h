/* conc/task.h: the one task signature every executor and pool runs.
 *
 * A task reads its argument as a byte string and appends its result, also
 * bytes, to `result`. The same function runs unchanged in a thread
 * executor, a process executor, a Pool or a ThreadPool: switching between
 * them is a one-line change, as concurrent.futures promises in Python.
 * Across a process boundary both byte strings are copied, so pass structs
 * without pointers; in a thread pool the bytes are copied too, which makes a
 * pointer's own bytes (memcpy of the pointer) a valid argument there.
 *
 * A task succeeds by returning 0 (or any non-negative value) and fails by
 * returning a negative conc code, optionally with a message left by
 * conc_fail; the code and the message travel to whoever waits on the
 * result (Python's exception). */
#ifndef CONC_TASK_H
#define CONC_TASK_H

#include "buf.h"
#include "common.h"

CONC_BEGIN_DECLS

/* A task: `arg` is the task's own copy of `len` argument bytes (NULL when
 * `len` is 0), aligned as malloc aligns; `result` is an empty buffer the
 * task may append to, owned by the library. Returns >= 0 or a negative conc
 * code. */
typedef int (*conc_task_fn)(const void *arg, size_t len, conc_buf *result);

/* Called in a task running in a thread executor or ThreadPool: 1 once
 * someone asked to cancel it (conc_future_cancel on a running task), else
 * 0. A task that sees 1 may stop early; returning CONC_ECANCELED then makes
 * its future cancelled. 0 everywhere else, also in process pools. */
CONC_EXTERN int conc_task_cancelled(void);

/* Called in a task started with a descriptor (conc_submit_opts.fd): the
 * task's own copy of it, valid until the task returns, when the pool closes
 * it (unless the task took it with conc_task_take_fd). -1 otherwise.
 * The thread running the task.
 * Never fails: -1 stands for no descriptor. */
CONC_EXTERN int conc_task_fd(void);

/* Takes ownership of the task's descriptor: the pool will not close it
 * after the task returns. Returns the descriptor, or -1 if there is none.
 * The thread running the task.
 * Never fails: -1 stands for no descriptor. */
CONC_EXTERN int conc_task_take_fd(void);

CONC_END_DECLS

#endif
