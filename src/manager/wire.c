/* The manager's wire format: CPython's pickled request and reply tuples
 * over conc_conn, and the mapping between conc codes and the exceptions
 * that travel in '#ERROR' replies and '#TRACEBACK' texts. */
#include <math.h>
#include <stdio.h>

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

/* The keyword arguments that carry a Python function, which conc's
 * server cannot call: a request that unpickles only with the function as
 * an inert record still goes to its method, which refuses the function
 * with a TypeError that says why, rather than an UnpicklingError. */
static const struct {
    const char *method, *keyword;
} callable_args[] = {
    {"sort", "key"},
};

/* 1 if req is a method call given one of callable_args. */
static int
carries_callable(const conc_obj *req)
{
    const char *method = conc_obj_str_value(conc_obj_seq_get(req, 1));
    conc_obj *kwds = conc_obj_seq_get(req, 3);
    if (conc_obj_typeof(req) != CONC_OBJ_TUPLE || conc_obj_len(req) != 4 ||
        !conc_obj_str_value(conc_obj_seq_get(req, 0)) || !method ||
        conc_obj_typeof(kwds) != CONC_OBJ_DICT)
        return 0;
    for (size_t i = 0; i < sizeof callable_args / sizeof *callable_args; i++)
        if (!strcmp(method, callable_args[i].method) &&
            conc_obj_dict_get_str(kwds, callable_args[i].keyword))
            return 1;
    return 0;
}

/* ('#TRACEBACK', text) for a request that does not unpickle, as
 * CPython's server answers one, with the reader's failure. */
static conc_obj *
unpickling_error(void)
{
    conc_buf text = CONC_BUF_INIT;
    int rc = conc_buf_appendf(&text,
                              "Traceback (most recent call last):\n"
                              "  File \"<conc manager>\", in recv\n"
                              "_pickle.UnpicklingError: %s (conc's manager "
                              "reads values, never a Python object it would "
                              "have to import or call)\n",
                              conc_failure_message());
    conc_obj *s =
        rc == 0 ? conc_obj_strn((const char *)text.data, text.len) : NULL;
    conc_buf_free(&text);
    return s ? conc__mgr_pair("#TRACEBACK", s) : NULL;
}

int
conc__mgr_recv_request(conc_conn *c, double timeout, conc_obj **out)
{
    conc_buf b = CONC_BUF_INIT;
    int rc = conc_conn_recv_bytes(c, timeout, &b);
    int whole = rc == 0;
    if (whole) {
        conc_obj_load_opts o = {0};
        rc = conc_obj_loads(b.data, b.len, &o, out, NULL);
    }
    if (rc >= 0 || rc == CONC_ENOMEM || !whole) {
        conc_buf_free(&b);
        return rc; /* a request, or the connection's own error */
    }
    conc_obj *tb = unpickling_error(), *req = NULL;
    conc_obj_load_opts lenient = {.any_global = 1};
    if (tb && conc_obj_loads(b.data, b.len, &lenient, &req, NULL) == 0 &&
        carries_callable(req)) {
        conc_obj_decref(tb);
        conc_buf_free(&b);
        *out = req;
        return 0;
    }
    conc_obj_decref(req);
    conc_buf_free(&b);
    *out = tb;
    return tb ? 1 : CONC_ENOMEM;
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
    {CONC__MGR_ERUNTIME, "builtins", "RuntimeError"},
    {CONC_ENOTLOCKED, "builtins", "RuntimeError"},
    {CONC_ENOTOWNER, "builtins", "RuntimeError"},
    /* AttributeError comes back as CONC_EKEY: there is no public code. */
    {CONC__MGR_EATTR, "builtins", "AttributeError"},
    {CONC_EKEY, "builtins", "AttributeError"},
    /* An iterator's end comes back as CONC_EEMPTY (nothing more). */
    {CONC__MGR_ESTOP, "builtins", "StopIteration"},
    {CONC_EEMPTY, "builtins", "StopIteration"},
};

#define N_EXCEPTIONS (sizeof exceptions / sizeof exceptions[0])

/* Exceptions a reply may carry that no method's code becomes: a conc
 * server's refusal past its bound on clients (admit.c). */
static const struct {
    int code;
    const char *module, *name;
} received_only[] = {
    {CONC_EBUSY, "builtins", "ConnectionRefusedError"},
};

/* The exception's arguments when the method gave none: the failure
 * message, if there is one (queue.Empty, queue.Full and
 * BrokenBarrierError are raised with none). */
static conc_obj *
default_args(int code)
{
    const char *msg = conc_failure_message();
    if (code == CONC_EEMPTY || code == CONC_EFULL || code == CONC_EBROKEN ||
        !msg[0])
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
    for (size_t i = 0;
         module && i < sizeof received_only / sizeof *received_only; i++)
        if (!strcmp(module, received_only[i].module) &&
            !strcmp(name, received_only[i].name))
            code = received_only[i].code;
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

/* The text of an exception's arguments after "Name: " in a traceback's
 * last line, as Python's str(exc): the one argument (a KeyError's repr),
 * the tuple's repr for several, and for none the failure message (quoted
 * for a KeyError, whose argument it stands for). */
static int
exception_text(int key, conc_obj *args, conc_buf *out)
{
    conc_obj *a0 = conc_obj_seq_get(args, 0);
    size_t n = conc_obj_len(args);
    if (n == 1 && !key && conc_obj_str_value(a0))
        return conc_buf_append(out, conc_obj_str_value(a0), conc_obj_len(a0));
    if (n == 0 && !key)
        return conc_buf_appendf(out, "%s", conc_failure_message());
    conc_obj *s = n ? NULL : conc_obj_str(conc_failure_message());
    conc_buf r = CONC_BUF_INIT; /* conc_obj_repr replaces its buffer */
    int rc = n || s ? conc_obj_repr(n == 1 ? a0
                                    : n    ? args
                                           : s,
                                    &r)
                    : CONC_ENOMEM;
    if (rc == 0)
        rc = conc_buf_append(out, r.data, r.len);
    conc_buf_free(&r);
    conc_obj_decref(s);
    return rc;
}

conc_obj *
conc__mgr_traceback(const char *what, int code, conc_obj *args)
{
    size_t i = 0;
    if (code == CONC__MGR_ENOATTR) /* ends as CPython's fallback lookup */
        code = CONC_EKEY;
    while (i < N_EXCEPTIONS && exceptions[i].code != code)
        i++;
    conc_buf b = CONC_BUF_INIT;
    int rc = conc_buf_appendf(&b,
                              "Traceback (most recent call last):\n"
                              "  File \"<conc manager>\", in %s\n",
                              what);
    /* With arguments, the failure message says where, as the source line
     * of a Python traceback does. */
    if (rc == 0 && args && conc_failure_message()[0])
        rc = conc_buf_appendf(&b, "    %s\n", conc_failure_message());
    if (rc == 0 && i == N_EXCEPTIONS)
        rc = conc_buf_appendf(&b, "%s: %s", conc_err_name(code),
                              conc_failure_message());
    else if (rc == 0 && strcmp(exceptions[i].module, "builtins"))
        rc = conc_buf_appendf(&b, "%s.", exceptions[i].module);
    if (rc == 0 && i < N_EXCEPTIONS)
        rc = conc_buf_appendf(&b, "%s: ", exceptions[i].name);
    if (rc == 0 && i < N_EXCEPTIONS)
        rc = exception_text(code == CONC_EKEY, args, &b);
    if (rc == 0)
        rc = conc_buf_append(&b, "\n", 1);
    conc_obj *text =
        rc == 0 ? conc_obj_strn((const char *)b.data, b.len) : NULL;
    conc_buf_free(&b);
    conc_obj_decref(args);
    return text ? conc__mgr_pair("#TRACEBACK", text) : NULL;
}

/* The code of the exception named "Name" or "module.Name" (len bytes at
 * name), CONC_ETASK for one conc has no code for. */
static int
code_of_name(const char *name, size_t len, const char *line)
{
    const char *dot = NULL;
    for (const char *p = name; p < name + len; p++)
        if (*p == '.')
            dot = p; /* the last dot splits module and name */
    const char *module = dot ? name : "builtins";
    size_t mlen = dot ? (size_t)(dot - name) : strlen(module);
    const char *base = dot ? dot + 1 : name;
    size_t blen = (size_t)(name + len - base);
    int code = CONC_ETASK;
    for (size_t i = 0; i < N_EXCEPTIONS; i++)
        if (strlen(exceptions[i].module) == mlen &&
            !strncmp(exceptions[i].module, module, mlen) &&
            strlen(exceptions[i].name) == blen &&
            !strncmp(exceptions[i].name, base, blen))
            code = exceptions[i].code;
    if (code == CONC_ENOTOWNER && strstr(line, "release unlocked lock"))
        code = CONC_ENOTLOCKED;
    return code;
}

int
conc__mgr_traceback_code(const char *text)
{
    size_t end = strlen(text);
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    const char *line = text + start;
    size_t len = end - start, name_len = 0;
    while (name_len < len && line[name_len] != ':' && line[name_len] != ' ')
        name_len++;
    int code = name_len ? code_of_name(line, name_len, line) : CONC_ETASK;
    if (code == CONC_ETASK)
        return conc_fail(code, "%s", text);
    return conc_fail(code, "%.*s", (int)len, line);
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
