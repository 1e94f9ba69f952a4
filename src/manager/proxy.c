/* Proxies (conc/manager.h): method calls on a server's object over
 * connections of their own, and the proxy's reference to the object.
 *
 * A proxy keeps a connection per calling thread, as CPython's proxies do
 * (BaseProxy._tls): each is opened with accept_connection on the thread's
 * first call and kept for its later ones, so a thread's calls reach the
 * same server thread (an RLock acquired by one call is released by the
 * next), and a call blocked in the server (a queue's get) holds up no
 * other thread's calls. A thread whose connection is busy (one coroutine's
 * call in flight while another coroutine of the thread calls) gets one
 * more. A thread's connections close when the thread ends, as CPython's
 * do (a thread-local mark whose destructor closes them), so the server
 * keeps no connection and no serving thread for threads that are gone;
 * conc_proxy_free closes the others. conc_local_free of the marks waits
 * for the destructors of threads ending meanwhile, so a thread's end and
 * conc_proxy_free never both touch one connection.
 *
 * Lock order: a proxy's lock only, never held across a round trip nor
 * around the thread-local calls (which take the locals' own lock). */
#include "manager/manager_internal.h"
#include "unix/tid.h"

/* One connection of a proxy: the thread it serves and whether a call is
 * on it now (both guarded by the proxy's lock; conn is used only by the
 * thread that marked it busy). */
struct proxy_conn {
    uint32_t tid;
    int busy;
    conc_conn *conn;
    struct proxy_conn *next;
};

struct conc_proxy {
    conc_manager *m; /* borrowed: the manager outlives its proxies */
    char *ident;
    char *typeid;    /* the object's typeid, "" when not known */
    conc_lock *lock; /* guards conns and each entry's tid and busy */
    struct proxy_conn *conns;
    conc_local *marks; /* a struct thread_mark for each thread that calls */
};

/* A calling thread's mark: its destructor closes the thread's
 * connections when the thread ends. */
struct thread_mark {
    conc_proxy *p;
    uint32_t tid;
};

/* The name a proxy's connection gives in accept_connection, as CPython's
 * 'MainProcess|Thread-1'. */
#define CONN_NAME "conc"

/* Closes the connections of the thread `tid` (idle ones: a thread that
 * ended has no call in flight). */
static void
close_thread(conc_proxy *p, uint32_t tid)
{
    struct proxy_conn *gone = NULL;
    conc_lock_acquire(p->lock, CONC_FOREVER);
    struct proxy_conn **pp = &p->conns;
    while (*pp) {
        struct proxy_conn *e = *pp;
        if (e->tid == tid && !e->busy) {
            *pp = e->next;
            e->next = gone;
            gone = e;
        } else {
            pp = &e->next;
        }
    }
    conc_lock_release(p->lock);
    while (gone) {
        struct proxy_conn *e = gone;
        gone = e->next;
        conc_conn_free(e->conn);
        conc__free(e);
    }
}

/* The marks' destructor: at the end of the marked thread, or in
 * conc_proxy_free. */
static void
drop_mark(void *value)
{
    struct thread_mark *mark = value;
    close_thread(mark->p, mark->tid);
    conc__free(mark);
}

/* Marks the calling thread, once, so that its end closes its
 * connections. Out of memory it stays unmarked: its connections then
 * close with the proxy. */
static void
mark_thread(conc_proxy *p, uint32_t tid)
{
    if (conc_local_get(p->marks))
        return;
    struct thread_mark *mark = conc__malloc(sizeof *mark);
    if (!mark)
        return;
    *mark = (struct thread_mark){p, tid};
    if (conc_local_set(p->marks, mark) < 0)
        conc__free(mark);
}

int
conc__mgr_proxy_new(conc_manager *m, const char *ident, const char *typeid,
                    conc_proxy **out)
{
    conc_proxy *p = conc__calloc(1, sizeof *p);
    if (!p || !(p->ident = conc__strdup(ident)) ||
        !(p->typeid = conc__strdup(typeid ? typeid : "")) ||
        conc_lock_new(NULL, &p->lock) < 0 ||
        conc_local_new(drop_mark, &p->marks) < 0) {
        if (p) {
            conc_lock_free(p->lock);
            conc__free(p->ident);
            conc__free(p->typeid);
        }
        conc__free(p);
        return CONC_ENOMEM;
    }
    p->m = m;
    *out = p;
    return 0;
}

/* Opens a connection for method calls: accept_connection, then calls. */
static int
connect_conn(conc_proxy *p, conc_conn **out)
{
    conc_obj *name = conc_obj_str(CONN_NAME), *args = conc_obj_tuple(1);
    if (!name || !args) {
        conc_obj_decref(name);
        conc_obj_decref(args);
        return CONC_ENOMEM;
    }
    conc_obj_tuple_set_new(args, 0, name);
    conc_obj *r = NULL;
    int rc = conc__mgr_open_conn(p->m, out);
    if (rc == 0)
        rc = conc__mgr_request(*out, NULL, "accept_connection", args, NULL, &r);
    conc_obj_decref(args);
    conc_obj_decref(r);
    if (rc != 0 && *out) {
        conc_conn_free(*out);
        *out = NULL;
    }
    return rc == 1 ? CONC_EPROTO : rc;
}

/* The calling thread's idle connection, marked busy, or a new entry
 * (conn NULL, busy) for it to open. */
static struct proxy_conn *
take_conn(conc_proxy *p)
{
    uint32_t tid = conc__tid();
    conc_lock_acquire(p->lock, CONC_FOREVER);
    struct proxy_conn *e = p->conns;
    while (e && (e->tid != tid || e->busy))
        e = e->next;
    if (!e && (e = conc__calloc(1, sizeof *e)) != NULL) {
        e->tid = tid;
        e->next = p->conns;
        p->conns = e;
    }
    if (e)
        e->busy = 1;
    conc_lock_release(p->lock);
    if (e)
        mark_thread(p, tid);
    return e;
}

/* Gives a connection back; one that failed is closed, so that the
 * thread's next call opens a new one (a request cut off mid-way leaves
 * the connection out of step). */
static void
put_conn(conc_proxy *p, struct proxy_conn *e, int failed)
{
    if (failed) {
        conc_conn_free(e->conn);
        e->conn = NULL;
    }
    conc_lock_acquire(p->lock, CONC_FOREVER);
    e->busy = 0;
    conc_lock_release(p->lock);
}

/* Whether a call's outcome leaves its connection in step: a reply came
 * (a value, or an exception the method raised). Anything else (the
 * server gone, a cancelled coroutine, a reply that is not one) may have
 * cut a message in two. */
static int
in_step(int rc)
{
    switch (rc) {
    case 0:
    case 1:
    case CONC_EKEY:
    case CONC_EINDEX:
    case CONC_EEMPTY:
    case CONC_EFULL:
    case CONC_ETYPE:
    case CONC_EVALUE:
    case CONC_ETASK:
        return 1;
    default:
        return 0;
    }
}

/* One method call on the calling thread's connection: 0, 1 with
 * (exposed, token) in *result for a '#PROXY' reply, or a code. */
static int
call(conc_proxy *p, const char *method, conc_obj *args, conc_obj *kwds,
     conc_obj **result)
{
    struct proxy_conn *e = take_conn(p);
    if (!e)
        return CONC_ENOMEM;
    int rc = e->conn ? 0 : connect_conn(p, &e->conn);
    if (rc == 0)
        rc = conc__mgr_request(e->conn, p->ident, method, args, kwds, result);
    put_conn(p, e, !in_step(rc));
    return rc;
}

static int
bad_call_args(conc_proxy *p, const char *method, conc_obj *args, conc_obj *kwds)
{
    return !p || !method || (args && conc_obj_typeof(args) != CONC_OBJ_TUPLE) ||
           (kwds && conc_obj_typeof(kwds) != CONC_OBJ_DICT);
}

int
conc_proxy_call(conc_proxy *p, const char *method, conc_obj *args,
                conc_obj *kwds, conc_obj **result)
{
    if (bad_call_args(p, method, args, kwds) || !result)
        return CONC_EINVAL;
    conc_obj *r = NULL;
    int rc = call(p, method, args, kwds, &r);
    if (rc == 1) {
        /* The server counted a reference for the proxy it returned:
         * build it and drop it at once. */
        conc_proxy *q = NULL;
        if (conc__mgr_proxy_from_reply(p->m, r, &q) == 0)
            conc_proxy_free(q);
        conc_obj_decref(r);
        return conc_fail(CONC_ETYPE,
                         "%s returns a proxy: use conc_proxy_call_proxy",
                         method);
    }
    if (rc == 0)
        *result = r;
    return rc;
}

int
conc_proxy_call_proxy(conc_proxy *p, const char *method, conc_obj *args,
                      conc_obj *kwds, conc_proxy **out)
{
    if (bad_call_args(p, method, args, kwds) || !out)
        return CONC_EINVAL;
    conc_obj *r = NULL;
    int rc = call(p, method, args, kwds, &r);
    if (rc == 1)
        rc = conc__mgr_proxy_from_reply(p->m, r, out);
    else if (rc == 0)
        rc = conc_proxy_from_obj(p->m, r, out);
    conc_obj_decref(r);
    return rc;
}

const char *
conc_proxy_ident(const conc_proxy *p)
{
    return p ? p->ident : NULL;
}

const char *
conc_proxy_typeid(const conc_proxy *p)
{
    return p ? p->typeid : NULL;
}

conc_manager *
conc__mgr_proxy_manager(const conc_proxy *p)
{
    return p->m;
}

int
conc_proxy_dup(conc_proxy *p, conc_proxy **out)
{
    if (!p || !out)
        return CONC_EINVAL;
    int rc = conc__mgr_call_ident(p->m, "incref", p->ident);
    if (rc == 0 &&
        (rc = conc__mgr_proxy_new(p->m, p->ident, p->typeid, out)) < 0)
        conc__mgr_call_ident(p->m, "decref", p->ident);
    return rc;
}

void
conc_proxy_free(conc_proxy *p)
{
    if (!p)
        return;
    conc_local_free(p->marks); /* closes the marked threads' connections */
    while (p->conns) {
        struct proxy_conn *e = p->conns;
        p->conns = e->next;
        conc_conn_free(e->conn);
        conc__free(e);
    }
    conc__mgr_call_ident(p->m, "decref", p->ident);
    conc_lock_free(p->lock);
    conc__free(p->ident);
    conc__free(p->typeid);
    conc__free(p);
}
