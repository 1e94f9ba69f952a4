/* The current process, its parent, and its children: conc_process_current,
 * conc_process_parent, conc_active_children, the reaping of handles freed
 * while their process ran, what exit does, and what a fork leaves of all
 * that.
 *
 * The children list holds every child this process started that has not
 * been reaped, with one reference each. Whoever reaps a child (join,
 * is_alive, exitcode, active_children, a later start) takes it off. A
 * handle freed while its process runs is an orphan: only the list still
 * holds it, and conc_process_start and conc_active_children reap the
 * orphans that have ended, as Python's _cleanup does, so no zombie stays
 * for long; at exit, every child left on the list is joined.
 *
 * The main process's handle is static. A forked child's handle is the one
 * its parent started, as Python's child sees its own Process object; the
 * child does not write to it (conc__process_kind tells that it is the
 * current process), so that its page stays shared. The fork server builds
 * a handle for each of its children.
 *
 * Fork. A forked child is not the parent of its parent's children: a fork
 * handler, registered when the first child starts, empties the child's copy
 * of the list. Handles it inherited become foreign: calls that act on a
 * child answer CONC_ESTATE (Python's "can only join a child process"). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process/process_internal.h"

static conc_process main_proc = {
    .refs = 1,
    .state = CONC__PROC_RUNNING,
    .kind = CONC__PROC_SELF,
    .wait_fd = -1,
    .pidfd = -1,
    .name = (char *)"MainProcess",
    .ident = "",
};

static conc_process parent_proc = {
    .refs = 1,
    .state = CONC__PROC_RUNNING,
    .kind = CONC__PROC_PARENT,
    .wait_fd = -1,
    .pidfd = -1,
    .name = (char *)"",
    .ident = "",
};

/* What a new child writes, kept together so that it copies one page.
 * `current` and `parent` change only in a new child, which then runs a
 * single thread. */
static struct {
    conc_process *current;
    conc_process *parent;
    _Atomic uint32_t counter; /* the last N of "Process-N" */
} fam = {.current = &main_proc};

static struct {
    conc__lockword lock;
    conc_process *head;     /* guarded by lock */
    _Atomic size_t count;   /* listed children; written under lock */
    _Atomic size_t orphans; /* written under lock; read without */
    _Atomic int exiting;    /* exit has begun; written under lock */
} kids;

static void
lock(void)
{
    conc__lockword_acquire(&kids.lock, CONC__FOREVER, 0);
}

static void
unlock(void)
{
    conc__lockword_release(&kids.lock, 0);
}

/* ---- Identity ----------------------------------------------------------- */

int
conc__process_self_pid(void)
{
    /* Not cached: a cache would have to be written in every forked child,
     * which costs a copied page, more than this system call. */
    return (int)getpid();
}

conc_process *
conc__process_self(void)
{
    return fam.current;
}

enum conc__proc_kind
conc__process_kind(const conc_process *p)
{
    return p == fam.current ? CONC__PROC_SELF : (enum conc__proc_kind)p->kind;
}

conc_process *
conc_process_current(void)
{
    return fam.current;
}

conc_process *
conc_process_parent(void)
{
    return fam.parent;
}

size_t
conc__process_next_ident(char *buf, size_t size)
{
    uint32_t n =
        atomic_fetch_add_explicit(&fam.counter, 1, memory_order_relaxed) + 1;
    char digits[10];
    size_t nd = 0;
    do
        digits[nd++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    const char *mine = fam.current->ident;
    size_t len = strlen(mine);
    if (len + 1 + nd >= size) /* absurdly deep: the number alone */
        len = 0;
    memcpy(buf, mine, len);
    if (len)
        buf[len++] = ':';
    while (nd)
        buf[len++] = digits[--nd];
    buf[len] = '\0';
    return len;
}

void
conc__process_become_child(conc_process *self, int parent_pid,
                           const char *parent_name, int parent_fd)
{
    conc_process *pp = &parent_proc;
    pp->name = (char *)parent_name;
    pp->name_heap = 0;
    pp->pid = parent_pid;
    /* A forked child's parent; the fork server then sets its own. */
    pp->method = CONC_START_FORK;
    if (pp->wait_fd >= 0) /* the grandparent's, inherited */
        close(pp->wait_fd);
    pp->wait_fd = parent_fd;
    pp->lost = 0;
    fam.parent = pp;
    fam.current = self;
    atomic_store_explicit(&fam.counter, 0, memory_order_relaxed);
}

int
conc_process_set_name(conc_process *p, const char *name)
{
    if (!p)
        return CONC_EINVAL;
    if (!name || !name[0])
        return CONC_EINVAL;
    char *copy = conc__strdup(name);
    if (!copy)
        return CONC_ENOMEM;
    /* The parent handle of a child may borrow this name: keep it then. */
    if (p->name_heap && (p == &parent_proc || p->name != parent_proc.name))
        conc__free(p->name);
    p->name = copy;
    p->name_heap = 1;
    return 0;
}

/* ---- The list of children ----------------------------------------------- */

static void at_exit(void);

void
conc__children_add(conc_process *p)
{
    conc__process_register_exit();
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    lock();
    p->prev = NULL;
    p->next = kids.head;
    if (kids.head)
        kids.head->prev = p;
    kids.head = p;
    p->listed = 1;
    atomic_fetch_add_explicit(&kids.count, 1, memory_order_relaxed);
    /* A daemon started by another thread while exit runs (a pool replacing
     * a worker that exit's SIGTERM ended) gets the signal its elders got:
     * exit waits for every listed child. */
    if (p->daemon && atomic_load_explicit(&kids.exiting, memory_order_relaxed))
        conc__process_signal(p, SIGTERM);
    unlock();
}

int
conc__children_exiting(void)
{
    return atomic_load_explicit(&kids.exiting, memory_order_relaxed);
}

/* Unlinks a listed child; the caller drops the list's reference. */
static void
unlink_locked(conc_process *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        kids.head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->listed = 0;
    atomic_fetch_sub_explicit(&kids.count, 1, memory_order_relaxed);
    if (p->orphan) {
        p->orphan = 0;
        atomic_fetch_sub_explicit(&kids.orphans, 1, memory_order_relaxed);
    }
}

/* Drops the list's references of a chain linked through `next`. */
static void
release_chain(conc_process *p)
{
    while (p) {
        conc_process *next = p->next;
        p->next = NULL;
        conc__process_release(p);
        p = next;
    }
}

void
conc__children_forget(conc_process *p)
{
    /* An inherited handle is on no list of this process. */
    if (p->owner != conc__process_self_pid())
        return;
    lock();
    int listed = p->listed;
    if (listed)
        unlink_locked(p);
    unlock();
    if (listed)
        conc__process_release(p);
}

void
conc__children_orphan(conc_process *p)
{
    lock();
    if (p->listed && !p->orphan) {
        p->orphan = 1;
        atomic_fetch_add_explicit(&kids.orphans, 1, memory_order_relaxed);
    }
    unlock();
}

/* Moves the listed children that have ended (only orphans if `all` is 0)
 * to a chain, which it returns. List lock held. */
static conc_process *
reap_locked(int all)
{
    conc_process *dead = NULL, *next;
    for (conc_process *p = kids.head; p; p = next) {
        next = p->next;
        if ((all || p->orphan) && conc__process_poll(p)) {
            unlink_locked(p);
            p->next = dead;
            dead = p;
        }
    }
    return dead;
}

void
conc__children_reap_orphans(void)
{
    if (!atomic_load_explicit(&kids.orphans, memory_order_relaxed))
        return;
    lock();
    conc_process *dead = reap_locked(0);
    unlock();
    release_chain(dead);
}

/* Fills `list` with new references to the listed children, if they fit.
 * Returns how many there are. List lock held. */
static size_t
fill_locked(conc_process **list, size_t cap)
{
    size_t n = 0;
    for (conc_process *p = kids.head; p; p = p->next) {
        if (n < cap) {
            atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
            list[n] = p;
        }
        n++;
    }
    return n;
}

int
conc_active_children(conc_process ***out, size_t *count)
{
    if (!out || !count)
        return CONC_EINVAL;
    size_t cap = 8;
    for (;;) {
        conc_process **list = conc__malloc(cap * sizeof *list);
        if (!list)
            return CONC_ENOMEM;
        lock();
        conc_process *dead = reap_locked(1);
        size_t n = fill_locked(list, cap);
        unlock();
        release_chain(dead);
        if (n <= cap) {
            if (n == 0) {
                conc__free(list);
                list = NULL;
            }
            *out = list;
            *count = n;
            return 0;
        }
        conc_process_list_free(list, cap); /* started meanwhile: retry */
        cap = n + 8;
    }
}

void
conc_process_list_free(conc_process **list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        conc__process_release(list[i]);
    conc__free(list);
}

/* ---- Exit --------------------------------------------------------------- */

void
conc__children_exit(void)
{
    lock();
    atomic_store_explicit(&kids.exiting, 1, memory_order_relaxed);
    unlock();
    if (atomic_load_explicit(&kids.count, memory_order_relaxed)) {
        lock();
        for (conc_process *p = kids.head; p; p = p->next)
            if (p->daemon)
                conc__process_signal(p, SIGTERM);
        unlock();
    }
    while (atomic_load_explicit(&kids.count, memory_order_relaxed)) {
        lock();
        conc_process *p = kids.head;
        if (p)
            atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
        unlock();
        if (!p)
            break;
        conc__process_wait(p, CONC__FOREVER);
        conc__children_forget(p); /* also when the wait failed */
        conc__process_release(p);
    }
    conc_forkserver_stop(CONC_FOREVER);
}

static void
at_exit(void)
{
    conc__children_exit();
}

/* ---- Fork --------------------------------------------------------------- */

static void
reset_lock(conc__lockword *w)
{
    if (atomic_load_explicit(&w->locked, memory_order_relaxed) ||
        atomic_load_explicit(&w->waiters, memory_order_relaxed)) {
        atomic_store_explicit(&w->locked, 0, memory_order_relaxed);
        atomic_store_explicit(&w->waiters, 0, memory_order_relaxed);
    }
}

/* A forked child is the parent of none of its parent's children. It drops
 * the inherited list without walking it (another thread of the parent may
 * have been changing it) and frees no handle: the handles stay reachable by
 * whoever held them, and an orphan's memory is the parent's concern. Only
 * what is not already clean is written, so that a fork copies as few pages
 * as possible. */
static void
atfork_child(void)
{
    reset_lock(&kids.lock);
    if (kids.head) {
        kids.head = NULL;
        atomic_store_explicit(&kids.count, 0, memory_order_relaxed);
        atomic_store_explicit(&kids.exiting, 0, memory_order_relaxed);
        atomic_store_explicit(&kids.orphans, 0, memory_order_relaxed);
    }
    /* Another thread may have been polling the parent at the fork. */
    reset_lock(&parent_proc.lock);
    conc__fs_atfork_child();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
register_handlers(void)
{
    conc__at_exit(CONC__EXIT_CHILDREN, at_exit);
    pthread_atfork(NULL, NULL, atfork_child);
}

void
conc__process_register_exit(void)
{
    pthread_once(&once, register_handlers);
}
