/* A manager server (conc/manager.h): its typeids, accepting clients on a
 * thread of its own (conc_manager_start) or the caller's
 * (conc_manager_serve_forever), and stopping. Each accepted connection is
 * served by a thread of its own (serve.c); a server in a child process
 * is process.c's.
 *
 * Lock order: the manager's lock (m->cond) is the only one here. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "manager/manager_internal.h"
#include "unix/platform.h"

static void stop_objects_locked(conc_manager *m);

static int
add_type(conc_manager *m, const char *typeid, const conc_manager_type *type,
         void *arg, int shared)
{
    if (!m || !typeid || !type || !m->server || (!shared && !type->create))
        return CONC_EINVAL;
    if (m->started)
        return CONC_ESTATE;
    struct conc__mgr_typeid *t = NULL;
    for (size_t i = 0; i < m->n_types && !t; i++)
        if (!strcmp(m->types[i].name, typeid))
            t = &m->types[i];
    if (!t) {
        char *name = conc__strdup(typeid);
        void *grown =
            name ? conc__realloc(m->types, (m->n_types + 1) * sizeof *t) : 0;
        if (!grown) {
            conc__free(name);
            return CONC_ENOMEM;
        }
        m->types = grown;
        t = &m->types[m->n_types++];
        t->name = name;
    }
    t->type = type;
    t->arg = arg;
    t->shared = shared;
    return 0;
}

int
conc_manager_register(conc_manager *m, const char *typeid,
                      const conc_manager_type *type, void *arg)
{
    return add_type(m, typeid, type, arg, 0);
}

int
conc_manager_set_max_handshakes(conc_manager *m, size_t n)
{
    if (!m || !m->server || n == 0)
        return CONC_EINVAL;
    if (m->started)
        return CONC_ESTATE;
    m->max_greetings = n;
    return 0;
}

int
conc_manager_register_object(conc_manager *m, const char *typeid,
                             const conc_manager_type *type, void *self)
{
    return add_type(m, typeid, type, self, 1);
}

static int
register_builtins(conc_manager *m)
{
    int rc = conc_manager_register(m, "Queue", conc_manager_queue_type(), 0);
    if (rc == 0)
        rc = conc_manager_register(m, "JoinableQueue",
                                   conc_manager_queue_type(), 0);
    if (rc == 0)
        rc = conc_manager_register(m, "dict", conc_manager_dict_type(), 0);
    if (rc == 0)
        rc = conc_manager_register(m, "list", conc_manager_list_type(), 0);
    if (rc == 0)
        rc = conc__mgr_register_sync_types(m);
    return rc;
}

/* Listens, and keeps in m->address the address clients reach. The
 * listener has no key: each connection's thread runs the handshake
 * (serve.c), so that the accepting thread never waits for a client. */
static int
listen_on(conc_manager *m, const char *address)
{
    int rc = conc_listener_new(address, NULL, &m->listener), port;
    if (rc < 0)
        return rc;
    m->tcp = conc_listener_port(m->listener, &port) == 0;
    conc_buf b = CONC_BUF_INIT;
    rc = conc_listener_address(m->listener, &b);
    if (rc == 0) {
        m->address = conc__strdup((const char *)b.data);
        rc = m->address ? 0 : CONC_ENOMEM;
    }
    conc_buf_free(&b);
    return rc;
}

int
conc_manager_new(const char *address, const char *authkey, conc_manager **out)
{
    if (!address || !out)
        return CONC_EINVAL;
    conc_manager *m = conc__calloc(1, sizeof *m);
    if (!m)
        return CONC_ENOMEM;
    m->server = 1;
    m->max_greetings = CONC_MANAGER_MAX_HANDSHAKES;
    m->max_clients = CONC_MANAGER_MAX_CLIENTS;
    m->stopfd = m->reapfd = -1;
    int rc = CONC_ENOMEM;
    if (authkey && !(m->authkey = conc__strdup(authkey)))
        goto fail;
    if ((rc = conc_cond_new(NULL, &m->cond)) < 0)
        goto fail;
    if ((rc = register_builtins(m)) < 0 || (rc = listen_on(m, address)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    conc_manager_free(m);
    return rc;
}

void
conc__mgr_stop_signal(conc_manager *m)
{
    m->stopping = 1;
    if (m->stopfd >= 0)
        conc__eventfd_signal(m->stopfd);
}

/* Waits for a client to knock, the stop, or `deadline` (when a crowded
 * address's handshake is due to be closed, greet.c), then accepts it:
 * the listener has no key, so this never waits for the client itself
 * (its handshake runs on its own thread). */
static int
accept_one(conc_manager *m, int64_t deadline, conc_conn **c)
{
    struct pollfd fds[3] = {{.events = POLLIN},
                            {.fd = m->stopfd, .events = POLLIN},
                            {.fd = m->reapfd, .events = POLLIN}};
    int rc = conc_listener_fileno(m->listener, &fds[0].fd);
    if (rc < 0)
        return rc;
    rc = conc__poll_until(fds, 3, deadline);
    if (rc < 0 || fds[1].revents)
        return rc < 0 ? rc : CONC_ECLOSED;
    if (fds[2].revents)
        conc__eventfd_drain(m->reapfd); /* the caller reaps */
    if (!fds[0].revents)
        return CONC_EAGAIN;
    return conc_listener_accept(m->listener, 0, c);
}

/* Waits, without accepting, for a connection's thread to end or leave
 * its handshake (the reap descriptor), the stop, or `deadline`. The
 * waiting clients stay in the backlog. */
static void
back_off(conc_manager *m, int64_t deadline)
{
    struct pollfd fds[2] = {{.fd = m->stopfd, .events = POLLIN},
                            {.fd = m->reapfd, .events = POLLIN}};
    if (conc__poll_until(fds, 2, deadline) > 0 && fds[1].revents)
        conc__eventfd_drain(m->reapfd); /* the caller reaps */
}

/* Accepts until the stop: each client gets a thread of its own, joined
 * here as soon as it is done (it signals the reap descriptor). A client that
 * fails the handshake, or a refused thread, costs only its connection.
 * With every handshake slot taken, it waits for room (greet.c). */
static void
accept_until_stop(conc_manager *m)
{
    while (!m->stopping) {
        conc_conn *c;
        int64_t until;
        int rc;
        if (!conc__mgr_greet_room(m, &until)) {
            back_off(m, until);
        } else if ((rc = accept_one(m, until, &c)) == 0) {
            conc__mgr_serve_conn(m, c);
        } else if (rc == -EMFILE || rc == -ENFILE || rc == CONC_ENOMEM) {
            /* Out of descriptors or memory: wait for a connection to
             * end instead of spinning on the readable listener. */
            conc__deadline(CONC__MGR_POLL_S, &until);
            back_off(m, until);
        }
        conc__mgr_reap_conns(m, 0);
    }
}

static int
accept_loop(void *arg)
{
    accept_until_stop(arg);
    return 0;
}

/* The stop and reap descriptors, made by whoever starts serving (in a
 * forked server, the child: the parent's would wake both). */
static int
make_stopfd(conc_manager *m)
{
    if (m->stopfd < 0 && (m->stopfd = conc__eventfd_new()) < 0)
        return m->stopfd;
    if (m->reapfd < 0 && (m->reapfd = conc__eventfd_new()) < 0)
        return m->reapfd;
    return 0;
}

static int
check_startable(conc_manager *m)
{
    if (!m || !m->server)
        return CONC_EINVAL;
    return m->started ? CONC_ESTATE : 0;
}

int
conc_manager_start(conc_manager *m)
{
    int rc = check_startable(m);
    if (rc < 0 || (rc = make_stopfd(m)) < 0)
        return rc;
    conc_thread_opts o = {
        .name = "conc-manager", .daemon = CONC_DAEMON_YES, .parallel_start = 1};
    rc = conc_thread_start(accept_loop, m, &o, &m->acceptor);
    if (rc == 0)
        m->started = m->answered = 1;
    return rc;
}

/* Stops the objects, joins the connections' threads and closes the
 * listener: the end of serving, once nothing accepts any more. */
static void
finish_serving(conc_manager *m)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    stop_objects_locked(m);
    conc_cond_release(m->cond);
    conc__mgr_stop_greetings(m);
    conc__mgr_reap_conns(m, 1);
    conc_listener_close(m->listener);
}

int
conc_manager_serve_forever(conc_manager *m)
{
    int rc = check_startable(m);
    if (rc < 0 || (rc = make_stopfd(m)) < 0)
        return rc;
    m->forever = m->started = m->answered = 1;
    accept_until_stop(m);
    finish_serving(m);
    conc_cond_acquire(m->cond, CONC_FOREVER);
    m->served = 1;
    conc_cond_notify_all(m->cond);
    conc_cond_release(m->cond);
    return 0;
}

int
conc_manager_address(const conc_manager *m, conc_buf *out)
{
    if (!m || !out)
        return CONC_EINVAL;
    conc_buf b = CONC_BUF_INIT;
    if (conc_buf_append(&b, m->address, strlen(m->address) + 1) < 0)
        return CONC_ENOMEM;
    b.len--;
    conc_buf_free(out);
    *out = b;
    return 0;
}

/* Wakes the methods blocked in objects, for good. */
static void
stop_objects_locked(conc_manager *m)
{
    for (size_t i = 0; i < m->n_objs; i++)
        if (m->objs[i]->type->stop)
            m->objs[i]->type->stop(m->objs[i]->self);
    for (size_t i = 0; i < m->n_types; i++)
        if (m->types[i].shared && m->types[i].type->stop)
            m->types[i].type->stop(m->types[i].arg);
}

/* Stops a server and joins its threads: the acceptor, then every
 * connection's, woken by the stop descriptor. With serve_forever in
 * another thread, waits for it to do the same. */
static void
stop_server(conc_manager *m)
{
    if (m->proc) {
        conc__mgr_stop_process(m);
        return;
    }
    conc__mgr_stop_signal(m);
    if (m->forever) {
        conc_cond_acquire(m->cond, CONC_FOREVER);
        while (!m->served)
            conc_cond_wait(m->cond, CONC_FOREVER);
        conc_cond_release(m->cond);
        return;
    }
    if (m->acceptor) {
        conc_thread_join(m->acceptor, CONC_FOREVER, NULL);
        conc_thread_free(m->acceptor);
        m->acceptor = NULL;
    }
    finish_serving(m);
}

int
conc_manager_shutdown(conc_manager *m)
{
    if (!m)
        return CONC_EINVAL;
    if (!m->server)
        return conc__mgr_client_shutdown(m);
    if (m->cond)
        stop_server(m);
    return 0;
}

void
conc_manager_free(conc_manager *m)
{
    if (!m)
        return;
    if (m->server && m->cond)
        stop_server(m); /* may ask a child through the kept connection */
    conc__mgr_drop_idle(m);
    for (size_t i = 0; i < m->n_objs; i++) {
        if (!m->objs[i]->shared && m->objs[i]->type->release)
            m->objs[i]->type->release(m->objs[i]->self);
        conc__free(m->objs[i]);
    }
    for (size_t i = 0; i < m->n_types; i++)
        conc__free(m->types[i].name);
    conc__free(m->objs);
    conc__free(m->types);
    conc_listener_free(m->listener);
    conc_cond_free(m->cond);
    if (m->stopfd >= 0)
        close(m->stopfd);
    if (m->reapfd >= 0)
        close(m->reapfd);
    conc__free(m->address);
    conc__free(m->authkey);
    conc__free(m);
}
