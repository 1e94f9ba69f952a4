/* The built-in "Queue" typeid: queue.Queue's exposed methods (empty,
 * full, get, get_nowait, join, put, put_nowait, qsize, task_done) over a
 * conc_queue of conc_obj references. A blocking get or put blocks only
 * the thread serving its connection. */
#include "manager/manager_internal.h"
#include "manager/sync_types.h"
#include "conc/queue.h"

static void
drop_item(void *item)
{
    conc_obj_decref(item);
}

int
conc_manager_queue_new(size_t maxsize, void **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_queue_opts o = {.maxsize = maxsize, .drop = drop_item};
    conc_queue *q;
    int rc = conc_queue_new(&o, &q);
    if (rc == 0)
        *out = q;
    return rc;
}

/* Queue(maxsize=0), which JoinableQueue is too in CPython's server. */
static const char *const q_params[] = {"maxsize", NULL};
static const struct conc__mgr_sig q_sig = {"Queue.__init__", 1, q_params, 0};

static int
q_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    int rc = conc__mgr_check_args(&q_sig, args, kwds);
    if (rc < 0)
        return rc;
    conc_obj *max = conc__mgr_arg(args, kwds, 0, "maxsize");
    int64_t n = 0;
    if (max && conc_obj_int_value(max, &n) < 0)
        return conc_fail(CONC_ETYPE, "maxsize must be an int");
    return conc_manager_queue_new(n > 0 ? (size_t)n : 0, self);
}

static void
q_release(void *self)
{
    conc_queue_free(self);
}

static void
q_stop(void *self)
{
    conc_queue_shutdown(self, 1);
}

static int
put_timeout(conc_queue *q, conc_obj *args, conc_obj *kwds, double timeout)
{
    conc_obj *item = conc__mgr_arg(args, kwds, 0, "item");
    if (!item)
        return conc_fail(CONC_ETYPE, "put() missing 'item'");
    int watched = conc__mgr_watch_begin(); /* a client's hang-up ends it */
    int rc = conc_queue_put(q, conc_obj_incref(item), timeout);
    conc__mgr_watch_end(watched);
    if (rc < 0)
        conc_obj_decref(item);
    return rc;
}

static int
q_put(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    double timeout;
    int rc = conc__mgr_timeout(args, kwds, 1, &timeout);
    return rc < 0 ? rc : put_timeout(self, args, kwds, timeout);
}

static int
q_put_nowait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    return put_timeout(self, args, kwds, 0);
}

static int
q_get(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    double timeout;
    int rc = conc__mgr_timeout(args, kwds, 0, &timeout);
    void *item = NULL;
    int watched = conc__mgr_watch_begin(); /* a client's hang-up ends it */
    if (rc == 0)
        rc = conc_queue_get(self, timeout, &item);
    conc__mgr_watch_end(watched);
    if (rc == 0)
        *result = item;
    return rc;
}

static int
q_get_nowait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    void *item = NULL;
    int rc = conc_queue_get_nowait(self, &item);
    if (rc == 0)
        *result = item;
    return rc;
}

static int
q_qsize(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    *result = conc_obj_int((int64_t)conc_queue_qsize(self));
    return *result ? 0 : CONC_ENOMEM;
}

static int
q_empty(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    *result = conc_obj_bool(conc_queue_empty(self) == 1);
    return 0;
}

static int
q_full(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    *result = conc_obj_bool(conc_queue_full(self) == 1);
    return 0;
}

static int
q_task_done(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    int rc = conc_queue_task_done(self);
    return rc == CONC_EVALUE
               ? conc_fail(rc, "task_done() called too many times")
               : rc;
}

static int
q_join(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    int watched = conc__mgr_watch_begin(); /* a client's hang-up ends it */
    int rc = conc_queue_join(self, CONC_FOREVER);
    conc__mgr_watch_end(watched);
    return rc;
}

/* In the order of CPython's exposed tuple for queue.Queue. */
static const conc_manager_method queue_methods[] = {
    {"empty", q_empty},
    {"full", q_full},
    {"get", q_get},
    {"get_nowait", q_get_nowait},
    {"join", q_join},
    {"put", q_put},
    {"put_nowait", q_put_nowait},
    {"qsize", q_qsize},
    {"task_done", q_task_done},
};

static const conc_manager_type queue_type = {
    .create = q_create,
    .release = q_release,
    .stop = q_stop,
    .methods = queue_methods,
    .n_methods = sizeof queue_methods / sizeof queue_methods[0],
};

const conc_manager_type *
conc_manager_queue_type(void)
{
    return &queue_type;
}
