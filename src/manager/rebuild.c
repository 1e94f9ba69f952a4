/* Proxies inside values: CPython's Token and RebuildProxy records
 * (conc/manager.h's conc_proxy_to_obj and conc_proxy_from_obj), the
 * '#PROXY' reply of a method listed in method_to_typeid, and the server's
 * side, which keeps an object alive once a proxy to it is stored in one
 * of its values.
 *
 * A proxy pickles, in CPython, as
 *     RebuildProxy(ProxyClass, Token(typeid, address, id), 'pickle', kwds)
 * where Token is made by NEWOBJ with the state (typeid, address, id) and
 * the address is (host, port) for TCP or a path for a Unix socket.
 * Whoever unpickles it builds a proxy with a reference of its own
 * (incref); the authkey never travels.
 *
 * Lock order: none here (objects.c takes the manager's lock). */
#include <stdlib.h>

#include "manager/manager_internal.h"

#define MANAGERS "multiprocessing.managers"

/* The proxy class CPython's SyncManager registers for each typeid;
 * others get AutoProxy, which asks the server for the methods. */
static const struct {
    const char *typeid, *cls;
} proxy_classes[] = {
    {"dict", "DictProxy"},
    {"list", "ListProxy"},
    {"set", "SetProxy"},
    {"Lock", "AcquirerProxy"},
    {"RLock", "AcquirerProxy"},
    {"Semaphore", "AcquirerProxy"},
    {"BoundedSemaphore", "AcquirerProxy"},
    {"Condition", "ConditionProxy"},
    {"Event", "EventProxy"},
    {"Barrier", "BarrierProxy"},
    {"Namespace", "NamespaceProxy"},
    {"Value", "ValueProxy"},
    {"Array", "ArrayProxy"},
    {"Pool", "PoolProxy"},
};

#define N_PROXY_CLASSES (sizeof proxy_classes / sizeof proxy_classes[0])

static const char *
proxy_class(const char *typeid)
{
    for (size_t i = 0; i < N_PROXY_CLASSES; i++)
        if (!strcmp(proxy_classes[i].typeid, typeid))
            return proxy_classes[i].cls;
    return "AutoProxy";
}

/* A conc address as CPython writes it in a Token: ('127.0.0.1', 5000)
 * for TCP ("[::1]:5000" loses its brackets), the path for a Unix socket,
 * "\0name" for an abstract one ("@name"). */
static conc_obj *
address_obj(const char *address)
{
    if (address[0] == '@') {
        size_t n = strlen(address);
        char *s = conc__malloc(n + 1);
        if (!s)
            return NULL;
        s[0] = '\0';
        memcpy(s + 1, address + 1, n);
        conc_obj *o = conc_obj_strn(s, n);
        conc__free(s);
        return o;
    }
    const char *colon = strrchr(address, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || strchr(address, '/') || !end || *end || end == colon + 1)
        return conc_obj_str(address);
    const char *host = address;
    size_t n = (size_t)(colon - address);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    conc_obj *t = conc_obj_tuple(2);
    conc_obj *h = conc_obj_strn(host, n), *p = conc_obj_int(port);
    if (!t || !h || !p) {
        conc_obj_decref(t);
        conc_obj_decref(h);
        conc_obj_decref(p);
        return NULL;
    }
    conc_obj_tuple_set_new(t, 0, h);
    conc_obj_tuple_set_new(t, 1, p);
    return t;
}

conc_obj *
conc__mgr_token(const char *typeid, const char *address, const char *ident)
{
    conc_obj *state = conc_obj_tuple(3), *args = conc_obj_tuple(0);
    conc_obj *t = conc_obj_str(typeid), *a = address_obj(address);
    conc_obj *i = conc_obj_str(ident), *token = NULL;
    if (state && args && t && a && i) {
        conc_obj_tuple_set_new(state, 0, t);
        conc_obj_tuple_set_new(state, 1, a);
        conc_obj_tuple_set_new(state, 2, i);
        t = a = i = NULL;
        token = conc_obj_foreign(MANAGERS, "Token", args, state, 1);
    }
    conc_obj_decref(state);
    conc_obj_decref(args);
    conc_obj_decref(t);
    conc_obj_decref(a);
    conc_obj_decref(i);
    return token;
}

/* A Token's typeid and ident, borrowed from it; CONC_EPROTO for anything
 * else. */
static int
token_parse(const conc_obj *token, const char **typeid, const char **ident)
{
    const char *mod = conc_obj_foreign_module(token);
    const char *name = conc_obj_foreign_name(token);
    conc_obj *state = conc_obj_foreign_state(token);
    if (!mod || strcmp(mod, MANAGERS) || strcmp(name, "Token") ||
        conc_obj_typeof(state) != CONC_OBJ_TUPLE || conc_obj_len(state) != 3)
        return conc_fail(CONC_EPROTO, "manager: not a Token");
    *typeid = conc_obj_str_value(conc_obj_seq_get(state, 0));
    *ident = conc_obj_str_value(conc_obj_seq_get(state, 2));
    if (!*typeid || !*ident)
        return conc_fail(CONC_EPROTO, "manager: a Token without its id");
    return 0;
}

/* The Token of a RebuildProxy record, borrowed, or NULL. */
static conc_obj *
rebuild_token(const conc_obj *o)
{
    const char *mod = conc_obj_foreign_module(o);
    conc_obj *args = conc_obj_foreign_args(o);
    if (!mod || strcmp(mod, MANAGERS) ||
        strcmp(conc_obj_foreign_name(o), "RebuildProxy") ||
        conc_obj_len(args) != 4)
        return NULL;
    return conc_obj_seq_get(args, 1);
}

int
conc__mgr_proxy_from_reply(conc_manager *m, conc_obj *value, conc_proxy **out)
{
    const char *typeid, *ident;
    int rc = token_parse(conc_obj_seq_get(value, 1), &typeid, &ident);
    if (rc < 0)
        return rc;
    /* The server counted the reference this proxy now holds. */
    rc = conc__mgr_proxy_new(m, ident, typeid, out);
    if (rc < 0)
        conc__mgr_call_ident(m, "decref", ident);
    return rc;
}

int
conc_proxy_from_obj(conc_manager *m, conc_obj *o, conc_proxy **out)
{
    if (!m || !o || !out)
        return CONC_EINVAL;
    const char *typeid, *ident;
    conc_obj *token = rebuild_token(o);
    if (!token)
        return conc_fail(CONC_ETYPE, "not a proxy (RebuildProxy record)");
    int rc = token_parse(token, &typeid, &ident);
    if (rc < 0)
        return rc == CONC_EPROTO ? CONC_ETYPE : rc;
    if ((rc = conc__mgr_call_ident(m, "incref", ident)) < 0)
        return rc;
    if ((rc = conc__mgr_proxy_new(m, ident, typeid, out)) < 0)
        conc__mgr_call_ident(m, "decref", ident);
    return rc;
}

int
conc_proxy_to_obj(conc_proxy *p, conc_obj **out)
{
    if (!p || !out)
        return CONC_EINVAL;
    const char *typeid = conc_proxy_typeid(p);
    conc_manager *m = conc__mgr_proxy_manager(p);
    conc_obj *args = conc_obj_tuple(4);
    conc_obj *cls =
        conc_obj_foreign(MANAGERS, proxy_class(typeid), NULL, NULL, 0);
    conc_obj *token = conc__mgr_token(typeid, m->address, conc_proxy_ident(p));
    conc_obj *ser = conc_obj_str("pickle"), *kwds = conc_obj_dict();
    conc_obj *rec = NULL;
    if (args && cls && token && ser && kwds) {
        conc_obj_tuple_set_new(args, 0, cls);
        conc_obj_tuple_set_new(args, 1, token);
        conc_obj_tuple_set_new(args, 2, ser);
        conc_obj_tuple_set_new(args, 3, kwds);
        cls = token = ser = kwds = NULL;
        rec = conc_obj_foreign(MANAGERS, "RebuildProxy", args, NULL, 0);
    }
    conc_obj_decref(args);
    conc_obj_decref(cls);
    conc_obj_decref(token);
    conc_obj_decref(ser);
    conc_obj_decref(kwds);
    if (!rec)
        return CONC_ENOMEM;
    *out = rec;
    return 0;
}

/* Keeps alive, for good, each object of this server that a proxy inside
 * `o` stands for, as CPython's server does (id_to_local_proxy_obj): the
 * value now refers to it, whoever drops their proxies. Depth is bounded
 * by the unpickler's. */
void
conc__mgr_pin_proxies(conc_manager *m, const conc_obj *o)
{
    conc_obj_type t = conc_obj_typeof(o);
    if (t == CONC_OBJ_TUPLE || t == CONC_OBJ_LIST) {
        for (size_t i = 0; i < conc_obj_len(o); i++)
            conc__mgr_pin_proxies(m, conc_obj_seq_get(o, i));
    } else if (t == CONC_OBJ_DICT) {
        size_t pos = 0;
        conc_obj *k, *v;
        while (conc_obj_next(o, &pos, &k, &v) == 1)
            conc__mgr_pin_proxies(m, v);
    } else if (t == CONC_OBJ_FOREIGN) {
        const char *typeid, *ident;
        conc_obj *token = rebuild_token(o);
        if (token && token_parse(token, &typeid, &ident) == 0)
            conc__mgr_obj_pin(m, ident);
    }
}

const char *
conc__mgr_rebuild_ident(const conc_obj *o)
{
    const char *typeid, *ident;
    conc_obj *token = rebuild_token(o);
    return token && token_parse(token, &typeid, &ident) == 0 ? ident : NULL;
}
