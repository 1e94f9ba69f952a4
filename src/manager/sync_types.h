/* Internal declarations shared by the manager's synchronization types
 * (Lock, RLock, Semaphore, Condition, Event, Barrier) and the value types
 * (Value, Array, Namespace, set): the client a method runs for, the
 * registry of what clients hold, and the argument helpers of threading's
 * signatures. */
#ifndef CONC_MANAGER_SYNC_TYPES_H
#define CONC_MANAGER_SYNC_TYPES_H

#include "manager/manager_internal.h"

/* The client the calling thread serves: a number of the connection, never
 * 0, the same for every call on one connection (CPython's server serves a
 * connection on one thread, and its RLock belongs to that thread). */
uint64_t conc__mgr_client(void);

/* Something clients may hold (a lock's ownership, a semaphore's units),
 * which the server gives back when the holding client's connection
 * closes. give_back runs under the registry's lock and takes the
 * object's own lock: an object adds and removes itself without its lock
 * held. */
struct conc__mgr_holder {
    void (*give_back)(struct conc__mgr_holder *h, uint64_t client);
    struct conc__mgr_holder *prev, *next;
};

void conc__mgr_holder_add(struct conc__mgr_holder *h);
void conc__mgr_holder_remove(struct conc__mgr_holder *h);

/* Notes that the calling thread's client holds something now, so that its
 * leaving walks the registry (clients that never held anything do not). */
void conc__mgr_client_holds(void);

/* The state under an object's monitor: a conc_cond whose own lock guards
 * the rest of the object, and whether the server stopped. */
struct conc__mgr_mon {
    conc_cond *cond;
    int stopped;
};

int conc__mgr_mon_init(struct conc__mgr_mon *mon);
void conc__mgr_mon_fini(struct conc__mgr_mon *mon);

/* Waits on the monitor (held) until woken, or `deadline` (absolute, ns;
 * CONC__FOREVER never). Returns 0 woken (check the predicate again),
 * CONC_ETIMEDOUT past the deadline, CONC_ECLOSED once the server stopped,
 * CONC_ECANCELED once the client of the calling thread hung up (the
 * monitor is held again in every case). */
int conc__mgr_mon_wait(struct conc__mgr_mon *mon, int64_t deadline);

/* Wakes everything waiting on the monitor for good (a type's stop). */
void conc__mgr_mon_stop(struct conc__mgr_mon *mon);

/* A lock's state under a monitor: the holding client and how many times
 * it holds it (recursive: an RLock's count; else 0 or 1). */
struct conc__mgr_lockstate {
    uint64_t owner;
    long count;
    int recursive;
};

/* acquire and release of a Lock or RLock with the monitor held: 1
 * acquired, 0 timed out, or a negative code; release gives
 * CONC_ENOTLOCKED or CONC_ENOTOWNER with Python's RuntimeError text. */
int conc__mgr_lock_take(struct conc__mgr_mon *mon,
                        struct conc__mgr_lockstate *l, int64_t deadline);
int conc__mgr_lock_give(struct conc__mgr_mon *mon,
                        struct conc__mgr_lockstate *l);

/* The monitor and state of the Lock or RLock object `ident` of m, for a
 * Condition made over it, which keeps them: the object is pinned, kept
 * until the manager is freed, and outlives the Condition's methods.
 * Returns 0, CONC_EKEY for no such object, CONC_ETYPE for an object that
 * is not a Lock or RLock. */
int conc__mgr_lock_parts(conc_manager *m, const char *ident,
                         struct conc__mgr_mon **mon,
                         struct conc__mgr_lockstate **state);

/* acquire(blocking=True, timeout=...) as a deadline: a Lock's (timeout
 * -1 means forever; `sem` 0) or a Semaphore's (None means forever; `sem`
 * 1). ValueError for a timeout with blocking=False, and for a Lock's
 * negative timeout other than -1. */
int conc__mgr_acquire_deadline(conc_obj *args, conc_obj *kwds, int sem,
                               int64_t *deadline);

/* A wait(timeout=None)'s deadline: None forever, negative as 0. */
int conc__mgr_wait_deadline(conc_obj *args, conc_obj *kwds, int64_t *deadline);

/* Python's name of o's type ("int", "list", a foreign record's class
 * name), for the messages of TypeError; "NoneType" for NULL. */
const char *conc__mgr_pytype(const conc_obj *o);

/* The items iterating a str (its characters, each a str) or a bytes
 * object (its bytes, each an int) gives, as a new list in *out. Returns
 * 0, CONC_ETYPE for another type, CONC_ENOMEM. */
int conc__mgr_chars(const conc_obj *o, conc_obj **out);

/* The items iterating o gives, as a new list or tuple in *out (o
 * itself, a new reference, for a list or tuple): a str's characters,
 * bytes' and bytearray's ints, a dict's keys, a set's members, a
 * range's ints, an array.array's items (iterable.c). Returns 0,
 * CONC_ETYPE with CPython's "'int' object is not iterable" for another
 * type, CONC_ENOMEM (also for a range too long to expand), CONC_EVALUE
 * or CONC_EOVERFLOW for a range or array that does not read. */
int conc__mgr_items(conc_obj *o, conc_obj **out);

/* A Python signature, for CPython's errors about a call's arguments:
 * the callable's name as Python's messages give it ("Value.__init__",
 * "Array"), whether it is a method (its counts include self), its
 * parameters (NULL-terminated, none keyword-only) and how many of the
 * first are required. */
struct conc__mgr_sig {
    const char *name;
    int self;
    const char *const *params;
    size_t required;
};

/* Checks args (a tuple) and kwds (a dict or NULL) against sig as Python
 * binds them (signature.c). Returns 0, or CONC_ETYPE with Python's text
 * ("Event.__init__() takes 1 positional argument but 2 were given",
 * "... missing 1 required positional argument: 'value'", ...). */
int conc__mgr_check_args(const struct conc__mgr_sig *sig, conc_obj *args,
                         conc_obj *kwds);

/* *result = bool(v); returns 0. */
int conc__mgr_bool(int v, conc_obj **result);

#endif
