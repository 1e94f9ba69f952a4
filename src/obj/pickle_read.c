/* The pickle reader: CPython's pickle.loads for protocols 2 to 5, limited
 * to conc_obj's types, and safe on bytes from anyone.
 *
 * It is CPython's stack machine (Lib/pickle.py's _Unpickler): a stack of
 * values, a stack of marks (positions in the value stack), and a memo of
 * values by index. Each opcode pushes at most one value, so the work and
 * the memory are linear in the input, which max_size bounds; max_items,
 * max_memo, max_depth and max_int_bytes bound the rest.
 *
 * Globals are never imported: GLOBAL and STACK_GLOBAL make a bare foreign
 * record (a name) if the allowlist knows the name, and REDUCE and NEWOBJ
 * turn a name and its arguments into a value (builtins.list(...) is a
 * list, _codecs.encode(s, 'latin1') is bytes) or a foreign record (an
 * exception, a Token). Nothing else is callable.
 *
 * Cycles: a container that contains itself would never be freed (values
 * are reference counted), so the reader refuses recursive structures. A
 * value that the memo handed out again (BINGET) gets CONC__OBJ_SHARED, and
 * an opcode that changes a container so flagged fails. That refuses every
 * cycle: to put a path back to a container inside it, an opcode must add
 * to the container after a reference to it went elsewhere, and the only
 * way back to a value the stack gave up is the memo. CPython writes a
 * container's items before anyone can fetch it, except for recursive
 * structures, so nothing else is refused. */
#include <stdio.h>
#include <string.h>

#include "obj/obj_internal.h"
#include "obj/pickle.h"

#define DEFAULT_MAX_SIZE      ((size_t)64 << 20)
#define DEFAULT_MAX_DEPTH     200
#define DEFAULT_MAX_ITEMS     ((size_t)4 << 20)
#define DEFAULT_MAX_MEMO      ((size_t)1 << 20)
#define DEFAULT_MAX_INT_BYTES 4096
/* The header's depth field is 16 bits. */
#define HARD_MAX_DEPTH 10000
/* Longest module or name a GLOBAL line may give. */
#define MAX_GLOBAL_LINE  1024
#define LOWEST_PROTOCOL  2
#define HIGHEST_PROTOCOL 5

struct reader {
    const uint8_t *p;
    size_t len, pos, op_at;
    int op;
    conc_obj **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t nmarks, marks_cap;
    conc_obj **memo;
    size_t memo_cap, memo_count;
    size_t items;
    conc_obj_load_opts lim;
    conc_obj_load_error *err;
};

/* ---- Failures ------------------------------------------------------------ */

static const char *
opname(int op)
{
    static const struct {
        int op;
        const char *name;
    } names[] = {
#define OPNAME(name) {OP_##name, #name}
        OPNAME(PROTO),          OPNAME(STOP),
        OPNAME(MARK),           OPNAME(FRAME),
        OPNAME(NONE),           OPNAME(NEWTRUE),
        OPNAME(NEWFALSE),       OPNAME(BININT1),
        OPNAME(BININT2),        OPNAME(BININT),
        OPNAME(LONG1),          OPNAME(LONG4),
        OPNAME(BINFLOAT),       OPNAME(SHORT_BINUNICODE),
        OPNAME(BINUNICODE),     OPNAME(BINUNICODE8),
        OPNAME(SHORT_BINBYTES), OPNAME(BINBYTES),
        OPNAME(BINBYTES8),      OPNAME(BYTEARRAY8),
        OPNAME(EMPTY_TUPLE),    OPNAME(TUPLE1),
        OPNAME(TUPLE2),         OPNAME(TUPLE3),
        OPNAME(TUPLE),          OPNAME(EMPTY_LIST),
        OPNAME(APPEND),         OPNAME(APPENDS),
        OPNAME(EMPTY_DICT),     OPNAME(SETITEM),
        OPNAME(SETITEMS),       OPNAME(EMPTY_SET),
        OPNAME(ADDITEMS),       OPNAME(FROZENSET),
        OPNAME(MEMOIZE),        OPNAME(BINGET),
        OPNAME(LONG_BINGET),    OPNAME(BINPUT),
        OPNAME(LONG_BINPUT),    OPNAME(POP),
        OPNAME(POP_MARK),       OPNAME(STACK_GLOBAL),
        OPNAME(GLOBAL),         OPNAME(REDUCE),
        OPNAME(NEWOBJ),         OPNAME(BUILD),
        OPNAME(NEWOBJ_EX),      OPNAME(BINPERSID),
        OPNAME(PERSID),         OPNAME(EXT1),
        OPNAME(EXT2),           OPNAME(EXT4),
        OPNAME(NEXT_BUFFER),    OPNAME(READONLY_BUFFER),
#undef OPNAME
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].op == op)
            return names[i].name;
    return op < 0 ? "end of input" : "unknown opcode";
}

static int fail(struct reader *r, int code, const char *fmt, ...)
    CONC_PRINTF(3, 4);

static int
fail(struct reader *r, int code, const char *fmt, ...)
{
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->op < 0)
        conc_fail(code, "pickle: %s (at the end of the input, %zu)", what,
                  r->op_at);
    else
        conc_fail(code, "pickle: %s (opcode 0x%02x %s at %zu)", what, r->op,
                  opname(r->op), r->op_at);
    if (r->err) {
        r->err->offset = r->op_at;
        r->err->opcode = r->op;
        snprintf(r->err->message, sizeof r->err->message, "%s",
                 conc_failure_message());
    }
    return code;
}

static int
nomem(struct reader *r)
{
    return fail(r, CONC_ENOMEM, "out of memory");
}

/* ---- Input --------------------------------------------------------------- */

static int
take(struct reader *r, size_t n, const uint8_t **at)
{
    if (r->len - r->pos < n)
        return fail(r, CONC_EPROTO, "truncated: %zu bytes wanted, %zu left", n,
                    r->len - r->pos);
    *at = r->p + r->pos;
    r->pos += n;
    return 0;
}

/* An unsigned little-endian number of `n` bytes. */
static int
take_le(struct reader *r, size_t n, uint64_t *v)
{
    const uint8_t *at = NULL;
    int e = take(r, n, &at);
    if (e)
        return e;
    *v = 0;
    for (size_t i = n; i-- > 0;)
        *v = *v << 8 | at[i];
    return 0;
}

/* ---- The stacks ---------------------------------------------------------- */

static size_t
mark_base(const struct reader *r)
{
    return r->nmarks ? r->marks[r->nmarks - 1] : 0;
}

/* Pushes `o`, stealing it; NULL (a failed constructor) is out of memory. */
static int
push(struct reader *r, conc_obj *o)
{
    if (!o)
        return nomem(r);
    if (++r->items > r->lim.max_items) {
        conc_obj_decref(o);
        return fail(r, CONC_EOVERFLOW, "more than %zu objects",
                    r->lim.max_items);
    }
    if (r->sp == r->stack_cap) {
        size_t cap = r->stack_cap ? r->stack_cap * 2 : 16;
        conc_obj **s = conc__realloc(r->stack, cap * sizeof *s);
        if (!s) {
            conc_obj_decref(o);
            return nomem(r);
        }
        r->stack = s;
        r->stack_cap = cap;
    }
    r->stack[r->sp++] = o;
    return 0;
}

/* The value `back` places from the top (0 = top), if above the mark. */
static int
peek(struct reader *r, size_t back, conc_obj **o)
{
    if (r->sp - mark_base(r) <= back)
        return fail(r, CONC_EPROTO, "stack underflow");
    *o = r->stack[r->sp - 1 - back];
    return 0;
}

/* Pops the top value; the caller owns it. */
static int
pop(struct reader *r, conc_obj **o)
{
    int e = peek(r, 0, o);
    if (!e)
        r->sp--;
    return e;
}

static int
push_mark(struct reader *r)
{
    if (r->nmarks == r->marks_cap) {
        size_t cap = r->marks_cap ? r->marks_cap * 2 : 8;
        size_t *m = conc__realloc(r->marks, cap * sizeof *m);
        if (!m)
            return nomem(r);
        r->marks = m;
        r->marks_cap = cap;
    }
    r->marks[r->nmarks++] = r->sp;
    return 0;
}

/* Pops the top mark; *base receives where its items start. */
static int
pop_mark(struct reader *r, size_t *base)
{
    if (!r->nmarks)
        return fail(r, CONC_EPROTO, "no MARK before it");
    *base = r->marks[--r->nmarks];
    return 0;
}

/* Records that `item` now lies inside `c`, checking the depth limit. */
static int
nest(struct reader *r, conc_obj *c, const conc_obj *item)
{
    size_t d = (size_t)item->depth + 1;
    if (d > r->lim.max_depth)
        return fail(r, CONC_EOVERFLOW, "nested deeper than %zu",
                    r->lim.max_depth);
    if (d > c->depth)
        c->depth = (uint16_t)d;
    return 0;
}

/* A container the opcode may change: of type `type`, never handed out by
 * the memo. */
static int
target(struct reader *r, size_t back, conc_obj_type type, conc_obj **c)
{
    int e = peek(r, back, c);
    if (e)
        return e;
    if ((*c)->type != type)
        return fail(r, CONC_EPROTO, "applied to a value of the wrong type");
    if ((*c)->flags & CONC__OBJ_SHARED)
        return fail(r, CONC_EPROTO, "recursive structure");
    return 0;
}

/* ---- Scalars ------------------------------------------------------------- */

static int
op_int(struct reader *r, size_t n, bool is_signed)
{
    uint64_t v = 0;
    int e = take_le(r, n, &v);
    if (e)
        return e;
    int64_t x = is_signed ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
    return push(r, conc_obj_int(x));
}

static int
op_long(struct reader *r, size_t nlen)
{
    uint64_t n = 0;
    const uint8_t *at = NULL;
    int e = take_le(r, nlen, &n);
    if (e)
        return e;
    if (nlen == 4 && (n & 0x80000000u))
        return fail(r, CONC_EPROTO, "negative length");
    if (n > r->lim.max_int_bytes)
        return fail(r, CONC_EOVERFLOW, "int of %llu bytes, over %zu",
                    (unsigned long long)n, r->lim.max_int_bytes);
    e = take(r, (size_t)n, &at);
    return e ? e : push(r, conc__int_from_le(at, (size_t)n));
}

static int
op_float(struct reader *r)
{
    const uint8_t *at = NULL;
    int e = take(r, 8, &at);
    if (e)
        return e;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | at[i]; /* big-endian, unlike every other field */
    double v;
    memcpy(&v, &bits, sizeof v);
    return push(r, conc_obj_float(v));
}

/* str and bytes (and bytearray) with an `nlen`-byte length. */
static int
op_text(struct reader *r, size_t nlen, conc_obj_type type, bool bytearray)
{
    uint64_t n = 0;
    const uint8_t *at = NULL;
    int e = take_le(r, nlen, &n);
    if (e)
        return e;
    if (n > r->len - r->pos)
        return fail(r, CONC_EPROTO, "truncated: %llu bytes wanted, %zu left",
                    (unsigned long long)n, r->len - r->pos);
    e = take(r, (size_t)n, &at);
    if (e)
        return e;
    if (type == CONC_OBJ_STR && !conc__utf8_valid(at, (size_t)n))
        return fail(r, CONC_EPROTO, "str is not valid UTF-8");
    conc_obj *o = conc__str_alloc(type, (size_t)n);
    if (o && n)
        memcpy(CONC__STR(o)->data, at, (size_t)n);
    if (!o || !bytearray)
        return push(r, o);
    conc_obj *args = conc__seq_from(CONC_OBJ_TUPLE, &o, 1);
    conc_obj *ba =
        args ? conc_obj_foreign("builtins", "bytearray", args, NULL, 0) : NULL;
    conc_obj_decref(args);
    return push(r, ba);
}

/* ---- Containers ---------------------------------------------------------- */

/* Pops the values above `base` into a new tuple, list or frozenset. */
static int
collect(struct reader *r, size_t base, conc_obj_type type)
{
    size_t n = r->sp - base;
    conc_obj *c = type == CONC_OBJ_FROZENSET
                      ? conc__table_new(type)
                      : conc__seq_from(type, n ? r->stack + base : NULL, n);
    int e = c ? 0 : CONC_ENOMEM;
    if (type == CONC_OBJ_FROZENSET) {
        /* The stack's references are dropped even when the set could not
         * be made: the stack forgets them below. */
        for (size_t i = base; c && i < r->sp && !e; i++) {
            e = nest(r, c, r->stack[i]);
            e = e ? e
                  : conc__table_insert(c, conc_obj_incref(r->stack[i]), NULL);
        }
        for (size_t i = base; i < r->sp; i++)
            conc_obj_decref(r->stack[i]);
    } else if (c) {
        for (size_t i = 0; i < n && !e; i++)
            e = nest(r, c, CONC__SEQ(c)->items[i]);
    }
    r->sp = base; /* the items now belong to c, or were dropped */
    if (e) {
        conc_obj_decref(c);
        return e == CONC_ENOMEM  ? nomem(r)
               : e == CONC_ETYPE ? fail(r, CONC_ETYPE, "unhashable member")
                                 : e;
    }
    return push(r, c);
}

static int
op_tuple(struct reader *r, int n)
{
    size_t base = 0;
    int e = 0;
    if (n < 0)
        e = pop_mark(r, &base);
    else if (r->sp - mark_base(r) < (size_t)n)
        e = fail(r, CONC_EPROTO, "stack underflow");
    else
        base = r->sp - (size_t)n;
    return e ? e : collect(r, base, CONC_OBJ_TUPLE);
}

/* Adds the values above `base` to the list or set just below them. */
static int
add_items(struct reader *r, size_t base, conc_obj_type type)
{
    conc_obj *c = NULL;
    if (base == 0 || base > r->sp)
        return fail(r, CONC_EPROTO, "stack underflow");
    size_t saved = r->sp;
    r->sp = base;
    int e = target(r, 0, type, &c);
    r->sp = saved;
    for (size_t i = base; i < r->sp; i++) {
        conc_obj *it = r->stack[i];
        r->stack[i] = NULL;
        if (!e)
            e = nest(r, c, it);
        if (e) {
            conc_obj_decref(it);
        } else if (type == CONC_OBJ_LIST) {
            e = conc__seq_push(c, it) ? nomem(r) : 0;
        } else {
            e = conc__table_insert(c, it, NULL);
            if (e)
                e = e == CONC_ENOMEM  ? nomem(r)
                    : e == CONC_ETYPE ? fail(r, CONC_ETYPE, "unhashable member")
                                      : fail(r, e, "member nested too deep");
        }
    }
    r->sp = base;
    return e;
}

/* Sets key-value pairs above `base` into the dict just below them. */
static int
set_items(struct reader *r, size_t base)
{
    conc_obj *d = NULL;
    if (base == 0 || base > r->sp || (r->sp - base) % 2)
        return fail(r, CONC_EPROTO, "stack underflow or odd item count");
    size_t saved = r->sp;
    r->sp = base;
    int e = target(r, 0, CONC_OBJ_DICT, &d);
    r->sp = saved;
    for (size_t i = base; i < r->sp; i += 2) {
        conc_obj *k = r->stack[i], *v = r->stack[i + 1];
        if (!e)
            e = nest(r, d, k);
        if (!e)
            e = nest(r, d, v);
        if (e) {
            conc_obj_decref(k);
            conc_obj_decref(v);
            continue;
        }
        e = conc__table_insert(d, k, v);
        if (e)
            e = e == CONC_ENOMEM  ? nomem(r)
                : e == CONC_ETYPE ? fail(r, CONC_ETYPE, "unhashable dict key")
                                  : fail(r, e, "key nested too deep");
    }
    r->sp = base;
    return e;
}

static int
op_container(struct reader *r)
{
    size_t base = 0;
    int e;
    switch (r->op) {
    case OP_EMPTY_LIST:
        return push(r, conc_obj_list());
    case OP_EMPTY_DICT:
        return push(r, conc_obj_dict());
    case OP_EMPTY_SET:
        return push(r, conc_obj_set());
    case OP_APPEND:
        return r->sp - mark_base(r) < 2
                   ? fail(r, CONC_EPROTO, "stack underflow")
                   : add_items(r, r->sp - 1, CONC_OBJ_LIST);
    case OP_SETITEM:
        return r->sp - mark_base(r) < 2
                   ? fail(r, CONC_EPROTO, "stack underflow")
                   : set_items(r, r->sp - 2);
    case OP_APPENDS:
    case OP_ADDITEMS:
    case OP_SETITEMS:
    case OP_FROZENSET:
        e = pop_mark(r, &base);
        if (e)
            return e;
        if (r->op == OP_FROZENSET)
            return collect(r, base, CONC_OBJ_FROZENSET);
        if (r->op == OP_SETITEMS)
            return set_items(r, base);
        return add_items(r, base,
                         r->op == OP_APPENDS ? CONC_OBJ_LIST : CONC_OBJ_SET);
    default:
        return op_tuple(r, r->op == OP_EMPTY_TUPLE ? 0
                           : r->op == OP_TUPLE     ? -1
                                                   : r->op - OP_TUPLE1 + 1);
    }
}

/* ---- Memo ---------------------------------------------------------------- */

static int
memo_put(struct reader *r, uint64_t idx)
{
    conc_obj *top = NULL;
    int e = peek(r, 0, &top);
    if (e)
        return e;
    if (idx >= r->lim.max_memo)
        return fail(r, CONC_EOVERFLOW, "memo index %llu over %zu",
                    (unsigned long long)idx, r->lim.max_memo);
    if (idx >= r->memo_cap) {
        size_t cap = r->memo_cap ? r->memo_cap : 16;
        while (cap <= idx)
            cap *= 2;
        conc_obj **m = conc__realloc(r->memo, cap * sizeof *m);
        if (!m)
            return nomem(r);
        memset(m + r->memo_cap, 0, (cap - r->memo_cap) * sizeof *m);
        r->memo = m;
        r->memo_cap = cap;
    }
    if (!r->memo[idx])
        r->memo_count++;
    conc_obj_decref(r->memo[idx]);
    r->memo[idx] = conc_obj_incref(top);
    return 0;
}

static int
memo_get(struct reader *r, uint64_t idx)
{
    if (idx >= r->memo_cap || !r->memo[idx])
        return fail(r, CONC_EPROTO, "memo key %llu missing",
                    (unsigned long long)idx);
    conc_obj *o = r->memo[idx];
    uint8_t t = o->type;
    if (t == CONC_OBJ_LIST || t == CONC_OBJ_DICT || t == CONC_OBJ_SET ||
        t == CONC_OBJ_FOREIGN)
        o->flags |= CONC__OBJ_SHARED;
    return push(r, conc_obj_incref(o));
}

static int
op_memo(struct reader *r)
{
    uint64_t idx = 0;
    int e = 0;
    switch (r->op) {
    case OP_MEMOIZE:
        return memo_put(r, r->memo_count);
    case OP_BINPUT:
    case OP_LONG_BINPUT:
        e = take_le(r, r->op == OP_BINPUT ? 1 : 4, &idx);
        return e ? e : memo_put(r, idx);
    default: /* BINGET, LONG_BINGET */
        e = take_le(r, r->op == OP_BINGET ? 1 : 4, &idx);
        return e ? e : memo_get(r, idx);
    }
}

/* ---- Globals ------------------------------------------------------------- */

/* Python 2's names for modules, which protocol 2 pickles use
 * (Lib/_compat_pickle.py). */
static const char *
compat_module(const char *m)
{
    if (!strcmp(m, "__builtin__") || !strcmp(m, "exceptions"))
        return "builtins";
    if (!strcmp(m, "Queue"))
        return "queue";
    if (!strcmp(m, "copy_reg"))
        return "copyreg";
    return m;
}

/* The allowlist of docs/values.md: each module, and the names it may
 * give. */
/* clang-format off */
static const char *const allow_builtins[] = {
    "list", "set", "frozenset", "tuple", "bytes", "bytearray", "slice",
    "range", "complex", "BaseException", "Exception", "ArithmeticError",
    "AssertionError", "AttributeError", "BlockingIOError", "BrokenPipeError",
    "BufferError", "ChildProcessError", "ConnectionAbortedError",
    "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
    "EOFError", "FileExistsError", "FileNotFoundError", "FloatingPointError",
    "GeneratorExit", "ImportError", "IndexError", "InterruptedError",
    "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError",
    "MemoryError", "ModuleNotFoundError", "NameError", "NotADirectoryError",
    "NotImplementedError", "OSError", "OverflowError", "PermissionError",
    "ProcessLookupError", "RecursionError", "ReferenceError", "RuntimeError",
    "StopAsyncIteration", "StopIteration", "SystemExit", "TimeoutError",
    "TypeError", "UnboundLocalError", "ValueError", "ZeroDivisionError", NULL};
static const char *const allow_managers[] = {
    "Token", "RebuildProxy", "AutoProxy", "BaseProxy", "BaseListProxy",
    "ListProxy", "DictProxy", "SetProxy", "IteratorProxy", "AcquirerProxy",
    "ConditionProxy", "EventProxy", "BarrierProxy", "NamespaceProxy",
    "ValueProxy", "ArrayProxy", "PoolProxy", "RemoteError", "Namespace",
    "Value", NULL};
static const char *const allow_mp_errors[] = {
    "ProcessError", "BufferTooShort", "TimeoutError", "AuthenticationError",
    NULL};
static const char *const allow_queue[] = {"Empty", "Full", NULL};
static const char *const allow_codecs[] = {"encode", NULL};
static const char *const allow_array[] = {"array", "_array_reconstructor",
                                          NULL};
static const char *const allow_threading[] = {"BrokenBarrierError", NULL};
/* clang-format on */

static const struct {
    const char *module;
    const char *const *names;
} allowlist[] = {
    {"builtins", allow_builtins},
    {"multiprocessing.managers", allow_managers},
    {"multiprocessing.context", allow_mp_errors},
    {"multiprocessing", allow_mp_errors},
    {"queue", allow_queue},
    {"_queue", allow_queue},
    {"_codecs", allow_codecs},
    {"array", allow_array},
    {"threading", allow_threading},
};

static bool
allowed(const char *module, const char *name)
{
    for (size_t i = 0; i < sizeof allowlist / sizeof *allowlist; i++) {
        if (strcmp(module, allowlist[i].module))
            continue;
        for (const char *const *n = allowlist[i].names; *n; n++)
            if (!strcmp(name, *n))
                return true;
        return false;
    }
    return false;
}

static int
push_global(struct reader *r, const char *module, const char *name)
{
    module = compat_module(module);
    if (!r->lim.any_global && !allowed(module, name))
        return fail(r, CONC_EPROTO, "global %.40s.%.40s is not allowed", module,
                    name);
    return push(r, conc_obj_foreign(module, name, NULL, NULL, 0));
}

/* GLOBAL's two lines, "module\nname\n". */
static int
op_global(struct reader *r)
{
    char lines[2][MAX_GLOBAL_LINE];
    for (int k = 0; k < 2; k++) {
        const uint8_t *start = r->p + r->pos;
        size_t room = r->len - r->pos;
        const uint8_t *nl = memchr(start, '\n', room);
        size_t n = nl ? (size_t)(nl - start) : room;
        if (!nl || n >= MAX_GLOBAL_LINE || !conc__utf8_valid(start, n) ||
            memchr(start, '\0', n))
            return fail(r, CONC_EPROTO, "bad GLOBAL line");
        memcpy(lines[k], start, n);
        lines[k][n] = '\0';
        r->pos += n + 1;
    }
    return push_global(r, lines[0], lines[1]);
}

static int
op_stack_global(struct reader *r)
{
    conc_obj *name = NULL, *module = NULL;
    int e = pop(r, &name);
    if (e)
        return e;
    e = pop(r, &module);
    if (e) {
        conc_obj_decref(name);
        return e;
    }
    if (name->type != CONC_OBJ_STR || module->type != CONC_OBJ_STR ||
        strlen(CONC__STR(name)->data) != CONC__STR(name)->len ||
        strlen(CONC__STR(module)->data) != CONC__STR(module)->len)
        e = fail(r, CONC_EPROTO, "module and name must be str");
    else
        e = push_global(r, CONC__STR(module)->data, CONC__STR(name)->data);
    conc_obj_decref(name);
    conc_obj_decref(module);
    return e;
}

/* ---- Calls (REDUCE, NEWOBJ) --------------------------------------------- */

static bool
is_global(const conc_obj *o, const char *module, const char *name)
{
    const struct conc__foreign *f = CONC__FOREIGN(o);
    return !strcmp(f->module, module) && !strcmp(f->name, name);
}

/* list(x), tuple(x), set(x), frozenset(x) of a list, tuple, set,
 * frozenset, or a dict's keys. */
static int
from_iterable(struct reader *r, conc_obj_type type, const conc_obj *x,
              conc_obj **out)
{
    uint8_t t = x->type;
    if (t != CONC_OBJ_LIST && t != CONC_OBJ_TUPLE && t != CONC_OBJ_SET &&
        t != CONC_OBJ_FROZENSET && t != CONC_OBJ_DICT)
        return fail(r, CONC_EPROTO, "argument is not iterable");
    bool seq = type == CONC_OBJ_LIST || type == CONC_OBJ_TUPLE;
    conc_obj *c = seq ? conc__seq_from(type, NULL, 0) : conc__table_new(type);
    int e = c ? 0 : CONC_ENOMEM;
    size_t pos = 0, i = 0;
    for (;;) {
        conc_obj *k = NULL;
        if (t == CONC_OBJ_LIST || t == CONC_OBJ_TUPLE)
            k = conc_obj_seq_get(x, i++);
        else if (conc_obj_next(x, &pos, &k, NULL) != 1)
            k = NULL;
        if (e || !k)
            break;
        e = seq ? conc__seq_push(c, conc_obj_incref(k))
                : conc__table_insert(c, conc_obj_incref(k), NULL);
    }
    if (e) {
        conc_obj_decref(c);
        return e == CONC_ETYPE    ? fail(r, e, "unhashable member")
               : e == CONC_ENOMEM ? nomem(r)
                                  : fail(r, e, "member nested too deep");
    }
    c->depth = x->depth;
    *out = c;
    return 0;
}

/* _codecs.encode(s, 'latin1'): protocol 2's form of bytes. */
static int
latin1_bytes(struct reader *r, const conc_obj *s, conc_obj **out)
{
    const struct conc__str *str = CONC__STR(s);
    conc_obj *b = conc__str_alloc(CONC_OBJ_BYTES, str->len);
    if (!b)
        return nomem(r);
    size_t n = 0;
    for (size_t i = 0; i < str->len;) {
        uint32_t cp;
        i += conc__utf8_decode((const uint8_t *)str->data + i, &cp);
        if (cp > 0xff) {
            conc_obj_decref(b);
            return fail(r, CONC_EPROTO, "bytes given as a str beyond latin-1");
        }
        CONC__STR(b)->data[n++] = (char)cp;
    }
    CONC__STR(b)->len = n;
    CONC__STR(b)->data[n] = '\0';
    *out = b;
    return 0;
}

static bool
latin1_call(const conc_obj *args)
{
    const conc_obj *enc = conc_obj_seq_get(args, 1);
    const char *e = conc_obj_str_value(enc);
    return conc_obj_len(args) == 2 &&
           conc_obj_typeof(conc_obj_seq_get(args, 0)) == CONC_OBJ_STR && e &&
           (!strcmp(e, "latin1") || !strcmp(e, "latin-1"));
}

/* The calls that make plain values. Returns 1 if `g` is not one of them. */
static int
call_builtin(struct reader *r, const conc_obj *g, conc_obj *args,
             conc_obj **out)
{
    static const struct {
        const char *name;
        conc_obj_type type;
    } iterables[] = {{"list", CONC_OBJ_LIST},
                     {"tuple", CONC_OBJ_TUPLE},
                     {"set", CONC_OBJ_SET},
                     {"frozenset", CONC_OBJ_FROZENSET}};
    size_t n = conc_obj_len(args);
    conc_obj *a0 = conc_obj_seq_get(args, 0);
    for (size_t i = 0; i < sizeof iterables / sizeof *iterables; i++) {
        if (!is_global(g, "builtins", iterables[i].name))
            continue;
        if (n == 0)
            return from_iterable(r, iterables[i].type, args, out);
        if (n != 1)
            return fail(r, CONC_EPROTO, "%s() takes one argument",
                        iterables[i].name);
        return from_iterable(r, iterables[i].type, a0, out);
    }
    if (is_global(g, "builtins", "bytes")) {
        if (n == 0)
            return (*out = conc_obj_bytes("", 0)) ? 0 : nomem(r);
        if (n == 1 && a0->type == CONC_OBJ_BYTES)
            return *out = conc_obj_incref(a0), 0;
        if (!latin1_call(args))
            return fail(r, CONC_EPROTO, "unsupported bytes() arguments");
        return latin1_bytes(r, a0, out);
    }
    if (is_global(g, "_codecs", "encode")) {
        if (!latin1_call(args))
            return fail(r, CONC_EPROTO, "unsupported _codecs.encode() call");
        return latin1_bytes(r, a0, out);
    }
    return 1;
}

/* bytearray(s, 'latin-1') of protocol 2 becomes bytearray(b'...'). */
static int
bytearray_args(struct reader *r, conc_obj **args)
{
    conc_obj *b;
    if (!latin1_call(*args))
        return 0;
    int e = latin1_bytes(r, conc_obj_seq_get(*args, 0), &b);
    if (e)
        return e;
    conc_obj *t = conc__seq_from(CONC_OBJ_TUPLE, &b, 1);
    if (!t)
        return nomem(r);
    conc_obj_decref(*args);
    *args = t;
    return 0;
}

static int
op_apply(struct reader *r, bool newobj)
{
    conc_obj *args = NULL, *g = NULL, *res = NULL;
    int e = pop(r, &args);
    if (e)
        return e;
    e = pop(r, &g);
    if (e) {
        conc_obj_decref(args);
        return e;
    }
    if (g->type != CONC_OBJ_FOREIGN || CONC__FOREIGN(g)->args ||
        args->type != CONC_OBJ_TUPLE)
        e = fail(r, CONC_EPROTO, "call of something other than a global");
    if (!e)
        e = call_builtin(r, g, args, &res);
    if (e == 1 && is_global(g, "builtins", "bytearray"))
        e = bytearray_args(r, &args);
    if (e == 1 || (e == 0 && !res)) {
        res = conc_obj_foreign(CONC__FOREIGN(g)->module, CONC__FOREIGN(g)->name,
                               args, NULL, newobj);
        e = res ? nest(r, res, args) : nomem(r);
    }
    conc_obj_decref(g);
    conc_obj_decref(args);
    if (e) {
        conc_obj_decref(res);
        return e;
    }
    return push(r, res);
}

static int
op_build(struct reader *r)
{
    conc_obj *state = NULL, *o = NULL;
    int e = pop(r, &state);
    if (e)
        return e;
    e = target(r, 0, CONC_OBJ_FOREIGN, &o);
    if (!e && (CONC__FOREIGN(o)->state || !CONC__FOREIGN(o)->args))
        e = fail(r, CONC_EPROTO, "BUILD of a value that has no place for it");
    if (!e)
        e = nest(r, o, state);
    if (e) {
        conc_obj_decref(state);
        return e;
    }
    CONC__FOREIGN(o)->state = state;
    return 0;
}

/* ---- The machine --------------------------------------------------------- */

static int
op_misc(struct reader *r, bool *stop)
{
    uint64_t v = 0;
    conc_obj *o = NULL;
    int e;
    switch (r->op) {
    case OP_PROTO:
        e = take_le(r, 1, &v);
        if (!e && (v < LOWEST_PROTOCOL || v > HIGHEST_PROTOCOL))
            e = fail(r, CONC_EPROTO, "protocol %llu is not 2 to 5",
                     (unsigned long long)v);
        return e;
    case OP_FRAME: /* its length only groups opcodes for buffering */
        e = take_le(r, 8, &v);
        return !e && v > r->len - r->pos ? fail(r, CONC_EPROTO, "bad FRAME")
                                         : e;
    case OP_MARK:
        return push_mark(r);
    case OP_POP: /* the top value, or the mark when none is above it */
        if (r->sp == mark_base(r) && r->nmarks) {
            r->nmarks--;
            return 0;
        }
        e = pop(r, &o);
        if (!e)
            conc_obj_decref(o);
        return e;
    case OP_POP_MARK: { /* POP_MARK */
        size_t base = 0;
        e = pop_mark(r, &base);
        while (!e && r->sp > base)
            conc_obj_decref(r->stack[--r->sp]);
        return e;
    }
    case OP_STOP:
        if (r->sp != 1 || r->nmarks)
            return fail(r, CONC_EPROTO, "STOP with %zu values and %zu marks",
                        r->sp, r->nmarks);
        *stop = true;
        return 0;
    default:
        return fail(r, CONC_EPROTO, "opcode not in the supported subset");
    }
}

static int
step(struct reader *r, bool *stop)
{
    switch (r->op) {
    case OP_NONE:
        return push(r, conc_obj_none());
    case OP_NEWTRUE:
    case OP_NEWFALSE:
        return push(r, conc_obj_bool(r->op == OP_NEWTRUE));
    case OP_BININT1:
        return op_int(r, 1, false);
    case OP_BININT2:
        return op_int(r, 2, false);
    case OP_BININT:
        return op_int(r, 4, true);
    case OP_LONG1:
    case OP_LONG4:
        return op_long(r, r->op == OP_LONG1 ? 1 : 4);
    case OP_BINFLOAT:
        return op_float(r);
    case OP_SHORT_BINUNICODE:
    case OP_BINUNICODE:
    case OP_BINUNICODE8:
        return op_text(r,
                       r->op == OP_SHORT_BINUNICODE ? 1
                       : r->op == OP_BINUNICODE     ? 4
                                                    : 8,
                       CONC_OBJ_STR, false);
    case OP_SHORT_BINBYTES:
    case OP_BINBYTES:
    case OP_BINBYTES8:
    case OP_BYTEARRAY8:
        return op_text(r,
                       r->op == OP_SHORT_BINBYTES ? 1
                       : r->op == OP_BINBYTES     ? 4
                                                  : 8,
                       CONC_OBJ_BYTES, r->op == OP_BYTEARRAY8);
    case OP_EMPTY_TUPLE:
    case OP_TUPLE1:
    case OP_TUPLE2:
    case OP_TUPLE3:
    case OP_TUPLE:
    case OP_EMPTY_LIST:
    case OP_APPEND:
    case OP_APPENDS:
    case OP_EMPTY_DICT:
    case OP_SETITEM:
    case OP_SETITEMS:
    case OP_EMPTY_SET:
    case OP_ADDITEMS:
    case OP_FROZENSET:
        return op_container(r);
    case OP_MEMOIZE:
    case OP_BINPUT:
    case OP_LONG_BINPUT:
    case OP_BINGET:
    case OP_LONG_BINGET:
        return op_memo(r);
    case OP_GLOBAL:
        return op_global(r);
    case OP_STACK_GLOBAL:
        return op_stack_global(r);
    case OP_REDUCE:
    case OP_NEWOBJ:
        return op_apply(r, r->op == OP_NEWOBJ);
    case OP_BUILD:
        return op_build(r);
    default:
        return op_misc(r, stop);
    }
}

static void
limits(struct reader *r, const conc_obj_load_opts *opts)
{
    conc_obj_load_opts d = {0};
    if (opts)
        d = *opts;
    r->lim.max_size = d.max_size ? d.max_size : DEFAULT_MAX_SIZE;
    r->lim.max_depth = d.max_depth ? d.max_depth : DEFAULT_MAX_DEPTH;
    if (r->lim.max_depth > HARD_MAX_DEPTH)
        r->lim.max_depth = HARD_MAX_DEPTH;
    r->lim.max_items = d.max_items ? d.max_items : DEFAULT_MAX_ITEMS;
    r->lim.max_memo = d.max_memo ? d.max_memo : DEFAULT_MAX_MEMO;
    r->lim.max_int_bytes =
        d.max_int_bytes ? d.max_int_bytes : DEFAULT_MAX_INT_BYTES;
    r->lim.any_global = d.any_global;
}

static void
reader_free(struct reader *r)
{
    for (size_t i = 0; i < r->sp; i++)
        conc_obj_decref(r->stack[i]);
    for (size_t i = 0; i < r->memo_cap; i++)
        conc_obj_decref(r->memo[i]);
    conc__free(r->stack);
    conc__free(r->marks);
    conc__free(r->memo);
}

int
conc_obj_loads(const void *data, size_t len, const conc_obj_load_opts *opts,
               conc_obj **out, conc_obj_load_error *err)
{
    if (!data || !out)
        return CONC_EINVAL;
    struct reader r = {.p = data, .len = len, .err = err, .op = -1};
    limits(&r, opts);
    if (len > r.lim.max_size)
        return fail(&r, CONC_EMSGSIZE, "%zu bytes, over the limit of %zu", len,
                    r.lim.max_size);
    bool stop = false;
    int e = 0;
    while (!e && !stop) {
        r.op_at = r.pos;
        r.op = r.pos < r.len ? r.p[r.pos++] : -1;
        e = r.op < 0 ? fail(&r, CONC_EPROTO, "no STOP") : step(&r, &stop);
    }
    if (!e) {
        *out = r.stack[0];
        r.sp = 0;
    }
    reader_free(&r);
    return e;
}
