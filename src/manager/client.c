/* The client side of managers (conc/manager.h): BaseManager.connect,
 * create, proxies and their reference counting, against a conc or a
 * CPython server. Server functions each take a connection of their own,
 * as CPython's dispatch does.
 *
 * Proxies live in proxy.c.
 *
 * CPython's server closes a connection after one server function, so
 * its clients open a connection, with the handshake, for each: three per
 * connect, create and drop of a proxy. A conc server answers any number
 * of requests on one connection, so a manager keeps the connection of
 * its last server function for the next (one at a time; a thread that
 * finds it taken opens another). A connection the server closed in the
 * meantime is seen readable (at its end) and replaced; one it closed
 * just as the request left gets the request again on a new connection
 * (the server never read it), and the manager stops keeping them: that
 * server closes each.
 *
 * A server that went away (killed, or shut down) gives CONC_ECLOSED:
 * its connections end (EOF or a reset) and new ones are refused, both
 * at once, so no call waits for a timeout to learn it.
 *
 * Lock order: no lock here. */
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "manager/manager_internal.h"
#include "obj/pickle.h"

/* Room on the stack for the bytes of a create's reply, which are kept
 * until it is read: (ident, exposed names) is a few hundred bytes. */
#define CREATE_REPLY_STACK 2048
/* The longest ident read back from a reply that did not unpickle
 * (CPython's and conc's are an address in hex). */
#define LOST_IDENT_MAX 64

/* A server's own manager reaches it over its address too; nobody would
 * answer before conc_manager_start or after a stop. */
static int
check_serving(conc_manager *m)
{
    if (m->server && !m->started)
        return conc_fail(CONC_ESTATE, "the manager is not started");
    if (m->server && m->stopping)
        return conc_fail(CONC_ECLOSED, "the manager is shut down");
    return 0;
}

int
conc__mgr_open_conn(conc_manager *m, conc_conn **out)
{
    int rc = check_serving(m);
    if (rc < 0)
        return rc;
    conc_client_opts o = {.authkey = m->authkey,
                          .authkey_len = m->authkey ? strlen(m->authkey) : 0};
    rc = conc_client_connect(m->address, &o, CONC__MGR_CONNECT_S, out);
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

/* The length of the string opcode at p[i] (SHORT_BINUNICODE or
 * BINUNICODE) and where its bytes start, or 0 with *at = 0. */
static size_t
string_at(const uint8_t *p, size_t n, size_t i, size_t *at)
{
    size_t len = 0, head = p[i] == OP_SHORT_BINUNICODE ? 2 : 5;
    *at = 0;
    if (n - i < head)
        return 0;
    for (size_t k = head - 1; k >= 1; k--)
        len = len << 8 | p[i + k]; /* little-endian */
    if (n - i - head < len)
        return 0;
    *at = i + head;
    return len;
}

/* The ident in the bytes of a create's reply, ('#RETURN', (ident,
 * exposed)), read without allocating: the pickle's second string, after
 * '#RETURN', with only PROTO, FRAME and memo opcodes around them (as
 * CPython and conc write it). out gets "" if the bytes are not so. */
static void
reply_ident(const uint8_t *p, size_t n, char *out)
{
    size_t i = 0, strings = 0, at, len;
    out[0] = '\0';
    while (i < n) {
        switch (p[i]) {
        case OP_PROTO:
        case OP_BINPUT:
            i += 2;
            continue;
        case OP_FRAME:
            i += 9;
            continue;
        case OP_LONG_BINPUT:
            i += 5;
            continue;
        case OP_MEMOIZE:
            i++;
            continue;
        case OP_SHORT_BINUNICODE:
        case OP_BINUNICODE:
            break;
        default:
            return;
        }
        len = string_at(p, n, i, &at);
        if (!at || (strings == 0 && (len != 7 || memcmp(p + at, "#RETURN", 7))))
            return;
        if (strings++ == 1) {
            if (len > 0 && len < LOST_IDENT_MAX && !memchr(p + at, 0, len)) {
                memcpy(out, p + at, len);
                out[len] = '\0';
            }
            return;
        }
        i = at + len;
    }
}

/* Receives a reply; `lost` non-NULL (a create's) keeps its bytes, and
 * when they do not unpickle for want of memory, gets the object's ident
 * from them, for its decref. */
static int
recv_reply(conc_conn *c, char *lost, conc_obj **rep)
{
    if (!lost)
        return conc__mgr_recv(c, CONC_FOREVER, 1, rep);
    uint8_t stack[CREATE_REPLY_STACK];
    conc_buf b;
    conc_buf_init_with(&b, stack, sizeof stack);
    int rc = conc_conn_recv_bytes(c, CONC_FOREVER, &b);
    if (rc == 0) {
        conc_obj_load_opts o = {.any_global = 1};
        rc = conc_obj_loads(b.data, b.len, &o, rep, NULL);
    }
    if (rc == CONC_ENOMEM && b.len > 0)
        reply_ident(b.data, b.len, lost);
    conc_buf_free(&b);
    return rc;
}

/* A request and its reply; `lost` as recv_reply's. */
static int
request(conc_conn *c, const char *ident, const char *name, conc_obj *args,
        conc_obj *kwds, char *lost, conc_obj **result)
{
    conc_obj *req = request_tuple(ident, name, args, kwds);
    if (!req)
        return CONC_ENOMEM;
    int rc = conc__mgr_send(c, req);
    conc_obj_decref(req);
    conc_obj *rep = NULL;
    if (rc == 0)
        rc = recv_reply(c, lost, &rep);
    if (rc == 0)
        rc = parse_reply(rep, result);
    conc_obj_decref(rep);
    if (rc == CONC_EPIPE || rc == -ECONNRESET || rc == CONC_ECLOSED)
        return conc_fail(CONC_ECLOSED, "the manager closed the connection");
    return rc;
}

int
conc__mgr_request(conc_conn *c, const char *ident, const char *name,
                  conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    return request(c, ident, name, args, kwds, NULL, result);
}

/* The kept connection, if this process kept one and the server has not
 * closed it (nothing else is readable between requests), in *out with
 * *kept 1; else a new one. */
static int
server_conn(conc_manager *m, conc_conn **out, int *kept)
{
    int rc = check_serving(m);
    if (rc < 0)
        return rc;
    conc_conn *c = atomic_exchange(&m->idle, NULL);
    if (c &&
        (atomic_load(&m->idle_pid) != getpid() || conc_conn_poll(c, 0) != 0)) {
        conc_conn_free(c); /* a forked child's copy closes only its own */
        c = NULL;
    }
    *kept = c != NULL;
    if (c) {
        *out = c;
        return 0;
    }
    return conc__mgr_open_conn(m, out);
}

/* Keeps c for the next server function, unless one is kept already or
 * the server closes them. */
static void
keep_conn(conc_manager *m, conc_conn *c)
{
    conc_conn *none = NULL;
    atomic_store(&m->idle_pid, getpid());
    if (atomic_load(&m->oneshot) ||
        !atomic_compare_exchange_strong(&m->idle, &none, c))
        conc_conn_free(c);
}

void
conc__mgr_drop_idle(conc_manager *m)
{
    conc_conn_free(atomic_exchange(&m->idle, NULL));
}

/* A server function, on the kept connection or a new one; `lost` as
 * recv_reply's. */
static int
call_server_lost(conc_manager *m, const char *name, conc_obj *args, char *lost,
                 conc_obj **result)
{
    conc_conn *c;
    conc_obj *r = NULL;
    int kept, rc;
    do {
        if ((rc = server_conn(m, &c, &kept)) < 0)
            return rc;
        rc = request(c, NULL, name, args, NULL, lost, &r);
        if (rc == CONC_ECLOSED && kept) {
            /* Closed under the request, which it never read: this server
             * closes each connection after one request. */
            atomic_store(&m->oneshot, 1);
            conc_conn_free(c);
            c = NULL;
        }
    } while (!c);
    if (rc == 0)
        keep_conn(m, c);
    else
        conc_conn_free(c);
    if (rc == 1)
        rc = conc_fail(CONC_EPROTO, "manager: %s returned a proxy", name);
    if (result && rc == 0)
        *result = r;
    else
        conc_obj_decref(r);
    return rc;
}

static int
call_server(conc_manager *m, const char *name, conc_obj *args,
            conc_obj **result)
{
    return call_server_lost(m, name, args, NULL, result);
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
    char lost[LOST_IDENT_MAX] = "";
    int rc = call_server_lost(m, "create", cargs, lost, &r);
    conc_obj_decref(cargs);
    /* The server made the object but its reply did not unpickle for want
     * of memory: drop it there, if memory allows now, rather than leave
     * it until the manager ends. */
    if (rc == CONC_ENOMEM && lost[0])
        conc__mgr_call_ident(m, "decref", lost);
    /* The registry's KeyError names an unknown typeid; a create's own
     * AttributeError comes back as CONC_EKEY too. */
    if (rc == CONC_EKEY && !strncmp(conc_failure_message(), "KeyError", 8))
        return conc_fail(CONC_ETASK, "unknown typeid %s", typeid);
    if (rc < 0)
        return rc;
    const char *ident = conc_obj_str_value(conc_obj_seq_get(r, 0));
    rc = ident ? conc__mgr_proxy_new(m, ident, typeid, out)
               : conc_fail(CONC_EPROTO, "manager: create's reply has no id");
    if (rc < 0 && ident)
        conc__mgr_call_ident(m, "decref", ident);
    conc_obj_decref(r);
    return rc;
}
