/* SyncManager's "Iterator" typeid, as a dict's __iter__ makes it: the
 * server keeps a dict_keyiterator and answers '#PROXY' with its Token;
 * the client's IteratorProxy then calls __next__ once per key, until
 * StopIteration. The iterator reads the live dict, as CPython's does:
 * a dict whose size changed since gives RuntimeError on every later
 * __next__, and one whose keys changed at the same size gives it once
 * the iterator meets more keys than the dict had. IteratorProxy also
 * exposes send, throw and close, which a dict iterator lacks: CPython's
 * server answers them with a traceback (its getattr fails, then its
 * fallback lookup), and so does this one. The iterator holds a reference
 * to the dict's box, so that it outlives a dict whose last proxy went.
 *
 * Lock order: the box's lock only; it also guards the iterator. */
#include "manager/dict_ops.h"

#define CHANGED_SIZE "dictionary changed size during iteration"
#define CHANGED_KEYS "dictionary keys changed during iteration"
#define NO_CALLABLE  "Without callable, must have one non-keyword argument"

struct dict_iter {
    struct conc__mgr_box *box; /* the dict's, one reference */
    size_t pos;                /* the next entry to look at */
    size_t used;               /* the dict's size when the iterator began */
    size_t left;               /* the keys still expected */
    int broken;                /* the size changed: every call fails */
    int done;                  /* exhausted: every call is StopIteration */
};

int
conc__mgr_wrapper_args(conc_obj *args, conc_obj *kwds, const char *name,
                       size_t n)
{
    if (kwds && conc_obj_len(kwds) > 0)
        return conc_fail(CONC_ETYPE, "wrapper %s() takes no keyword arguments",
                         name);
    size_t got = conc_obj_len(args);
    if (got != n)
        return conc_fail(CONC_ETYPE, "expected %zu argument%s, got %zu", n,
                         n == 1 ? "" : "s", got);
    return 0;
}

int
conc__mgr_dict_iter(void *self, conc_obj *args, conc_obj *kwds, void **obj,
                    int *borrowed)
{
    struct conc__mgr_box *b = self;
    int rc = conc__mgr_wrapper_args(args, kwds, "__iter__", 0);
    if (rc < 0)
        return rc;
    struct dict_iter *it = conc__calloc(1, sizeof *it);
    if (!it)
        return CONC_ENOMEM;
    atomic_fetch_add(&b->refs, 1);
    it->box = b;
    conc_lock_acquire(b->lock, CONC_FOREVER);
    it->used = it->left = conc_obj_len(b->v);
    conc_lock_release(b->lock);
    *obj = it;
    *borrowed = 0;
    return 0;
}

/* One step of CPython's dictiter_iternextkey over d: 1 with the key
 * (borrowed), 0 at the end, or RuntimeError. Under the box's lock. */
static int
step(struct dict_iter *it, const conc_obj *d, conc_obj **key)
{
    if (it->done)
        return 0;
    if (it->broken || conc_obj_len(d) != it->used) {
        it->broken = 1;
        return conc_fail(CONC__MGR_ERUNTIME, CHANGED_SIZE);
    }
    if (conc_obj_next(d, &it->pos, key, NULL) != 1) {
        it->done = 1;
        return 0;
    }
    if (it->left == 0) { /* a key it did not expect */
        it->done = 1;
        return conc_fail(CONC__MGR_ERUNTIME, CHANGED_KEYS);
    }
    it->left--;
    return 1;
}

static int
it_next(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct dict_iter *it = self;
    int rc = conc__mgr_wrapper_args(args, kwds, "__next__", 0);
    if (rc < 0)
        return rc;
    conc_obj *key = NULL;
    conc_lock_acquire(it->box->lock, CONC_FOREVER);
    rc = step(it, it->box->v, &key);
    if (rc == 1)
        *result = conc_obj_incref(key);
    conc_lock_release(it->box->lock);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return rc;
    *result = conc_obj_tuple(0); /* StopIteration() */
    return *result ? CONC__MGR_ESTOP : CONC_ENOMEM;
}

/* send, throw and close: attributes a dict_keyiterator lacks. */
static int
lacks(const char *name)
{
    return conc_fail(CONC__MGR_ENOATTR, "%s", name);
}

static int
it_send(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)self, (void)args, (void)kwds, (void)result;
    return lacks("send");
}

static int
it_throw(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)self, (void)args, (void)kwds, (void)result;
    return lacks("throw");
}

static int
it_close(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)self, (void)args, (void)kwds, (void)result;
    return lacks("close");
}

/* create('Iterator', ...): CPython registers the typeid without a
 * callable, so its server takes the one argument given as the object
 * itself; conc's server has no such object to take, and makes iterators
 * only for a dict's __iter__. */
static int
it_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    (void)self;
    if (conc_obj_len(args) != 1 || conc_obj_len(kwds) != 0)
        return conc_fail(CONC_EVALUE, NO_CALLABLE);
    return conc_fail(CONC_ETYPE, "conc's manager makes an Iterator only for "
                                 "a dict's __iter__");
}

static void
it_release(void *self)
{
    struct dict_iter *it = self;
    conc__mgr_box_free(it->box);
    conc__free(it);
}

/* IteratorProxy's exposed names, in its order. */
static const conc_manager_method iter_methods[] = {
    {"__next__", it_next},
    {"send", it_send},
    {"throw", it_throw},
    {"close", it_close},
};

static const conc_manager_type iter_type = {
    .create = it_create,
    .release = it_release,
    .methods = iter_methods,
    .n_methods = sizeof iter_methods / sizeof iter_methods[0],
};

const conc_manager_type *
conc__mgr_iterator_type(void)
{
    return &iter_type;
}
