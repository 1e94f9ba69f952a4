/* Servers on every core: the same server run by N loops, each in a thread
 * of its own, each with its own listening socket on one port
 * (SO_REUSEPORT), so that the kernel spreads the connections over the
 * loops and no lock or hand-off sits between them.
 *
 * Starting goes one loop at a time: the first binds (picking the port if
 * asked for 0) and the others then bind the same port, so port 0 is
 * shared by all. Each loop runs one task, member_main, that starts the
 * server, says so through the member's `ready` event, and waits for the
 * group's stop pipe to become readable. The stopping thread writes one
 * byte there, which wakes every loop at once; the pipe belongs to the
 * group and outlives the threads, so, unlike a call_soon_threadsafe on
 * each loop, the stopping thread never touches a loop that may be ending.
 * Stopping closes every server, waits for the handlers up to the timeout,
 * cancels the ones left, and joins every thread.
 *
 * Threads: the group's fields are written before the threads start or,
 * for `port`, by the first member before its `ready` event is set, which
 * the starting thread waits for before starting the next; `stop_timeout`
 * is written before the byte that wakes the members, and atomic, since
 * the sanitizers do not see the pipe order the two. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio_internal.h"
#include "aio/net.h"
#include "conc/aio_net.h"
#include "conc/sync.h"
#include "conc/thread.h"

#define MAX_LOOPS 1024
#define NAME_LEN  32

struct member {
    conc_aio_server_group *g;
    unsigned idx;
    conc_thread *thread;
    conc_event *ready;   /* set once the server listens or failed */
    int ready_done;      /* the member's thread only */
    int rc;              /* the start's outcome, read after `ready` */
    int stop_rc;         /* the stop's, read after the join */
    conc_aio_loop *loop; /* set before `ready` */
};

struct conc_aio_server_group {
    char *host;
    int port;
    unsigned n, started;
    conc_aio_stream_handler fn;
    void *arg;
    conc_aio_stream_opts opts;
    _Atomic double stop_timeout; /* release/acquire around the pipe */
    int stop_pipe[2];            /* readable once the group stops */
    int stopped;
    struct member *m;
};

static void
say_ready(struct member *m, int rc)
{
    m->rc = rc;
    m->ready_done = 1;
    conc_event_set(m->ready);
}

/* Cancels every task of the loop but the caller (the handlers left). */
static void
cancel_handlers(conc_aio_loop *loop)
{
    conc_future **ts, *self = NULL;
    size_t n;
    (void)conc_aio_current_task(&self);
    if (conc_aio_all_tasks(loop, &ts, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (ts[i] != self)
            (void)conc_aio_task_cancel(ts[i], "server group stopped");
    conc_aio_tasks_free(ts, n);
}

/* Closes the member's server and waits for its handlers. */
static int
shut_server(struct member *m, conc_aio_server *srv)
{
    (void)conc_aio_server_close(srv);
    double timeout =
        atomic_load_explicit(&m->g->stop_timeout, memory_order_acquire);
    int r = conc_aio_server_wait_closed(srv, timeout);
    if (r == CONC_ETIMEDOUT) {
        cancel_handlers(m->loop);
        (void)conc_aio_server_wait_closed(srv, CONC_FOREVER);
    }
    conc_aio_server_free(srv);
    return r;
}

static int
member_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct member *m;
    memcpy(&m, arg, sizeof m);
    conc_aio_server_group *g = m->g;
    conc_aio_server *srv = NULL;
    conc_aio_stream_opts opts = g->opts;
    opts.reuse_port = 1;
    int r = conc_aio_get_running_loop(&m->loop);
    if (r == 0)
        r = conc_aio_start_server(m->loop, g->host, g->port, g->fn, g->arg,
                                  &opts, &srv);
    if (r == 0 && !g->port)
        g->port = conc_aio_server_port(srv);
    say_ready(m, r);
    if (r == 0) {
        (void)conc__net_wait(g->stop_pipe[0], POLLIN, CONC__FOREVER,
                             "server group stop");
        m->stop_rc = shut_server(m, srv);
    }
    return r;
}

static int
member_thread(void *arg)
{
    struct member *m = arg;
    int r = conc_aio_run(member_main, &m, sizeof m, NULL);
    if (!m->ready_done)
        say_ready(m, r < 0 ? r : CONC_ESTATE);
    return 0; /* the outcome is in m, not for the excepthook */
}

/* Starts member i and waits until it listens. */
static int
start_member(conc_aio_server_group *g, unsigned i)
{
    struct member *m = &g->m[i];
    char name[NAME_LEN];
    snprintf(name, sizeof name, "conc-server-%u", i);
    conc_thread_opts topts = {
        .name = name, .daemon = CONC_DAEMON_NO, .parallel_start = 1};
    *m = (struct member){.g = g, .idx = i};
    int r = conc_event_new(NULL, &m->ready);
    if (r < 0)
        return r;
    r = conc_thread_start(member_thread, m, &topts, &m->thread);
    if (r == 0) {
        g->started++;
        (void)conc_event_wait(m->ready, CONC_FOREVER);
        r = m->rc;
    }
    return r;
}

int
conc_aio_server_group_start(const char *host, int port, unsigned loops,
                            conc_aio_stream_handler fn, void *arg,
                            const conc_aio_stream_opts *opts,
                            conc_aio_server_group **out)
{
    struct conc__net_addr probe;
    if (!fn || !out || loops > MAX_LOOPS ||
        (host && conc__net_numeric(host, port, AF_UNSPEC, &probe) < 0) ||
        port < 0 || port > CONC__NET_MAX_PORT)
        return CONC_EINVAL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = loops ? loops : cpus > 0 ? (unsigned)cpus : 1;
    conc_aio_server_group *g = conc__calloc(1, sizeof *g);
    if (!g)
        return CONC_ENOMEM;
    *g = (conc_aio_server_group){
        .port = port, .n = n, .fn = fn, .arg = arg, .stop_pipe = {-1, -1}};
    int r = 0;
    if (!(g->m = conc__calloc(n, sizeof *g->m)) ||
        (host && !(g->host = conc__strdup(host))))
        r = CONC_ENOMEM;
    else if (pipe2(g->stop_pipe, O_CLOEXEC) < 0)
        r = -errno;
    if (r < 0) {
        conc_aio_server_group_free(g);
        return r;
    }
    g->opts = opts ? *opts : (conc_aio_stream_opts){0};
    for (unsigned i = 0; i < n && r == 0; i++)
        r = start_member(g, i);
    if (r < 0) {
        conc_aio_server_group_free(g);
        return r;
    }
    *out = g;
    return 0;
}

int
conc_aio_server_group_port(conc_aio_server_group *g)
{
    return g ? g->port : CONC_EINVAL;
}

int
conc_aio_server_group_loops(conc_aio_server_group *g)
{
    return g ? (int)g->n : CONC_EINVAL;
}

int
conc_aio_server_group_stop(conc_aio_server_group *g, double timeout)
{
    int64_t unused;
    if (!g || conc__deadline(timeout, &unused) < 0)
        return CONC_EINVAL;
    if (g->stopped)
        return 0;
    g->stopped = 1;
    atomic_store_explicit(&g->stop_timeout, timeout, memory_order_release);
    /* One byte wakes every member: the pipe stays readable. */
    if (g->started && write(g->stop_pipe[1], "x", 1) != 1)
        return -errno;
    int r = 0;
    for (unsigned i = 0; i < g->started; i++) {
        (void)conc_thread_join(g->m[i].thread, CONC_FOREVER, NULL);
        if (g->m[i].stop_rc < 0 && r == 0)
            r = g->m[i].stop_rc;
    }
    return r;
}

void
conc_aio_server_group_free(conc_aio_server_group *g)
{
    if (!g)
        return;
    if (g->m) {
        (void)conc_aio_server_group_stop(g, 0);
        for (unsigned i = 0; i < g->n; i++) {
            conc_thread_free(g->m[i].thread);
            conc_event_free(g->m[i].ready);
        }
    }
    if (g->stop_pipe[0] >= 0) {
        close(g->stop_pipe[0]);
        close(g->stop_pipe[1]);
    }
    conc__free(g->m);
    conc__free(g->host);
    conc__free(g);
}
