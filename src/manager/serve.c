/* Serving one client connection (a thread per connection): CPython's
 * requests (ident, method, args, kwds), the server's public functions
 * (create, incref, decref, accept_connection, dummy, shutdown, debug_info,
 * number_of_objects, get_methods) and method calls on objects, answered
 * with '#RETURN', '#ERROR' or '#TRACEBACK' as Server.serve_client does.
 * A client may send any number of requests on one connection; CPython's
 * clients send one, except after accept_connection.
 *
 * An idle connection's thread sleeps in poll on its socket and the
 * manager's stop descriptor (after a brief spin while requests come
 * close together, ipc/recv_spin.c): it costs no wake-ups, and a stack of
 * CONC__MGR_STACK of which it touches a few pages, so a server holds
 * thousands of idle clients.
 *
 * Lock order: the manager's lock only, taken inside objects.c. */
#include <stdio.h>

#include "ipc/conn_wait.h"
#include "manager/manager_internal.h"
#include "unix/platform.h"

struct conn_ctx {
    conc_manager *m;
    conc_conn *c;
};

/* ('#TRACEBACK', text), as CPython reports a failure that is not an
 * exception of the method itself. */
static conc_obj *
traceback(const char *what, int code)
{
    return conc__mgr_traceback(what, code, NULL);
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
    size_t n = type->n_proxy_methods;
    for (size_t i = 0; i < type->n_methods; i++)
        n += type->methods[i].name[0] != '#';
    conc_obj *t = conc_obj_list();
    for (size_t i = 0; t && i < type->n_methods + type->n_proxy_methods; i++) {
        const char *s = i < type->n_methods
                            ? type->methods[i].name
                            : type->proxy_methods[i - type->n_methods].name;
        if (s[0] != '#' && conc_obj_list_append_new(t, conc_obj_str(s)) < 0) {
            conc_obj_decref(t);
            return NULL;
        }
    }
    conc_obj *tuple = t ? conc_obj_tuple(n) : NULL;
    for (size_t i = 0; tuple && i < n; i++)
        conc_obj_tuple_set_new(tuple, i,
                               conc_obj_incref(conc_obj_seq_get(t, i)));
    conc_obj_decref(t);
    return tuple;
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
        conc__mgr_stop_signal(m);
        return 0;
    }
    return conc_fail(CONC_EINVAL, "unknown function %s", name);
}

/* A method listed in method_to_typeid: its object entered in the table
 * as the typeid's, and ('#PROXY', (exposed, Token)) for the reply. */
static conc_obj *
call_object(conc_manager *m, struct conc__mgr_obj *o,
            const conc_manager_proxy_method *meth, conc_obj *args,
            conc_obj *kwds)
{
    struct conc__mgr_typeid t;
    int rc = conc__mgr_type_find(m, meth->type_name, &t);
    void *obj = NULL;
    int borrowed = 0;
    if (rc == 0)
        rc = meth->fn(o->self, args, kwds, &obj, &borrowed);
    struct conc__mgr_obj *r = NULL;
    if (rc == 0) {
        t.shared = borrowed != 0;
        rc = conc__mgr_obj_adopt(m, &t, obj, &r);
    }
    if (rc < 0)
        return reply(meth->name, rc, NULL);
    conc_obj *value = conc_obj_tuple(2), *names = exposed(r->type);
    conc_obj *token = conc__mgr_token(meth->type_name, m->address, r->ident);
    if (!value || !names || !token) {
        conc_obj_decref(value);
        conc_obj_decref(names);
        conc_obj_decref(token);
        conc__mgr_obj_put(m, r);
        return NULL;
    }
    conc_obj_tuple_set_new(value, 0, names);
    conc_obj_tuple_set_new(value, 1, token);
    return conc__mgr_pair("#PROXY", value); /* r's reference: the client's */
}

static const conc_manager_method *
find_method(const conc_manager_type *type, const char *name)
{
    for (size_t i = 0; i < type->n_methods; i++)
        if (!strcmp(type->methods[i].name, name))
            return &type->methods[i];
    return NULL;
}

/* CPython's server answers __repr__ and __str__ for every object (its
 * fallback_mapping), which is what print(proxy) asks for: here the repr
 * of the object's value where its type gives one ('#GETVALUE'), its
 * identity otherwise. */
static conc_obj *
repr_fallback(struct conc__mgr_obj *o, const char *name)
{
    const conc_manager_method *get = find_method(o->type, "#GETVALUE");
    conc_obj *args = conc_obj_tuple(0), *kwds = conc_obj_dict();
    conc_obj *value = NULL;
    conc_buf text = CONC_BUF_INIT;
    int rc = args && kwds ? 0 : CONC_ENOMEM;
    if (rc == 0 && get)
        rc = get->fn(o->self, args, kwds, &value);
    if (rc == 0)
        rc = value ? conc_obj_repr(value, &text)
                   : conc_buf_appendf(&text, "<object at 0x%s>", o->ident);
    conc_obj *str =
        rc == 0 ? conc_obj_strn((const char *)text.data, text.len) : NULL;
    conc_obj_decref(args);
    conc_obj_decref(kwds);
    conc_buf_free(&text);
    if (rc == 0 && !str)
        rc = CONC_ENOMEM;
    if (rc == 0) {
        conc_obj_decref(value);
        return reply(name, 0, str);
    }
    return reply(name, rc, value); /* value: the exception's arguments */
}

static int
is_repr(const char *name)
{
    return !strcmp(name, "__repr__") || !strcmp(name, "__str__");
}

static conc_obj *
call_method(conc_manager *m, const char *ident, const char *name,
            conc_obj *args, conc_obj *kwds)
{
    struct conc__mgr_obj *o = conc__mgr_obj_get(m, ident);
    if (!o) /* a KeyError in CPython's server, outside the method */
        return traceback(name, conc_fail(CONC_EKEY, "%s", ident));
    const conc_manager_type *type = o->type;
    const conc_manager_proxy_method *pmeth = NULL;
    const conc_manager_method *meth = find_method(type, name);
    for (size_t i = 0; i < type->n_proxy_methods && !meth && !pmeth; i++)
        if (!strcmp(type->proxy_methods[i].name, name))
            pmeth = &type->proxy_methods[i];
    conc_obj *rep, *result = NULL;
    conc_clear_failure();
    if (pmeth) {
        rep = call_object(m, o, pmeth, args, kwds);
    } else if (meth) {
        int rc = meth->fn(o->self, args, kwds, &result);
        rep = reply(name, rc, result);
    } else if (is_repr(name)) {
        rep = repr_fallback(o, name);
    } else { /* CPython's server ends this traceback with KeyError */
        conc_fail(CONC_EKEY, "method '%s' of object %s is not in exposed", name,
                  ident);
        conc_obj *n = conc_obj_str(name);
        rep =
            conc__mgr_traceback(name, CONC_EKEY, n ? conc__mgr_args1(n) : NULL);
        conc_obj_decref(n);
    }
    conc__mgr_obj_put(m, o);
    return rep;
}

conc_obj *
conc__mgr_handle(conc_manager *m, conc_obj *req)
{
    conc_obj *id = conc_obj_seq_get(req, 0);
    const char *name = conc_obj_str_value(conc_obj_seq_get(req, 1));
    conc_obj *args = conc_obj_seq_get(req, 2);
    conc_obj *kwds = conc_obj_seq_get(req, 3);
    if (conc_obj_typeof(req) != CONC_OBJ_TUPLE || conc_obj_len(req) != 4 ||
        !name || conc_obj_typeof(args) != CONC_OBJ_TUPLE ||
        conc_obj_typeof(kwds) != CONC_OBJ_DICT)
        return traceback("not a request", CONC_EPROTO);
    /* A proxy sent inside the arguments keeps its object alive. */
    conc__mgr_pin_proxies(m, args);
    conc__mgr_pin_proxies(m, kwds);
    if (conc_obj_str_value(id))
        return call_method(m, conc_obj_str_value(id), name, args, kwds);
    conc_obj *result = NULL;
    int rc = conc_obj_typeof(id) == CONC_OBJ_NONE
                 ? call_function(m, name, args, kwds, &result)
                 : conc_fail(CONC_EPROTO, "ident is not a str");
    /* A server function's exception, create's among them, travels as a
     * traceback, as in CPython's Server. */
    return rc < 0 ? conc__mgr_traceback(name, rc, result)
                  : reply(name, rc, result);
}

/* Waits for the next request, or the stop: 0 when a message may be
 * there, CONC_ECLOSED to leave. The wait spins briefly first, by the
 * connection's adaptive budget (ipc/recv_spin.c): a C client's next
 * request often comes within microseconds. An idle connection soon
 * stops spinning and then costs no wake-ups. */
static int
wait_request(conc_manager *m, conc_conn *c)
{
    int rc = conc__conn_wait_recv(c, m->stopfd, CONC__FOREVER);
    if (rc < 0)
        return rc;
    return rc == CONC__CONN_WAIT_FD ? CONC_ECLOSED : 0;
}

static int
serve_loop(void *arg)
{
    struct conc__mgr_conn *ctx = arg;
    conc_manager *m = ctx->m;
    int rc = conc__mgr_greet(ctx);
    if (rc == CONC__MGR_EREFUSED)
        conc__mgr_refuse(ctx); /* then leaves, with rc < 0 */
    struct conc__mgr_watch watch;
    conc__mgr_watch_start(&watch, ctx->c);
    while (rc == 0 && !m->stopping && wait_request(m, ctx->c) == 0) {
        conc_obj *req;
        /* A message that started to arrive gets a bound for the rest; a
         * part is kept across the timeout. */
        rc = conc__mgr_recv_request(ctx->c, CONC__MGR_HANDSHAKE_S, &req);
        if (rc == CONC_ETIMEDOUT) {
            rc = 0;
            continue;
        }
        if (rc < 0)
            break; /* the client left, or broke the framing */
        /* A message conc does not unpickle gets its traceback (1). */
        conc_obj *rep =
            rc == 1 ? conc_obj_incref(req) : conc__mgr_handle(m, req);
        conc__mgr_watch_reset(); /* a method may have left it open */
        rc = 0; /* the connection goes on after that traceback too */
        conc_obj_decref(req);
        if (!rep || conc__mgr_send(ctx->c, rep) < 0) {
            conc_obj_decref(rep);
            break;
        }
        conc_obj_decref(rep);
    }
    conc__mgr_client_leave(); /* what it held goes back */
    conc__mgr_watch_stop(&watch);
    conc_conn_free(ctx->c);
    ctx->c = NULL;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->done = 1;
    conc__mgr_greet_leave_locked(m, ctx); /* the reap fd wakes the acceptor */
    conc__mgr_admit_leave_locked(m, ctx);
    conc_cond_notify_all(m->cond);
    conc_cond_release(m->cond);
    conc__eventfd_signal(m->reapfd); /* the acceptor joins this thread */
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
    conc__mgr_greet_enter(m, ctx);
    atomic_fetch_add_explicit(&m->accepted, 1, memory_order_relaxed);
    conc_thread_opts o = {.name = "conc-manager-conn",
                          .daemon = CONC_DAEMON_YES,
                          .stack_size = CONC__MGR_STACK,
                          .parallel_start = 1};
    conc_thread *t;
    int rc = conc_thread_start(serve_loop, ctx, &o, &t);
    if (rc < 0) {
        conc_cond_acquire(m->cond, CONC_FOREVER);
        conc__mgr_greet_leave_locked(m, ctx);
        conc__mgr_admit_leave_locked(m, ctx);
        conc_cond_release(m->cond);
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

size_t
conc__mgr_conn_count(conc_manager *m)
{
    size_t n = 0;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    for (struct conc__mgr_conn *ctx = m->conns; ctx; ctx = ctx->next)
        n += !ctx->done;
    conc_cond_release(m->cond);
    return n;
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
