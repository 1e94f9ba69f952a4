/* conc/thread.h: threads and thread-local data (threading.Thread, local).
 *
 * conc threads are POSIX threads and run in parallel on every core. Each has
 * a name ("MainThread" for the first thread, "Thread-N" by default for the
 * others), a daemon flag, and a handle that stays valid until the caller
 * frees it, whether or not the thread has ended.
 *
 * Daemon threads, written down for C: when the program ends through exit()
 * (including returning from main) or conc_exit(), conc first joins every
 * non-daemon thread it started, as Python does at interpreter exit; daemon
 * threads are not waited for and stop when the process ends. _exit(), a
 * fatal signal or quick_exit() wait for nobody. */
#ifndef CONC_THREAD_H
#define CONC_THREAD_H

#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_thread conc_thread;

/* A thread's function. Returning 0 means success; a negative conc code is a
 * failure, reported to the excepthook (see below) with the message the
 * function left with conc_fail, and available to conc_thread_join. */
typedef int (*conc_thread_fn)(void *arg);

typedef enum conc_daemon_mode {
    CONC_DAEMON_INHERIT = 0, /* the creating thread's flag, as in Python */
    CONC_DAEMON_YES,
    CONC_DAEMON_NO,
} conc_daemon_mode;

typedef struct conc_thread_opts {
    const char *name;        /* NULL: "Thread-N" (copied) */
    conc_daemon_mode daemon; /* default: inherit */
    size_t stack_size;       /* 0: the system default */
    /* Nonzero: conc_thread_start returns as soon as the new thread is in
     * its function, without CPython's order (below); for programs that
     * start many threads that compute without blocking. */
    int parallel_start;
} conc_thread_opts;

/* Starts a thread running fn(arg). `opts` may be NULL. Returns in the
 * order CPython's start() gives: once the new thread has set itself up
 * (named itself for the OS, joined the registry), entered fn, and run
 * until it first sleeps in the kernel, returns from fn, or has used 5 ms
 * of CPU (CPython's GIL keeps a new thread running until then); from then
 * on both threads run in parallel. With opts->parallel_start it returns
 * once the new thread has set itself up and entered fn. On success returns 0
 * and, if `out` is not NULL, a new handle in *out, freed with conc_thread_free;
 * with a NULL `out` the thread runs unobserved. Borrows opts (the name is
 * copied); `arg` is passed on as is. Returns CONC_ENOMEM, CONC_EAGAIN (the
 * system refused another thread) or CONC_EINVAL (NULL fn, stack size too
 * small). Any thread. */
CONC_EXTERN int conc_thread_start(conc_thread_fn fn, void *arg,
                                  const conc_thread_opts *opts,
                                  conc_thread **out);

/* Waits up to `timeout` for the thread to end. Returns 0 once it has ended
 * and, if `status` is not NULL, stores its function's return value there.
 * Returns CONC_ETIMEDOUT if it is still running, CONC_EDEADLK when a thread
 * joins itself (Python's RuntimeError), CONC_ESTATE for a thread that conc
 * did not start (the main thread, a foreign thread), CONC_EINVAL for a NaN
 * timeout. Any number of threads may join the same thread. */
CONC_EXTERN int conc_thread_join(conc_thread *t, double timeout, int *status);

/* Drops the handle. The thread itself is unaffected and, if still running,
 * continues; its resources are released when both it has ended and every
 * handle is freed. NULL does nothing. */
CONC_EXTERN void conc_thread_free(conc_thread *t);

/* Whether the thread is running (1 or 0).
 * CONC_EINVAL for a NULL thread. */
CONC_EXTERN int conc_thread_is_alive(const conc_thread *t);

/* The thread's name, valid until the handle is freed or the name changed. */
CONC_EXTERN const char *conc_thread_name(const conc_thread *t);

/* Renames the thread (the name is copied; the OS sees its first 15 bytes).
 * Returns 0, CONC_EINVAL for NULL or an empty name, CONC_ENOMEM. Call it
 * while no other thread reads the name of `t`. */
CONC_EXTERN int conc_thread_set_name(conc_thread *t, const char *name);

/* Whether the thread is a daemon (1 or 0).
 * CONC_EINVAL for a NULL thread. */
CONC_EXTERN int conc_thread_daemon(const conc_thread *t);

/* Python's ident: the pthread_t as a number; unique among live threads. */
CONC_EXTERN unsigned long conc_thread_ident(const conc_thread *t);

/* Python's native_id: the kernel's thread id (gettid). */
CONC_EXTERN long conc_thread_native_id(const conc_thread *t);

/* The calling thread's handle, borrowed: valid while the thread runs. For a
 * thread conc did not start, a handle named "MainThread" (the process's
 * first thread) or "Dummy-N" is made on first use. NULL only when out of
 * memory. */
CONC_EXTERN conc_thread *conc_thread_current(void);

/* The main thread's handle, borrowed (threading.main_thread). */
CONC_EXTERN conc_thread *conc_thread_main(void);

/* The number of live threads conc knows: the main thread, every running
 * thread it started, and foreign threads that called conc_thread_current
 * (threading.active_count). */
CONC_EXTERN size_t conc_active_count(void);

/* Lists those live threads (threading.enumerate). On success returns 0, a
 * new array in *out of `*count` new handles; free all with
 * conc_thread_list_free. Returns CONC_ENOMEM. */
CONC_EXTERN int conc_thread_enumerate(conc_thread ***out, size_t *count);
CONC_EXTERN void conc_thread_list_free(conc_thread **list, size_t count);

/* ---- Failure reporting (threading.excepthook) --------------------------- */

typedef struct conc_thread_failure {
    conc_thread *thread; /* borrowed for the duration of the call */
    int status;          /* the function's negative return */
    const char *message; /* its conc_fail message, or "" */
} conc_thread_failure;

typedef void (*conc_excepthook_fn)(void *arg, const conc_thread_failure *f);

/* Replaces the hook called, in the failing thread, when a thread function
 * returns a negative code. NULL restores the default, which prints
 * "Exception in thread NAME: CONC_EXXX: message" to stderr. Any thread;
 * a thread that fails while the hook is being replaced gets the old or the
 * new hook. */
CONC_EXTERN void conc_set_excepthook(conc_excepthook_fn hook, void *arg);

/* ---- Exit --------------------------------------------------------------- */

/* Joins every non-daemon thread that conc started, then calls exit(status).
 * Called from a conc thread, it does not wait for itself. Never returns. */
CONC_EXTERN CONC_NORETURN void conc_exit(int status);

/* ---- Thread-local data (threading.local) -------------------------------- */

typedef struct conc_local conc_local;

/* Runs on a thread's value when that thread ends, when the value is
 * replaced, or when the local is freed. */
typedef void (*conc_local_dtor_fn)(void *value);

/* Creates a thread-local slot whose value starts as NULL in every thread.
 * `dtor` may be NULL. Returns 0 and the slot in *out, freed with
 * conc_local_free; CONC_ENOMEM. There is no limit on the number of slots. */
CONC_EXTERN int conc_local_new(conc_local_dtor_fn dtor, conc_local **out);

/* Frees the slot, running the destructor on every thread's non-NULL value.
 * No thread may use the slot during or after the call. NULL does nothing. */
CONC_EXTERN void conc_local_free(conc_local *local);

/* The calling thread's value, or NULL if it has none.
 * The value is the caller's own: conc only keeps the pointer. NULL for a NULL
 * local. */
CONC_EXTERN void *conc_local_get(conc_local *local);

/* Sets the calling thread's value; a previous different non-NULL value goes
 * to the destructor. Returns 0 or CONC_ENOMEM (then nothing changed). */
CONC_EXTERN int conc_local_set(conc_local *local, void *value);

CONC_END_DECLS

#endif
