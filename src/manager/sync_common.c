/* What the manager's synchronization types share: an object's monitor
 * (one conc_cond whose lock guards the object's state; every change
 * wakes all its waiters, which check their own predicate again), the
 * state of a Lock or RLock, and threading's argument conventions.
 *
 * Lock order: an object's monitor only. */
#include <math.h>

#include "manager/sync_types.h"

int
conc__mgr_mon_init(struct conc__mgr_mon *mon)
{
    mon->stopped = 0;
    return conc_cond_new(NULL, &mon->cond);
}

void
conc__mgr_mon_fini(struct conc__mgr_mon *mon)
{
    conc_cond_free(mon->cond);
}

int
conc__mgr_mon_wait(struct conc__mgr_mon *mon, int64_t deadline)
{
    if (mon->stopped)
        return conc_fail(CONC_ECLOSED, "the manager is shutting down");
    double timeout = CONC_FOREVER;
    if (deadline != CONC__FOREVER) {
        int64_t left = deadline - conc__now_ns();
        if (left <= 0)
            return CONC_ETIMEDOUT;
        timeout = (double)left / 1e9;
    }
    int watched = conc__mgr_watch_begin(); /* a client's hang-up ends it */
    int rc = conc_cond_wait(mon->cond, timeout);
    conc__mgr_watch_end(watched);
    if (mon->stopped)
        return conc_fail(CONC_ECLOSED, "the manager is shutting down");
    return rc == CONC_ETIMEDOUT ? 0 : rc; /* the caller looks at the time */
}

void
conc__mgr_mon_stop(struct conc__mgr_mon *mon)
{
    conc_cond_acquire(mon->cond, CONC_FOREVER);
    mon->stopped = 1;
    conc_cond_notify_all(mon->cond);
    conc_cond_release(mon->cond);
}

int
conc__mgr_lock_take(struct conc__mgr_mon *mon, struct conc__mgr_lockstate *l,
                    int64_t deadline)
{
    uint64_t me = conc__mgr_client();
    if (l->recursive && l->count > 0 && l->owner == me) {
        l->count++;
        return 1;
    }
    while (l->count > 0) {
        int rc = conc__mgr_mon_wait(mon, deadline);
        if (rc == CONC_ETIMEDOUT)
            return 0;
        if (rc < 0)
            return rc;
    }
    l->owner = me;
    l->count = 1;
    conc__mgr_client_holds();
    return 1;
}

int
conc__mgr_lock_give(struct conc__mgr_mon *mon, struct conc__mgr_lockstate *l)
{
    if (l->count == 0 && !l->recursive)
        return conc_fail(CONC_ENOTLOCKED, "release unlocked lock");
    if (l->recursive && (l->count == 0 || l->owner != conc__mgr_client()))
        return conc_fail(CONC_ENOTOWNER, "cannot release un-acquired lock");
    if (--l->count == 0) {
        l->owner = 0;
        conc_cond_notify_all(mon->cond);
    }
    return 0;
}

/* A number argument, or CONC_ETYPE. */
static int
number(conc_obj *o, double *v)
{
    if (conc_obj_float_value(o, v) != 0 || isnan(*v))
        return conc_fail(CONC_ETYPE, "timeout must be a number");
    return 0;
}

/* A relative timeout as a deadline: `forever`, or `timeout` seconds, a
 * negative one meaning now (never CONC_FOREVER's -1 by accident). */
static int
deadline_of(int forever, double timeout, int64_t *deadline)
{
    return conc__deadline(forever       ? CONC_FOREVER
                          : timeout < 0 ? 0
                                        : timeout,
                          deadline);
}

int
conc__mgr_acquire_deadline(conc_obj *args, conc_obj *kwds, int sem,
                           int64_t *deadline)
{
    conc_obj *block = conc__mgr_arg(args, kwds, 0, "blocking");
    conc_obj *t = conc__mgr_arg(args, kwds, 1, "timeout");
    int blocking = !block || conc_obj_truth(block) == 1;
    double timeout = -1;
    int given = t && conc_obj_typeof(t) != CONC_OBJ_NONE;
    if (given && number(t, &timeout) < 0)
        return CONC_ETYPE;
    if (!sem && given && timeout == -1)
        given = 0; /* a Lock's default */
    if (!blocking && given)
        return conc_fail(CONC_EVALUE, sem ? "can't specify timeout for "
                                            "non-blocking acquire"
                                          : "can't specify a timeout for a "
                                            "non-blocking call");
    if (!sem && given && timeout < 0)
        return conc_fail(CONC_EVALUE,
                         "timeout value must be a non-negative number");
    return deadline_of(blocking && !given, blocking ? timeout : 0, deadline);
}

int
conc__mgr_wait_deadline(conc_obj *args, conc_obj *kwds, int64_t *deadline)
{
    conc_obj *t = conc__mgr_arg(args, kwds, 0, "timeout");
    double timeout = 0;
    int forever = !t || conc_obj_typeof(t) == CONC_OBJ_NONE;
    if (!forever && number(t, &timeout) < 0)
        return CONC_ETYPE;
    return deadline_of(forever, timeout, deadline);
}

int
conc__mgr_bool(int v, conc_obj **result)
{
    *result = conc_obj_bool(v);
    return 0;
}

const char *
conc__mgr_pytype(const conc_obj *o)
{
    static const char *const names[] = {[CONC_OBJ_NONE] = "NoneType",
                                        [CONC_OBJ_BOOL] = "bool",
                                        [CONC_OBJ_INT] = "int",
                                        [CONC_OBJ_FLOAT] = "float",
                                        [CONC_OBJ_STR] = "str",
                                        [CONC_OBJ_BYTES] = "bytes",
                                        [CONC_OBJ_TUPLE] = "tuple",
                                        [CONC_OBJ_LIST] = "list",
                                        [CONC_OBJ_DICT] = "dict",
                                        [CONC_OBJ_SET] = "set",
                                        [CONC_OBJ_FROZENSET] = "frozenset"};
    conc_obj_type t = conc_obj_typeof(o);
    if (t == CONC_OBJ_FOREIGN)
        return conc_obj_foreign_name(o);
    if ((size_t)t < sizeof names / sizeof names[0] && names[t])
        return names[t];
    return "NoneType"; /* a missing argument */
}

int
conc__mgr_chars(const conc_obj *o, conc_obj **out)
{
    int text = conc_obj_typeof(o) == CONC_OBJ_STR;
    const char *p =
        text ? conc_obj_str_value(o) : (const char *)conc_obj_bytes_value(o);
    size_t n = conc_obj_len(o); /* in bytes, for a str too */
    conc_obj *l = p ? conc_obj_list() : NULL;
    int rc = l ? 0 : p ? CONC_ENOMEM : CONC_ETYPE;
    for (size_t i = 0, k; rc == 0 && i < n; i += k) {
        k = 1;
        while (text && i + k < n && ((unsigned char)p[i + k] & 0xc0) == 0x80)
            k++; /* the continuation bytes of one code point */
        conc_obj *c =
            text ? conc_obj_strn(p + i, k) : conc_obj_int((unsigned char)p[i]);
        rc = c ? conc_obj_list_append_new(l, c) : CONC_ENOMEM;
    }
    if (rc < 0) {
        conc_obj_decref(l);
        return rc;
    }
    *out = l;
    return 0;
}
