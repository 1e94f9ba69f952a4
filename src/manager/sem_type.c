/* The "Semaphore" and "BoundedSemaphore" typeids: threading's semaphores
 * as AcquirerProxy reaches them (acquire(blocking, timeout), release(n),
 * and locked, true when acquire would block). Each client's acquisitions
 * not yet balanced by releases are counted; a release by a client that
 * holds none balances another client's (the units are all alike), and
 * what a client still holds when it leaves goes back to the semaphore.
 *
 * Lock order: the registry of holders (holds.c), then the monitor. */
#include "manager/sync_types.h"

#define FIRST_HOLDS 4

struct hold {
    uint64_t client;
    int64_t n;
};

struct mgr_sem {
    struct conc__mgr_holder holder; /* first: give_back's pointer */
    struct conc__mgr_mon mon;
    int64_t value;
    int64_t bound; /* the initial value, or -1: unbounded */
    struct hold *holds;
    size_t n_holds, cap_holds;
};

/* Drops hold i (its count reached 0). */
static void
drop_hold(struct mgr_sem *s, size_t i)
{
    s->holds[i] = s->holds[--s->n_holds];
}

static void
sem_give_back(struct conc__mgr_holder *h, uint64_t client)
{
    struct mgr_sem *s = (struct mgr_sem *)h;
    conc_cond_acquire(s->mon.cond, CONC_FOREVER);
    for (size_t i = 0; i < s->n_holds; i++) {
        if (s->holds[i].client == client) {
            s->value += s->holds[i].n;
            drop_hold(s, i);
            conc_cond_notify_all(s->mon.cond);
            break;
        }
    }
    conc_cond_release(s->mon.cond);
}

/* threading's Semaphore(value=1) and BoundedSemaphore(value=1). */
static const char *const sem_params[] = {"value", NULL};
static const struct conc__mgr_sig sem_sig = {"Semaphore.__init__", 1,
                                             sem_params, 0};
static const struct conc__mgr_sig bsem_sig = {"BoundedSemaphore.__init__", 1,
                                              sem_params, 0};

/* The initial value: an int, as threading's `value < 0` test takes it
 * (a float, which CPython's semaphores take, is refused: conc's count
 * is an integer). */
static int
sem_value(conc_obj *v, int64_t *value)
{
    conc_obj_type t = conc_obj_typeof(v);
    if (!v)
        return 0;
    if (t == CONC_OBJ_FLOAT)
        return conc_fail(CONC_ETYPE, "conc's manager server counts a "
                                     "semaphore in ints, not float");
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE,
                         "'<' not supported between instances of '%s' and "
                         "'int'",
                         conc__mgr_pytype(v));
    if (conc_obj_int_value(v, value) < 0)
        return conc_fail(CONC_EOVERFLOW, "Python int too large to convert "
                                         "to C long");
    return 0;
}

static int
sem_new(int bounded, conc_obj *args, conc_obj *kwds, void **self)
{
    conc_obj *v = conc__mgr_arg(args, kwds, 0, "value");
    int64_t value = 1;
    int rc = conc__mgr_check_args(bounded ? &bsem_sig : &sem_sig, args, kwds);
    if (rc == 0)
        rc = sem_value(v, &value);
    if (rc < 0)
        return rc;
    if (value < 0)
        return conc_fail(CONC_EVALUE, "semaphore initial value must be >= 0");
    struct mgr_sem *s = conc__calloc(1, sizeof *s);
    if (!s || conc__mgr_mon_init(&s->mon) < 0) {
        conc__free(s);
        return CONC_ENOMEM;
    }
    s->value = value;
    s->bound = bounded ? value : -1;
    s->holder.give_back = sem_give_back;
    conc__mgr_holder_add(&s->holder);
    *self = s;
    return 0;
}

static int
sem_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    return sem_new(0, args, kwds, self);
}

static int
bsem_create(void *arg, conc_obj *args, conc_obj *kwds, void **self)
{
    (void)arg;
    return sem_new(1, args, kwds, self);
}

static void
sem_release_obj(void *self)
{
    struct mgr_sem *s = self;
    conc__mgr_holder_remove(&s->holder);
    conc__mgr_mon_fini(&s->mon);
    conc__free(s->holds);
    conc__free(s);
}

static void
sem_stop(void *self)
{
    struct mgr_sem *s = self;
    conc__mgr_mon_stop(&s->mon);
}

/* Counts one unit held by the calling client. */
static int
add_hold(struct mgr_sem *s)
{
    uint64_t me = conc__mgr_client();
    for (size_t i = 0; i < s->n_holds; i++) {
        if (s->holds[i].client == me) {
            s->holds[i].n++;
            return 0;
        }
    }
    if (s->n_holds == s->cap_holds) {
        size_t cap = s->cap_holds ? 2 * s->cap_holds : FIRST_HOLDS;
        void *grown = conc__realloc(s->holds, cap * sizeof *s->holds);
        if (!grown)
            return CONC_ENOMEM;
        s->holds = grown;
        s->cap_holds = cap;
    }
    s->holds[s->n_holds++] = (struct hold){me, 1};
    conc__mgr_client_holds();
    return 0;
}

static int
sem_acquire(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    struct mgr_sem *s = self;
    int64_t deadline;
    int rc = conc__mgr_acquire_deadline(args, kwds, 1, &deadline);
    if (rc < 0)
        return rc;
    conc_cond_acquire(s->mon.cond, CONC_FOREVER);
    while (s->value == 0 && rc == 0)
        rc = conc__mgr_mon_wait(&s->mon, deadline);
    if (rc == 0 && (rc = add_hold(s)) == 0)
        s->value--;
    conc_cond_release(s->mon.cond);
    if (rc == CONC_ETIMEDOUT)
        return conc__mgr_bool(0, result);
    return rc < 0 ? rc : conc__mgr_bool(1, result);
}

/* Balances n units held: the caller's first, then anyone's. */
static void
take_holds(struct mgr_sem *s, int64_t n)
{
    uint64_t me = conc__mgr_client();
    for (size_t i = 0; i < s->n_holds && n > 0; i++) {
        if (s->holds[i].client == me) {
            int64_t k = n < s->holds[i].n ? n : s->holds[i].n;
            n -= k;
            if ((s->holds[i].n -= k) == 0)
                drop_hold(s, i);
            break;
        }
    }
    while (n > 0 && s->n_holds > 0) {
        int64_t k = n < s->holds[0].n ? n : s->holds[0].n;
        n -= k;
        if ((s->holds[0].n -= k) == 0)
            drop_hold(s, 0);
    }
}

static int
sem_release(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)result;
    struct mgr_sem *s = self;
    conc_obj *no = conc__mgr_arg(args, kwds, 0, "n");
    int64_t n = 1;
    if (no && conc_obj_int_value(no, &n) < 0)
        return conc_fail(CONC_ETYPE, "n must be an int");
    if (n < 1)
        return conc_fail(CONC_EVALUE, "n must be one or more");
    int rc = 0;
    conc_cond_acquire(s->mon.cond, CONC_FOREVER);
    if (s->bound >= 0 && s->value + n > s->bound) {
        rc = conc_fail(CONC_EVALUE, "Semaphore released too many times");
    } else {
        s->value += n;
        take_holds(s, n);
        conc_cond_notify_all(s->mon.cond);
    }
    conc_cond_release(s->mon.cond);
    return rc;
}

static int
sem_locked(void *self, conc_obj *args, conc_obj *kwds, conc_obj **result)
{
    (void)args;
    (void)kwds;
    struct mgr_sem *s = self;
    conc_cond_acquire(s->mon.cond, CONC_FOREVER);
    int zero = s->value == 0;
    conc_cond_release(s->mon.cond);
    return conc__mgr_bool(zero, result);
}

static const conc_manager_method sem_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"locked", sem_locked},
};

static const conc_manager_type sem_type = {
    .create = sem_create,
    .release = sem_release_obj,
    .stop = sem_stop,
    .methods = sem_methods,
    .n_methods = sizeof sem_methods / sizeof sem_methods[0],
};

static const conc_manager_type bsem_type = {
    .create = bsem_create,
    .release = sem_release_obj,
    .stop = sem_stop,
    .methods = sem_methods,
    .n_methods = sizeof sem_methods / sizeof sem_methods[0],
};

const conc_manager_type *
conc_manager_semaphore_type(void)
{
    return &sem_type;
}

const conc_manager_type *
conc_manager_bounded_semaphore_type(void)
{
    return &bsem_type;
}
