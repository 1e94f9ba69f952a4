/* Internal to the thread module: the handle, the per-thread state every
 * file of the module shares, and the calls between the files.
 *
 * Files: thread.c starts, joins and frees threads; registry.c keeps the
 * list of live threads, the main and dummy handles, and the fork handlers;
 * hook.c reports failures and waits for non-daemon threads at exit; local.c
 * is thread-local data.
 *
 * Lock order: the module's lock words (the registry's, the locals', the
 * hook's, each handle's name lock) are never held together, except by the
 * fork handlers, which take the first three in the order locals, registry,
 * hook. No lock is held while user
 * code (a thread function, a hook, a destructor, the allocator aside) runs. */
#ifndef CONC_THREAD_INTERNAL_H
#define CONC_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conc/thread.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "unix/futex.h"
#include "unix/tid.h"

/* Who made the handle. Only conc's own threads can be joined. */
enum conc__thread_kind {
    CONC__THREAD_STARTED, /* by conc_thread_start */
    CONC__THREAD_MAIN,    /* the process's first thread (static) */
    CONC__THREAD_DUMMY,   /* a foreign thread that asked for its handle */
};

/* The `done` futex word: whether the thread has ended. */
#define CONC__RUNNING        0u
#define CONC__RUNNING_WAITED 1u /* running, and a joiner may sleep */
#define CONC__DONE           2u

/* The `started` futex word: how far the new thread has gone, which
 * conc_thread_start watches (thread.c): a phase, plus a bit that says the
 * creator may sleep on the word. */
#define CONC__PHASE_STARTING 0u /* not yet in its function */
#define CONC__PHASE_RUNNING  2u /* in its function (Python's Thread._started)  \
                                 */
#define CONC__PHASE_RETURNED 4u /* its function returned */
#define CONC__START_WAITED   1u

/* The `reap` word: who calls pthread_join (or renames through the
 * pthread_t, which must not be reaped meanwhile). */
#define CONC__REAP_FREE        0u
#define CONC__REAP_BUSY        1u
#define CONC__REAP_BUSY_WAITED 2u /* busy, and another joiner may sleep */
#define CONC__REAPED           3u

struct conc_thread {
    _Atomic uint32_t refs;    /* the running thread's, plus one per handle */
    _Atomic uint32_t done;    /* CONC__RUNNING.. CONC__DONE */
    _Atomic uint32_t reap;    /* CONC__REAP_FREE.. CONC__REAPED */
    _Atomic uint32_t started; /* CONC__PHASE_STARTING.. _RETURNED */
    /* The kernel id: 0 unknown, UINT32_MAX unknown and someone sleeps on
     * it, otherwise the id. Set by the thread itself, or earlier by its
     * creator (the same value). */
    _Atomic uint32_t tid;
    _Atomic unsigned long ident; /* pthread_t as a number; 0 until known */
    uint8_t kind;                /* enum conc__thread_kind; fixed */
    uint8_t daemon;              /* fixed after creation */
    uint8_t name_heap;           /* `name` came from conc_thread_set_name */
    uint8_t finished; /* left the visible registry; guarded by its lock */
    uint8_t os_named; /* the thread named itself; guarded by name_lock */
    /* The fork generation that started the thread: in a forked child only
     * the forking thread exists, and no other pthread_t may be joined or
     * detached there. Fixed, except by the child's fork handler. */
    uint32_t fork_gen;
    int status; /* the function's return; written before `done` */
    char *name; /* see conc_thread_set_name for who may write it */
    /* The name the OS shows (15 bytes). The lock orders a rename by another
     * thread against the thread naming itself when it starts. */
    conc__lockword name_lock;
    char os_name[16]; /* guarded by name_lock */
    conc_thread_fn fn;
    void *arg;
    /* Every thread from its start until it drops its own reference is on
     * the registry's list; guarded by the registry lock. */
    conc_thread *reg_prev, *reg_next;
    char name_buf[]; /* the initial name, allocated with the handle */
};

/* One thread's value for one local. `gen` is the owning local's generation
 * while the slot is linked into that local's list of holders, else 0. The
 * links point at the holding threads' state (whose address is stable for
 * a thread's life); slot `id` of each of them is the list node. */
struct conc__local_slot {
    uint64_t gen;
    void *value;
    struct conc__thread_tls *next, *prev;
};

/* Everything the module keeps per thread, in one initial-exec TLS block so
 * that conc_thread_current and conc_local_get are one load away. */
struct conc__thread_tls {
    conc_thread *self;  /* this thread's handle, or NULL */
    conc_thread *dummy; /* the handle this foreign thread owns, or NULL */
    /* Whether the thread's locals are cleaned at its exit: set by the
     * trampoline for conc's threads, or by the pthread key otherwise. */
    int exit_hooked;
    /* Locals. The owning thread reads slots/cap without a lock; they are
     * written (and read by other threads) under the locals lock. */
    uint32_t cap;
    uint32_t nlinked; /* slots linked; guarded by the locals lock */
    struct conc__local_slot *slots;
};

extern __thread struct conc__thread_tls conc__tls
    __attribute__((tls_model("initial-exec")));

/* Frees a lock word in a forked child, where whoever held it or slept on
 * it in the parent does not exist. */
static inline void
conc__thread_lock_reset(conc__lockword *w)
{
    atomic_store_explicit(&w->locked, 0, memory_order_relaxed);
    atomic_store_explicit(&w->waiters, 0, memory_order_relaxed);
}

/* ---- thread.c ----------------------------------------------------------- */

/* A kernel id that marks a thread that never ran. */
#define CONC__TID_NONE (UINT32_MAX - 1)

/* Writes "PREFIX-N" into buf, N from the counter that numbers Thread-N and
 * Dummy-N alike, as Python's does. Returns the length. */
size_t conc__thread_default_name(char *buf, size_t size, const char *prefix);

/* Copies the first 15 bytes of `name` into `os_name`. */
void conc__thread_os_name(char os_name[16], const char *name);

/* Drops one reference; the last one frees the handle (detaching the OS
 * thread if nobody joined it). */
void conc__thread_release(conc_thread *t);

/* Publishes the thread's kernel id and wakes anyone waiting for it. */
void conc__thread_publish_tid(conc_thread *t, uint32_t tid);

/* Publishes `done` and wakes joiners. The registry calls it under its
 * lock, so that a fork sees a thread either listed or done. */
uint32_t conc__thread_mark_done(conc_thread *t);
void conc__thread_wake_joiners(conc_thread *t, uint32_t old_done);

/* ---- registry.c --------------------------------------------------------- */

/* Incremented in each forked child; read without a lock. */
extern _Atomic uint32_t conc__fork_gen;

/* Lists a new thread (visible to enumerate until conc__registry_finish). */
void conc__registry_add(conc_thread *t);

/* Hides the thread from enumerate and active_count: its function returned. */
void conc__registry_finish(conc_thread *t);

/* Unlists the thread and publishes it done, atomically for a fork. */
void conc__registry_remove(conc_thread *t);

/* Arranges for the calling foreign thread's locals and dummy handle to be
 * cleaned when it exits. Returns 0 or CONC_ENOMEM. */
int conc__thread_hook_exit(void);

/* ---- hook.c ------------------------------------------------------------- */

/* Calls the excepthook for `t`, which just failed with `status`. */
void conc__thread_report_failure(conc_thread *t, int status);

/* Counts a started non-daemon thread (on the first, registers the atexit
 * handler), and uncounts it when it has ended. */
void conc__nondaemon_add(void);
void conc__nondaemon_remove(void);

/* In a forked child: `self_counted` non-daemon threads remain. */
void conc__nondaemon_after_fork(uint32_t self_counted);

void conc__hook_atfork_prepare(void);
void conc__hook_atfork_parent(void);
void conc__hook_atfork_child(void);

/* ---- local.c ------------------------------------------------------------ */

/* Runs the destructors of the calling thread's values and frees its table.
 * Called at thread exit. */
void conc__local_thread_exit(void);

void conc__local_atfork_prepare(void);
void conc__local_atfork_parent(void);
void conc__local_atfork_child(void);

#endif
