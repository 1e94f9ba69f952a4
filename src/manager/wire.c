/* The manager's wire format: CPython's pickled request and reply tuples
 * over conc_conn, and the mapping between conc codes and the exceptions
 * that travel in '#ERROR' replies. */
#include <math.h>

#include "manager/manager_internal.h"

/* Room on the stack for a request or a reply as most calls make them (a
 * dict's set is 70 bytes pickled), so that a call allocates no buffer
 * for its bytes; a larger one grows onto the heap. */
#define WIRE_STACK 512

int
conc__mgr_send(conc_conn *c, const conc_obj *o)
{
    uint8_t stack[WIRE_STACK];
    conc_buf b;
    conc_buf_init_with(&b, stack, sizeof stack);
    int rc = conc_obj_dumps(o, &b);
    if (rc == 0)
        rc = conc_conn_send_bytes(c, b.data, b.len, CONC_FOREVER);
    conc_buf_free(&b);
    return rc;
}

int
conc__mgr_recv(conc_conn *c, double timeout, int foreign, conc_obj **out)
{
    uint8_t stack[WIRE_STACK];
    conc_buf b;
    conc_buf_init_with(&b, stack, sizeof stack);
    int rc = conc_conn_recv_bytes(c, timeout, &b);
    if (rc == 0) {
        conc_obj_load_opts o = {.any_global = foreign};
        rc = conc_obj_loads(b.data, b.len, &o, out, NULL);
    }
    conc_buf_free(&b);
    return rc;
}

conc_obj *
conc__mgr_pair(const char *kind, conc_obj *value)
{
    conc_obj *t = conc_obj_tuple(2);
    conc_obj *k = conc_obj_str(kind);
    if (!t || !k) {
        conc_obj_decref(t);
        conc_obj_decref(k);
        conc_obj_decref(value);
        return NULL;
    }
    conc_obj_tuple_set_new(t, 0, k);
    conc_obj_tuple_set_new(t, 1, value ? value : conc_obj_none());
    return t;
}

/* The exceptions conc codes stand for, both ways. */
static const struct {
    int code;
    const char *module, *name;
} exceptions[] = {
    {CONC_EKEY, "builtins", "KeyError"},
    {CONC_EINDEX, "builtins", "IndexError"},
    {CONC_EEMPTY, "_queue", "Empty"},
    {CONC_EEMPTY, "queue", "Empty"},
    {CONC_EFULL, "queue", "Full"},
    {CONC_ETYPE, "builtins", "TypeError"},
    {CONC_EVALUE, "builtins", "ValueError"},
    {CONC_EBROKEN, "threading", "BrokenBarrierError"},
    {CONC_EOVERFLOW, "builtins", "OverflowError"},
    /* Two codes become RuntimeError, which comes back as CONC_ENOTOWNER
     * (the last entry of a name wins), or CONC_ENOTLOCKED for a Lock's
     * "release unlocked lock" (see conc__mgr_exception_code). */
    {CONC_ENOTLOCKED, "builtins", "RuntimeError"},
    {CONC_ENOTOWNER, "builtins", "RuntimeError"},
    /* AttributeError comes back as CONC_EKEY: there is no public code. */
    {CONC__MGR_EATTR, "builtins", "AttributeError"},
    {CONC_EKEY, "builtins", "AttributeError"},
};

#define N_EXCEPTIONS (sizeof exceptions / sizeof exceptions[0])

/* The exception's arguments when the method gave none: the failure
 * message, if there is one (queue.Empty and queue.Full have none). */
static conc_obj *
default_args(int code)
{
    const char *msg = conc_failure_message();
    if (code == CONC_EEMPTY || code == CONC_EFULL || !msg[0])
        return conc_obj_tuple(0);
    conc_obj *t = conc_obj_tuple(1);
    conc_obj *s = conc_obj_str(msg);
    if (!t || !s) {
        conc_obj_decref(t);
        conc_obj_decref(s);
        return NULL;
    }
    conc_obj_tuple_set_new(t, 0, s);
    return t;
}

conc_obj *
conc__mgr_exception(int code, conc_obj *args)
{
    for (size_t i = 0; i < N_EXCEPTIONS; i++) {
        if (exceptions[i].code != code)
            continue;
        if (!args)
            args = default_args(code);
        if (!args)
            return NULL;
        conc_obj *e = conc_obj_foreign(exceptions[i].module, exceptions[i].name,
                                       args, NULL, 0);
        conc_obj_decref(args);
        return e;
    }
    conc_obj_decref(args);
    return NULL;
}

int
conc__mgr_exception_code(const conc_obj *exc)
{
    int code = CONC_ETASK;
    const char *module = conc_obj_foreign_module(exc);
    const char *name = conc_obj_foreign_name(exc);
    for (size_t i = 0; module && i < N_EXCEPTIONS; i++)
        if (!strcmp(module, exceptions[i].module) &&
            !strcmp(name, exceptions[i].name))
            code = exceptions[i].code;
    conc_buf text = CONC_BUF_INIT;
    int ok =
        conc_obj_repr(exc, &text) == 0 && conc_buf_append(&text, "", 1) == 0;
    if (ok && code == CONC_ENOTOWNER &&
        strstr((const char *)text.data, "release unlocked lock"))
        code = CONC_ENOTLOCKED;
    if (ok)
        conc_fail(code, "%s", (const char *)text.data);
    conc_buf_free(&text);
    return code;
}

conc_obj *
conc__mgr_arg(conc_obj *args, conc_obj *kwds, size_t i, const char *name)
{
    if (i < conc_obj_len(args))
        return conc_obj_seq_get(args, i);
    return conc_obj_dict_get_str(kwds, name);
}

int
conc__mgr_timeout(conc_obj *args, conc_obj *kwds, size_t first, double *timeout)
{
    conc_obj *block = conc__mgr_arg(args, kwds, first, "block");
    conc_obj *t = conc__mgr_arg(args, kwds, first + 1, "timeout");
    if (block && conc_obj_truth(block) == 0) {
        *timeout = 0;
        return 0;
    }
    if (!t || conc_obj_typeof(t) == CONC_OBJ_NONE) {
        *timeout = CONC_FOREVER;
        return 0;
    }
    if (conc_obj_float_value(t, timeout) != 0 || isnan(*timeout))
        return conc_fail(CONC_ETYPE, "timeout must be a number");
    if (*timeout < 0)
        return conc_fail(CONC_EVALUE, "'timeout' must be a non-negative "
                                      "number");
    return 0;
}
