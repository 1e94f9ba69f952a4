/* The registry of live threads (threading.enumerate, active_count), the
 * handles of threads conc did not start (the main thread, dummies), and
 * what a forked child keeps of all that.
 *
 * The registry is a doubly linked list under one lock word. A thread is
 * listed from its start until it publishes `done`; between its function's
 * return and then it is `finished`: still listed, so that a fork can find
 * it, but no longer counted or enumerated, as Python's is_alive-based
 * enumerate does not show a thread whose run() returned. `visible` counts
 * the listed threads that are not finished.
 *
 * The main thread's handle is static, so conc_thread_main never fails; a
 * constructor fills in its identity when the library loads. A foreign
 * thread gets a "Dummy-N" handle on its first conc_thread_current; a
 * pthread key destructor unlists and frees it when that thread exits, and
 * runs its locals' destructors. conc's own threads clean up in their
 * trampoline instead, and need no key. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "thread/thread_internal.h"

__thread struct conc__thread_tls conc__tls
    __attribute__((tls_model("initial-exec")));

_Atomic uint32_t conc__fork_gen;

static conc_thread main_struct = {
    .refs = 1,
    .kind = CONC__THREAD_MAIN,
    .name = (char *)"MainThread",
    .os_name = "MainThread",
    .os_named = 1,
};

static struct {
    conc__lockword lock;
    conc_thread *head;      /* guarded by lock */
    _Atomic size_t visible; /* written under lock, read without */
} reg = {.head = &main_struct, .visible = 1};

/* Changes only in a forked child, which is single-threaded then. */
static conc_thread *main_thread = &main_struct;

/* ---- The list ------------------------------------------------------------ */

static void
lock(void)
{
    conc__lockword_acquire(&reg.lock, CONC__FOREVER, 0);
}

static void
unlock(void)
{
    conc__lockword_release(&reg.lock, 0);
}

/* Links `t` at the head. Registry lock held. */
static void
link_locked(conc_thread *t)
{
    t->reg_prev = NULL;
    t->reg_next = reg.head;
    if (reg.head)
        reg.head->reg_prev = t;
    reg.head = t;
    t->finished = 0;
    atomic_fetch_add_explicit(&reg.visible, 1, memory_order_relaxed);
}

/* Hides `t` from enumerate. Registry lock held. */
static void
finish_locked(conc_thread *t)
{
    if (t->finished)
        return;
    t->finished = 1;
    atomic_fetch_sub_explicit(&reg.visible, 1, memory_order_release);
}

/* Unlinks `t` if it is listed. Registry lock held. */
static void
unlink_locked(conc_thread *t)
{
    if (reg.head != t && !t->reg_prev)
        return;
    finish_locked(t);
    if (t->reg_prev)
        t->reg_prev->reg_next = t->reg_next;
    else
        reg.head = t->reg_next;
    if (t->reg_next)
        t->reg_next->reg_prev = t->reg_prev;
    t->reg_prev = t->reg_next = NULL;
}

void
conc__registry_add(conc_thread *t)
{
    lock();
    link_locked(t);
    unlock();
}

void
conc__registry_finish(conc_thread *t)
{
    lock();
    finish_locked(t);
    unlock();
}

void
conc__registry_remove(conc_thread *t)
{
    lock();
    unlink_locked(t);
    uint32_t old = conc__thread_mark_done(t);
    unlock();
    conc__thread_wake_joiners(t, old);
}

/* ---- enumerate, active_count -----------------------------------------------
 */

size_t
conc_active_count(void)
{
    return atomic_load_explicit(&reg.visible, memory_order_acquire);
}

/* Fills `list` with new references to the visible threads, if they fit.
 * Returns how many there are. Registry lock held. */
static size_t
fill_locked(conc_thread **list, size_t cap)
{
    size_t n = atomic_load_explicit(&reg.visible, memory_order_relaxed);
    if (n > cap)
        return n;
    size_t i = 0;
    for (conc_thread *t = reg.head; t; t = t->reg_next) {
        if (t->finished)
            continue;
        if (t->kind != CONC__THREAD_MAIN)
            atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        list[i++] = t;
    }
    CONC__ASSERT(i == n);
    return n;
}

int
conc_thread_enumerate(conc_thread ***out, size_t *count)
{
    if (!out || !count)
        return CONC_EINVAL;
    size_t cap = conc_active_count() + 4;
    for (;;) {
        conc_thread **list = conc__malloc(cap * sizeof *list);
        if (!list)
            return CONC_ENOMEM;
        lock();
        size_t n = fill_locked(list, cap);
        unlock();
        if (n <= cap) {
            *out = list;
            *count = n;
            return 0;
        }
        conc__free(list); /* threads started meanwhile: retry, larger */
        cap = n + 4;
    }
}

void
conc_thread_list_free(conc_thread **list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        conc__thread_release(list[i]);
    conc__free(list);
}

/* ---- Foreign threads ------------------------------------------------------
 */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_err;

/* Runs when a foreign thread that has a dummy handle or locals exits. */
static void
on_foreign_exit(void *unused)
{
    struct conc__thread_tls *me = &conc__tls;
    me->exit_hooked = 0; /* a destructor below may set the key again */
    conc_thread *d = me->dummy;
    if (d)
        conc__registry_finish(d);
    conc__local_thread_exit();
    if (d) {
        me->dummy = NULL;
        if (me->self == d)
            me->self = NULL;
        conc__registry_remove(d);
        conc__thread_release(d);
    }
}

static void
make_exit_key(void)
{
    exit_key_err = pthread_key_create(&exit_key, on_foreign_exit);
}

int
conc__thread_hook_exit(void)
{
    struct conc__thread_tls *me = &conc__tls;
    if (me->exit_hooked)
        return 0;
    pthread_once(&exit_key_once, make_exit_key);
    if (exit_key_err || pthread_setspecific(exit_key, me))
        return CONC_ENOMEM;
    me->exit_hooked = 1;
    return 0;
}

static conc_thread *
new_dummy(uint32_t tid)
{
    char name[32];
    size_t len = conc__thread_default_name(name, sizeof name, "Dummy");
    conc_thread *t = conc__malloc(sizeof *t + len + 1);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    atomic_init(&t->refs, 1); /* the thread's own, dropped at its exit */
    atomic_init(&t->tid, tid);
    atomic_init(&t->ident, (unsigned long)pthread_self());
    t->kind = CONC__THREAD_DUMMY;
    t->daemon = 1; /* as Python's _DummyThread */
    memcpy(t->name_buf, name, len + 1);
    t->name = t->name_buf;
    conc__thread_os_name(t->os_name, name);
    t->os_named = 1;
    if (conc__thread_hook_exit()) {
        conc__free(t);
        return NULL;
    }
    conc__tls.dummy = t;
    conc__tls.self = t;
    conc__registry_add(t);
    return t;
}

static conc_thread *
current_slow(void)
{
    uint32_t tid = conc__tid();
    if (tid == (uint32_t)getpid()) {
        /* The first thread, when the constructor ran elsewhere. */
        atomic_store_explicit(&main_struct.ident, (unsigned long)pthread_self(),
                              memory_order_relaxed);
        conc__tls.self = &main_struct;
        return &main_struct;
    }
    return new_dummy(tid);
}

conc_thread *
conc_thread_current(void)
{
    conc_thread *t = conc__tls.self;
    if (CONC__LIKELY(t))
        return t;
    return current_slow();
}

conc_thread *
conc_thread_main(void)
{
    return main_thread;
}

/* ---- Fork ------------------------------------------------------------------
 */

static void
atfork_prepare(void)
{
    conc__local_atfork_prepare();
    lock();
    conc__hook_atfork_prepare();
}

static void
atfork_parent(void)
{
    conc__hook_atfork_parent();
    unlock();
    conc__local_atfork_parent();
}

/* A thread of the parent, absent from the child: it ends there. Its own
 * reference goes, except the forking dummy's, which its key still holds. */
static void
drop_dead(conc_thread *t, conc_thread *self)
{
    unlink_locked(t);
    atomic_store_explicit(&t->done, CONC__DONE, memory_order_relaxed);
    uint32_t tid = 0;
    atomic_compare_exchange_strong_explicit(&t->tid, &tid, CONC__TID_NONE,
                                            memory_order_relaxed,
                                            memory_order_relaxed);
    if (t != self)
        conc__thread_release(t);
}

/* The forking thread becomes the child's main thread, as in Python; one
 * that had no handle or a dummy one takes over the static "MainThread". */
static void
adopt_main(conc_thread *keep)
{
    if (keep && keep->kind != CONC__THREAD_DUMMY) {
        atomic_store_explicit(&keep->tid, (uint32_t)getpid(),
                              memory_order_relaxed);
        keep->fork_gen = atomic_load(&conc__fork_gen);
        main_thread = keep;
        return;
    }
    conc_thread *m = &main_struct;
    atomic_store_explicit(&m->done, CONC__RUNNING, memory_order_relaxed);
    atomic_store_explicit(&m->tid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&m->ident, (unsigned long)pthread_self(),
                          memory_order_relaxed);
    link_locked(m);
    conc__tls.self = m;
    main_thread = m;
}

static void
atfork_child(void)
{
    conc__hook_atfork_child();
    conc__thread_lock_reset(&reg.lock);
    atomic_fetch_add(&conc__fork_gen, 1);
    conc_thread *self = conc__tls.self;
    conc_thread *keep =
        self && (reg.head == self || self->reg_prev) ? self : NULL;
    conc_thread *t = reg.head;
    while (t) {
        conc_thread *next = t->reg_next;
        if (t != keep || t->kind == CONC__THREAD_DUMMY)
            drop_dead(t, self);
        t = next;
    }
    adopt_main(keep);
    conc__nondaemon_after_fork(keep && keep->kind == CONC__THREAD_STARTED &&
                               !keep->daemon);
    conc__local_atfork_child();
}

/* Identifies the main thread when the library loads (in the first thread,
 * unless a thread other than it loads the library), and installs the fork
 * handlers. */
__attribute__((constructor)) static void
init_main(void)
{
    uint32_t pid = (uint32_t)getpid();
    atomic_store_explicit(&main_struct.tid, pid, memory_order_relaxed);
    if (conc__tid() == pid) {
        atomic_store_explicit(&main_struct.ident, (unsigned long)pthread_self(),
                              memory_order_relaxed);
        conc__tls.self = &main_struct;
    }
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
