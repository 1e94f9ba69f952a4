/* A Redis worker: creating it, running its threads, stopping it
 * (conc/dist.h). conc_dist_worker_run starts nthreads - 1 serving threads,
 * the monitor thread and the result writer, serves in the calling thread
 * too, and joins them all once stopped, the writer last, once it has
 * written every result (worker.c, monitor.c and writer.c say what they
 * do). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "conc/thread.h"
#include "core/internal.h"
#include "dist/worker_internal.h"

/* How long run waits for its threads once stopped: their rounds are
 * bounded (worker.c, monitor.c), a task is not. */
#define JOIN_TIMEOUT CONC_FOREVER

#define END_SLACK CONC__DIST_END_SLACK_NS

/* Stops the run: its threads see the stop between two calls to the
 * server, and the calls they make from now on end within END_SLACK
 * (answered or not), so the run ends in bounded time while the server
 * hangs. */
static void
end_soon(conc_dist_worker *w)
{
    int64_t end = conc__now_ns() + END_SLACK;
    int64_t old = atomic_load(&w->end_ns);
    while (end < old && !atomic_compare_exchange_weak(&w->end_ns, &old, end))
        ;
    atomic_store(&w->stop, 1);
}

static int
check_opts(const conc_dist_worker_opts *o)
{
    if (isnan(o->connect_timeout) || o->connect_timeout < 0 ||
        isnan(o->reclaim_idle) || o->reclaim_idle < 0 ||
        (o->name && !conc__dist_name_ok(o->name, strlen(o->name))))
        return CONC_EINVAL;
    return 0;
}

static char *
default_name(void)
{
    char host[64] = "host", buf[128];
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (!conc__dist_name_ok(p, 1))
            *p = '_';
    snprintf(buf, sizeof buf, "%s-%ld", host, (long)getpid());
    return conc__strdup(buf);
}

static int
fill_worker(conc_dist_worker *w, const char *address, const char *password,
            const char *queue, const conc_dist_worker_opts *o)
{
    w->nthreads = o->threads ? o->threads : 1;
    /* A serving thread waits for its task's process: one thread per
     * process at least keeps them all busy. */
    w->nprocs = o->processes;
    if (w->nthreads < w->nprocs)
        w->nthreads = w->nprocs;
    w->batch = o->batch ? o->batch : w->nprocs ? 1 : CONC__DIST_WORKER_BATCH;
    if (w->batch > CONC__DIST_WORKER_BATCH_MAX)
        w->batch = CONC__DIST_WORKER_BATCH_MAX;
    w->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout
                                                : CONC__DIST_CONNECT_TIMEOUT;
    w->retry_on_startup = o->retry_on_startup;
    double idle =
        o->reclaim_idle > 0 ? o->reclaim_idle : CONC__DIST_RECLAIM_IDLE;
    w->reclaim_idle_ms = (int64_t)(idle * 1000) ? (int64_t)(idle * 1000) : 1;
    w->max_deliveries =
        o->max_deliveries ? o->max_deliveries : CONC__DIST_MAX_DELIVERIES;
    if (!(w->address = conc__strdup(address)) ||
        (password && !(w->password = conc__strdup(password))) ||
        !(w->queue = conc__strdup(queue)) ||
        !(w->name = o->name ? conc__strdup(o->name) : default_name()) ||
        !(w->k_tasks = conc__dist_key_str(queue, "tasks")) ||
        !(w->k_dead = conc__dist_key_str(queue, "dead")) ||
        !(w->k_workers = conc__dist_key_str(queue, "workers")) ||
        !(w->k_lost = conc__dist_key_str(queue, "lost")) ||
        !(w->slots = conc__calloc(w->nthreads, sizeof *w->slots)))
        return CONC_ENOMEM;
    int r = conc_cond_new(NULL, &w->fin_cond);
    if (r < 0)
        return r;
    for (size_t i = 0; i < w->nthreads; i++)
        snprintf(w->slots[i].consumer, sizeof w->slots[i].consumer, "%s-%zu",
                 w->name, i);
    return 0;
}

/* Checks the address and password and creates the group (unless the
 * server is out of reach and retry_on_startup says to go on). */
static int
first_contact(conc_dist_worker *w)
{
    struct conc__rconn c;
    int r = conc__rconn_init(&c, w->address, w->password, w->connect_timeout);
    if (r < 0)
        return r;
    int64_t deadline = conc__now_ns() + (int64_t)(w->connect_timeout * 1e9);
    redisReply *rep = NULL;
    /* Retried: a server that has just started may still be loading its
     * data (LOADING); creating the group twice is harmless. */
    r = conc__rconn_cmdf(&c, deadline, 1, &rep,
                         "XGROUP CREATE %s %s 0 MKSTREAM", w->k_tasks,
                         CONC__DIST_GROUP);
    if (r == 0) {
        if (rep->type == REDIS_REPLY_ERROR &&
            !conc__reply_error_is(rep, "BUSYGROUP"))
            r = CONC_EPROTO;
        freeReplyObject(rep);
    }
    conc__rconn_fini(&c);
    if (r < 0 && r != CONC_EAUTH && r != CONC_EPROTO && w->retry_on_startup)
        r = 0;
    return r;
}

void
conc_dist_worker_free(conc_dist_worker *w)
{
    if (!w)
        return;
    conc__free(w->address);
    conc__free(w->password);
    conc__free(w->queue);
    conc__free(w->name);
    conc__free(w->k_tasks);
    conc__free(w->k_dead);
    conc__free(w->k_workers);
    conc__free(w->k_lost);
    conc__dist_held_free(conc__dist_held_take_all(w)); /* none after a run */
    conc_cond_free(w->fin_cond);
    conc__free(w->slots);
    conc__free(w);
}

int
conc_dist_worker_new(const char *address, const char *password,
                     const char *queue, const conc_dist_worker_opts *opts,
                     conc_dist_worker **out)
{
    conc_dist_worker_opts o = opts ? *opts : (conc_dist_worker_opts){0};
    if (!address || !queue || !out ||
        !conc__dist_name_ok(queue, strlen(queue)) || check_opts(&o) < 0)
        return CONC_EINVAL;
    conc_dist_worker *w = conc__calloc(1, sizeof *w);
    if (!w)
        return CONC_ENOMEM;
    int r = fill_worker(w, address, password, queue, &o);
    if (r == 0) {
        struct conc__rconn probe; /* the address must parse */
        if ((r = conc__rconn_init(&probe, address, password, 1)) == 0)
            conc__rconn_fini(&probe);
    }
    if (r == 0)
        r = first_contact(w);
    if (r < 0) {
        conc_dist_worker_free(w);
        return r;
    }
    *out = w;
    return 0;
}

struct serve_arg {
    conc_dist_worker *w;
    size_t idx;
    int64_t deadline;
};

static int
serve_main(void *arg)
{
    struct serve_arg *a = arg;
    return conc__dist_serve(a->w, a->idx, a->deadline);
}

/* Starts the monitor and threads 1..n-1; returns how many started. */
static int
start_threads(conc_dist_worker *w, struct serve_arg *args, conc_thread **ts,
              size_t *started)
{
    conc_thread_opts to = {.name = "conc-dist-worker",
                           .daemon = CONC_DAEMON_NO,
                           .parallel_start = 1};
    int r = conc_thread_start(conc__dist_monitor_main, w, &to, &ts[0]);
    *started = r == 0;
    for (size_t i = 1; i < w->nthreads && r == 0; i++) {
        r = conc_thread_start(serve_main, &args[i], &to, &ts[i]);
        if (r == 0)
            *started = i + 1;
    }
    return r;
}

/* Starts the worker processes, if any: forked now, so they see every
 * task function registered (and every library loaded) before the run.
 * A task is cancelled by killing its process (cancel_kills). */
static int
start_pool(conc_dist_worker *w)
{
    if (!w->nprocs)
        return 0;
    conc_executor_opts eo = {.max_workers = w->nprocs, .cancel_kills = 1};
    return conc_process_executor_new(&eo, &w->pool);
}

int
conc_dist_worker_run(conc_dist_worker *w, double timeout)
{
    int64_t deadline;
    if (!w || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->running, &expected, 1))
        return CONC_ESTATE;
    atomic_store(&w->stop, 0);
    atomic_store(&w->end_ns, deadline >= CONC__FOREVER - END_SLACK
                                 ? CONC__FOREVER
                                 : deadline + END_SLACK);
    struct serve_arg *args = conc__calloc(w->nthreads, sizeof *args);
    conc_thread **ts = conc__calloc(w->nthreads, sizeof *ts);
    int r = args && ts ? 0 : CONC_ENOMEM;
    size_t started = 0;
    conc_thread *writer = NULL;
    w->fin_stop = 0;
    for (size_t i = 0; r == 0 && i < w->nthreads; i++)
        args[i] = (struct serve_arg){w, i, deadline};
    if (r == 0)
        r = start_pool(w);
    if (r == 0)
        r = conc_thread_start(conc__dist_writer_main, w,
                              &(conc_thread_opts){.name = "conc-dist-writer",
                                                  .daemon = CONC_DAEMON_NO},
                              &writer);
    if (r == 0)
        r = start_threads(w, args, ts, &started);
    if (r == 0)
        r = conc__dist_serve(w, 0, deadline);
    end_soon(w);
    for (size_t i = 0; i < started; i++) {
        int status = 0;
        conc_thread_join(ts[i], JOIN_TIMEOUT, &status);
        if (status == CONC_EAUTH && r == 0)
            r = CONC_EAUTH;
        conc_thread_free(ts[i]);
    }
    if (writer) { /* the serving threads are done: their results are in */
        conc__dist_writer_stop(w);
        conc_thread_join(writer, JOIN_TIMEOUT, NULL);
        conc_thread_free(writer);
    }
    conc__free(args);
    conc__free(ts);
    if (w->pool) {
        conc_executor_free(w->pool); /* its tasks are all done */
        w->pool = NULL;
    }
    atomic_store(&w->running, 0);
    return r;
}

int
conc_dist_worker_stop(conc_dist_worker *w)
{
    if (!w)
        return CONC_EINVAL;
    end_soon(w);
    return 0;
}
