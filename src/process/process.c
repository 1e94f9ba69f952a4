/* Process handles: creation, start, close, free and attributes.
 *
 * A handle made by conc_process_new is NEW until started, RUNNING until
 * reaped, then DONE; close releases what a DONE (or never started) handle
 * still holds and marks it closed. The handle is reference counted: the
 * owner holds one reference, the list of children one while the process is
 * on it, and each conc_active_children entry one, so a handle freed while
 * its process runs lives on until the list reaps it (see family.c). */
#include <string.h>
#include <unistd.h>

#include "process/process_internal.h"

static _Atomic int default_method = CONC_START_FORK;

conc_process *
conc__process_alloc(enum conc__proc_kind kind, const char *name,
                    const char *ident, const char *module)
{
    size_t nl = strlen(name) + 1, il = strlen(ident) + 1;
    size_t ml = module ? strlen(module) + 1 : 0;
    conc_process *p = conc__malloc(sizeof *p + nl + il + ml);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    atomic_init(&p->refs, 1);
    p->kind = (uint8_t)kind;
    p->wait_fd = p->pidfd = -1;
    p->owner = conc__process_self_pid();
    p->name = memcpy(p->buf, name, nl);
    p->ident = memcpy(p->buf + nl, ident, il);
    if (module)
        p->module = memcpy(p->buf + nl + il, module, ml);
    return p;
}

static void
destroy(conc_process *p)
{
    conc__process_close_fds(p);
    if (p->name_heap)
        conc__free(p->name);
    conc__free(p->arg);
    conc__free(p);
}

void
conc__process_release(conc_process *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        destroy(p);
}

/* Resolves the options into a method and a daemon flag. */
static int
read_opts(const conc_process_opts *o, int *method, int *daemon)
{
    *method = o->method ? (int)o->method : atomic_load(&default_method);
    if (*method != CONC_START_FORK && *method != CONC_START_FORKSERVER)
        return CONC_EINVAL;
    switch (o->daemon) {
    case CONC_DAEMON_INHERIT:
        *daemon = conc__process_self()->daemon;
        return 0;
    case CONC_DAEMON_YES:
        *daemon = 1;
        return 0;
    case CONC_DAEMON_NO:
        *daemon = 0;
        return 0;
    }
    return CONC_EINVAL;
}

int
conc_process_new(conc_process_fn fn, const void *arg, size_t len,
                 const conc_process_opts *opts, conc_process **out)
{
    static const conc_process_opts defaults;
    const conc_process_opts *o = opts ? opts : &defaults;
    int method, daemon;
    if (!fn || !out || (!arg && len) || (o->name && !o->name[0]) ||
        read_opts(o, &method, &daemon))
        return CONC_EINVAL;
    uintptr_t off = 0;
    const char *module = NULL;
    if (method == CONC_START_FORKSERVER) {
        int rc = conc__fs_locate(fn, &off, &module);
        if (rc)
            return rc;
    }
    /* Identities grow by a few bytes per generation of processes. */
    char ident[256], name[8 + sizeof ident];
    size_t il = conc__process_next_ident(ident, sizeof ident);
    if (!o->name) {
        memcpy(name, "Process-", 8);
        memcpy(name + 8, ident, il + 1);
    }
    conc_process *p = conc__process_alloc(
        CONC__PROC_CHILD, o->name ? o->name : name, ident, module);
    if (!p)
        return CONC_ENOMEM;
    if (len && !(p->arg = conc__malloc(len))) {
        conc__free(p);
        return CONC_ENOMEM;
    }
    if (len)
        memcpy(p->arg, arg, len);
    p->len = len;
    p->fn = fn;
    p->fn_off = off;
    p->method = (uint8_t)method;
    p->daemon = (uint8_t)daemon;
    *out = p;
    return 0;
}

int
conc_process_start(conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    if (p->closed)
        return CONC_ECLOSED;
    if (conc__process_kind(p) != CONC__PROC_CHILD ||
        atomic_load_explicit(&p->state, memory_order_relaxed) !=
            CONC__PROC_NEW ||
        p->owner != conc__process_self_pid())
        return CONC_ESTATE;
    if (conc__process_self()->daemon)
        return conc_fail(CONC_EPERM,
                         "daemonic processes are not allowed to have children");
    if (conc__children_exiting())
        return conc_fail(CONC_ESTATE, "the program is exiting: no new "
                                      "process may start");
    conc__children_reap_orphans();
    int rc =
        p->method == CONC_START_FORK ? conc__fork_start(p) : conc__fs_start(p);
    if (rc)
        return rc;
    atomic_store_explicit(&p->state, CONC__PROC_RUNNING, memory_order_release);
    conc__children_add(p);
    /* As Python does, the parent lets go of the arguments once started. */
    conc__free(p->arg);
    p->arg = NULL;
    return 0;
}

int
conc_process_close(conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    if (p->closed)
        return 0;
    if (conc__process_kind(p) != CONC__PROC_CHILD)
        return CONC_ESTATE;
    if (atomic_load_explicit(&p->state, memory_order_acquire) ==
            CONC__PROC_RUNNING &&
        (p->owner != conc__process_self_pid() || !conc__process_poll(p)))
        return CONC_ESTATE;
    conc__children_forget(p);
    conc__process_close_fds(p);
    conc__free(p->arg);
    p->arg = NULL;
    p->closed = 1;
    return 0;
}

void
conc_process_free(conc_process *p)
{
    if (!p || conc__process_kind(p) != CONC__PROC_CHILD)
        return;
    /* A handle inherited from the parent is on no list of ours. */
    if (p->owner == conc__process_self_pid()) {
        if (!p->closed &&
            atomic_load_explicit(&p->state, memory_order_acquire) ==
                CONC__PROC_RUNNING &&
            !conc__process_poll(p))
            conc__children_orphan(p);
        else
            conc__children_forget(p);
    }
    conc__process_release(p);
}

/* ---- Attributes --------------------------------------------------------- */

int
conc_process_pid(const conc_process *p, pid_t *pid)
{
    if (!p || !pid)
        return CONC_EINVAL;
    if (p->closed)
        return CONC_ECLOSED;
    if (conc__process_kind(p) == CONC__PROC_SELF)
        *pid = conc__process_self_pid();
    else
        *pid = p->pid;
    return 0;
}

const char *
conc_process_name(const conc_process *p)
{
    if (!p)
        return NULL;
    return p->name;
}

int
conc_process_daemon(const conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    return p->daemon;
}

int
conc_process_set_daemon(conc_process *p, int daemon)
{
    if (!p)
        return CONC_EINVAL;
    if (p->closed)
        return CONC_ECLOSED;
    if (conc__process_kind(p) != CONC__PROC_CHILD ||
        atomic_load_explicit(&p->state, memory_order_relaxed) != CONC__PROC_NEW)
        return CONC_ESTATE;
    p->daemon = daemon != 0;
    return 0;
}

/* ---- Start methods ------------------------------------------------------ */

int
conc_set_start_method(conc_start_method method)
{
    if (method != CONC_START_FORK && method != CONC_START_FORKSERVER)
        return CONC_EINVAL;
    atomic_store(&default_method, (int)method);
    return 0;
}

conc_start_method
conc_get_start_method(void)
{
    return (conc_start_method)atomic_load(&default_method);
}
