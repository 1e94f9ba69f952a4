/* conc/manager.h: managers that speak CPython's multiprocessing.managers
 * protocol, so that C and Python processes share dicts, lists and queues.
 *
 * A manager is either a server (conc_manager_new, conc_manager_register,
 * conc_manager_start: BaseManager with start() run in threads of the
 * calling process) or a handle on a server somewhere else
 * (conc_manager_connect: BaseManager.connect()). The server may be conc's
 * or CPython's, and so may its clients: requests are CPython's tuples
 * (ident, method, args, kwds), replies its ('#RETURN', value),
 * ('#ERROR', exception) and ('#TRACEBACK', text), values conc_obj
 * (conc/obj.h) pickled at protocol 4, over conc_listener connections
 * (conc/listener.h) with the authkey handshake.
 *
 * A proxy (conc_proxy) stands for one object in the server: its methods
 * are called by name with conc_obj arguments, each call one round trip
 * whose result is a copy. A proxy holds one reference to its object, as
 * CPython's proxies do (incref and decref requests); freeing it drops the
 * reference, and the server drops the object at zero.
 *
 * Errors the object raises come back as codes with the exception's text
 * as the thread's failure message: KeyError as CONC_EKEY, IndexError
 * CONC_EINDEX, queue.Empty CONC_EEMPTY, queue.Full CONC_EFULL, TypeError
 * CONC_ETYPE, ValueError CONC_EVALUE, BrokenBarrierError CONC_EBROKEN,
 * OverflowError CONC_EOVERFLOW, RuntimeError CONC_ENOTLOCKED (a Lock's
 * "release unlocked lock") or CONC_ENOTOWNER, AttributeError CONC_EKEY,
 * ConnectionRefusedError CONC_EBUSY (a conc server past its bound on
 * clients, conc_manager_set_max_clients), any other exception CONC_ETASK. A
 * server's ('#TRACEBACK', text), sent for what fails outside a method (a
 * create's bad arguments, a method not exposed, a request that does not
 * unpickle), gives the code of the exception its last line names, with that
 * line as the message. A conc server raises the same exceptions for those
 * codes, so CPython clients see KeyError, queue.Empty, ..., and sends
 * tracebacks where CPython's does.
 *
 * A server runs in threads of the calling process (conc_manager_start),
 * in the calling thread (conc_manager_serve_forever) or in a child
 * process (conc_manager_start_process); it serves each connection on a
 * thread of its own with a small stack. A server that dies makes every
 * call of its proxies fail at once with CONC_ECLOSED.
 * There is no encryption and no integrity after the handshake: run
 * managers on trusted networks or through a tunnel. */
#ifndef CONC_MANAGER_H
#define CONC_MANAGER_H

#include <sys/types.h>

#include "common.h"
#include "obj.h"

CONC_BEGIN_DECLS

typedef struct conc_manager conc_manager;

/* How long conc_manager_shutdown gives a manager's process to leave
 * before it kills it (seconds). */
#define CONC_MANAGER_STOP_S 5.0
typedef struct conc_proxy conc_proxy;

/* A method of a registered type: self is the object, args a tuple and kwds
 * a dict (both borrowed, never NULL), as the client sent them. It returns
 * 0 with a new reference in *result (NULL stands for None), or a negative
 * code (see the top of this file for the exception each becomes); on
 * failure it may leave a new tuple in *result, the exception's arguments
 * (the missing key of a KeyError), and a failure message otherwise. Runs
 * on the thread serving the connection: several at once for one object. */
typedef int (*conc_manager_method_fn)(void *self, conc_obj *args,
                                      conc_obj *kwds, conc_obj **result);

/* A method that returns an object of the server's, which the client gets
 * as a proxy (CPython's method_to_typeid): it returns 0 with the object
 * in *obj, of the type registered as the method's `type_name`, and sets
 * *borrowed to 1 when the object outlives the server's use of it (it
 * belongs to self: the server never releases it) or 0 when the server
 * takes it (released with the typeid's release once no proxy is left).
 * Errors as conc_manager_method_fn. Same threads. */
typedef int (*conc_manager_object_fn)(void *self, conc_obj *args,
                                      conc_obj *kwds, void **obj,
                                      int *borrowed);

typedef struct conc_manager_method {
    const char *name; /* as the client calls it: "get", "__getitem__" */
    conc_manager_method_fn fn;
} conc_manager_method;

/* A method returning a proxy of the registered `type_name` (an entry of
 * CPython's method_to_typeid). */
typedef struct conc_manager_proxy_method {
    const char *name;
    const char *type_name; /* the typeid of what it returns */
    conc_manager_object_fn fn;
} conc_manager_proxy_method;

/* A typeid's implementation. `create` makes a new object from the
 * arguments of the client's create request (arg is conc_manager_register's
 * `arg`); `release` frees it once no reference is left. */
typedef struct conc_manager_type {
    int (*create)(void *arg, conc_obj *args, conc_obj *kwds, void **self);
    void (*release)(void *self);
    /* Optional: wakes threads blocked in the object's methods for good,
     * called for every object when the server stops. */
    void (*stop)(void *self);
    const conc_manager_method *methods;
    size_t n_methods;
    /* Optional: the methods that return proxies (method_to_typeid),
     * exposed beside `methods`. */
    const conc_manager_proxy_method *proxy_methods;
    size_t n_proxy_methods;
} conc_manager_type;

/* Inside a method of a registered type, on the thread serving the call,
 * watches the calling client as the built-in types' blocking methods do:
 * until conc_manager_watch_end, conc's blocking calls on its
 * synchronization objects and queues (conc_lock_acquire, conc_cond_wait,
 * conc_event_wait, conc_sem_acquire, conc_queue_get, ...: the calls that
 * are cancellation points) end with CONC_ECANCELED as soon as the client
 * hangs up (closes its connection, or its process dies), undone as on a
 * timeout, and so does every later one of that call. The method should
 * then return (any code: the client is gone, no reply is sent). Put only
 * calls written to handle CONC_ECANCELED inside: a lock taken with
 * CONC_FOREVER whose result is ignored does not belong there. Waits on
 * descriptors (a conc_conn's receive, a process's exit) are not cut
 * short; such a method polls conc_manager_client_gone instead. Returns
 * what conc_manager_watch_end takes: 1 when it watches, 0 when the
 * calling thread serves no client's call or already watches (nothing
 * changes then). The server ends a watch the method leaves open. Any
 * thread (0 outside a method call). */
CONC_EXTERN int conc_manager_watch_begin(void);

/* Ends the watch conc_manager_watch_begin returned `began` (1) for;
 * does nothing for 0 or on a thread that does not watch. Any thread. */
CONC_EXTERN void conc_manager_watch_end(int began);

/* Whether the client whose call the calling thread serves has hung up
 * (closed its connection, or died): 1 or 0, 0 outside a method call.
 * Looks without blocking, for a method of a registered type that waits
 * in a way the watch does not cut short (in steps, or on a descriptor).
 * Once 1, a watched wait of that call ends at once. Never fails. Any
 * thread. */
CONC_EXTERN int conc_manager_client_gone(void);

/* The built-in types, registered by conc_manager_new as "Queue" (with
 * "JoinableQueue"), "dict" and "list" (SyncManager's typeids). Static,
 * owned by conc, never NULL. Any thread. */
CONC_EXTERN const conc_manager_type *conc_manager_queue_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_dict_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_list_type(void);

/* The synchronization and value types, registered by conc_manager_new
 * under SyncManager's typeids "Lock", "RLock", "Semaphore",
 * "BoundedSemaphore", "Condition", "Event", "Barrier", "Value", "Array",
 * "Namespace" and "set" (3.14's), with the exposed methods of CPython
 * 3.11-3.14 (docs/managers.md lists them). Blocking methods block only
 * the thread serving the caller's connection. Beyond CPython, the locks,
 * RLocks, Conditions' locks and semaphore units a client holds when its
 * connection closes are released by the server, and a client whose
 * connection closes while a method of its blocks is withdrawn at once (a
 * Barrier breaks, a Condition's notify goes to a live waiter, a lock or
 * a queue's item goes to a live client). Registered by hand
 * (conc_manager_register), the barrier type takes a
 * conc_manager_barrier_action as its `arg` (NULL: none) and the
 * condition type the manager itself (NULL: Condition(lock) refused).
 * Static, owned by conc, never NULL. Any thread. */
CONC_EXTERN const conc_manager_type *conc_manager_lock_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_rlock_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_semaphore_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_bounded_semaphore_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_condition_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_event_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_barrier_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_value_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_array_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_namespace_type(void);
CONC_EXTERN const conc_manager_type *conc_manager_set_type(void);

/* A Barrier's action (threading.Barrier's `action`), which a Python
 * callable cannot be here: conc's server calls C. The last party to
 * arrive calls fn(arg) before any party leaves wait(), with the
 * barrier's lock held (fn must not call the barrier), on the thread
 * serving that party's connection. fn returns 0, or a negative code
 * (with conc_fail's message) that breaks the barrier: that party's wait
 * fails with the code (its exception, as Python's action raising), the
 * others' with CONC_EBROKEN. Give it, borrowed (it must outlive the
 * manager), as the `arg` of conc_manager_register(m, "Barrier",
 * conc_manager_barrier_type(), &action): every Barrier of that typeid
 * runs it. */
typedef struct conc_manager_barrier_action {
    int (*fn)(void *arg);
    void *arg;
} conc_manager_barrier_action;

/* A new server manager on `address` (conc/listener.h's forms:
 * "127.0.0.1:5000", "/tmp/m.sock") with the NUL-terminated `authkey`
 * (NULL: no handshake), not serving yet. Borrows both. Returns 0 and *out,
 * freed with conc_manager_free; CONC_EINVAL for a NULL address or out,
 * CONC_ENOMEM, and conc_listener_new's errors. Any thread. */
CONC_EXTERN int conc_manager_new(const char *address, const char *authkey,
                                 conc_manager **out);

/* Registers `type_name` (copied): a client's create(type_name, ...) calls
 * type->create(arg, ...). Replaces an earlier registration of the name.
 * Borrows `type`, which must outlive the manager. Returns 0, CONC_EINVAL
 * for a NULL pointer or a client manager, CONC_ESTATE once started,
 * CONC_ENOMEM. The thread that made the manager. */
CONC_EXTERN int conc_manager_register(conc_manager *m, const char *type_name,
                                      const conc_manager_type *type, void *arg);

/* The default bound on a server's connections still in the authkey
 * handshake (conc_manager_set_max_handshakes). */
#define CONC_MANAGER_MAX_HANDSHAKES 64

/* Bounds at `n` the connections a server with an authkey has accepted
 * and not yet authenticated (each costs a thread for up to 10 s, the
 * handshake's timeout). Beyond it, new connections wait in the kernel's
 * listen backlog, and while they wait, a handshake pending for more than
 * a second is closed to make room (a real client answers in
 * milliseconds; a peer that connects and says nothing is dropped). One
 * peer address holds at most 8 of them for longer than a second (a tenth
 * of one while all are taken), so that one peer's silent connections
 * keep no other address's clients waiting (docs/managers.md, "Limits").
 * Authenticated connections do not count (conc_manager_set_max_clients
 * bounds them): a server holds thousands of idle clients. Without an
 * authkey, only connections refused for the bound on clients count.
 * Default
 * CONC_MANAGER_MAX_HANDSHAKES. Returns 0, CONC_EINVAL for NULL, a client
 * manager or n == 0, CONC_ESTATE once started. The thread that made the
 * manager. */
CONC_EXTERN int conc_manager_set_max_handshakes(conc_manager *m, size_t n);

/* The default bound on a server's authenticated clients
 * (conc_manager_set_max_clients): four times the 1,000 idle connections
 * a server is measured to hold (docs/managers.md), for about 80 MiB
 * resident and 2 GiB of mapped thread stacks, well inside a 64-bit
 * machine's memory and the kernel's default thread limits; a server past
 * it is a leak or a loop in a client rather than load. */
#define CONC_MANAGER_MAX_CLIENTS 4096

/* Bounds at `n` the connections a server serves at once (authenticated
 * ones, or all of them without an authkey): each costs a thread and its
 * descriptors for as long as it stays open. A connection that arrives
 * with n served gets its first request answered with
 * ConnectionRefusedError("... limit of n clients ...") and is closed: a
 * CPython client raises it, a conc client's call fails with CONC_EBUSY
 * and that text as its message. The others are served on, and room comes
 * back as clients close their connections. While it waits for its first
 * request (at most 10 s), a refused connection counts against the bound
 * on handshakes, with or without an authkey. Default
 * CONC_MANAGER_MAX_CLIENTS. Returns 0, CONC_EINVAL for NULL, a client
 * manager or n == 0, CONC_ESTATE once started. The thread that made the
 * manager. */
CONC_EXTERN int conc_manager_set_max_clients(conc_manager *m, size_t n);

/* Registers `type_name` as one object: every create(type_name) returns `self`
 * (the same ident, as CPython's register(typeid, callable=lambda: q)),
 * which the manager never releases: the caller frees it after
 * conc_manager_free (type->release may serve). Errors and threads as
 * conc_manager_register. */
CONC_EXTERN int conc_manager_register_object(conc_manager *m,
                                             const char *type_name,
                                             const conc_manager_type *type,
                                             void *self);

/* A new built-in queue object (maxsize 0: unbounded) for
 * conc_manager_register_object with conc_manager_queue_type(), freed with
 * conc_manager_queue_type()->release. Returns 0, CONC_EINVAL for NULL out,
 * CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_manager_queue_new(size_t maxsize, void **out);

/* Starts serving on threads of the calling process: one accepts, one
 * serves each connection. Returns 0, CONC_EINVAL for NULL or a client
 * manager, CONC_ESTATE if already started, CONC_ENOMEM, CONC_EAGAIN.
 * The thread that made the manager. */
CONC_EXTERN int conc_manager_start(conc_manager *m);

/* Starts serving in a new process (Python's Manager() and
 * BaseManager.start()): a forked child serves the manager's address while
 * the calling process keeps the manager as a client of it (create,
 * proxies, shutdown). Types registered before the call are served, with
 * the child's copy of their `arg`. The child is a daemon: it is killed
 * when the calling process dies (the thread that made the call, if it is
 * not the main thread, as conc/process.h says), and conc_manager_shutdown
 * stops and reaps it. Objects live in the child: this process's
 * conc_manager_register_object objects are not the child's. Returns 0,
 * CONC_EINVAL for NULL or a client manager, CONC_ESTATE if already
 * started, CONC_EPERM in a daemon process, and conc_process_start's
 * errors. The thread that made the manager, while no other thread holds
 * a lock the types' methods take. */
CONC_EXTERN int conc_manager_start_process(conc_manager *m);

/* The process id of the child a conc_manager_start_process serves in,
 * into *pid. Returns 0, CONC_EINVAL for a NULL pointer, CONC_ESTATE for
 * a manager with no process (not started that way, or shut down). Any
 * thread. */
CONC_EXTERN int conc_manager_pid(const conc_manager *m, pid_t *pid);

/* Serves in the calling thread until a client's shutdown request or
 * conc_manager_shutdown from another thread
 * (Server.serve_forever): accepts clients, serves each on a thread of its
 * own, then stops their objects and joins those threads. Returns 0 once
 * stopped, CONC_EINVAL for NULL or a client manager, CONC_ESTATE if
 * already started, CONC_ENOMEM, and the system's errors for its wake-up
 * descriptors. Any one thread, once registrations are done; other
 * threads may call conc_manager_create and conc_manager_shutdown
 * meanwhile. */
CONC_EXTERN int conc_manager_serve_forever(conc_manager *m);

/* The address the server listens on ("127.0.0.1:41235" for port 0), or
 * the one a client connected to, into `out` (replaced, NUL-terminated).
 * Returns 0, CONC_EINVAL for a NULL pointer, CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_manager_address(const conc_manager *m, conc_buf *out);

/* Connects to a manager server, conc's or CPython's, at `address` with the
 * NUL-terminated `authkey` (NULL: none), and checks it answers (the dummy
 * request, as BaseManager.connect). Borrows both. Returns 0 and *out,
 * freed with conc_manager_free; CONC_EAUTH for a wrong key (either side's
 * refusal); CONC_EINVAL for a NULL pointer; conc_client_connect's errors.
 * Any thread. */
CONC_EXTERN int conc_manager_connect(const char *address, const char *authkey,
                                     conc_manager **out);

/* Stops a server: it stops accepting, wakes blocked methods (type->stop),
 * closes its connections and joins its threads; with serve_forever in
 * another thread, it waits until that returns. With
 * conc_manager_start_process, asks the child to shut down and reaps it
 * (killing it after CONC_MANAGER_STOP_S). On a client, asks the server
 * to shut down (BaseManager.shutdown). Returns 0 (also when already
 * stopped), CONC_EINVAL for NULL, and for a client the request's errors.
 * Any thread but one serving the manager. */
CONC_EXTERN int conc_manager_shutdown(conc_manager *m);

/* Stops a server as conc_manager_shutdown does, releases its objects (not
 * those of conc_manager_register_object) and frees the manager. NULL does
 * nothing. Any thread, once no proxy of it is in use. */
CONC_EXTERN void conc_manager_free(conc_manager *m);

/* Creates an object of `type_name` in the server with the arguments `args`
 * (a tuple, or NULL for none; borrowed), manager.<typeid>(*args) in Python,
 * and returns a proxy holding one reference to it in *out, freed with
 * conc_proxy_free. A server's own manager (conc_manager_new) serves as a
 * client of itself once started. Returns 0; CONC_EINVAL for a NULL
 * pointer; CONC_ESTATE for a server not started yet; CONC_ECLOSED after
 * it stopped (also for a remote server that went away); when the
 * server's create failed, the code of the exception its traceback names
 * (CONC_EVALUE for Semaphore(-1), CONC_ETYPE for a bad argument,
 * CONC_EKEY for the AttributeError of Condition(1); the traceback's last
 * line, with CPython's text, as the message), CONC_ETASK for an unknown
 * typeid or an exception with no code;
 * CONC_EAUTH, CONC_ECLOSED and connection errors; CONC_EPROTO for a reply
 * that is not the protocol; CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_manager_create(conc_manager *m, const char *type_name,
                                    conc_obj *args, conc_proxy **out);

/* Calls `method` on the proxy's object with `args` (a tuple, NULL for
 * none) and `kwds` (a dict, NULL for none), both borrowed, and returns the
 * result, a new reference, in *result. Each calling thread has a
 * connection of its own to the server, opened by its first call
 * (accept_connection) and closed when the thread ends (or by
 * conc_proxy_free), as CPython's proxies do: threads' calls run at once,
 * and a thread's calls reach the same server thread. Returns 0; the codes of
 * the top of this file for an exception (message set); CONC_EINVAL for a NULL
 * pointer; CONC_ECLOSED when the server went away (killed or shut down: at
 * once, never after a timeout); CONC_ETYPE for a method that returns a proxy
 * (use conc_proxy_call_proxy); CONC_EPROTO for a reply that is not the
 * protocol; CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_proxy_call(conc_proxy *p, const char *method,
                                conc_obj *args, conc_obj *kwds,
                                conc_obj **result);

/* Calls a method that returns a proxy: one listed in the server's
 * method_to_typeid (a '#PROXY' reply), or one whose value is a proxy
 * (a RebuildProxy record, see conc_proxy_from_obj). Arguments as
 * conc_proxy_call. Returns 0 and a new proxy in *out, freed with
 * conc_proxy_free, holding its own reference; CONC_ETYPE when the
 * result is not a proxy; conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_proxy_call_proxy(conc_proxy *p, const char *method,
                                      conc_obj *args, conc_obj *kwds,
                                      conc_proxy **out);

/* The proxy as a value to send inside others (a dict's item, a queue's
 * item), as CPython pickles a proxy: a RebuildProxy record holding its
 * Token (typeid, the manager's address, ident), which a CPython client
 * reading it turns into a proxy of its own (with the authkey of its
 * current_process(), as CPython does) and a conc client into a
 * conc_proxy with conc_proxy_from_obj. A conc server keeps the object as
 * long as the manager lives once such a value is sent to it, as
 * CPython's server does. Returns 0 and a new reference in *out;
 * CONC_EINVAL for a NULL pointer; CONC_ENOMEM. Borrows p. Any thread. */
CONC_EXTERN int conc_proxy_to_obj(conc_proxy *p, conc_obj **out);

/* A proxy for the object a RebuildProxy record `o` (a proxy sent inside
 * a value, by CPython or conc_proxy_to_obj) stands for, reached through
 * `m`, which must be a handle on the server that made the record. Sends
 * an incref. Borrows m and o. Returns 0 and a new proxy in *out, freed
 * with conc_proxy_free; CONC_EINVAL for a NULL pointer; CONC_ETYPE when o
 * is not such a record; the request's errors. Any thread. */
CONC_EXTERN int conc_proxy_from_obj(conc_manager *m, conc_obj *o,
                                    conc_proxy **out);

/* The object's ident in the server (its id in hex), borrowed from p, or
 * NULL for NULL. Any thread. */
CONC_EXTERN const char *conc_proxy_ident(const conc_proxy *p);

/* The object's typeid ("dict", "Queue", ...; "" when not known), borrowed
 * from p, or NULL for NULL. Any thread. */
CONC_EXTERN const char *conc_proxy_typeid(const conc_proxy *p);

/* Another reference to the proxy's object, as a new proxy in *out (freed
 * with conc_proxy_free): an incref request. Returns 0, CONC_EINVAL, the
 * request's errors. Any thread. */
CONC_EXTERN int conc_proxy_dup(conc_proxy *p, conc_proxy **out);

/* Closes the proxy's connections, drops its reference (a decref request;
 * its failure is ignored, as a dead server holds nothing) and frees it.
 * NULL does nothing. Any thread, once no other thread uses the proxy. */
CONC_EXTERN void conc_proxy_free(conc_proxy *p);

/* ---- Typed helpers for the built-in types (each is conc_proxy_call) ---- */

/* d[key] into *value (a new reference) / d[key] = value. Borrow key and
 * value. Return 0, CONC_EKEY when absent, and conc_proxy_call's errors.
 * Any thread. */
CONC_EXTERN int conc_dictproxy_get(conc_proxy *d, conc_obj *key,
                                   conc_obj **value);
CONC_EXTERN int conc_dictproxy_set(conc_proxy *d, conc_obj *key,
                                   conc_obj *value);

/* iter(d) on a dict proxy: a proxy of the server's iterator over the
 * dict's keys (DictProxy's __iter__, answered with an "Iterator" proxy
 * by conc's server and CPython's), into *it, freed with conc_proxy_free
 * (which drops the server's iterator). Returns 0, CONC_EINVAL for a NULL
 * pointer, conc_proxy_call_proxy's errors. Any thread. */
CONC_EXTERN int conc_dictproxy_iter(conc_proxy *d, conc_proxy **it);

/* next(it) on an iterator proxy: the next key into *item (a new
 * reference), one round trip each, as IteratorProxy's __next__. At the
 * end (StopIteration) it returns CONC_EEMPTY: nothing is left, as with a
 * queue's get, and the code a conc_proxy_call of __next__ gives too;
 * CONC_ECLOSED, as_completed's end, would read as a server gone away.
 * No timeout: the server answers at once, as for every dict call.
 * Returns 0; CONC_EEMPTY at the end (and after it); CONC_ESTATE when the
 * dict changed size, or its keys changed, during the iteration (Python's
 * RuntimeError, message kept); CONC_EINVAL for a NULL pointer;
 * conc_proxy_call's errors. Any thread, one at a time per iterator for
 * an order that means anything. */
CONC_EXTERN int conc_iterproxy_next(conc_proxy *it, conc_obj **item);

/* d |= other (3.14's __ior__): merges `other` (borrowed: a dict, or an
 * iterable of key-value pairs, as dict.update takes) into the dict in
 * place; the copy the server answers with is dropped. Returns 0,
 * CONC_ETYPE or CONC_EVALUE for what dict.update refuses (the pairs
 * before a bad one stay merged, as in Python), CONC_EINVAL for a NULL
 * pointer, conc_proxy_call's errors (a server older than 3.14 refuses
 * the method: CONC_EKEY). Any thread. */
CONC_EXTERN int conc_dictproxy_merge(conc_proxy *d, conc_obj *other);

/* l.append(item) (borrowed) / l[index] into *item (a new reference;
 * negative counts from the end). Return 0, CONC_EINDEX out of range, and
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_listproxy_append(conc_proxy *l, conc_obj *item);
CONC_EXTERN int conc_listproxy_get(conc_proxy *l, int64_t index,
                                   conc_obj **item);

/* 3.14's l.clear() / l.copy() into *copy (a new reference, a new list).
 * Return 0, CONC_EINVAL for a NULL pointer, conc_proxy_call's errors (a
 * server older than 3.14 refuses the methods: CONC_EKEY). Any thread. */
CONC_EXTERN int conc_listproxy_clear(conc_proxy *l);
CONC_EXTERN int conc_listproxy_copy(conc_proxy *l, conc_obj **copy);

/* q.put(item, timeout=...) (borrowed) / q.get(timeout=...) into *item (a
 * new reference). CONC_FOREVER waits as long as it takes, 0 is
 * put_nowait / get_nowait. Return 0, CONC_EFULL / CONC_EEMPTY when the
 * timeout ran out, CONC_EINVAL for a NaN timeout, and conc_proxy_call's
 * errors. Any thread. */
CONC_EXTERN int conc_queueproxy_put(conc_proxy *q, conc_obj *item,
                                    double timeout);
CONC_EXTERN int conc_queueproxy_get(conc_proxy *q, double timeout,
                                    conc_obj **item);

/* ---- Typed helpers for the synchronization and value types ----
 * Each is one conc_proxy_call with the arguments CPython's proxies send,
 * so they work against CPython's SyncManager too. */

/* acquire() of a Lock, RLock, Semaphore, BoundedSemaphore or Condition
 * proxy: CONC_FOREVER waits as long as it takes, 0 only tries
 * (blocking=False). Returns 0 once acquired, CONC_ETIMEDOUT when the
 * timeout ran out, CONC_EINVAL for a NULL proxy or a NaN timeout, and
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_lockproxy_acquire(conc_proxy *p, double timeout);

/* release() of the same proxies. Returns 0; CONC_ENOTLOCKED for a Lock
 * that is not locked, CONC_ENOTOWNER for an RLock or Condition the
 * caller's connection does not hold (both Python's RuntimeError);
 * CONC_EVALUE for a BoundedSemaphore released too many times;
 * CONC_EINVAL for NULL; conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_lockproxy_release(conc_proxy *p);

/* A Condition's wait(timeout) (CONC_FOREVER: None). Returns 0 when
 * notified, CONC_ETIMEDOUT when not, CONC_ENOTOWNER without the lock,
 * CONC_EINVAL for NULL or a NaN timeout, conc_proxy_call's errors.
 * Any thread. */
CONC_EXTERN int conc_condproxy_wait(conc_proxy *p, double timeout);

/* A Condition's notify(n), which wakes up to n waiters, and notify_all().
 * Return 0, CONC_ENOTOWNER without the lock, CONC_EINVAL for NULL,
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_condproxy_notify(conc_proxy *p, unsigned n);
CONC_EXTERN int conc_condproxy_notify_all(conc_proxy *p);

/* An Event's set() and clear(), and is_set() (1 or 0 into *set). Return
 * 0, CONC_EINVAL for a NULL pointer, conc_proxy_call's errors.
 * Any thread. */
CONC_EXTERN int conc_eventproxy_set(conc_proxy *p);
CONC_EXTERN int conc_eventproxy_clear(conc_proxy *p);
CONC_EXTERN int conc_eventproxy_is_set(conc_proxy *p, int *set);

/* An Event's wait(timeout) (CONC_FOREVER: None). Returns 0 once set,
 * CONC_ETIMEDOUT when the timeout ran out first, CONC_EINVAL for NULL or
 * a NaN timeout, conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_eventproxy_wait(conc_proxy *p, double timeout);

/* A Barrier's wait(timeout) (CONC_FOREVER: None, the barrier's own
 * default): the caller's index (0 to parties - 1) into *index, which may
 * be NULL. Returns 0, CONC_EBROKEN when the barrier broke (a timeout,
 * abort or reset, or a waiting party's client died: Python's
 * BrokenBarrierError), CONC_EINVAL for a NULL
 * proxy or a NaN timeout, conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_barrierproxy_wait(conc_proxy *p, double timeout,
                                       int64_t *index);

/* A Barrier's abort() and reset(). Return 0, CONC_EINVAL for NULL,
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_barrierproxy_abort(conc_proxy *p);
CONC_EXTERN int conc_barrierproxy_reset(conc_proxy *p);

/* A Value's get() into *value (a new reference, a copy) / set(value)
 * (borrowed). Return 0, CONC_EINVAL for a NULL pointer,
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_valueproxy_get(conc_proxy *p, conc_obj **value);
CONC_EXTERN int conc_valueproxy_set(conc_proxy *p, conc_obj *value);

/* An Array's a[index] into *item (a new reference; negative counts from
 * the end), a[index] = item (borrowed), len(a) into *n. Return 0,
 * CONC_EINDEX out of range, CONC_ETYPE or CONC_EOVERFLOW for an item the
 * typecode does not take, CONC_EINVAL for a NULL pointer,
 * conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_arrayproxy_get(conc_proxy *p, int64_t index,
                                    conc_obj **item);
CONC_EXTERN int conc_arrayproxy_set(conc_proxy *p, int64_t index,
                                    conc_obj *item);
CONC_EXTERN int conc_arrayproxy_len(conc_proxy *p, size_t *n);

/* A Namespace's attribute `name` (NUL-terminated, borrowed): its value
 * into *value (a new reference), set to `value` (borrowed), deleted.
 * Return 0, CONC_EKEY for a missing attribute (Python's AttributeError),
 * CONC_EINVAL for a NULL pointer, conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_nsproxy_get(conc_proxy *p, const char *name,
                                 conc_obj **value);
CONC_EXTERN int conc_nsproxy_set(conc_proxy *p, const char *name,
                                 conc_obj *value);
CONC_EXTERN int conc_nsproxy_del(conc_proxy *p, const char *name);

/* A set's add(item), discard(item) (both borrowed), and `item in s` (1 or
 * 0 into *in). Return 0, CONC_ETYPE for an unhashable item, CONC_EINVAL
 * for a NULL pointer, conc_proxy_call's errors. Any thread. */
CONC_EXTERN int conc_setproxy_add(conc_proxy *p, conc_obj *item);
CONC_EXTERN int conc_setproxy_discard(conc_proxy *p, conc_obj *item);
CONC_EXTERN int conc_setproxy_contains(conc_proxy *p, conc_obj *item, int *in);

CONC_END_DECLS

#endif
