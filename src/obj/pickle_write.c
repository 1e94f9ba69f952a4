/* The pickle writer: protocol 4, as CPython's pickle.dumps(o, 4) would
 * read it, with CPython's choice of opcode for each value (BININT1 for
 * 0-255, SHORT_BINUNICODE under 256 bytes, ...), so that conc's pickles
 * of plain values match CPython's but for the FRAME and the memo, which
 * conc leaves out: every CPython from 3.4 reads a protocol-4 pickle
 * without them, and a value reached twice is simply written twice.
 *
 * A foreign record goes back as it came: its global (STACK_GLOBAL), its
 * args tuple and REDUCE (or NEWOBJ), then its state and BUILD. */
#include <string.h>

#include "obj/obj_internal.h"
#include "obj/pickle.h"

#define PROTOCOL 4
/* CPython's batch size for APPENDS, SETITEMS and ADDITEMS (_BATCHSIZE). */
#define BATCH 1000

static int save(const conc_obj *o, conc_buf *b, int depth);

static int
put_op(conc_buf *b, int op)
{
    uint8_t c = (uint8_t)op;
    return conc_buf_append(b, &c, 1);
}

/* An opcode and an unsigned little-endian argument of `n` bytes. */
static int
put_op_le(conc_buf *b, int op, uint64_t v, size_t n)
{
    uint8_t tmp[9];
    tmp[0] = (uint8_t)op;
    for (size_t i = 0; i < n; i++)
        tmp[1 + i] = (uint8_t)(v >> (8 * i));
    return conc_buf_append(b, tmp, n + 1);
}

static int
save_int(const conc_obj *o, conc_buf *b)
{
    const struct conc__int *x = CONC__INT(o);
    if (!x->nlimbs && x->small >= 0 && x->small <= 0xff)
        return put_op_le(b, OP_BININT1, (uint64_t)x->small, 1);
    if (!x->nlimbs && x->small >= 0 && x->small <= 0xffff)
        return put_op_le(b, OP_BININT2, (uint64_t)x->small, 2);
    if (!x->nlimbs && x->small >= INT32_MIN && x->small <= INT32_MAX)
        return put_op_le(b, OP_BININT, (uint32_t)(int32_t)x->small, 4);
    conc_buf le = CONC_BUF_INIT;
    int r = conc__int_to_le(o, &le);
    if (!r)
        r = le.len < 256 ? put_op_le(b, OP_LONG1, le.len, 1)
                         : put_op_le(b, OP_LONG4, le.len, 4);
    if (!r && le.len)
        r = conc_buf_append(b, le.data, le.len);
    conc_buf_free(&le);
    return r;
}

static int
save_float(double v, conc_buf *b)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint8_t tmp[9] = {OP_BINFLOAT};
    for (int i = 0; i < 8; i++)
        tmp[1 + i] = (uint8_t)(bits >> (56 - 8 * i)); /* big-endian */
    return conc_buf_append(b, tmp, sizeof tmp);
}

/* str and bytes: the short form under 256 bytes, then 4-byte and 8-byte
 * lengths. */
static int
save_text(const char *data, size_t len, bool str, conc_buf *b)
{
    int r;
    if (len < 256)
        r = put_op_le(b, str ? OP_SHORT_BINUNICODE : OP_SHORT_BINBYTES, len, 1);
    else if (len <= UINT32_MAX)
        r = put_op_le(b, str ? OP_BINUNICODE : OP_BINBYTES, len, 4);
    else
        r = put_op_le(b, str ? OP_BINUNICODE8 : OP_BINBYTES8, len, 8);
    return r || !len ? r : conc_buf_append(b, data, len);
}

static int
save_tuple(const struct conc__seq *s, conc_buf *b, int depth)
{
    if (s->len == 0)
        return put_op(b, OP_EMPTY_TUPLE);
    int r = s->len > 3 ? put_op(b, OP_MARK) : 0;
    for (size_t i = 0; !r && i < s->len; i++)
        r = save(s->items[i], b, depth - 1);
    if (r)
        return r;
    return put_op(b, s->len > 3 ? OP_TUPLE : OP_TUPLE1 + (int)s->len - 1);
}

/* Items go in batches of BATCH, as CPython writes them: MARK ... APPENDS,
 * or item APPEND for a batch of one. */
static int
save_list(const struct conc__seq *s, conc_buf *b, int depth)
{
    int r = put_op(b, OP_EMPTY_LIST);
    for (size_t i = 0; !r && i < s->len; i += BATCH) {
        size_t n = s->len - i < BATCH ? s->len - i : BATCH;
        r = n > 1 ? put_op(b, OP_MARK) : 0;
        for (size_t k = i; !r && k < i + n; k++)
            r = save(s->items[k], b, depth - 1);
        r = r ? r : put_op(b, n > 1 ? OP_APPENDS : OP_APPEND);
    }
    return r;
}

/* A dict in batches (MARK ... SETITEMS, or key value SETITEM for one), a
 * set in batches (MARK ... ADDITEMS), a frozenset at once (MARK ...
 * FROZENSET), as CPython writes them. */
static int
save_table(const conc_obj *o, conc_buf *b, int depth)
{
    const struct conc__table *t = CONC__TABLE(o);
    bool dict = o->type == CONC_OBJ_DICT, fs = o->type == CONC_OBJ_FROZENSET;
    int r = put_op(b, fs ? OP_MARK : dict ? OP_EMPTY_DICT : OP_EMPTY_SET);
    size_t i = 0, left = t->used;
    while (!r && left) {
        size_t n = fs || left < BATCH ? left : BATCH;
        bool single = dict && n == 1;
        r = fs || single ? 0 : put_op(b, OP_MARK);
        for (size_t k = 0; !r && k < n; i++) {
            const struct conc__entry *e = &t->entries[i];
            if (!e->key)
                continue; /* deleted */
            k++;
            r = save(e->key, b, depth - 1);
            if (!r && dict)
                r = save(e->value, b, depth - 1);
        }
        left -= n;
        if (!r && !fs)
            r = put_op(b, single ? OP_SETITEM
                          : dict ? OP_SETITEMS
                                 : OP_ADDITEMS);
    }
    return r || !fs ? r : put_op(b, OP_FROZENSET);
}

static int
save_foreign(const struct conc__foreign *f, conc_buf *b, int depth)
{
    int r = save_text(f->module, strlen(f->module), true, b);
    r = r ? r : save_text(f->name, strlen(f->name), true, b);
    r = r ? r : put_op(b, OP_STACK_GLOBAL);
    if (r || !f->args)
        return r;
    r = save(f->args, b, depth - 1);
    r = r ? r : put_op(b, f->newobj ? OP_NEWOBJ : OP_REDUCE);
    if (r || !f->state)
        return r;
    r = save(f->state, b, depth - 1);
    return r ? r : put_op(b, OP_BUILD);
}

static int
save(const conc_obj *o, conc_buf *b, int depth)
{
    if (depth <= 0)
        return CONC_EOVERFLOW;
    switch (o->type) {
    case CONC_OBJ_NONE:
        return put_op(b, OP_NONE);
    case CONC_OBJ_BOOL:
        return put_op(b, CONC__INT(o)->small ? OP_NEWTRUE : OP_NEWFALSE);
    case CONC_OBJ_INT:
        return save_int(o, b);
    case CONC_OBJ_FLOAT:
        return save_float(CONC__FLOAT(o)->v, b);
    case CONC_OBJ_STR:
    case CONC_OBJ_BYTES:
        return save_text(CONC__STR(o)->data, CONC__STR(o)->len,
                         o->type == CONC_OBJ_STR, b);
    case CONC_OBJ_TUPLE:
        return save_tuple(CONC__SEQ(o), b, depth);
    case CONC_OBJ_LIST:
        return save_list(CONC__SEQ(o), b, depth);
    case CONC_OBJ_FOREIGN:
        return save_foreign(CONC__FOREIGN(o), b, depth);
    default:
        return save_table(o, b, depth);
    }
}

int
conc_obj_dumps(const conc_obj *o, conc_buf *out)
{
    if (!o || !out)
        return CONC_EINVAL;
    conc_buf tmp = CONC_BUF_INIT;
    int r = put_op_le(&tmp, OP_PROTO, PROTOCOL, 1);
    r = r ? r : save(o, &tmp, CONC_OBJ_MAX_DEPTH);
    r = r ? r : put_op(&tmp, OP_STOP);
    r = r ? r : conc__buf_set(out, tmp.data, tmp.len);
    conc_buf_free(&tmp);
    return r;
}
