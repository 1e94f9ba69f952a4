/* Typed helpers for the proxies of the synchronization and value types:
 * each one call with the arguments CPython's proxies (AcquirerProxy,
 * ConditionProxy, EventProxy, BarrierProxy, ValueProxy, ArrayProxy,
 * NamespaceProxy, SetProxy) send, so that they work against CPython's
 * SyncManager as well as conc's. */
#include <math.h>

#include "manager/manager_internal.h"

/* Calls a method of no arguments; its result into *result if wanted. */
static int
call0(conc_proxy *p, const char *method, conc_obj **result)
{
    if (!p)
        return CONC_EINVAL;
    return conc__mgr_call_n(p, method, NULL, 0, NULL, result);
}

/* A bool result as 0, or CONC_ETIMEDOUT for False. */
static int
true_or_timeout(int rc, conc_obj *r)
{
    int yes = rc == 0 && conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    return rc < 0 ? rc : yes ? 0 : CONC_ETIMEDOUT;
}

/* The timeout argument of a wait: None for CONC_FOREVER, a negative one
 * as 0. */
static conc_obj *
wait_timeout(double timeout)
{
    return timeout == CONC_FOREVER ? conc_obj_none()
                                   : conc_obj_float(timeout < 0 ? 0 : timeout);
}

int
conc_lockproxy_acquire(conc_proxy *p, double timeout)
{
    if (!p || isnan(timeout))
        return CONC_EINVAL;
    /* AcquirerProxy sends (blocking,) or (blocking, timeout). */
    conc_obj *items[2] = {conc_obj_bool(timeout == CONC_FOREVER || timeout > 0),
                          NULL},
             *r = NULL;
    size_t n = 1;
    if (timeout > 0) {
        if (!(items[1] = conc_obj_float(timeout)))
            return CONC_ENOMEM;
        n = 2;
    }
    int rc = conc__mgr_call_n(p, "acquire", items, n, NULL, &r);
    conc_obj_decref(items[1]);
    return true_or_timeout(rc, r);
}

int
conc_lockproxy_release(conc_proxy *p)
{
    return call0(p, "release", NULL);
}

int
conc_condproxy_wait(conc_proxy *p, double timeout)
{
    if (!p || isnan(timeout))
        return CONC_EINVAL;
    conc_obj *t = wait_timeout(timeout), *r = NULL;
    if (!t)
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, "wait", &t, 1, NULL, &r);
    conc_obj_decref(t);
    return true_or_timeout(rc, r);
}

int
conc_condproxy_notify(conc_proxy *p, unsigned n)
{
    if (!p)
        return CONC_EINVAL;
    conc_obj *no = conc_obj_int(n);
    if (!no)
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, "notify", &no, 1, NULL, NULL);
    conc_obj_decref(no);
    return rc;
}

int
conc_condproxy_notify_all(conc_proxy *p)
{
    return call0(p, "notify_all", NULL);
}

int
conc_eventproxy_set(conc_proxy *p)
{
    return call0(p, "set", NULL);
}

int
conc_eventproxy_clear(conc_proxy *p)
{
    return call0(p, "clear", NULL);
}

int
conc_eventproxy_is_set(conc_proxy *p, int *set)
{
    if (!set)
        return CONC_EINVAL;
    conc_obj *r = NULL;
    int rc = call0(p, "is_set", &r);
    if (rc == 0)
        *set = conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    return rc;
}

int
conc_eventproxy_wait(conc_proxy *p, double timeout)
{
    return conc_condproxy_wait(p, timeout);
}

int
conc_barrierproxy_wait(conc_proxy *p, double timeout, int64_t *index)
{
    if (!p || isnan(timeout))
        return CONC_EINVAL;
    conc_obj *t = wait_timeout(timeout), *r = NULL;
    if (!t)
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, "wait", &t, 1, NULL, &r);
    conc_obj_decref(t);
    int64_t i = 0;
    if (rc == 0 && conc_obj_int_value(r, &i) < 0)
        rc = conc_fail(CONC_EPROTO, "wait() did not return an int");
    if (rc == 0 && index)
        *index = i;
    conc_obj_decref(r);
    return rc;
}

int
conc_barrierproxy_abort(conc_proxy *p)
{
    return call0(p, "abort", NULL);
}

int
conc_barrierproxy_reset(conc_proxy *p)
{
    return call0(p, "reset", NULL);
}

int
conc_valueproxy_get(conc_proxy *p, conc_obj **value)
{
    if (!value)
        return CONC_EINVAL;
    return call0(p, "get", value);
}

int
conc_valueproxy_set(conc_proxy *p, conc_obj *value)
{
    if (!p || !value)
        return CONC_EINVAL;
    return conc__mgr_call_n(p, "set", &value, 1, NULL, NULL);
}

int
conc_arrayproxy_get(conc_proxy *p, int64_t index, conc_obj **item)
{
    if (!p || !item)
        return CONC_EINVAL;
    conc_obj *i = conc_obj_int(index);
    if (!i)
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, "__getitem__", &i, 1, NULL, item);
    conc_obj_decref(i);
    return rc;
}

int
conc_arrayproxy_set(conc_proxy *p, int64_t index, conc_obj *item)
{
    if (!p || !item)
        return CONC_EINVAL;
    conc_obj *items[2] = {conc_obj_int(index), item};
    if (!items[0])
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, "__setitem__", items, 2, NULL, NULL);
    conc_obj_decref(items[0]);
    return rc;
}

int
conc_arrayproxy_len(conc_proxy *p, size_t *n)
{
    if (!n)
        return CONC_EINVAL;
    conc_obj *r = NULL;
    int rc = call0(p, "__len__", &r);
    int64_t v = 0;
    if (rc == 0 && (conc_obj_int_value(r, &v) < 0 || v < 0))
        rc = conc_fail(CONC_EPROTO, "__len__ did not return a size");
    if (rc == 0)
        *n = (size_t)v;
    conc_obj_decref(r);
    return rc;
}

/* A Namespace method of the attribute `name` and maybe a value. */
static int
ns_call(conc_proxy *p, const char *method, const char *name, conc_obj *value,
        conc_obj **result)
{
    if (!p || !name)
        return CONC_EINVAL;
    conc_obj *items[2] = {conc_obj_str(name), value};
    if (!items[0])
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(p, method, items, value ? 2 : 1, NULL, result);
    conc_obj_decref(items[0]);
    return rc;
}

int
conc_nsproxy_get(conc_proxy *p, const char *name, conc_obj **value)
{
    if (!value)
        return CONC_EINVAL;
    return ns_call(p, "__getattribute__", name, NULL, value);
}

int
conc_nsproxy_set(conc_proxy *p, const char *name, conc_obj *value)
{
    if (!value)
        return CONC_EINVAL;
    return ns_call(p, "__setattr__", name, value, NULL);
}

int
conc_nsproxy_del(conc_proxy *p, const char *name)
{
    return ns_call(p, "__delattr__", name, NULL, NULL);
}

int
conc_setproxy_add(conc_proxy *p, conc_obj *item)
{
    if (!p || !item)
        return CONC_EINVAL;
    return conc__mgr_call_n(p, "add", &item, 1, NULL, NULL);
}

int
conc_setproxy_discard(conc_proxy *p, conc_obj *item)
{
    if (!p || !item)
        return CONC_EINVAL;
    return conc__mgr_call_n(p, "discard", &item, 1, NULL, NULL);
}

int
conc_setproxy_contains(conc_proxy *p, conc_obj *item, int *in)
{
    if (!p || !item || !in)
        return CONC_EINVAL;
    conc_obj *r = NULL;
    int rc = conc__mgr_call_n(p, "__contains__", &item, 1, NULL, &r);
    if (rc == 0)
        *in = conc_obj_truth(r) == 1;
    conc_obj_decref(r);
    return rc;
}
