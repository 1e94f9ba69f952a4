/* The manager's synchronization and value types (conc/manager.h): Lock,
 * RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier, Value,
 * Array, Namespace and set, checked the same way against a conc server
 * and against CPython's SyncManager, a CPython client using them all on a
 * conc server (tests/peers/manager_types_peer.py, run by Debian's
 * /usr/bin/python3), and locks given back when their holder dies. */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"
#include "manager/array_codes.h"

#define PEER            CONC_PEERS_DIR "/manager_types_peer.py"
#define PYTHON          "/usr/bin/python3"
#define KEY             "Willard"
#define WAIT            30.0 /* bound on any wait meant to succeed */
#define SHORT           0.05 /* a timeout meant to run out */
#define PARTIES         3
#define GIVE_BACK_BOUND 10.0 /* seconds for a dead holder's lock to return */

static int
have_python(void)
{
    return access(PYTHON, X_OK) == 0;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Starts m and writes its address into addr (cap bytes). */
static void
start_at(conc_manager *m, char *addr, size_t cap)
{
    assert_conc_ok(conc_manager_start(m));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    assert_true(b.len < cap);
    memcpy(addr, b.data, b.len + 1);
    conc_buf_free(&b);
}

/* A started conc manager and its address. */
static conc_manager *
server(char *addr, size_t cap)
{
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    start_at(m, addr, cap);
    return m;
}

/* A started conc manager, and a client connected to it in *c. */
static conc_manager *
server_and_client(conc_manager **c)
{
    char addr[256];
    conc_manager *m = server(addr, sizeof addr);
    assert_conc_ok(conc_manager_connect(addr, KEY, c));
    return m;
}

/* A tuple of `n` new references (stolen). */
static conc_obj *
tuple(size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    conc_obj *t = conc_obj_tuple(n);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        conc_obj *o = va_arg(ap, conc_obj *);
        assert_non_null(o);
        conc_obj_tuple_set_new(t, i, o);
    }
    va_end(ap);
    return t;
}

/* A new object of `typeid` made with `args` (stolen; NULL: none). */
static conc_proxy *
make(conc_manager *c, const char *typeid, conc_obj *args)
{
    conc_proxy *p;
    assert_conc_ok(conc_manager_create(c, typeid, args, &p));
    conc_obj_decref(args);
    return p;
}

/* A second proxy of p's object: another connection, another client. */
static conc_proxy *
other(conc_proxy *p)
{
    conc_proxy *q;
    assert_conc_ok(conc_proxy_dup(p, &q));
    return q;
}

static void
assert_int_obj(conc_obj *o, int64_t want)
{
    int64_t v;
    assert_conc_ok(conc_obj_int_value(o, &v));
    assert_int_equal(v, want);
    conc_obj_decref(o);
}

static void
assert_has(const char *text)
{
    if (!strstr(conc_failure_message(), text))
        fprintf(stderr, "message: %s\n", conc_failure_message());
    assert_non_null(strstr(conc_failure_message(), text));
}

/* A timed-out wait took its timeout at least (one-sided). */
static void
assert_timed_out(int rc, double start)
{
    assert_conc(rc, CONC_ETIMEDOUT);
    assert_true(now_s() - start >= SHORT);
}

/* ---- Checks run against conc's server and CPython's ---------------------
 */

static void
check_lock(conc_manager *c)
{
    conc_proxy *a = make(c, "Lock", NULL), *b = other(a);
    assert_conc_ok(conc_lockproxy_acquire(a, CONC_FOREVER));
    assert_conc(conc_lockproxy_acquire(a, 0), CONC_ETIMEDOUT);
    double start = now_s();
    assert_timed_out(conc_lockproxy_acquire(b, SHORT), start);
    assert_conc_ok(conc_lockproxy_release(b)); /* a Lock has no owner */
    assert_conc(conc_lockproxy_release(a), CONC_ENOTLOCKED);
    assert_has("release unlocked lock");
    assert_conc(conc_lockproxy_acquire(a, NAN), CONC_EINVAL);
    conc_obj *r = NULL, *args = tuple(2, conc_obj_false(), conc_obj_int(1));
    assert_conc(conc_proxy_call(a, "acquire", args, NULL, &r), CONC_EVALUE);
    conc_obj_decref(args);
    conc_proxy_free(b);
    conc_proxy_free(a);
}

static void
check_rlock(conc_manager *c)
{
    conc_proxy *a = make(c, "RLock", NULL), *b = other(a);
    assert_conc_ok(conc_lockproxy_acquire(a, CONC_FOREVER));
    assert_conc_ok(conc_lockproxy_acquire(a, 0)); /* again: recursive */
    double start = now_s();
    assert_timed_out(conc_lockproxy_acquire(b, SHORT), start);
    assert_conc(conc_lockproxy_release(b), CONC_ENOTOWNER);
    assert_has("un-acquired");
    assert_conc_ok(conc_lockproxy_release(a));
    assert_conc_ok(conc_lockproxy_release(a));
    assert_conc(conc_lockproxy_release(a), CONC_ENOTOWNER);
    assert_conc_ok(conc_lockproxy_acquire(b, 0));
    assert_conc_ok(conc_lockproxy_release(b));
    conc_proxy_free(b);
    conc_proxy_free(a);
}

static void
check_semaphores(conc_manager *c)
{
    conc_proxy *s = make(c, "Semaphore", tuple(1, conc_obj_int(2)));
    assert_conc_ok(conc_lockproxy_acquire(s, CONC_FOREVER));
    assert_conc_ok(conc_lockproxy_acquire(s, 0));
    double start = now_s();
    assert_timed_out(conc_lockproxy_acquire(s, SHORT), start);
    assert_conc_ok(conc_lockproxy_release(s));
    assert_conc_ok(conc_lockproxy_release(s));
    assert_conc_ok(conc_lockproxy_release(s)); /* unbounded */
    conc_proxy_free(s);
    conc_proxy *p;
    conc_obj *neg = tuple(1, conc_obj_int(-1));
    /* A failed create is a traceback naming the exception, from CPython's
     * server and conc's alike. */
    assert_conc(conc_manager_create(c, "Semaphore", neg, &p), CONC_EVALUE);
    assert_string_equal(conc_failure_message(),
                        "ValueError: semaphore initial value must be >= 0");
    conc_obj_decref(neg);
    assert_conc(conc_manager_create(c, "no such typeid", NULL, &p), CONC_ETASK);
    assert_has("no such typeid");
    conc_proxy *b = make(c, "BoundedSemaphore", tuple(1, conc_obj_int(1)));
    assert_conc_ok(conc_lockproxy_acquire(b, CONC_FOREVER));
    assert_conc_ok(conc_lockproxy_release(b));
    assert_conc(conc_lockproxy_release(b), CONC_EVALUE);
    assert_has("too many");
    conc_proxy_free(b);
}

struct waiter {
    conc_proxy *cond;
    conc_event *holding; /* set once the waiter holds the lock */
    int rc;
};

static int
cond_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = conc_lockproxy_acquire(w->cond, CONC_FOREVER);
    if (w->rc < 0)
        return 0;
    conc_event_set(w->holding);
    w->rc = conc_condproxy_wait(w->cond, WAIT);
    int rel = conc_lockproxy_release(w->cond);
    if (w->rc == 0)
        w->rc = rel;
    return 0;
}

/* wait() and notify() across two clients: the notifier's acquire is
 * granted only once the waiter's wait() gave the lock up. */
/* Condition(lock): the Condition acquires that very lock, which its own
 * proxies see held, and a wait gives it up while it waits. */
static void
check_condition_over(conc_manager *c, const char *lock_type)
{
    conc_proxy *lock = make(c, lock_type, NULL), *mine = other(lock);
    conc_obj *ref = NULL;
    assert_conc_ok(conc_proxy_to_obj(lock, &ref));
    conc_proxy *cv = make(c, "Condition", tuple(1, ref));
    assert_conc_ok(conc_lockproxy_acquire(cv, CONC_FOREVER));
    assert_conc(conc_lockproxy_acquire(mine, 0), CONC_ETIMEDOUT);
    double start = now_s();
    assert_timed_out(conc_condproxy_wait(cv, SHORT), start);
    assert_conc(conc_lockproxy_acquire(mine, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_condproxy_notify_all(cv));
    assert_conc_ok(conc_lockproxy_release(cv));
    assert_conc_ok(conc_lockproxy_acquire(mine, 0)); /* free again */
    assert_conc_ok(conc_lockproxy_release(mine));
    conc_proxy_free(cv);
    conc_proxy_free(mine);
    conc_proxy_free(lock);
}

static void
check_condition(conc_manager *c)
{
    conc_proxy *a = make(c, "Condition", NULL);
    assert_conc(conc_condproxy_wait(a, SHORT), CONC_ENOTOWNER);
    assert_conc(conc_condproxy_notify(a, 1), CONC_ENOTOWNER);
    assert_conc_ok(conc_lockproxy_acquire(a, CONC_FOREVER));
    double start = now_s();
    assert_timed_out(conc_condproxy_wait(a, SHORT), start);
    assert_conc_ok(conc_lockproxy_release(a));
    struct waiter w = {other(a), NULL, -1};
    assert_conc_ok(conc_event_new(NULL, &w.holding));
    conc_thread *t;
    assert_conc_ok(conc_thread_start(cond_waiter, &w, NULL, &t));
    assert_conc_ok(conc_event_wait(w.holding, WAIT));
    assert_conc_ok(conc_lockproxy_acquire(a, WAIT));
    assert_conc_ok(conc_condproxy_notify(a, 1));
    assert_conc_ok(conc_lockproxy_release(a));
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    assert_conc_ok(w.rc);
    conc_thread_free(t);
    conc_event_free(w.holding);
    conc_proxy_free(w.cond);
    conc_proxy_free(a);
    check_condition_over(c, "Lock");
}

static void
check_event(conc_manager *c)
{
    conc_proxy *e = make(c, "Event", NULL), *f = other(e);
    int set = -1;
    assert_conc_ok(conc_eventproxy_is_set(e, &set));
    assert_int_equal(set, 0);
    double start = now_s();
    assert_timed_out(conc_eventproxy_wait(e, SHORT), start);
    assert_conc_ok(conc_eventproxy_set(f));
    assert_conc_ok(conc_eventproxy_wait(e, WAIT));
    assert_conc_ok(conc_eventproxy_is_set(e, &set));
    assert_int_equal(set, 1);
    assert_conc_ok(conc_eventproxy_clear(f));
    assert_conc(conc_eventproxy_wait(e, 0), CONC_ETIMEDOUT);
    conc_proxy_free(f);
    conc_proxy_free(e);
}

struct party {
    conc_proxy *b;
    int64_t index;
    int rc;
};

static int
barrier_party(void *arg)
{
    struct party *p = arg;
    p->rc = conc_barrierproxy_wait(p->b, WAIT, &p->index);
    return 0;
}

static void
assert_attr(conc_proxy *b, const char *name, int64_t want)
{
    conc_obj *args = tuple(1, conc_obj_str(name)), *r = NULL;
    assert_conc_ok(conc_proxy_call(b, "__getattribute__", args, NULL, &r));
    conc_obj_decref(args);
    assert_int_obj(r, want);
}

/* PARTIES clients pass one barrier; a lone one times out and breaks one. */
static void
check_barrier(conc_manager *c)
{
    conc_proxy *b = make(c, "Barrier", tuple(1, conc_obj_int(PARTIES)));
    assert_attr(b, "parties", PARTIES);
    struct party ps[PARTIES];
    conc_thread *ts[PARTIES];
    for (int i = 0; i < PARTIES; i++) {
        ps[i] = (struct party){other(b), -1, -1};
        assert_conc_ok(conc_thread_start(barrier_party, &ps[i], NULL, &ts[i]));
    }
    int seen = 0;
    for (int i = 0; i < PARTIES; i++) {
        assert_conc_ok(conc_thread_join(ts[i], WAIT, NULL));
        conc_thread_free(ts[i]);
        assert_conc_ok(ps[i].rc);
        assert_true(ps[i].index >= 0 && ps[i].index < PARTIES);
        seen |= 1 << ps[i].index;
        conc_proxy_free(ps[i].b);
    }
    assert_int_equal(seen, (1 << PARTIES) - 1);
    assert_attr(b, "n_waiting", 0);
    conc_proxy_free(b);
    conc_proxy *two = make(c, "Barrier", tuple(1, conc_obj_int(2)));
    double start = now_s();
    assert_conc(conc_barrierproxy_wait(two, SHORT, NULL), CONC_EBROKEN);
    assert_true(now_s() - start >= SHORT);
    assert_attr(two, "broken", 1);
    assert_conc_ok(conc_barrierproxy_reset(two));
    assert_attr(two, "broken", 0);
    assert_conc_ok(conc_barrierproxy_abort(two));
    assert_conc(conc_barrierproxy_wait(two, CONC_FOREVER, NULL), CONC_EBROKEN);
    /* raised with no arguments, as threading raises it */
    assert_string_equal(conc_failure_message(), "BrokenBarrierError()");
    conc_proxy_free(two);
}

/* get() returns a copy: changing it changes nothing in the server. */
static void
check_value(conc_manager *c)
{
    conc_proxy *v =
        make(c, "Value", tuple(2, conc_obj_str("i"), conc_obj_int(5)));
    conc_obj *got = NULL;
    assert_conc_ok(conc_valueproxy_get(v, &got));
    assert_int_obj(got, 5);
    conc_obj *l = conc_obj_list();
    assert_conc_ok(conc_obj_list_append_new(l, conc_obj_int(1)));
    assert_conc_ok(conc_valueproxy_set(v, l));
    assert_conc_ok(conc_valueproxy_get(v, &got));
    assert_conc_ok(conc_obj_list_append_new(got, conc_obj_int(2)));
    conc_obj_decref(got);
    assert_conc_ok(conc_valueproxy_get(v, &got));
    assert_int_equal(conc_obj_equal(got, l), 1);
    conc_obj_decref(got);
    /* '#GETVALUE': the managers.Value object, its __dict__ as its state. */
    assert_conc_ok(conc_proxy_call(v, "#GETVALUE", NULL, NULL, &got));
    assert_string_equal(conc_obj_foreign_name(got), "Value");
    conc_obj *state = conc_obj_foreign_state(got);
    assert_int_equal(conc_obj_equal(conc_obj_dict_get_str(state, "_value"), l),
                     1);
    assert_string_equal(
        conc_obj_str_value(conc_obj_dict_get_str(state, "_typecode")), "i");
    conc_obj_decref(got);
    conc_obj_decref(l);
    conc_proxy_free(v);
}

/* array.array(typecode, items) as conc sends it; steals items. */
static conc_obj *
array_obj(const char *typecode, conc_obj *items)
{
    conc_obj *args = tuple(2, conc_obj_str(typecode), items);
    conc_obj *o = conc_obj_foreign("array", "array", args, NULL, 0);
    conc_obj_decref(args);
    assert_non_null(o);
    return o;
}

/* A list of n ints (stolen). */
static conc_obj *
ints(size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    conc_obj *l = conc_obj_list();
    for (size_t i = 0; i < n; i++)
        assert_conc_ok(conc_obj_list_append_new(l, va_arg(ap, conc_obj *)));
    va_end(ap);
    return l;
}

/* builtins.slice(start, stop, step) (stolen). */
static conc_obj *
slice(conc_obj *start, conc_obj *stop, conc_obj *step)
{
    conc_obj *t = tuple(3, start, stop, step);
    conc_obj *o = conc_obj_foreign("builtins", "slice", t, NULL, 0);
    conc_obj_decref(t);
    assert_non_null(o);
    return o;
}

/* a[index] = value (both stolen), the call's code. */
static int
set_item(conc_proxy *a, conc_obj *index, conc_obj *value)
{
    conc_obj *args = tuple(2, index, value), *r = NULL;
    int rc = conc_proxy_call(a, "__setitem__", args, NULL, &r);
    conc_obj_decref(args);
    conc_obj_decref(r);
    return rc;
}

/* The items of a[:] equal `want` (stolen). */
static void
assert_items(conc_proxy *a, conc_obj *want)
{
    conc_obj *none = conc_obj_none();
    conc_obj *args = tuple(1, slice(none, none, none)), *r = NULL;
    assert_conc_ok(conc_proxy_call(a, "__getitem__", args, NULL, &r));
    /* CPython's server sends array.array(typecode, bytes), conc's
     * array.array(typecode, list): the same items. */
    conc_obj *tc = NULL, *items = NULL;
    assert_int_equal(conc__mgr_array_of(r, &tc, &items), 0);
    assert_int_equal(conc_obj_equal(items, want), 1);
    conc_obj_decref(items);
    conc_obj_decref(r);
    conc_obj_decref(args);
    conc_obj_decref(want);
}

/* Slice assignment on [1, 10, 3] of 'i': an array of the same typecode,
 * which may change the length with a step of 1. */
static void
check_array_slices(conc_proxy *a)
{
    conc_obj *none = conc_obj_none();
    conc_obj *seven =
        ints(3, conc_obj_int(7), conc_obj_int(8), conc_obj_int(9));
    assert_conc_ok(set_item(a, slice(conc_obj_int(0), conc_obj_int(2), none),
                            array_obj("i", seven)));
    assert_items(a, ints(4, conc_obj_int(7), conc_obj_int(8), conc_obj_int(9),
                         conc_obj_int(3)));
    assert_conc_ok(
        set_item(a, slice(none, none, conc_obj_int(2)),
                 array_obj("i", ints(2, conc_obj_int(0), conc_obj_int(0)))));
    assert_items(a, ints(4, conc_obj_int(0), conc_obj_int(8), conc_obj_int(0),
                         conc_obj_int(3)));
    assert_conc(set_item(a, slice(none, none, conc_obj_int(2)),
                         array_obj("i", ints(1, conc_obj_int(0)))),
                CONC_EVALUE);
    assert_has("attempt to assign array of size 1 to extended slice of "
               "size 2");
    assert_conc(set_item(a, slice(none, none, none), ints(0)), CONC_ETYPE);
    assert_has("can only assign array (not \"list\") to array slice");
    assert_conc(set_item(a, slice(none, none, none), array_obj("l", ints(0))),
                CONC_ETYPE);
    assert_has("bad argument type for built-in operation");
    assert_conc(set_item(a, conc_obj_int(9), conc_obj_int(1)), CONC_EINDEX);
    assert_has("array assignment index out of range");
}

/* 'Q' holds ints up to 2**64 - 1, as Python's ints of any size. */
static void
check_array_u64(conc_manager *c)
{
    conc_obj *max = NULL, *over = NULL, *got = NULL;
    assert_conc_ok(conc_obj_int_parse("18446744073709551615", &max));
    assert_conc_ok(conc_obj_int_parse("18446744073709551616", &over));
    conc_obj *items = ints(2, conc_obj_incref(max), conc_obj_int(0));
    conc_proxy *q = make(c, "Array", tuple(2, conc_obj_str("Q"), items));
    assert_conc_ok(conc_arrayproxy_get(q, 0, &got));
    assert_int_equal(conc_obj_equal(got, max), 1);
    conc_obj_decref(got);
    assert_conc_ok(conc_arrayproxy_set(q, 1, max));
    assert_conc(conc_arrayproxy_set(q, 0, over), CONC_EOVERFLOW);
    assert_string_equal(conc_failure_message(),
                        "OverflowError('int too big to convert')");
    conc_obj *neg = conc_obj_int(-1), *half = conc_obj_float(0.5);
    assert_conc(conc_arrayproxy_set(q, 0, neg), CONC_EOVERFLOW);
    assert_string_equal(conc_failure_message(),
                        "OverflowError(\"can't convert negative int to "
                        "unsigned\")");
    assert_conc(conc_arrayproxy_set(q, 0, half), CONC_ETYPE);
    assert_has("'float' object cannot be interpreted as an integer");
    assert_items(q, ints(2, conc_obj_incref(max), conc_obj_incref(max)));
    conc_obj_decref(neg);
    conc_obj_decref(half);
    conc_obj_decref(max);
    conc_obj_decref(over);
    conc_proxy_free(q);
}

static void
check_array(conc_manager *c)
{
    conc_obj *items =
        tuple(3, conc_obj_int(1), conc_obj_int(2), conc_obj_int(3));
    conc_obj *seq = conc_obj_list(), *got = NULL;
    for (size_t i = 0; i < 3; i++)
        conc_obj_list_append(seq, conc_obj_seq_get(items, i));
    conc_obj_decref(items);
    conc_proxy *a = make(c, "Array", tuple(2, conc_obj_str("i"), seq));
    size_t n = 0;
    assert_conc_ok(conc_arrayproxy_len(a, &n));
    assert_int_equal(n, 3);
    assert_conc_ok(conc_arrayproxy_get(a, -1, &got));
    assert_int_obj(got, 3);
    conc_obj *ten = conc_obj_int(10), *x = conc_obj_str("x");
    conc_obj *big = conc_obj_int(INT64_C(1) << 40);
    assert_conc_ok(conc_arrayproxy_set(a, 1, ten));
    assert_conc_ok(conc_arrayproxy_get(a, 1, &got));
    assert_int_obj(got, 10);
    assert_conc(conc_arrayproxy_get(a, 3, &got), CONC_EINDEX);
    assert_conc(conc_arrayproxy_set(a, 0, x), CONC_ETYPE);
    assert_conc(conc_arrayproxy_set(a, 0, big), CONC_EOVERFLOW);
    conc_obj_decref(ten);
    conc_obj_decref(x);
    conc_obj_decref(big);
    check_array_slices(a);
    conc_proxy_free(a);
    check_array_u64(c);
}

static void
check_namespace(conc_manager *c)
{
    conc_proxy *ns = make(c, "Namespace", NULL);
    conc_obj *one = conc_obj_int(1), *got = NULL;
    assert_conc_ok(conc_nsproxy_set(ns, "x", one));
    assert_conc_ok(conc_nsproxy_get(ns, "x", &got));
    assert_int_obj(got, 1);
    assert_conc_ok(conc_nsproxy_del(ns, "x"));
    assert_conc(conc_nsproxy_get(ns, "x", &got), CONC_EKEY);
    assert_has("AttributeError");
    assert_conc(conc_nsproxy_del(ns, "x"), CONC_EKEY);
    conc_obj_decref(one);
    conc_proxy_free(ns);
}

/* set("abcab") is the set of its characters; __iter__ gives what a set's
 * iterator pickles as, iter([items]) (3.14 exposes it without an
 * iterator proxy). */
static void
check_set_chars(conc_manager *c)
{
    conc_proxy *s = make(c, "set", tuple(1, conc_obj_str("abcab")));
    conc_obj *r = NULL, *five = tuple(1, conc_obj_int(5));
    assert_conc_ok(conc_proxy_call(s, "__len__", NULL, NULL, &r));
    assert_int_obj(r, 3);
    assert_conc_ok(conc_proxy_call(s, "__iter__", NULL, NULL, &r));
    assert_string_equal(conc_obj_foreign_module(r), "builtins");
    assert_string_equal(conc_obj_foreign_name(r), "iter");
    conc_obj *items = conc_obj_seq_get(conc_obj_foreign_args(r), 0);
    assert_int_equal(conc_obj_len(items), 3);
    conc_obj *b = conc_obj_str("b");
    assert_int_equal(conc_obj_contains(items, b), 1);
    conc_obj_decref(b);
    conc_obj_decref(r);
    assert_conc(conc_proxy_call(s, "union", five, NULL, &r), CONC_ETYPE);
    assert_has("'int' object is not iterable");
    conc_obj_decref(five);
    conc_proxy_free(s);
}

static void
check_set(conc_manager *c)
{
    conc_proxy *s = make(c, "set", NULL);
    conc_obj *one = conc_obj_int(1), *two = conc_obj_str("two"), *r = NULL;
    int in = -1;
    assert_conc_ok(conc_setproxy_add(s, one));
    assert_conc_ok(conc_setproxy_add(s, two));
    assert_conc_ok(conc_setproxy_contains(s, two, &in));
    assert_int_equal(in, 1);
    assert_conc_ok(conc_setproxy_discard(s, two));
    assert_conc_ok(conc_setproxy_discard(s, two)); /* absent: no error */
    assert_conc_ok(conc_setproxy_contains(s, two, &in));
    assert_int_equal(in, 0);
    conc_obj *args = tuple(1, conc_obj_incref(two)), *l = conc_obj_list();
    assert_conc(conc_proxy_call(s, "remove", args, NULL, &r), CONC_EKEY);
    assert_string_equal(conc_failure_message(), "KeyError('two')");
    conc_obj_decref(args);
    assert_conc_ok(conc_obj_list_append(l, two));
    args = tuple(1, l);
    assert_conc_ok(conc_proxy_call(s, "union", args, NULL, &r));
    assert_int_equal(conc_obj_len(r), 2);
    conc_obj_decref(r);
    conc_obj_decref(args);
    assert_conc_ok(conc_proxy_call(s, "__len__", NULL, NULL, &r));
    assert_int_obj(r, 1);
    conc_obj_decref(one);
    conc_obj_decref(two);
    conc_proxy_free(s);
    check_set_chars(c);
}

/* p.method(*args) (args stolen; NULL: none), its code; the result in
 * *r (NULL: dropped). */
static int
call(conc_proxy *p, const char *method, conc_obj *args, conc_obj **r)
{
    conc_obj *got = NULL;
    int rc = conc_proxy_call(p, method, args, NULL, &got);
    conc_obj_decref(args);
    if (r)
        *r = got;
    else
        conc_obj_decref(got);
    return rc;
}

/* o equals `want` (both stolen). */
static void
assert_equal_obj(conc_obj *o, conc_obj *want)
{
    assert_int_equal(conc_obj_equal(o, want), 1);
    conc_obj_decref(o);
    conc_obj_decref(want);
}

/* The list behind p equals `want` (stolen). */
static void
assert_list(conc_proxy *p, conc_obj *want)
{
    conc_obj *got = NULL;
    assert_conc_ok(call(p, "#GETVALUE", NULL, &got));
    assert_equal_obj(got, want);
}

#define I(v) conc_obj_int(v)

/* insert (clamped as list.insert clamps) and reverse, with list's errors
 * for bad arguments. */
static void
check_list_insert(conc_proxy *l)
{
    assert_conc_ok(call(l, "insert", tuple(2, I(1), I(9)), NULL));
    assert_conc_ok(call(l, "insert", tuple(2, I(-100), I(0)), NULL));
    assert_conc_ok(call(l, "insert", tuple(2, I(100), I(7)), NULL));
    assert_conc_ok(call(l, "insert", tuple(2, I(-1), I(5)), NULL));
    assert_list(l, ints(7, I(0), I(1), I(9), I(2), I(3), I(5), I(7)));
    assert_conc(call(l, "insert", tuple(2, conc_obj_str("a"), I(1)), NULL),
                CONC_ETYPE);
    assert_has("'str' object cannot be interpreted as an integer");
    assert_conc(call(l, "insert", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("insert expected 2 arguments, got 1");
    assert_conc_ok(call(l, "reverse", NULL, NULL));
    assert_list(l, ints(7, I(7), I(5), I(3), I(2), I(9), I(1), I(0)));
    assert_conc(call(l, "reverse", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("list.reverse() takes no arguments (1 given)");
}

/* __add__, __mul__ and __rmul__ return new lists; __imul__ repeats in
 * place and returns the list; __reversed__ a reverse iterator over a
 * copy, which travels as reversed(copy) at its position. */
static void
check_list_ops(conc_proxy *l)
{
    conc_obj *r = NULL;
    assert_conc_ok(call(l, "__add__", tuple(1, ints(1, I(3))), &r));
    assert_equal_obj(r, ints(3, I(1), I(2), I(3)));
    assert_conc(call(l, "__add__", tuple(1, tuple(1, I(3))), NULL), CONC_ETYPE);
    assert_has("can only concatenate list (not \"tuple\") to list");
    assert_conc_ok(call(l, "__mul__", tuple(1, I(2)), &r));
    assert_equal_obj(r, ints(4, I(1), I(2), I(1), I(2)));
    assert_conc_ok(call(l, "__rmul__", tuple(1, I(-1)), &r));
    assert_equal_obj(r, ints(0));
    assert_conc(call(l, "__mul__", tuple(1, conc_obj_float(1.5)), NULL),
                CONC_ETYPE);
    assert_has("'float' object cannot be interpreted as an integer");
    assert_list(l, ints(2, I(1), I(2)));
    assert_conc_ok(call(l, "__reversed__", NULL, &r));
    assert_string_equal(conc_obj_foreign_name(r), "reversed");
    conc_obj *want = ints(2, I(1), I(2)), *at = I(1);
    conc_obj *seq = conc_obj_seq_get(conc_obj_foreign_args(r), 0);
    assert_int_equal(conc_obj_equal(seq, want), 1);
    assert_int_equal(conc_obj_equal(conc_obj_foreign_state(r), at), 1);
    conc_obj_decref(want);
    conc_obj_decref(at);
    conc_obj_decref(r);
    assert_conc_ok(call(l, "__imul__", tuple(1, I(2)), &r));
    assert_equal_obj(r, ints(4, I(1), I(2), I(1), I(2)));
    assert_list(l, ints(4, I(1), I(2), I(1), I(2)));
    assert_conc(call(l, "__imul__", tuple(1, conc_obj_str("x")), NULL),
                CONC_ETYPE);
    assert_conc_ok(call(l, "__imul__", tuple(1, I(0)), &r));
    assert_equal_obj(r, ints(0));
}

/* Slices as list takes them: l[a:b:c] a new list, l[a:b] = iterable
 * (the length may change), extended slices given exactly their size,
 * del l[a:b:c]. */
static void
check_list_slices(conc_proxy *l)
{
    conc_obj *none = conc_obj_none(), *r = NULL;
    assert_conc_ok(
        call(l, "__getitem__", tuple(1, slice(I(-1), none, I(-2))), &r));
    assert_equal_obj(r, ints(3, I(5), I(3), I(1)));
    assert_conc_ok(set_item(l, slice(I(1), I(3), none), conc_obj_str("ab")));
    assert_list(l, ints(6, I(0), conc_obj_str("a"), conc_obj_str("b"), I(3),
                        I(4), I(5)));
    assert_conc_ok(set_item(l, slice(I(1), I(3), none), tuple(0)));
    assert_list(l, ints(4, I(0), I(3), I(4), I(5)));
    assert_conc_ok(set_item(l, slice(I(9), none, none), ints(1, I(6))));
    assert_conc_ok(
        set_item(l, slice(none, none, I(-2)), ints(3, I(7), I(8), I(9))));
    assert_list(l, ints(5, I(9), I(3), I(8), I(5), I(7)));
    assert_conc(set_item(l, slice(none, none, I(2)), ints(1, I(0))),
                CONC_EVALUE);
    assert_has("attempt to assign sequence of size 1 to extended slice of "
               "size 3");
    assert_conc(set_item(l, slice(none, none, none), I(1)), CONC_ETYPE);
    assert_has("can only assign an iterable");
    assert_conc(set_item(l, slice(none, none, I(0)), ints(0)), CONC_EVALUE);
    assert_has("slice step cannot be zero");
    assert_conc_ok(
        call(l, "__delitem__", tuple(1, slice(I(-1), none, I(-2))), NULL));
    assert_list(l, ints(2, I(3), I(5)));
    assert_conc(call(l, "__getitem__", tuple(1, conc_obj_str("x")), NULL),
                CONC_ETYPE);
    assert_has("list indices must be integers or slices, not str");
}

static conc_obj *
big(const char *digits)
{
    conc_obj *o = NULL;
    assert_conc_ok(conc_obj_int_parse(digits, &o));
    return o;
}

/* l.sort(**kwds) (kwds stolen; NULL: none), its code. */
static int
sort(conc_proxy *l, conc_obj *kwds)
{
    conc_obj *r = NULL;
    int rc = conc_proxy_call(l, "sort", NULL, kwds, &r);
    conc_obj_decref(kwds);
    conc_obj_decref(r);
    return rc;
}

/* A {"name": v} dict (v stolen). */
static conc_obj *
kw(const char *name, conc_obj *v)
{
    conc_obj *d = conc_obj_dict();
    assert_conc_ok(conc_obj_dict_set_new(d, conc_obj_str(name), v));
    return d;
}

/* sort by Python's `<`: numbers of any size by value, str by code point,
 * tuples item by item; stable, also in reverse; mixed types CPython's
 * TypeError, leaving the list as it was; no key can travel. */
static void
check_list_sort(conc_manager *c)
{
    conc_proxy *l =
        make(c, "list",
             tuple(1, ints(7, I(3), conc_obj_float(1.5), conc_obj_true(),
                           big("1180591620717411303424"),
                           big("-1180591620717411303424"), I(2),
                           conc_obj_float(0.5))));
    assert_conc_ok(sort(l, NULL));
    assert_list(l, ints(7, big("-1180591620717411303424"), conc_obj_float(0.5),
                        conc_obj_true(), conc_obj_float(1.5), I(2), I(3),
                        big("1180591620717411303424")));
    conc_proxy_free(l);
    l = make(c, "list",
             tuple(1, ints(5, tuple(2, I(1), conc_obj_str("b")),
                           tuple(2, I(1), conc_obj_str("a")), tuple(1, I(0)),
                           tuple(1, I(1)), tuple(1, conc_obj_float(-0.5)))));
    assert_conc_ok(sort(l, NULL));
    assert_list(l, ints(5, tuple(1, conc_obj_float(-0.5)), tuple(1, I(0)),
                        tuple(1, I(1)), tuple(2, I(1), conc_obj_str("a")),
                        tuple(2, I(1), conc_obj_str("b"))));
    conc_proxy_free(l);
    l = make(c, "list",
             tuple(1, ints(4, conc_obj_str("b"), conc_obj_str("\xc3\xa9"),
                           conc_obj_str("ab"), conc_obj_str("a"))));
    assert_conc_ok(sort(l, kw("reverse", conc_obj_true())));
    assert_list(l, ints(4, conc_obj_str("\xc3\xa9"), conc_obj_str("b"),
                        conc_obj_str("ab"), conc_obj_str("a")));
    conc_proxy_free(l);
    /* Equal items keep their order, in reverse too. */
    l = make(
        c, "list",
        tuple(1, ints(4, I(1), I(2), conc_obj_float(1.0), conc_obj_true())));
    assert_conc_ok(sort(l, kw("reverse", I(1))));
    conc_obj *got = NULL;
    assert_conc_ok(call(l, "#GETVALUE", NULL, &got));
    assert_int_equal(conc_obj_typeof(conc_obj_seq_get(got, 1)), CONC_OBJ_INT);
    assert_int_equal(conc_obj_typeof(conc_obj_seq_get(got, 2)), CONC_OBJ_FLOAT);
    assert_int_equal(conc_obj_typeof(conc_obj_seq_get(got, 3)), CONC_OBJ_BOOL);
    assert_equal_obj(got, ints(4, I(2), I(1), I(1), I(1)));
    conc_proxy_free(l);
    l = make(c, "list", tuple(1, ints(2, I(1), conc_obj_str("a"))));
    assert_conc(sort(l, NULL), CONC_ETYPE);
    assert_has("'<' not supported between instances of 'str' and 'int'");
    assert_list(l, ints(2, I(1), conc_obj_str("a")));
    assert_conc(call(l, "sort", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("sort() takes no positional arguments");
    conc_proxy_free(l);
}

/* A bare global, as a Python function pickles (builtins.len). */
static conc_obj *
global(const char *module, const char *name)
{
    conc_obj *g = conc_obj_foreign(module, name, NULL, NULL, 0);
    assert_non_null(g);
    return g;
}

/* conc's server: a key function arrives (as CPython's pickle sends it)
 * and is refused by name with a TypeError, the list unchanged and the
 * connection still serving; a value that is not a function is not
 * callable; a global off the allowlist elsewhere gets a traceback on a
 * connection that serves on. */
static void
check_list_sort_key(conc_manager *c)
{
    conc_proxy *l = make(c, "list", tuple(1, ints(2, I(2), I(1))));
    assert_conc(sort(l, kw("key", global("builtins", "len"))), CONC_ETYPE);
    assert_has("sort key functions cannot be called by conc's "
               "manager server (key=builtins.len)");
    conc_obj *of = tuple(2, global("builtins", "str"), conc_obj_str("lower"));
    conc_obj *lower = conc_obj_foreign("builtins", "getattr", of, NULL, 0);
    conc_obj_decref(of);
    assert_conc(sort(l, kw("key", lower)), CONC_ETYPE);
    assert_has("(key=builtins.str.lower)");
    assert_conc(sort(l, kw("key", global("__main__", "by_len"))), CONC_ETYPE);
    assert_has("(key=__main__.by_len)");
    assert_conc(sort(l, kw("key", conc_obj_str("len"))), CONC_ETYPE);
    assert_has("'str' object is not callable");
    assert_list(l, ints(2, I(2), I(1)));
    assert_conc(call(l, "append", tuple(1, global("os", "system")), NULL),
                CONC_ETASK);
    assert_has("UnpicklingError: pickle: global os.system is not allowed");
    assert_conc_ok(sort(l, kw("key", conc_obj_none())));
    assert_list(l, ints(2, I(1), I(2)));
    conc_proxy_free(l);
}

/* A foreign record module.name(*args) (args stolen). */
static conc_obj *
call_of(const char *module, const char *name, conc_obj *args)
{
    conc_obj *o = conc_obj_foreign(module, name, args, NULL, 0);
    assert_non_null(o);
    conc_obj_decref(args);
    return o;
}

/* Every iterable that arrives by value, as its pickle arrives: `n`
 * iterables in it[], each giving the items of want[]. */
#define N_ITERABLES 10
static void
iterables(conc_obj **it, conc_obj **want)
{
    conc_obj *set = conc_obj_set(), *fs = NULL, *d = conc_obj_dict();
    conc_obj *four = I(4), *five = tuple(1, I(5));
    assert_conc_ok(conc_obj_set_add(set, four));
    assert_conc_ok(conc_obj_frozenset(five, &fs));
    assert_conc_ok(conc_obj_dict_set_new(d, conc_obj_str("k"), I(1)));
    conc_obj_decref(four);
    conc_obj_decref(five);
    conc_obj *made[N_ITERABLES][2] = {
        {tuple(2, I(1), I(2)), ints(2, I(1), I(2))},
        {ints(1, I(3)), ints(1, I(3))},
        {set, ints(1, I(4))},
        {fs, ints(1, I(5))},
        {d, ints(1, conc_obj_str("k"))},
        {conc_obj_str("ab"), ints(2, conc_obj_str("a"), conc_obj_str("b"))},
        {conc_obj_bytes("\x01\x02", 2), ints(2, I(1), I(2))},
        {call_of("builtins", "range", tuple(3, I(0), I(6), I(2))),
         ints(3, I(0), I(2), I(4))},
        {call_of("array", "array",
                 tuple(2, conc_obj_str("i"), ints(2, I(7), I(8)))),
         ints(2, I(7), I(8))},
        {call_of("builtins", "bytearray", tuple(1, conc_obj_bytes("\x09", 1))),
         ints(1, I(9))},
    };
    for (size_t i = 0; i < N_ITERABLES; i++) {
        it[i] = made[i][0];
        want[i] = made[i][1];
    }
}

/* extend (which ListProxy's += calls) and list(iterable) take every
 * iterable that arrives by value; anything else is CPython's TypeError;
 * dict(iterable) takes pairs. */
static void
check_list_iterables(conc_manager *c)
{
    conc_obj *it[N_ITERABLES], *want[N_ITERABLES];
    iterables(it, want);
    for (size_t i = 0; i < N_ITERABLES; i++) {
        conc_proxy *l = make(c, "list", NULL);
        assert_conc_ok(
            call(l, "extend", tuple(1, conc_obj_incref(it[i])), NULL));
        assert_list(l, conc_obj_incref(want[i]));
        conc_proxy_free(l);
        l = make(c, "list", tuple(1, it[i]));
        assert_list(l, want[i]);
        conc_proxy_free(l);
    }
    conc_proxy *l = make(c, "list", NULL), *p = NULL;
    assert_conc(call(l, "extend", tuple(1, I(5)), NULL), CONC_ETYPE);
    assert_has("'int' object is not iterable");
    assert_conc(call(l, "extend", tuple(1, conc_obj_none()), NULL), CONC_ETYPE);
    assert_has("'NoneType' object is not iterable");
    conc_proxy_free(l);
    conc_obj *args = tuple(1, conc_obj_float(1.5));
    assert_conc(conc_manager_create(c, "list", args, &p), CONC_ETYPE);
    assert_has("TypeError: 'float' object is not iterable");
    conc_obj_decref(args);
    args = tuple(2, I(1), I(2));
    assert_conc(conc_manager_create(c, "list", args, &p), CONC_ETYPE);
    assert_has("TypeError: list expected at most 1 argument, got 2");
    conc_obj_decref(args);
}

/* dict(iterable of pairs) and update with one, with dict's errors; a
 * set's update takes any iterable. */
static void
check_pairs(conc_manager *c)
{
    conc_proxy *d = make(
                   c, "dict",
                   tuple(1, ints(2, tuple(2, I(1), I(2)), conc_obj_str("ab")))),
               *p = NULL;
    conc_obj *got = NULL;
    assert_conc_ok(call(d, "update",
                        tuple(1, ints(1, call_of("builtins", "range",
                                                 tuple(3, I(3), I(5), I(1))))),
                        NULL));
    assert_conc_ok(call(d, "#GETVALUE", NULL, &got));
    assert_int_equal(conc_obj_len(got), 3);
    conc_obj *three = I(3), *v = NULL;
    assert_conc_ok(conc_obj_dict_get(got, three, &v));
    assert_int_obj(conc_obj_incref(v), 4);
    conc_obj_decref(three);
    conc_obj_decref(got);
    assert_conc(call(d, "update", tuple(1, ints(1, I(1))), NULL), CONC_ETYPE);
    assert_has("cannot convert dictionary update sequence element #0 to a "
               "sequence");
    assert_conc(
        call(d, "update", tuple(1, ints(1, tuple(3, I(1), I(2), I(3)))), NULL),
        CONC_EVALUE);
    assert_has("dictionary update sequence element #0 has length 3; 2 is "
               "required");
    conc_proxy_free(d);
    conc_obj *args = tuple(1, I(1));
    assert_conc(conc_manager_create(c, "dict", args, &p), CONC_ETYPE);
    assert_has("TypeError: 'int' object is not iterable");
    conc_obj_decref(args);
    conc_proxy *s = make(c, "set", NULL);
    assert_conc_ok(
        call(s, "update",
             tuple(1, call_of("builtins", "range", tuple(3, I(0), I(3), I(1)))),
             NULL));
    assert_conc_ok(call(s, "__len__", NULL, &got));
    assert_int_obj(got, 3);
    conc_proxy_free(s);
}

static void
check_list(conc_manager *c)
{
    conc_proxy *l = make(c, "list", tuple(1, ints(3, I(1), I(2), I(3))));
    check_list_insert(l);
    conc_proxy_free(l);
    l = make(c, "list", tuple(1, ints(2, I(1), I(2))));
    check_list_ops(l);
    conc_proxy_free(l);
    l = make(c, "list", tuple(1, ints(6, I(0), I(1), I(2), I(3), I(4), I(5))));
    check_list_slices(l);
    conc_proxy_free(l);
    check_list_sort(c);
    check_list_iterables(c);
    check_pairs(c);
}

/* A dict of n str keys and their values (stolen): "k", v, ... */
static conc_obj *
strdict(size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    conc_obj *d = conc_obj_dict();
    for (size_t i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *);
        assert_conc_ok(
            conc_obj_dict_set_new(d, conc_obj_str(k), va_arg(ap, conc_obj *)));
    }
    va_end(ap);
    return d;
}

/* The next key of `it` is the str `want`. */
static void
assert_next(conc_proxy *it, const char *want)
{
    conc_obj *k = NULL;
    assert_conc_ok(conc_iterproxy_next(it, &k));
    assert_string_equal(conc_obj_str_value(k), want);
    conc_obj_decref(k);
}

/* 3.14's list clear and copy. */
static void
check_list_314(conc_manager *c)
{
    conc_proxy *l = make(c, "list", tuple(1, ints(2, I(1), I(2))));
    conc_obj *copy = NULL;
    assert_conc_ok(conc_listproxy_copy(l, &copy));
    assert_equal_obj(copy, ints(2, I(1), I(2)));
    assert_conc(call(l, "copy", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("list.copy() takes no arguments (1 given)");
    assert_conc_ok(conc_listproxy_clear(l));
    assert_list(l, ints(0));
    assert_conc(call(l, "clear", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("list.clear() takes no arguments (1 given)");
    conc_proxy_free(l);
}

/* iter(d): an "Iterator" proxy over the live dict, one key per __next__
 * in insertion order, then StopIteration (CONC_EEMPTY) for good; a size
 * change gives RuntimeError (CONC_ESTATE) for good, a change of keys at
 * the same size once the iterator meets a key too many; the iterator
 * lacks send, throw and close (a traceback naming KeyError); a client
 * cannot create one. */
static void
check_dict_iter(conc_manager *c)
{
    conc_proxy *d = make(c, "dict", tuple(1, strdict(2, "a", I(1), "b", I(2))));
    conc_proxy *it;
    assert_conc_ok(conc_dictproxy_iter(d, &it));
    assert_string_equal(conc_proxy_typeid(it), "Iterator");
    assert_next(it, "a");
    assert_next(it, "b");
    conc_obj *k = NULL;
    assert_conc(conc_iterproxy_next(it, &k), CONC_EEMPTY);
    assert_conc(conc_iterproxy_next(it, &k), CONC_EEMPTY);
    assert_conc(call(it, "send", tuple(1, conc_obj_none()), NULL), CONC_EKEY);
    assert_has("KeyError: 'send'");
    assert_conc(call(it, "close", NULL, NULL), CONC_EKEY);
    assert_has("KeyError: 'close'");
    conc_proxy_free(it);
    assert_conc_ok(conc_dictproxy_iter(d, &it));
    assert_next(it, "a");
    assert_conc_ok(
        call(d, "__setitem__", tuple(2, conc_obj_str("c"), I(3)), NULL));
    for (int i = 0; i < 2; i++) {
        assert_conc(conc_iterproxy_next(it, &k), CONC_ESTATE);
        assert_has("dictionary changed size during iteration");
    }
    conc_proxy_free(it);
    assert_conc_ok(call(d, "__delitem__", tuple(1, conc_obj_str("c")), NULL));
    assert_conc_ok(conc_dictproxy_iter(d, &it));
    assert_next(it, "a");
    assert_conc_ok(call(d, "__delitem__", tuple(1, conc_obj_str("a")), NULL));
    assert_conc_ok(
        call(d, "__setitem__", tuple(2, conc_obj_str("z"), I(0)), NULL));
    assert_next(it, "b");
    assert_conc(conc_iterproxy_next(it, &k), CONC_ESTATE);
    assert_has("dictionary keys changed during iteration");
    assert_conc(conc_iterproxy_next(it, &k), CONC_EEMPTY);
    conc_proxy_free(it);
    conc_proxy_free(d);
    assert_conc(conc_manager_create(c, "Iterator", NULL, &it), CONC_EVALUE);
    assert_has("Without callable, must have one non-keyword argument");
}

/* An iterator keeps its dict alive after the dict's last proxy went. */
static void
check_dict_iter_outlives(conc_manager *c)
{
    conc_proxy *d = make(c, "dict", tuple(1, strdict(1, "a", I(1))));
    conc_proxy *it;
    assert_conc_ok(conc_dictproxy_iter(d, &it));
    conc_proxy_free(d);
    assert_next(it, "a");
    conc_obj *k = NULL;
    assert_conc(conc_iterproxy_next(it, &k), CONC_EEMPTY);
    conc_proxy_free(it);
}

/* d.method(arg) (arg stolen) is `want` (stolen). */
static void
assert_call1(conc_proxy *d, const char *method, conc_obj *arg, conc_obj *want)
{
    conc_obj *r = NULL;
    assert_conc_ok(call(d, method, tuple(1, arg), &r));
    assert_equal_obj(r, want);
}

/* The keys of dict o, in order, are those of `want` (a list, stolen). */
static void
assert_keys(conc_obj *o, conc_obj *want)
{
    conc_obj *keys = conc_obj_list(), *k;
    for (size_t pos = 0; conc_obj_next(o, &pos, &k, NULL) == 1;)
        assert_conc_ok(conc_obj_list_append(keys, k));
    assert_equal_obj(keys, want);
}

#define S(v) conc_obj_str(v)

/* 3.14's dict __or__, __ror__ (new dicts; NotImplemented for an operand
 * that is not a dict), __ior__ (in place, answering the dict), and what
 * update takes: a dict or pairs, with dict's errors. */
static void
check_dict_or(conc_proxy *d)
{
    conc_obj *r = NULL;
    assert_call1(d, "__or__", strdict(1, "x", I(9)),
                 strdict(3, "a", I(1), "b", I(2), "x", I(9)));
    assert_conc_ok(call(d, "__or__", tuple(1, I(5)), &r));
    assert_string_equal(conc_obj_foreign_name(r), "NotImplemented");
    assert_null(conc_obj_foreign_args(r));
    conc_obj_decref(r);
    assert_conc_ok(
        call(d, "__ror__", tuple(1, strdict(2, "z", I(0), "b", I(7))), &r));
    assert_keys(r, ints(3, S("z"), S("b"), S("a")));
    assert_equal_obj(r, strdict(3, "a", I(1), "b", I(2), "z", I(0)));
    assert_conc(call(d, "__or__", NULL, NULL), CONC_ETYPE);
    assert_has("expected 1 argument, got 0");
    conc_obj *pairs = ints(1, tuple(2, S("c"), I(3)));
    assert_conc_ok(conc_dictproxy_merge(d, pairs));
    conc_obj_decref(pairs);
    assert_call1(d, "__ior__", strdict(1, "d", I(4)),
                 strdict(4, "a", I(1), "b", I(2), "c", I(3), "d", I(4)));
    conc_obj *bad = ints(2, tuple(2, S("e"), I(5)), tuple(3, I(1), I(2), I(3)));
    assert_conc(conc_dictproxy_merge(d, bad), CONC_EVALUE);
    assert_has("dictionary update sequence element #1 has length 3; 2 is "
               "required");
    conc_obj_decref(bad);
    bad = I(5);
    assert_conc(conc_dictproxy_merge(d, bad), CONC_ETYPE);
    assert_has("'int' object is not iterable");
    conc_obj_decref(bad);
    assert_conc(call(d, "update", tuple(1, ints(1, I(1))), NULL), CONC_ETYPE);
    assert_has("cannot convert dictionary update sequence element #0 to a "
               "sequence");
    assert_conc_ok(call(d, "update", tuple(1, ints(1, S("fg"))), NULL));
    assert_call1(d, "__getitem__", S("f"), S("g"));
    assert_conc_ok(call(d, "__len__", NULL, &r));
    assert_int_obj(r, 6);
}

/* 3.14's __reversed__ (iter([keys, last first]) as CPython pickles a
 * dict's reverse iterator) and fromkeys, a classmethod through the
 * instance: a new dict. */
static void
check_dict_reversed(conc_proxy *d)
{
    conc_obj *r = NULL;
    assert_conc_ok(call(d, "__reversed__", NULL, &r));
    assert_string_equal(conc_obj_foreign_module(r), "builtins");
    assert_string_equal(conc_obj_foreign_name(r), "iter");
    conc_obj *want = ints(2, S("b"), S("a"));
    assert_int_equal(
        conc_obj_equal(conc_obj_seq_get(conc_obj_foreign_args(r), 0), want), 1);
    conc_obj_decref(want);
    conc_obj_decref(r);
    assert_conc(call(d, "__reversed__", tuple(1, I(1)), NULL), CONC_ETYPE);
    assert_has("dict.__reversed__() takes no arguments (1 given)");
    assert_conc_ok(call(d, "fromkeys", tuple(2, S("xy"), I(0)), &r));
    assert_equal_obj(r, strdict(2, "x", I(0), "y", I(0)));
    assert_conc_ok(call(d, "fromkeys", tuple(1, ints(1, S("k"))), &r));
    assert_equal_obj(r, strdict(1, "k", conc_obj_none()));
    assert_conc(call(d, "fromkeys", NULL, NULL), CONC_ETYPE);
    assert_has("fromkeys expected at least 1 argument, got 0");
    assert_conc(call(d, "fromkeys", tuple(1, ints(1, ints(0))), NULL),
                CONC_ETYPE);
    assert_has("unhashable type: 'list'");
}

/* 3.14's Lock.locked. */
static void
check_lock_locked(conc_manager *c)
{
    conc_proxy *l = make(c, "Lock", NULL);
    conc_obj *r = NULL;
    assert_conc_ok(call(l, "locked", NULL, &r));
    assert_int_equal(conc_obj_truth(r), 0);
    conc_obj_decref(r);
    assert_conc_ok(conc_lockproxy_acquire(l, 0));
    assert_conc_ok(call(l, "locked", NULL, &r));
    assert_int_equal(conc_obj_truth(r), 1);
    conc_obj_decref(r);
    assert_conc_ok(conc_lockproxy_release(l));
    conc_proxy_free(l);
}

static void
check_dict(conc_manager *c)
{
    check_dict_iter(c);
    check_dict_iter_outlives(c);
    conc_proxy *d = make(c, "dict", tuple(1, strdict(2, "a", I(1), "b", I(2))));
    check_dict_reversed(d);
    check_dict_or(d);
    conc_proxy_free(d);
    check_list_314(c);
    check_lock_locked(c);
}

/* A create with wrong arguments fails as CPython's server's does: its
 * traceback ends with the exception CPython raises, with its text. */
static void
create_fails(conc_manager *c, const char *typeid, conc_obj *args, int code,
             const char *text)
{
    conc_proxy *p = NULL;
    int rc = conc_manager_create(c, typeid, args, &p);
    if (rc != code || !strstr(conc_failure_message(), text))
        fprintf(stderr, "%s: %s\n", typeid, conc_failure_message());
    assert_conc(rc, code);
    assert_has(text);
    assert_null(p);
    conc_obj_decref(args);
}

static void
check_create_errors(conc_manager *c)
{
    create_fails(c, "Value", NULL, CONC_ETYPE,
                 "TypeError: Value.__init__() missing 2 required positional "
                 "arguments: 'typecode' and 'value'");
    create_fails(c, "Value", tuple(1, conc_obj_str("i")), CONC_ETYPE,
                 "TypeError: Value.__init__() missing 1 required positional "
                 "argument: 'value'");
    create_fails(c, "Value", tuple(4, I(1), I(2), I(3), I(4)), CONC_ETYPE,
                 "TypeError: Value.__init__() takes from 3 to 4 positional "
                 "arguments but 5 were given");
    create_fails(c, "Semaphore", tuple(1, conc_obj_str("x")), CONC_ETYPE,
                 "TypeError: '<' not supported between instances of 'str' "
                 "and 'int'");
    create_fails(c, "BoundedSemaphore", tuple(2, I(1), I(2)), CONC_ETYPE,
                 "TypeError: BoundedSemaphore.__init__() takes from 1 to 2 "
                 "positional arguments but 3 were given");
    create_fails(c, "Lock", tuple(1, I(1)), CONC_ETYPE,
                 "TypeError: _thread.allocate_lock() takes no arguments (1 "
                 "given)");
    create_fails(c, "Event", tuple(1, I(1)), CONC_ETYPE,
                 "TypeError: Event.__init__() takes 1 positional argument but "
                 "2 were given");
    create_fails(c, "Barrier", NULL, CONC_ETYPE,
                 "TypeError: Barrier.__init__() missing 1 required positional "
                 "argument: 'parties'");
    create_fails(c, "Queue", tuple(2, I(1), I(2)), CONC_ETYPE,
                 "TypeError: Queue.__init__() takes from 1 to 2 positional "
                 "arguments but 3 were given");
    create_fails(c, "Condition", tuple(1, I(1)), CONC_EKEY,
                 "AttributeError: 'int' object has no attribute 'acquire'");
    create_fails(c, "Namespace", tuple(1, I(1)), CONC_ETYPE,
                 "TypeError: Namespace.__init__() takes 1 positional argument "
                 "but 2 were given");
    create_fails(c, "Array", tuple(2, conc_obj_str("z"), ints(0)), CONC_EVALUE,
                 "ValueError: bad typecode (must be b, B, u, h, H, i, I, l, L, "
                 "q, Q, f or d)");
    create_fails(c, "Array", tuple(1, conc_obj_str("i")), CONC_ETYPE,
                 "TypeError: Array() missing 1 required positional argument: "
                 "'sequence'");
    create_fails(c, "Array", tuple(2, conc_obj_str("i"), I(5)), CONC_ETYPE,
                 "TypeError: 'int' object is not iterable");
    create_fails(
        c, "Array", tuple(2, conc_obj_str("i"), conc_obj_bytes("x", 1)),
        CONC_EVALUE, "ValueError: bytes length not a multiple of item size");
}

static void
check_all(conc_manager *c)
{
    check_list(c);
    check_dict(c);
    check_lock(c);
    check_rlock(c);
    check_semaphores(c);
    check_condition(c);
    check_event(c);
    check_barrier(c);
    check_value(c);
    check_array(c);
    check_namespace(c);
    check_set(c);
    check_create_errors(c);
}

/* 3.14's Condition.locked, which threading.Condition has from 3.14 only
 * (conc's server). */
static void
check_condition_locked(conc_manager *c)
{
    conc_proxy *cv = make(c, "Condition", NULL);
    conc_obj *r = NULL;
    assert_conc_ok(conc_lockproxy_acquire(cv, 0));
    assert_conc_ok(call(cv, "locked", NULL, &r));
    assert_int_equal(conc_obj_truth(r), 1);
    conc_obj_decref(r);
    assert_conc_ok(conc_lockproxy_release(cv));
    assert_conc_ok(call(cv, "locked", NULL, &r));
    assert_int_equal(conc_obj_truth(r), 0);
    conc_obj_decref(r);
    conc_proxy_free(cv);
}

static void
test_conc_server(void **state)
{
    (void)state;
    conc_manager *c, *m = server_and_client(&c);
    check_all(c);
    check_list_sort_key(c);
    /* CPython's own server refuses wait and notify on a Condition over an
     * RLock proxy (RuntimeError: its Condition asks the RLock through a
     * proxy whose calls another server thread serves); conc's does not. */
    check_condition_over(c, "RLock");
    check_condition_locked(c);
    conc_proxy *cv;
    conc_obj *not_lock = tuple(1, conc_obj_str("lock"));
    assert_conc(conc_manager_create(c, "Condition", not_lock, &cv), CONC_EKEY);
    assert_has("AttributeError: 'str' object has no attribute 'acquire'");
    conc_obj_decref(not_lock);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* A request the server does not unpickle (a global off the allowlist
 * among its arguments) gets its traceback, and the connection goes on:
 * the next call on it is served (it used to find the connection
 * closed). */
static void
test_request_not_unpickled(void **state)
{
    (void)state;
    conc_manager *c, *m = server_and_client(&c);
    conc_proxy *l = make(c, "list", tuple(1, ints(2, I(2), I(1))));
    assert_conc(call(l, "append", tuple(1, global("os", "system")), NULL),
                CONC_ETASK);
    assert_has("UnpicklingError");
    conc_obj *r = NULL;
    assert_conc_ok(call(l, "__len__", NULL, &r));
    assert_int_obj(r, 2);
    conc_proxy_free(l);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* A release by a client that holds nothing balances another client's
 * acquisition: that client gives back nothing more when it leaves. */
static void
check_semaphore_balance(conc_manager *c)
{
    conc_proxy *a = make(c, "BoundedSemaphore", NULL), *b = other(a);
    assert_conc_ok(conc_lockproxy_acquire(a, 0));
    assert_conc_ok(conc_lockproxy_release(b)); /* balances a's unit */
    conc_proxy_free(a);
    assert_conc_ok(conc_lockproxy_acquire(b, WAIT));
    double start = now_s(); /* time for a wrong give-back to show */
    assert_timed_out(conc_lockproxy_acquire(b, SHORT), start);
    assert_conc_ok(conc_lockproxy_release(b));
    assert_conc(conc_lockproxy_release(b), CONC_EVALUE);
    conc_proxy_free(b);
}

/* A client whose connection closes gives back what it held: a Lock, an
 * RLock held twice, a Condition's lock and a semaphore's units. */
static void
test_closed_client_gives_back(void **state)
{
    (void)state;
    conc_manager *c, *m = server_and_client(&c);
    const char *types[] = {"Lock", "RLock", "Condition", "Semaphore",
                           "BoundedSemaphore"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        conc_proxy *a = make(c, types[i], NULL), *b = other(a);
        assert_conc_ok(conc_lockproxy_acquire(a, CONC_FOREVER));
        if (i == 1)
            assert_conc_ok(conc_lockproxy_acquire(a, CONC_FOREVER));
        assert_conc(conc_lockproxy_acquire(b, 0), CONC_ETIMEDOUT);
        conc_proxy_free(a); /* its connection closes */
        double start = now_s();
        assert_conc_ok(conc_lockproxy_acquire(b, WAIT));
        assert_true(now_s() - start < GIVE_BACK_BOUND);
        assert_conc_ok(conc_lockproxy_release(b));
        conc_proxy_free(b);
    }
    check_semaphore_balance(c);
    conc_manager_free(c);
    conc_manager_free(m);
}

struct blocked {
    conc_proxy *p;
    int rc;
};

static int
blocked_wait(void *arg)
{
    struct blocked *w = arg;
    w->rc = conc_eventproxy_wait(w->p, CONC_FOREVER);
    return 0;
}

/* A client blocked in an Event's wait() is let go when the server stops. */
static void
test_shutdown_wakes_wait(void **state)
{
    (void)state;
    conc_manager *c, *m = server_and_client(&c);
    struct blocked w = {make(c, "Event", NULL), 1};
    conc_thread *t;
    assert_conc_ok(conc_thread_start(blocked_wait, &w, NULL, &t));
    assert_conc_ok(conc_manager_shutdown(m));
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    assert_true(w.rc == CONC_ECLOSED || w.rc == CONC_ETASK);
    conc_proxy_free(w.p);
    conc_manager_free(c);
    conc_manager_free(m);
}

static void
test_null_args(void **state)
{
    (void)state;
    conc_obj *o = conc_obj_none();
    int i;
    size_t n;
    assert_conc(conc_lockproxy_acquire(NULL, 0), CONC_EINVAL);
    assert_conc(conc_lockproxy_release(NULL), CONC_EINVAL);
    assert_conc(conc_condproxy_wait(NULL, 0), CONC_EINVAL);
    assert_conc(conc_eventproxy_is_set(NULL, &i), CONC_EINVAL);
    assert_conc(conc_barrierproxy_wait(NULL, 0, NULL), CONC_EINVAL);
    assert_conc(conc_valueproxy_get(NULL, &o), CONC_EINVAL);
    assert_conc(conc_arrayproxy_len(NULL, &n), CONC_EINVAL);
    assert_conc(conc_nsproxy_get(NULL, "x", &o), CONC_EINVAL);
    assert_conc(conc_setproxy_contains(NULL, o, &i), CONC_EINVAL);
}

/* array._array_reconstructor(array.array, typecode, fmt, raw), as a
 * pickle of protocol 3 and later brings an array.array. */
static conc_obj *
reconstructor(const char *typecode, int64_t fmt, const char *raw, size_t n)
{
    return call_of("array", "_array_reconstructor",
                   tuple(4, global("array", "array"), conc_obj_str(typecode),
                         I(fmt), conc_obj_bytes(raw, n)));
}

/* The items of an array that arrives in machine format `fmt`, or its
 * failure: `text` in the message. */
static void
array_items(const char *typecode, int64_t fmt, const char *raw, size_t n,
            int code, conc_obj *want, const char *text)
{
    conc_obj *a = reconstructor(typecode, fmt, raw, n), *tc = NULL,
             *items = NULL;
    assert_conc(conc__mgr_array_of(a, &tc, &items), code);
    if (code == 0)
        assert_equal_obj(items, want);
    else
        assert_has(text);
    conc_obj_decref(a);
}

/* Every machine format CPython defines: UTF-16 of either byte order
 * (what a Windows peer sends for 'u'), surrogate pairs joined, big-endian
 * ints and floats; a lone surrogate, an unknown format or typecode and a
 * length that is not a whole number of items are ValueErrors. */
static void
test_array_formats(void **state)
{
    (void)state;
    conc_obj *chars = ints(3, conc_obj_str("a"), conc_obj_str("\xc3\xa9"),
                           conc_obj_str("\xf0\x9f\x98\x80"));
    array_items("u", 18, "a\0\xe9\0\x3d\xd8\x00\xde", 8, 0,
                conc_obj_incref(chars), NULL);
    array_items("u", 19, "\0a\0\xe9\xd8\x3d\xde\x00", 8, 0, chars, NULL);
    array_items("u", 18,
                "\x3d\xd8"
                "a\0",
                4, CONC_EVALUE, NULL,
                "'utf-16-le' codec can't decode bytes in position 0-1: illegal "
                "UTF-16 surrogate");
    array_items("u", 19, "\xde\x00", 2, CONC_EVALUE, NULL,
                "illegal UTF-16 surrogate");
    array_items("h", 5, "\xff\xfe\x01\x02", 4, 0, ints(2, I(-2), I(258)), NULL);
    array_items("d", 17, "\x3f\xf8\0\0\0\0\0\0", 8, 0,
                ints(1, conc_obj_float(1.5)), NULL);
    array_items("Q", 11, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, 0,
                ints(1, big("18446744073709551615")), NULL);
    array_items("i", 22, "", 0, CONC_EVALUE, NULL,
                "third argument must be a valid machine format code.");
    array_items("i", -1, "", 0, CONC_EVALUE, NULL,
                "third argument must be a valid machine format code.");
    array_items("z", 8, "", 0, CONC_EVALUE, NULL,
                "second argument must be a valid type code");
    array_items("u", 18, "a", 1, CONC_EVALUE, NULL,
                "string length not a multiple of item size");
}

/* ---- CPython peers ---------------------------------------------------------
 */

struct peer {
    conc_popen *p;
    int out;
    char line[512]; /* the first line */
};

/* Reads one line of the peer's stdout into buf, waiting up to WAIT. */
static void
read_line(int fd, char *buf, size_t cap)
{
    conc_test_read_line_within(fd, WAIT, buf, cap);
}

/* Starts the peer in `mode`; its first line is in peer->line if
 * `first_line`. Its stdin is a pipe that peer_finish closes. */
static void
peer_start(struct peer *pr, const char *mode, const char *address,
           int first_line)
{
    char *argv[] = {PYTHON, PEER, (char *)mode, (char *)address, KEY, NULL};
    conc_popen_opts o = {.stdin_mode = CONC_STDIO_PIPE,
                         .stdout_mode = CONC_STDIO_PIPE};
    assert_conc_ok(conc_popen_new(argv, &o, &pr->p));
    assert_conc_ok(conc_popen_stdout_fd(pr->p, &pr->out));
    pr->line[0] = '\0';
    if (first_line)
        read_line(pr->out, pr->line, sizeof pr->line);
}

/* Waits for the peer to end and checks its last line and exit status. */
static void
peer_finish(struct peer *pr, const char *want)
{
    conc_test_peer_finish_last(pr->p, WAIT, want, NULL);
}

/* ---- A Barrier's action: C on conc's server, Python on CPython's ---- */

static _Atomic int trips;

static int
count_trip(void *arg)
{
    (void)arg;
    trips++;
    return 0;
}

static int
fail_trip(void *arg)
{
    (void)arg;
    return conc_fail(CONC_EVALUE, "the action failed");
}

static const conc_manager_barrier_action counting = {count_trip, NULL};
static const conc_manager_barrier_action failing = {fail_trip, NULL};

/* A started conc manager with "ActionBarrier" and "FailingBarrier",
 * Barriers whose action counts trips or fails. */
static conc_manager *
action_server(char *addr, size_t cap)
{
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    const conc_manager_type *t = conc_manager_barrier_type();
    assert_conc_ok(
        conc_manager_register(m, "ActionBarrier", t, (void *)&counting));
    assert_conc_ok(
        conc_manager_register(m, "FailingBarrier", t, (void *)&failing));
    start_at(m, addr, cap);
    return m;
}

/* The last party runs the action before any leaves; an action that fails
 * fails that party's wait with its code and breaks the barrier; a value
 * sent as the action is refused, and a Python callable does not even
 * unpickle (a traceback, the connection going on). */
static void
test_barrier_action(void **state)
{
    (void)state;
    char addr[256];
    conc_manager *m = action_server(addr, sizeof addr), *c;
    assert_conc_ok(conc_manager_connect(addr, KEY, &c));
    trips = 0;
    conc_proxy *b = make(c, "ActionBarrier", tuple(1, conc_obj_int(1)));
    int64_t index = -1;
    assert_conc_ok(conc_barrierproxy_wait(b, WAIT, &index));
    assert_conc_ok(conc_barrierproxy_wait(b, WAIT, &index));
    assert_int_equal(index, 0);
    assert_int_equal(trips, 2);
    conc_proxy *f = make(c, "FailingBarrier", tuple(1, conc_obj_int(1)));
    assert_conc(conc_barrierproxy_wait(f, WAIT, &index), CONC_EVALUE);
    assert_string_equal(conc_failure_message(),
                        "ValueError('the action failed')");
    assert_conc(conc_barrierproxy_wait(f, WAIT, &index), CONC_EBROKEN);
    conc_proxy *p;
    conc_obj *args = tuple(2, conc_obj_int(2), conc_obj_str("f"));
    assert_conc(conc_manager_create(c, "Barrier", args, &p), CONC_ETYPE);
    assert_has("cannot call a str as a Barrier's action");
    conc_obj_decref(args);
    args = tuple(2, conc_obj_int(2),
                 conc_obj_foreign("__main__", "f", NULL, NULL, 0));
    assert_conc(conc_manager_create(c, "Barrier", args, &p), CONC_ETASK);
    assert_has("UnpicklingError");
    conc_obj_decref(args);
    conc_proxy_free(f);
    conc_proxy_free(b);
    conc_manager_free(c);
    conc_manager_free(m);
}

/* CPython's server calls the Python callable sent as a Barrier's action
 * (here builtins.next, which raises TypeError without arguments): the
 * last party's wait raises it and the barrier breaks. */
static void
check_python_action(conc_manager *c)
{
    conc_obj *next = conc_obj_foreign("builtins", "next", NULL, NULL, 0);
    conc_proxy *b = make(c, "Barrier", tuple(2, conc_obj_int(1), next));
    int64_t index;
    assert_conc(conc_barrierproxy_wait(b, WAIT, &index), CONC_ETYPE);
    assert_conc(conc_barrierproxy_wait(b, WAIT, &index), CONC_EBROKEN);
    conc_proxy_free(b);
}

/* A conc client uses every type on CPython's SyncManager. */
static void
test_python_server(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    struct peer pr;
    peer_start(&pr, "sync", "127.0.0.1:0", 1);
    conc_manager *c;
    assert_conc_ok(conc_manager_connect(pr.line, KEY, &c));
    check_all(c);
    check_python_action(c);
    conc_manager_free(c);
    peer_finish(&pr, "ok");
}

/* CPython's own proxies use every type on a conc server. */
static void
test_python_client(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    char addr[256];
    conc_manager *m = action_server(addr, sizeof addr);
    struct peer pr;
    trips = 0;
    peer_start(&pr, "client", addr, 0);
    peer_finish(&pr, "ok");
    assert_int_equal(trips, 1); /* the peer's one round of ActionBarrier */
    conc_manager_free(m);
}

/* One shared object of `type` for register_object, freed by the caller. */
static void *
shared(conc_manager *m, const char *name, const conc_manager_type *type,
       conc_obj *args)
{
    conc_obj *kw = conc_obj_dict();
    void *self = NULL;
    assert_conc_ok(type->create(NULL, args, kw, &self));
    assert_conc_ok(conc_manager_register_object(m, name, type, self));
    conc_obj_decref(kw);
    conc_obj_decref(args);
    return self;
}

/* A CPython client killed (SIGKILL) while it holds a Lock, an RLock and a
 * Semaphore's unit: the server gives them back, and another client
 * acquires each within a bound. */
static void
test_killed_holder(void **state)
{
    (void)state;
    if (!have_python())
        skip();
    conc_manager *m, *c;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    void *objs[3] = {
        shared(m, "get_lock", conc_manager_lock_type(), tuple(0)),
        shared(m, "get_rlock", conc_manager_rlock_type(), tuple(0)),
        shared(m, "get_sem", conc_manager_semaphore_type(),
               tuple(1, conc_obj_int(1))),
    };
    const conc_manager_type *types[3] = {conc_manager_lock_type(),
                                         conc_manager_rlock_type(),
                                         conc_manager_semaphore_type()};
    assert_conc_ok(conc_manager_start(m));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &b));
    struct peer pr;
    peer_start(&pr, "hold", (const char *)b.data, 1);
    assert_string_equal(pr.line, "held");
    assert_conc_ok(conc_manager_connect((const char *)b.data, KEY, &c));
    conc_proxy *p[3] = {make(c, "get_lock", NULL), make(c, "get_rlock", NULL),
                        make(c, "get_sem", NULL)};
    for (int i = 0; i < 3; i++)
        assert_conc(conc_lockproxy_acquire(p[i], 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_popen_kill(pr.p));
    int rc;
    assert_conc_ok(conc_popen_wait(pr.p, WAIT, &rc));
    assert_int_equal(rc, -SIGKILL);
    double start = now_s();
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_lockproxy_acquire(p[i], GIVE_BACK_BOUND));
        assert_conc_ok(conc_lockproxy_release(p[i]));
        conc_proxy_free(p[i]);
    }
    assert_true(now_s() - start < GIVE_BACK_BOUND);
    conc_popen_free(pr.p);
    conc_manager_free(c);
    conc_manager_free(m);
    for (int i = 0; i < 3; i++)
        types[i]->release(objs[i]);
    conc_buf_free(&b);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_conc_server),
        conc_unit_test(test_request_not_unpickled),
        conc_unit_test(test_closed_client_gives_back),
        conc_unit_test(test_shutdown_wakes_wait),
        conc_unit_test(test_null_args),
        conc_unit_test(test_barrier_action),
        conc_unit_test(test_array_formats),
        conc_unit_test(test_python_server),
        conc_unit_test(test_python_client),
        conc_unit_test(test_killed_holder),
    };
    return conc_run_tests(tests);
}
