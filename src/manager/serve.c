/* Serving one client connection (a thread per connection): CPython's
 * requests (ident, method, args, kwds), the server's public functions
 * (create, incref, decref, accept_connection, dummy, shutdown, debug_info,
 * number_of_objects, get_methods) and method calls on objects, answered
 * with '#RETURN', '#ERROR' or '#TRACEBACK' as Server.serve_client does.
 * A client may send any number of requests on one connection; CPython's
 * clients send one, except after accept_connection.
 *
 * Lock order: the manager's lock only, taken inside objects.c. */
#include <stdio.h>

#include "manager/manager_internal.h"

struct conn_ctx {
    conc_manager *m;
    conc_conn *c;
};

/* ('#TRACEBACK', text), as CPython reports a failure that is not an
 * exception of the method itself. */
static conc_obj *
traceback(const char *what, int code)
{
    char text[512];
    const char *msg = conc_failure_message();
    snprintf(text, sizeof text, "conc manager: %s: %s%s%s", what,
             conc_err_name(code), msg[0] ? ": " : "", msg);
    return conc__mgr_pair("#TRACEBACK", conc_obj_str(text));
}

/* The reply for a method's or function's result: the value, the exception
 * its code stands for, or a traceback. Steals result. */
static conc_obj *
reply(const char *what, int rc, conc_obj *result)
{
    if (rc == 0)
        return conc__mgr_pair("#RETURN", result);
    conc_obj *exc = conc__mgr_exception(rc, result);
    return exc ? conc__mgr_pair("#ERROR", exc) : traceback(what, rc);
}

/* The names of a type's methods, as a tuple (CPython's exposed), leaving
 * out the fallbacks such as '#GETVALUE', which every object answers. */
static conc_obj *
exposed(const conc_manager_type *type)
{
    size_t n = 0;
    for (size_t i = 0; i < type->n_methods; i++)
        n += type->methods[i].name[0] != '#';
    conc_obj *t = conc_obj_tuple(n);
    for (size_t i = 0, j = 0; t && i < type->n_methods; i++) {
        if (type->methods[i].name[0] == '#')
            continue;
        conc_obj *name = conc_obj_str(type->methods[i].name);
        if (!name) {
            conc_obj_decref(t);
            return NULL;
        }
        conc_obj_tuple_set_new(t, j++, name);
    }
    return t;
}

/* create(typeid, *args, **kwds) -> (ident, exposed). */
static int
fn_create(conc_manager *m, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    const char *typeid = conc_obj_str_value(conc_obj_seq_get(args, 0));
    if (!typeid)
        return conc_fail(CONC_ETYPE, "create() needs a typeid");
    size_t n = conc_obj_len(args) - 1;
    conc_obj *rest = conc_obj_tuple(n);
    if (!rest)
        return CONC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        conc_obj_tuple_set_new(rest, i,
                               conc_obj_incref(conc_obj_seq_get(args, i + 1)));
    struct conc__mgr_obj *o;
    int rc = conc__mgr_obj_create(m, typeid, rest, kwds, &o);
    conc_obj_decref(rest);
    if (rc < 0)
        return rc;
    conc_obj *t = conc_obj_tuple(2);
    conc_obj *id = conc_obj_str(o->ident);
    conc_obj *names = exposed(o->type);
    if (!t || !id || !names) {
        conc_obj_decref(t);
        conc_obj_decref(id);
        conc_obj_decref(names);
        conc__mgr_obj_put(m, o);
        return CONC_ENOMEM;
    }
    conc_obj_tuple_set_new(t, 0, id);
    conc_obj_tuple_set_new(t, 1, names);
    *result = t;
    return 0;
}

/* incref, decref and get_methods: functions of one ident. */
static int
fn_ident(conc_manager *m, const char *name, conc_obj *args, conc_obj **result)
{
    const char *ident = conc_obj_str_value(conc_obj_seq_get(args, 0));
    struct conc__mgr_obj *o = ident ? conc__mgr_obj_get(m, ident) : NULL;
    if (!o) {
        *result = conc_obj_tuple(1);
        if (*result && ident)
            conc_obj_tuple_set_new(*result, 0, conc_obj_str(ident));
        return conc_fail(CONC_EKEY, "no object %s", ident ? ident : "");
    }
    if (!strcmp(name, "get_methods"))
        *result = exposed(o->type);
    if (!strcmp(name, "decref"))
        conc__mgr_obj_put(m, o); /* the client's reference */
    if (strcmp(name, "incref"))
        conc__mgr_obj_put(m, o); /* the lookup's */
    return 0;
}

/* debug_info: one line per object, as Server.debug_info writes them. */
static int
fn_debug_info(conc_manager *m, conc_obj **result)
{
    conc_buf b = CONC_BUF_INIT;
    int rc = 0;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    for (size_t i = 0; i < m->n_objs && rc == 0; i++)
        rc = conc_buf_appendf(&b, "  %s:       refcount=%ld\n",
                              m->objs[i]->ident, m->objs[i]->refs);
    conc_cond_release(m->cond);
    if (rc == 0)
        *result = conc_obj_strn(b.len ? (const char *)b.data : "", b.len);
    conc_buf_free(&b);
    return rc < 0 ? rc : *result ? 0 : CONC_ENOMEM;
}

static int
call_function(conc_manager *m, const char *name, conc_obj *args, conc_obj *kwds,
              conc_obj **result)
{
    if (!strcmp(name, "dummy") || !strcmp(name, "accept_connection"))
        return 0;
    if (!strcmp(name, "create"))
        return fn_create(m, args, kwds, result);
    if (!strcmp(name, "incref") || !strcmp(name, "decref") ||
        !strcmp(name, "get_methods"))
        return fn_ident(m, name, args, result);
    if (!strcmp(name, "number_of_objects")) {
        *result = conc_obj_int((int64_t)conc__mgr_obj_count(m));
        return *result ? 0 : CONC_ENOMEM;
    }
    if (!strcmp(name, "debug_info"))
        return fn_debug_info(m, result);
    if (!strcmp(name, "shutdown")) {
        m->stopping = 1;
        return 0;
    }
    return conc_fail(CONC_EINVAL, "unknown function %s", name);
}

static int
call_method(conc_manager *m, const char *ident, const char *name,
            conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct conc__mgr_obj *o = conc__mgr_obj_get(m, ident);
    if (!o)
        return conc_fail(CONC_EINVAL, "no object %s", ident);
    int rc = conc_fail(CONC_EINVAL, "method %s is not exposed", name);
    for (size_t i = 0; i < o->type->n_methods; i++) {
        if (!strcmp(o->type->methods[i].name, name)) {
            conc_clear_failure();
            rc = o->type->methods[i].fn(o->self, args, kwds, result);
            break;
        }
    }
    conc__mgr_obj_put(m, o);
    return rc;
}

/* Answers one request; CONC_EPROTO for one that is not the protocol. */
static conc_obj *
handle(conc_manager *m, conc_obj *req)
{
    conc_obj *id = conc_obj_seq_get(req, 0);
    const char *name = conc_obj_str_value(conc_obj_seq_get(req, 1));
    conc_obj *args = conc_obj_seq_get(req, 2);
    conc_obj *kwds = conc_obj_seq_get(req, 3);
    if (conc_obj_typeof(req) != CONC_OBJ_TUPLE || conc_obj_len(req) != 4 ||
        !name || conc_obj_typeof(args) != CONC_OBJ_TUPLE ||
        conc_obj_typeof(kwds) != CONC_OBJ_DICT)
        return traceback("not a request", CONC_EPROTO);
    conc_obj *result = NULL;
    int rc;
    if (conc_obj_typeof(id) == CONC_OBJ_NONE)
        rc = call_function(m, name, args, kwds, &result);
    else if (conc_obj_str_value(id))
        rc = call_method(m, conc_obj_str_value(id), name, args, kwds, &result);
    else
        rc = conc_fail(CONC_EPROTO, "ident is not a str");
    return reply(name, rc, result);
}

static int
serve_loop(void *arg)
{
    struct conc__mgr_conn *ctx = arg;
    conc_manager *m = ctx->m;
    while (!m->stopping) {
        conc_obj *req;
        int rc = conc__mgr_recv(ctx->c, CONC__MGR_POLL_S, 0, &req);
        if (rc == CONC_ETIMEDOUT)
            continue;
        if (rc < 0)
            break; /* the client left, or sent what is not a pickle */
        conc_obj *rep = handle(m, req);
        conc_obj_decref(req);
        if (!rep || conc__mgr_send(ctx->c, rep) < 0) {
            conc_obj_decref(rep);
            break;
        }
        conc_obj_decref(rep);
    }
    conc__mgr_client_leave(); /* what it held goes back */
    conc_conn_free(ctx->c);
    ctx->c = NULL;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->done = 1;
    conc_cond_notify_all(m->cond);
    conc_cond_release(m->cond);
    return 0;
}

int
conc__mgr_serve_conn(conc_manager *m, conc_conn *c)
{
    struct conc__mgr_conn *ctx = conc__calloc(1, sizeof *ctx);
    if (!ctx) {
        conc_conn_free(c);
        return CONC_ENOMEM;
    }
    ctx->m = m;
    ctx->c = c;
    conc_thread_opts o = {.name = "conc-manager-conn",
                          .daemon = CONC_DAEMON_YES,
                          .parallel_start = 1};
    conc_thread *t;
    int rc = conc_thread_start(serve_loop, ctx, &o, &t);
    if (rc < 0) {
        conc_conn_free(c);
        conc__free(ctx);
        return rc;
    }
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->t = t;
    ctx->next = m->conns;
    m->conns = ctx;
    conc_cond_release(m->cond);
    return 0;
}

/* Takes the first listed connection that is done (any, with `all`,
 * waiting for one to be done) off the list, or NULL. */
static struct conc__mgr_conn *
take_done(conc_manager *m, int all)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    struct conc__mgr_conn **pp = &m->conns;
    while (*pp && !(*pp)->done && !all)
        pp = &(*pp)->next;
    struct conc__mgr_conn *ctx = *pp;
    if (ctx)
        *pp = ctx->next;
    conc_cond_release(m->cond);
    return ctx;
}

void
conc__mgr_reap_conns(conc_manager *m, int all)
{
    struct conc__mgr_conn *ctx;
    while ((ctx = take_done(m, all)) != NULL) {
        conc_thread_join(ctx->t, CONC_FOREVER, NULL);
        conc_thread_free(ctx->t);
        conc__free(ctx);
    }
}
