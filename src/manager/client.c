/* The client side of managers (conc/manager.h): BaseManager.connect,
 * create, proxies and their reference counting, against a conc or a
 * CPython server. Server functions each take a connection of their own,
 * as CPython's dispatch does.
 *
 * Proxies live in proxy.c.
 *
 * A server that went away (killed, or shut down) gives CONC_ECLOSED:
 * its connections end (EOF or a reset) and new ones are refused, both
 * at once, so no call waits for a timeout to learn it.
 *
 * Lock order: no lock here. */
#include <errno.h>

#include "manager/manager_internal.h"

int
conc__mgr_open_conn(conc_manager *m, conc_conn **out)
{
    /* A server's own manager reaches it over its address too; nobody
     * would answer before conc_manager_start or after a stop. */
    if (m->server && !m->started)
        return conc_fail(CONC_ESTATE, "the manager is not started");
    if (m->server && m->stopping)
        return conc_fail(CONC_ECLOSED, "the manager is shut down");
    conc_client_opts o = {.authkey = m->authkey,
                          .authkey_len = m->authkey ? strlen(m->authkey) : 0};
    int rc = conc_client_connect(m->address, &o, CONC__MGR_CONNECT_S, out);
    /* Once a manager has answered, a refused connection means it is gone:
     * nothing listens at its address any more. */
    if (m->answered && (rc == -ECONNREFUSED || rc == -ENOENT ||
                        rc == -ECONNRESET || rc == CONC_EPIPE))
        return conc_fail(CONC_ECLOSED, "the manager at %s went away",
                         m->address);
    return rc;
}

/* The value of a reply (1 for a '#PROXY' one, whose value is
 * (exposed, token)), or the code of its exception. */
static int
parse_reply(conc_obj *rep, conc_obj **result)
{
    const char *kind = conc_obj_str_value(conc_obj_seq_get(rep, 0));
    conc_obj *value = conc_obj_seq_get(rep, 1);
    if (conc_obj_typeof(rep) != CONC_OBJ_TUPLE || conc_obj_len(rep) != 2 ||
        !kind)
        return conc_fail(CONC_EPROTO, "manager: a reply that is not one");
    if (!strcmp(kind, "#RETURN") || !strcmp(kind, "#PROXY")) {
        *result = conc_obj_incref(value);
        return kind[1] == 'P';
    }
    if (!strcmp(kind, "#ERROR"))
        return conc__mgr_exception_code(value);
    if (!strcmp(kind, "#TRACEBACK") && conc_obj_str_value(value))
        return conc__mgr_traceback_code(conc_obj_str_value(value));
    if (!strcmp(kind, "#TRACEBACK") || !strcmp(kind, "#UNSERIALIZABLE"))
        return conc_fail(CONC_ETASK, "%s",
                         conc_obj_str_value(value) ? conc_obj_str_value(value)
                                                   : kind);
    return conc_fail(CONC_EPROTO, "manager: unknown reply %s", kind);
}

/* The request tuple (ident, name, args, kwds); NULL args and kwds stand
 * for () and {}. */
static conc_obj *
request_tuple(const char *ident, const char *name, conc_obj *args,
              conc_obj *kwds)
{
    conc_obj *req = conc_obj_tuple(4);
    conc_obj *id = ident ? conc_obj_str(ident) : conc_obj_none();
    conc_obj *meth = conc_obj_str(name);
    conc_obj *a = args ? conc_obj_incref(args) : conc_obj_tuple(0);
    conc_obj *k = kwds ? conc_obj_incref(kwds) : conc_obj_dict();
    if (!req || !id || !meth || !a || !k) {
        conc_obj_decref(req);
        conc_obj_decref(id);
        conc_obj_decref(meth);
        conc_obj_decref(a);
        conc_obj_decref(k);
        return NULL;
    }
    conc_obj_tuple_set_new(req, 0, id);
    conc_obj_tuple_set_new(req, 1, meth);
    conc_obj_tuple_set_new(req, 2, a);
    conc_obj_tuple_set_new(req, 3, k);
    return req;
}

int
conc__mgr_request(conc_conn *c, const char *ident, const char *name,
                  conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    conc_obj *req = request_tuple(ident, name, args, kwds);
    if (!req)
        return CONC_ENOMEM;
    int rc = conc__mgr_send(c, req);
    conc_obj_decref(req);
    conc_obj *rep = NULL;
    if (rc == 0)
        rc = conc__mgr_recv(c, CONC_FOREVER, 1, &rep);
    if (rc == 0)
        rc = parse_reply(rep, result);
    conc_obj_decref(rep);
    if (rc == CONC_EPIPE || rc == -ECONNRESET || rc == CONC_ECLOSED)
        return conc_fail(CONC_ECLOSED, "the manager closed the connection");
    return rc;
}

/* A server function on a connection of its own. */
static int
call_server(conc_manager *m, const char *name, conc_obj *args,
            conc_obj **result)
{
    conc_conn *c;
    int rc = conc__mgr_open_conn(m, &c);
    if (rc < 0)
        return rc;
    conc_obj *r = NULL;
    rc = conc__mgr_request(c, NULL, name, args, NULL, &r);
    conc_conn_free(c);
    if (rc == 1)
        rc = conc_fail(CONC_EPROTO, "manager: %s returned a proxy", name);
    if (result && rc == 0)
        *result = r;
    else
        conc_obj_decref(r);
    return rc;
}

int
conc__mgr_call_ident(conc_manager *m, const char *name, const char *ident)
{
    conc_obj *args = conc_obj_tuple(1);
    conc_obj *s = conc_obj_str(ident);
    if (!args || !s) {
        conc_obj_decref(args);
        conc_obj_decref(s);
        return CONC_ENOMEM;
    }
    conc_obj_tuple_set_new(args, 0, s);
    int rc = call_server(m, name, args, NULL);
    conc_obj_decref(args);
    return rc;
}

int
conc_manager_connect(const char *address, const char *authkey,
                     conc_manager **out)
{
    if (!address || !out)
        return CONC_EINVAL;
    conc_manager *m = conc__calloc(1, sizeof *m);
    if (!m)
        return CONC_ENOMEM;
    int rc = CONC_ENOMEM;
    m->stopfd = m->reapfd = -1;
    m->address = conc__strdup(address);
    if (!m->address || (authkey && !(m->authkey = conc__strdup(authkey))))
        goto fail;
    if ((rc = call_server(m, "dummy", NULL, NULL)) < 0)
        goto fail;
    m->answered = 1;
    *out = m;
    return 0;
fail:
    conc_manager_free(m);
    return rc;
}

int
conc__mgr_client_shutdown(conc_manager *m)
{
    return call_server(m, "shutdown", NULL, NULL);
}

/* The args of create: (typeid, *args). */
static conc_obj *
create_args(const char *typeid, conc_obj *args)
{
    size_t n = conc_obj_len(args);
    conc_obj *t = conc_obj_tuple(n + 1);
    conc_obj *name = conc_obj_str(typeid);
    if (!t || !name) {
        conc_obj_decref(t);
        conc_obj_decref(name);
        return NULL;
    }
    conc_obj_tuple_set_new(t, 0, name);
    for (size_t i = 0; i < n; i++)
        conc_obj_tuple_set_new(t, i + 1,
                               conc_obj_incref(conc_obj_seq_get(args, i)));
    return t;
}

int
conc_manager_create(conc_manager *m, const char *typeid, conc_obj *args,
                    conc_proxy **out)
{
    if (!m || !typeid || !out ||
        (args && conc_obj_typeof(args) != CONC_OBJ_TUPLE))
        return CONC_EINVAL;
    conc_obj *cargs = create_args(typeid, args), *r = NULL;
    if (!cargs)
        return CONC_ENOMEM;
    int rc = call_server(m, "create", cargs, &r);
    conc_obj_decref(cargs);
    if (rc < 0)
        return rc == CONC_EKEY
                   ? conc_fail(CONC_ETASK, "unknown typeid %s", typeid)
                   : rc;
    const char *ident = conc_obj_str_value(conc_obj_seq_get(r, 0));
    rc = ident ? conc__mgr_proxy_new(m, ident, typeid, out)
               : conc_fail(CONC_EPROTO, "manager: create's reply has no id");
    if (rc < 0 && ident)
        conc__mgr_call_ident(m, "decref", ident);
    conc_obj_decref(r);
    return rc;
}
