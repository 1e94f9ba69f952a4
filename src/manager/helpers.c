/* Typed helpers for the proxies of the built-in types: each one call of
 * conc_proxy_call with the arguments CPython's proxies send. */
#include <math.h>

#include "manager/manager_internal.h"

int
conc__mgr_call_n(conc_proxy *p, const char *method, conc_obj **items, size_t n,
                 conc_obj *kwds, conc_obj **result)
{
    conc_obj *args = conc_obj_tuple(n), *r = NULL;
    if (!args)
        return CONC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        conc_obj_tuple_set_new(args, i, conc_obj_incref(items[i]));
    int rc = conc_proxy_call(p, method, args, kwds, &r);
    conc_obj_decref(args);
    if (rc == 0 && result)
        *result = r;
    else
        conc_obj_decref(r);
    return rc;
}

int
conc_dictproxy_get(conc_proxy *d, conc_obj *key, conc_obj **value)
{
    if (!d || !key || !value)
        return CONC_EINVAL;
    return conc__mgr_call_n(d, "__getitem__", &key, 1, NULL, value);
}

int
conc_dictproxy_set(conc_proxy *d, conc_obj *key, conc_obj *value)
{
    if (!d || !key || !value)
        return CONC_EINVAL;
    conc_obj *items[2] = {key, value};
    return conc__mgr_call_n(d, "__setitem__", items, 2, NULL, NULL);
}

int
conc_dictproxy_iter(conc_proxy *d, conc_proxy **it)
{
    if (!d || !it)
        return CONC_EINVAL;
    return conc_proxy_call_proxy(d, "__iter__", NULL, NULL, it);
}

int
conc_iterproxy_next(conc_proxy *it, conc_obj **item)
{
    if (!it || !item)
        return CONC_EINVAL;
    int rc = conc__mgr_call_n(it, "__next__", NULL, 0, NULL, item);
    /* RuntimeError: the dict changed under the iterator. */
    return rc == CONC_ENOTOWNER || rc == CONC_ENOTLOCKED ? CONC_ESTATE : rc;
}

int
conc_dictproxy_merge(conc_proxy *d, conc_obj *other)
{
    if (!d || !other)
        return CONC_EINVAL;
    return conc__mgr_call_n(d, "__ior__", &other, 1, NULL, NULL);
}

int
conc_listproxy_clear(conc_proxy *l)
{
    if (!l)
        return CONC_EINVAL;
    return conc__mgr_call_n(l, "clear", NULL, 0, NULL, NULL);
}

int
conc_listproxy_copy(conc_proxy *l, conc_obj **copy)
{
    if (!l || !copy)
        return CONC_EINVAL;
    return conc__mgr_call_n(l, "copy", NULL, 0, NULL, copy);
}

int
conc_listproxy_append(conc_proxy *l, conc_obj *item)
{
    if (!l || !item)
        return CONC_EINVAL;
    return conc__mgr_call_n(l, "append", &item, 1, NULL, NULL);
}

int
conc_listproxy_get(conc_proxy *l, int64_t index, conc_obj **item)
{
    if (!l || !item)
        return CONC_EINVAL;
    conc_obj *i = conc_obj_int(index);
    if (!i)
        return CONC_ENOMEM;
    int rc = conc__mgr_call_n(l, "__getitem__", &i, 1, NULL, item);
    conc_obj_decref(i);
    return rc;
}

/* The (block, timeout) arguments of put and get for a conc timeout. */
static int
block_args(double timeout, conc_obj **block, conc_obj **t)
{
    if (isnan(timeout))
        return CONC_EINVAL;
    *block = conc_obj_bool(timeout != 0);
    *t = timeout == CONC_FOREVER ? conc_obj_none()
                                 : conc_obj_float(timeout < 0 ? 0 : timeout);
    return *t ? 0 : CONC_ENOMEM;
}

int
conc_queueproxy_put(conc_proxy *q, conc_obj *item, double timeout)
{
    if (!q || !item)
        return CONC_EINVAL;
    conc_obj *items[3] = {item, NULL, NULL};
    int rc = block_args(timeout, &items[1], &items[2]);
    if (rc == 0)
        rc = conc__mgr_call_n(q, "put", items, 3, NULL, NULL);
    conc_obj_decref(items[2]);
    return rc;
}

int
conc_queueproxy_get(conc_proxy *q, double timeout, conc_obj **item)
{
    if (!q || !item)
        return CONC_EINVAL;
    conc_obj *items[2] = {NULL, NULL};
    int rc = block_args(timeout, &items[0], &items[1]);
    if (rc == 0)
        rc = conc__mgr_call_n(q, "get", items, 2, NULL, item);
    conc_obj_decref(items[1]);
    return rc;
}
