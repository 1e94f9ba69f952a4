/* Internal declarations shared by the manager's server, client, wire
 * format and built-in types (conc/manager.h). */
#ifndef CONC_MANAGER_INTERNAL_H
#define CONC_MANAGER_INTERNAL_H

#include <stdatomic.h>
#include <string.h>

#include "conc/ipc.h"
#include "conc/process.h"
#include "conc/listener.h"
#include "conc/manager.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "core/internal.h"
#include "unix/coro.h"

/* How long the accepting thread waits before it tries again when out of
 * descriptors or memory, and the bound on a client's wait for connecting
 * and for a handshake. */
#define CONC__MGR_POLL_S    0.1
#define CONC__MGR_CONNECT_S 30.0

/* The stack of a connection's thread: room for the pickle codec's
 * recursion at its default depth (also under ASan), far below the
 * system's 8 MiB, of which an idle connection touches a few pages. */
#define CONC__MGR_STACK (512 * 1024)

/* How long the server gives a client to finish the authkey handshake,
 * on the connection's own thread (a client that stalls holds up nobody
 * else), and to send the rest of a request it started. */
#define CONC__MGR_HANDSHAKE_S 10.0

/* How long a handshake may stay pending while every handshake slot is
 * taken (greet.c) before it is closed to make room: far longer than a
 * real client takes, on a loaded machine or across a slow network, and
 * far shorter than CONC__MGR_HANDSHAKE_S. */
#define CONC__MGR_GREET_GRACE_S 1.0

/* How many pending handshakes one peer address may hold for longer than
 * a grace (greet.c): a few processes of one host connecting together
 * stay under it, and a peer that opens connections and says nothing
 * holds no more than that many slots for long. */
#define CONC__MGR_GREET_PER_ADDR 8

/* The grace of a handshake beyond CONC__MGR_GREET_PER_ADDR of its
 * address while every slot is taken: still tens of real handshakes on a
 * loaded machine, and a tenth of CONC__MGR_GREET_GRACE_S, so that a
 * silent peer's flood drains ten times as fast as other connections. */
#define CONC__MGR_GREET_CROWD_S 0.1

/* The code conc__mgr_greet returns for a connection past the bound on
 * clients (admit.c): its thread answers the first request with the
 * refusal, then leaves. */
#define CONC__MGR_EREFUSED (-19005)

/* The code a method returns for Python's AttributeError (a Namespace's
 * missing attribute): the server sends AttributeError, and a conc client
 * gets it back as CONC_EKEY, the public code for a missing name. */
#define CONC__MGR_EATTR (-19001)

/* The code a method returns for Python's StopIteration (an iterator's
 * end): the server sends StopIteration(), and a conc client gets it back
 * as CONC_EEMPTY (CONC_ECLOSED, asyncio's as_completed end, would read
 * as a server gone away). */
#define CONC__MGR_ESTOP (-19002)

/* The code a method returns for an attribute the object lacks (a dict
 * iterator's send): as CPython's server, which fails to find it with
 * getattr and then in its fallbacks, the reply is a '#TRACEBACK' whose
 * last line is KeyError with the failure message (the name) as its
 * argument. */
#define CONC__MGR_ENOATTR (-19003)

/* The code a method returns for Python's RuntimeError (a dict changed
 * size during iteration); a conc client gets RuntimeError back as
 * CONC_ENOTOWNER, which conc_iterproxy_next turns into CONC_ESTATE. */
#define CONC__MGR_ERUNTIME (-19004)

/* An object the server holds for its clients. */
struct conc__mgr_obj {
    char ident[24];                /* its address in hex, as CPython's id */
    const conc_manager_type *type; /* borrowed from the registration */
    void *self;
    long refs;  /* the clients' references and calls in progress */
    int shared; /* 1: conc_manager_register_object's, never released */
    int pinned; /* 1: a stored value holds a proxy to it (rebuild.c) */
};

/* A registered typeid. */
struct conc__mgr_typeid {
    char *name;
    const conc_manager_type *type;
    void *arg;  /* create's argument, or the shared object itself */
    int shared; /* 1: every create returns `arg` */
};

/* Lock order: lock, then an object's own locks (inside methods). */
struct conc_manager {
    int server;    /* 1: made by conc_manager_new, 0: by _connect */
    char *address; /* where clients connect (the bound port for port 0) */
    char *authkey; /* NULL: no handshake */
    int tcp;       /* 1: the listener is on TCP (quick acks, handshake) */
    conc_listener *listener; /* without a key: handshakes run in serve.c */
    conc_thread *acceptor;
    _Atomic int stopping; /* set once to stop serving */
    int stopfd;           /* eventfd signalled with stopping; -1: none */
    int reapfd;           /* eventfd: a connection's thread is done */
    _Atomic int started;  /* written by the thread that starts serving */
    _Atomic int answered; /* 1: the server answered once (or is ours) */
    _Atomic int forever;  /* 1: serving in conc_manager_serve_forever */
    int served;           /* guarded by cond: serve_forever is done */
    size_t max_greetings; /* the bound on connections in the handshake */
    size_t n_greeting;    /* guarded by cond: those counted against it */
    size_t max_clients;   /* the bound on authenticated connections */
    size_t n_clients;     /* guarded by cond: those counted against it */
    uint64_t greet_seq;   /* guarded by cond: the last handshake's number */
    conc_process *proc;   /* conc_manager_start_process's child */
    conc_cond *cond;      /* its own lock guards everything below */
    struct conc__mgr_typeid *types;
    size_t n_types;
    struct conc__mgr_obj **objs;
    size_t n_objs, cap_objs;
    struct conc__mgr_conn *conns; /* connection threads not joined yet */
    _Atomic uint64_t accepted;    /* connections served so far (tests) */
    /* The client's side (client.c): the connection the last server
     * function left open for the next one, the process it belongs to (a
     * forked child must not share it), and whether the server closes
     * each such connection after one request (CPython's does). */
    _Atomic(conc_conn *) idle;
    _Atomic int idle_pid;
    _Atomic int oneshot;
};

/* A connection's thread, listed until the accepting thread (or the stop)
 * joins it once it is done. */
struct conc__mgr_conn {
    conc_manager *m;
    conc_conn *c;
    conc_thread *t;      /* set by the accepting thread after the start */
    int greeting;        /* guarded by m->cond: in the authkey handshake */
    int counted;         /* guarded by m->cond: counted in m->n_greeting */
    int evicted;         /* guarded by m->cond: its handshake was cut short */
    int64_t greet_since; /* when it was accepted (the acceptor's) */
    int client;          /* guarded by m->cond: counted in m->n_clients */
    /* The peer's address (TCP only: peer_len 0 for a Unix socket), the
     * order of its accept, and how many handshakes of that address
     * accepted after it are counted in m->n_greeting: all guarded by
     * m->cond, set by the accepting thread. */
    uint8_t peer[16];
    size_t peer_len;
    uint64_t seq;
    size_t newer_same;
    int done; /* guarded by m->cond: the thread is leaving */
    struct conc__mgr_conn *next;
};

/* Asks a manager's process to shut down and reaps it, killing it after
 * CONC_MANAGER_STOP_S (process.c). */
void conc__mgr_stop_process(conc_manager *m);

/* Sets `stopping` and wakes the threads that wait for clients. */
void conc__mgr_stop_signal(conc_manager *m);

/* The reply to one request as the server reads it (any value: what is
 * not a request gets a '#TRACEBACK'), or NULL out of memory. Borrows
 * req. Runs on a connection's thread (serve.c), or a fuzz target's. */
conc_obj *conc__mgr_handle(conc_manager *m, conc_obj *req);

/* Serves one accepted connection on a new thread (serve.c); takes c. */
int conc__mgr_serve_conn(conc_manager *m, conc_conn *c);

/* Cuts short the handshakes in progress, once `stopping` is set: their
 * threads then leave at once instead of after CONC__MGR_HANDSHAKE_S. */
void conc__mgr_stop_greetings(conc_manager *m);

/* The handshake's bound (greet.c). _enter counts a new connection against
 * m->max_greetings (without an authkey, admits it, or counts it if
 * refused), before its thread starts (the accepting thread).
 * _leave_locked uncounts it, under m->cond, once its handshake succeeded
 * or its thread is done; it returns 1 when the accepting thread may be
 * waiting for that room (signal m->reapfd). */
void conc__mgr_greet_enter(conc_manager *m, struct conc__mgr_conn *ctx);
int conc__mgr_greet_leave_locked(conc_manager *m, struct conc__mgr_conn *ctx);

/* The server's side of the handshake of ctx's connection, on its thread:
 * 0 once the client proved the key (at once without one) and was
 * admitted as a client, CONC__MGR_EREFUSED when it proved the key past
 * the bound on clients (conc__mgr_refuse then answers it). */
int conc__mgr_greet(struct conc__mgr_conn *ctx);

/* The bound on clients (admit.c). _admit_locked counts ctx's
 * authenticated connection against m->max_clients, or returns
 * CONC__MGR_EREFUSED when it is reached; _leave_locked uncounts it once
 * its thread is done. Both under m->cond. */
int conc__mgr_admit_locked(conc_manager *m, struct conc__mgr_conn *ctx);
void conc__mgr_admit_leave_locked(conc_manager *m, struct conc__mgr_conn *ctx);

/* Answers the first request of ctx's connection, refused for the bound
 * on clients, with ConnectionRefusedError naming the bound, within
 * CONC__MGR_HANDSHAKE_S (not once stopping); then takes it out of the
 * handshake's state, before its thread frees it. Its thread. */
void conc__mgr_refuse(struct conc__mgr_conn *ctx);

/* Whether the accepting thread may accept one more connection: 1, or 0
 * with the deadline for its wait in *until (a thread's end signals the
 * reap descriptor before), having closed the oldest handshake pending
 * past its grace. The accepting thread. */
int conc__mgr_greet_room(conc_manager *m, int64_t *until);

/* The number of connections the server serves now (their threads not
 * leaving yet). Any thread; for tests. */
size_t conc__mgr_conn_count(conc_manager *m);

/* Joins and frees the connection threads that are done (all of them with
 * `all`, waiting for each). The accepting thread, or the stop once it is
 * gone. */
void conc__mgr_reap_conns(conc_manager *m, int all);

/* The object of `ident` with one more reference (a call in progress or a
 * client's incref), or NULL. */
struct conc__mgr_obj *conc__mgr_obj_get(conc_manager *m, const char *ident);

/* Drops a reference taken by conc__mgr_obj_get or create; the last one
 * removes the object and releases it unless it is shared. */
void conc__mgr_obj_put(conc_manager *m, struct conc__mgr_obj *o);

/* create(typeid, *args, **kwds): the new object's entry in *out, with one
 * reference. */
int conc__mgr_obj_create(conc_manager *m, const char *typeid, conc_obj *args,
                         conc_obj *kwds, struct conc__mgr_obj **out);

/* Gives back the locks and semaphore units the client served by the
 * calling thread still holds, as its connection closes (holds.c). A
 * client is known by the thread that serves it: every method call of one
 * connection must run on one thread, which calls this once the connection
 * is done. */
void conc__mgr_client_leave(void);

/* A serving thread's watch on its client (watch.c): blocking calls made
 * between conc__mgr_watch_begin and _end end with CONC_ECANCELED as soon
 * as the client hangs up (closes its socket, or dies). On the serving
 * thread's stack; only that thread touches it, but for wake. */
struct conc__mgr_watch {
    struct conc__coro coro; /* first: the platform's view of the thread */
    int sock;               /* the client's socket, borrowed; -1: none */
    int evfd;               /* the wake's eventfd, made at the first use */
    int gone;               /* the client hung up (it stays so) */
    _Atomic uint64_t woken; /* the token of the last wake */
};

/* Starts watching the client of connection c for the calling serving
 * thread; _stop ends it before the connection is freed. */
void conc__mgr_watch_start(struct conc__mgr_watch *w, conc_conn *c);
void conc__mgr_watch_stop(struct conc__mgr_watch *w);

/* Around a public blocking conc call (a cancellation point, which undoes
 * itself when cut short) made for a client: while it blocks, the
 * client's hang-up ends it with CONC_ECANCELED. Returns what _end takes
 * (0 when the calling thread serves no watched client). Not around the
 * library's internal waits or code that ignores a call's failure. */
int conc__mgr_watch_begin(void);
void conc__mgr_watch_end(int began);

/* Ends the calling thread's watched wait if one is open (a registered
 * method may leave conc_manager_watch_begin's open). */
void conc__mgr_watch_reset(void);

/* The calling serving thread's watch, or NULL. */
struct conc__mgr_watch *conc__mgr_watch_current(void);

/* Whether the client of watch w (NULL: none) has hung up, looked at now
 * (no wait). Any thread, while w's serving thread waits for its client
 * (so that its socket is open). */
int conc__mgr_watch_gone(struct conc__mgr_watch *w);

/* How many hang-ups watched waits noticed in this process, and how many
 * threads sleep in a watched wait now (for tests). */
uint64_t conc__mgr_watch_hangups(void);
int conc__mgr_watch_count(void);

/* Registers the typeids of SyncManager beyond dict, list and the queues
 * (sync_register.c). */
int conc__mgr_register_sync_types(conc_manager *m);

/* Calls `method` on p with the `n` arguments in `items` and `kwds` (all
 * borrowed; kwds may be NULL), the result into *result unless result is
 * NULL (helpers.c). */
int conc__mgr_call_n(conc_proxy *p, const char *method, conc_obj **items,
                     size_t n, conc_obj *kwds, conc_obj **result);

/* Closes the connection kept for server functions (client.c). */
void conc__mgr_drop_idle(conc_manager *m);

/* Asks the server a client manager reaches to shut down (client.c). */
int conc__mgr_client_shutdown(conc_manager *m);

/* The registration of `typeid`, copied into *out; CONC_EKEY if none. */
int conc__mgr_type_find(conc_manager *m, const char *typeid,
                        struct conc__mgr_typeid *out);

/* Enters `self`, of the type `t`, in the table (or counts one more
 * reference to it if it is there), its entry in *out with one reference.
 * On failure releases self unless t is shared. */
int conc__mgr_obj_adopt(conc_manager *m, const struct conc__mgr_typeid *t,
                        void *self, struct conc__mgr_obj **out);

/* Keeps the object of `ident`, if there is one, until the manager is
 * freed (a proxy to it is stored in a value). */
void conc__mgr_obj_pin(conc_manager *m, const char *ident);

/* ---- The client side (client.c, proxy.c, rebuild.c) ---- */

/* Opens a connection to the manager's server, with the handshake;
 * CONC_ECLOSED once a server that answered before refuses. */
int conc__mgr_open_conn(conc_manager *m, conc_conn **out);

/* One request (ident, name, args, kwds) and its reply on c; NULL args and
 * kwds stand for () and {}. Returns 0 with the value in *result, 1 with
 * (exposed, token) for a '#PROXY' reply, or a code (CONC_ECLOSED when
 * the server closed the connection). */
int conc__mgr_request(conc_conn *c, const char *ident, const char *name,
                      conc_obj *args, conc_obj *kwds, conc_obj **result);

/* incref or decref of `ident`, on a connection of its own. */
int conc__mgr_call_ident(conc_manager *m, const char *name, const char *ident);

/* A new proxy for `ident` holding a reference already counted. */
int conc__mgr_proxy_new(conc_manager *m, const char *ident, const char *typeid,
                        conc_proxy **out);

/* The manager a proxy belongs to. */
conc_manager *conc__mgr_proxy_manager(const conc_proxy *p);

/* The proxy of a '#PROXY' reply's (exposed, token), taking the reference
 * the server counted for it. */
int conc__mgr_proxy_from_reply(conc_manager *m, conc_obj *value,
                               conc_proxy **out);

/* Token(typeid, address, ident) as CPython pickles it. */
conc_obj *conc__mgr_token(const char *typeid, const char *address,
                          const char *ident);

/* The ident of the object a RebuildProxy record (a proxy sent inside a
 * value) stands for, borrowed from o, or NULL if o is not one
 * (rebuild.c). */
const char *conc__mgr_rebuild_ident(const conc_obj *o);

/* Pins the objects of this server that proxies inside `o` stand for. */
void conc__mgr_pin_proxies(conc_manager *m, const conc_obj *o);

/* The number of objects the server holds. */
size_t conc__mgr_obj_count(conc_manager *m);

/* The state of a built-in dict or list: a conc_obj behind a lock. */
struct conc__mgr_box {
    conc_lock *lock;
    conc_obj *v;
    _Atomic long refs; /* the object's own, and its iterators' (dict_iter.c) */
};

/* A new box holding `v` (stolen, also on failure), with one reference. */
int conc__mgr_box_new(conc_obj *v, void **self);

/* Drops a reference to a box; the last one frees it and drops its value
 * (a type's release). */
void conc__mgr_box_free(void *self);

/* The "Iterator" typeid of SyncManager (dict_iter.c): what a dict's
 * __iter__ answers as a '#PROXY', with IteratorProxy's exposed names. */
const conc_manager_type *conc__mgr_iterator_type(void);

/* A one-item tuple holding a new reference to `item` (a KeyError's
 * arguments), or NULL. */
conc_obj *conc__mgr_args1(conc_obj *item);

/* Sends `o` pickled as one message. Borrows o. */
int conc__mgr_send(conc_conn *c, const conc_obj *o);

/* Receives one message and unpickles it into *out (a new reference),
 * waiting up to `timeout`. `foreign` 1 lets globals off the allowlist
 * become inert records (the exceptions of a reply). */
int conc__mgr_recv(conc_conn *c, double timeout, int foreign, conc_obj **out);

/* Receives one request as the server reads it: 0 with the request in
 * *out (a new reference); 1 with the ('#TRACEBACK', text) reply in *out
 * for a whole message that does not unpickle (a global off the
 * allowlist), as CPython's server answers one; or the connection's
 * error. A method call whose keyword arguments carry a Python function
 * (sort's key) is read with the function as an inert record, so that
 * the method refuses it with its own error. */
int conc__mgr_recv_request(conc_conn *c, double timeout, conc_obj **out);

/* A two-item tuple (kind, value), stealing value (NULL: None). */
conc_obj *conc__mgr_pair(const char *kind, conc_obj *value);

/* The exception record a conc code becomes in an '#ERROR' reply, with
 * `args` (stolen; NULL: the thread's failure message, or none), or NULL
 * when the code stands for no Python exception (a '#TRACEBACK' then). */
conc_obj *conc__mgr_exception(int code, conc_obj *args);

/* The conc code of an exception record sent in an '#ERROR' reply, with its
 * repr as the thread's failure message. */
int conc__mgr_exception_code(const conc_obj *exc);

/* ('#TRACEBACK', text) for a failure with `code` in `what`, the text
 * formatted as CPython's traceback.format_exc() so that its last line
 * names the exception ("ValueError: ...", "KeyError: 'x'"); `args` (stolen;
 * NULL: the failure message) are its arguments. NULL out of memory. */
conc_obj *conc__mgr_traceback(const char *what, int code, conc_obj *args);

/* The conc code of the exception a '#TRACEBACK' text names on its last
 * line (CONC_ETASK for others), with that line (the whole text for
 * CONC_ETASK) as the thread's failure message. */
int conc__mgr_traceback_code(const char *text);

/* Argument `i` of args, or kwds[name], borrowed, or NULL if neither. */
conc_obj *conc__mgr_arg(conc_obj *args, conc_obj *kwds, size_t i,
                        const char *name);

/* A queue method's (block, timeout) as one timeout in seconds: 0 for
 * block=False, CONC_FOREVER for timeout=None. CONC_ETYPE for a timeout
 * that is not a number. */
int conc__mgr_timeout(conc_obj *args, conc_obj *kwds, size_t first,
                      double *timeout);

#endif
