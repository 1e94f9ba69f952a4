/* A manager served by a child process (conc_manager_start_process,
 * Python's Manager() and BaseManager.start()).
 *
 * The manager listens before the fork (conc_manager_new), so its address
 * is known and clients that come early wait in the listen backlog. The
 * child, a forked daemon conc_process, serves in its main thread
 * (conc_manager_serve_forever on its copy of the manager) until a
 * shutdown request, and is killed by the kernel if the parent dies. The
 * parent closes its copy of the listening socket, so that once the child
 * is gone connections are refused at once (CONC_ECLOSED for proxies)
 * instead of waiting in a backlog nobody reads, and keeps the manager as
 * a client of the child: create, proxies and shutdown go over the
 * address as from any other process.
 *
 * Lock order: none here. */
#include "ipc/listener_internal.h"
#include "manager/manager_internal.h"

/* The child: the manager's pointer is valid in it, a copy made by fork. */
static int
serve_child(const void *arg, size_t len)
{
    conc_manager *m;
    if (len != sizeof m)
        return CONC_EINVAL;
    memcpy(&m, arg, sizeof m);
    return conc_manager_serve_forever(m);
}

int
conc_manager_start_process(conc_manager *m)
{
    if (!m || !m->server)
        return CONC_EINVAL;
    if (m->started)
        return CONC_ESTATE;
    conc_process_opts o = {.name = "SyncManager-1",
                           .daemon = CONC_DAEMON_YES,
                           .method = CONC_START_FORK};
    conc_process *p;
    int rc = conc_process_new(serve_child, &m, sizeof m, &o, &p);
    if (rc == 0 && (rc = conc_process_start(p)) < 0)
        conc_process_free(p);
    if (rc < 0)
        return rc;
    conc__listener_detach(m->listener);
    m->proc = p;
    m->started = m->answered = 1;
    return 0;
}

void
conc__mgr_stop_process(conc_manager *m)
{
    if (!m->proc || m->stopping)
        return;
    /* A child already gone refuses the request: nothing to wait for. */
    conc__mgr_client_shutdown(m);
    m->stopping = 1;
    if (conc_process_join(m->proc, CONC_MANAGER_STOP_S) < 0 ||
        conc_process_is_alive(m->proc) == 1) {
        conc_process_kill(m->proc);
        conc_process_join(m->proc, CONC_FOREVER);
    }
    conc_process_free(m->proc);
    m->proc = NULL;
}

int
conc_manager_pid(const conc_manager *m, pid_t *pid)
{
    if (!m || !pid)
        return CONC_EINVAL;
    if (!m->proc)
        return conc_fail(CONC_ESTATE, "the manager has no process");
    return conc_process_pid(m->proc, pid);
}
