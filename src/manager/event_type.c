/* The "Event" typeid: threading.Event as EventProxy reaches it (is_set,
 * set, clear, wait(timeout) returning the flag).
 *
 * Lock order: the event's monitor only. */
#include "manager/sync_types.h"

struct mgr_event {
    struct conc__mgr_mon mon;
    int flag;
};

static const char *const no_params[] = {NULL};
static const struct conc__mgr_sig event_sig = {"Event.__init__", 1, no_params,
                                               0};

static int
event_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    int rc = conc__mgr_check_args(&event_sig, args, kwds);
    if (rc < 0)
        return rc;
    struct mgr_event *e = conc__calloc(1, sizeof *e);
    if (!e || conc__mgr_mon_init(&e->mon) < 0) {
        conc__free(e);
        return CONC_ENOMEM;
    }
    *self = e;
    return 0;
}

static void
event_release_obj(void *self)
{
    struct mgr_event *e = self;
    conc__mgr_mon_fini(&e->mon);
    conc__free(e);
}

static void
event_stop(void *self)
{
    struct mgr_event *e = self;
    conc__mgr_mon_stop(&e->mon);
}

static int
event_is_set(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_event *e = self;
    conc_cond_acquire(e->mon.cond, CONC_FOREVER);
    int flag = e->flag;
    conc_cond_release(e->mon.cond);
    return conc__mgr_bool(flag, result);
}

static void
put_flag(struct mgr_event *e, int flag)
{
    conc_cond_acquire(e->mon.cond, CONC_FOREVER);
    e->flag = flag;
    if (flag)
        conc_cond_notify_all(e->mon.cond);
    conc_cond_release(e->mon.cond);
}

static int
event_set(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    put_flag(self, 1);
    return 0;
}

static int
event_clear(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    (void)result;
    put_flag(self, 0);
    return 0;
}

static int
event_wait(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_event *e = self;
    int64_t deadline;
    int rc = conc__mgr_wait_deadline(args, kwds, &deadline);
    if (rc < 0)
        return rc;
    conc_cond_acquire(e->mon.cond, CONC_FOREVER);
    while (!e->flag && rc == 0)
        rc = conc__mgr_mon_wait(&e->mon, deadline);
    int flag = e->flag;
    conc_cond_release(e->mon.cond);
    return rc < 0 && rc != CONC_ETIMEDOUT ? rc : conc__mgr_bool(flag, result);
}

/* EventProxy's exposed names. */
static const conc_manager_method event_methods[] = {
    {"is_set", event_is_set},
    {"set", event_set},
    {"clear", event_clear},
    {"wait", event_wait},
};

static const conc_manager_type event_type = {
    .create = event_create,
    .release = event_release_obj,
    .stop = event_stop,
    .methods = event_methods,
    .n_methods = sizeof event_methods / sizeof event_methods[0],
};

const conc_manager_type *
conc_manager_event_type(void)
{
    return &event_type;
}
