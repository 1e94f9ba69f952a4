/* Values and their reference counts: constructors, getters, sequences and
 * foreign records. Ints live in int.c, dicts and sets in dict.c.
 *
 * Reference counts are atomic (relaxed increments; the decrement that
 * frees acquires what other threads released), as jansson's are, so a
 * value may be shared between threads that only read it. None, True and
 * False are static and never counted. */
#include <string.h>

#include "obj/obj_internal.h"

/* A list grows to at least this many items when it first needs room. */
#define SEQ_MIN_CAP 4

static conc_obj none_obj = {0, CONC_OBJ_NONE, CONC__OBJ_IMMORTAL, 0};
static struct conc__int true_obj = {
    {0, CONC_OBJ_BOOL, CONC__OBJ_IMMORTAL, 0}, 0, 0, 1};
static struct conc__int false_obj = {
    {0, CONC_OBJ_BOOL, CONC__OBJ_IMMORTAL, 0}, 0, 0, 0};

conc_obj *
conc__obj_alloc(conc_obj_type type, size_t size)
{
    conc_obj *o = conc__calloc(1, size);
    if (!o)
        return NULL;
    o->refcount = 1;
    o->type = (uint8_t)type;
    return o;
}

conc_obj_type
conc_obj_typeof(const conc_obj *o)
{
    return o ? (conc_obj_type)o->type : (conc_obj_type)0;
}

conc_obj *
conc_obj_incref(conc_obj *o)
{
    if (o && !(o->flags & CONC__OBJ_IMMORTAL))
        __atomic_fetch_add(&o->refcount, 1, __ATOMIC_RELAXED);
    return o;
}

static void
free_seq(struct conc__seq *s)
{
    for (size_t i = 0; i < s->len; i++)
        conc_obj_decref(s->items[i]);
    conc__free(s->items);
}

static void
free_foreign(struct conc__foreign *f)
{
    conc__free(f->module);
    conc__free(f->name);
    conc_obj_decref(f->args);
    conc_obj_decref(f->state);
}

void
conc_obj_decref(conc_obj *o)
{
    if (!o || (o->flags & CONC__OBJ_IMMORTAL))
        return;
    if (__atomic_sub_fetch(&o->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    switch (o->type) {
    case CONC_OBJ_TUPLE:
    case CONC_OBJ_LIST:
        free_seq(CONC__SEQ(o));
        break;
    case CONC_OBJ_DICT:
    case CONC_OBJ_SET:
    case CONC_OBJ_FROZENSET:
        conc__table_clear(o);
        break;
    case CONC_OBJ_FOREIGN:
        free_foreign(CONC__FOREIGN(o));
        break;
    default:
        break;
    }
    conc__free(o);
}

/* ---- Scalars ------------------------------------------------------------ */

conc_obj *
conc_obj_none(void)
{
    return &none_obj;
}

conc_obj *
conc_obj_true(void)
{
    return &true_obj.h;
}

conc_obj *
conc_obj_false(void)
{
    return &false_obj.h;
}

conc_obj *
conc_obj_bool(int v)
{
    return v ? &true_obj.h : &false_obj.h;
}

conc_obj *
conc_obj_int(int64_t v)
{
    conc_obj *o = conc__obj_alloc(CONC_OBJ_INT, sizeof(struct conc__int));
    if (o)
        CONC__INT(o)->small = v;
    return o;
}

conc_obj *
conc_obj_float(double v)
{
    conc_obj *o = conc__obj_alloc(CONC_OBJ_FLOAT, sizeof(struct conc__float));
    if (o)
        CONC__FLOAT(o)->v = v;
    return o;
}

conc_obj *
conc__str_alloc(conc_obj_type type, size_t len)
{
    if (len > SIZE_MAX - sizeof(struct conc__str) - 1)
        return NULL;
    conc_obj *o = conc__obj_alloc(type, sizeof(struct conc__str) + len + 1);
    if (o)
        CONC__STR(o)->len = len;
    return o;
}

/* UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing
 * past U+10FFFF. Python's str may hold lone surrogates, which its pickles
 * carry as invalid UTF-8 ("surrogatepass"); conc refuses them. */
bool
conc__utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        uint32_t cp = c & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

size_t
conc__utf8_decode(const uint8_t *s, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
                                    : 4;
    uint32_t v = n == 1 ? c : (uint32_t)(c & (0x7f >> n));
    for (size_t k = 1; k < n; k++)
        v = v << 6 | (s[k] & 0x3f);
    *cp = v;
    return n;
}

conc_obj *
conc_obj_strn(const char *s, size_t len)
{
    if (!s || !conc__utf8_valid((const uint8_t *)s, len))
        return NULL;
    conc_obj *o = conc__str_alloc(CONC_OBJ_STR, len);
    if (o && len)
        memcpy(CONC__STR(o)->data, s, len);
    return o;
}

conc_obj *
conc_obj_str(const char *s)
{
    return s ? conc_obj_strn(s, strlen(s)) : NULL;
}

conc_obj *
conc_obj_bytes(const void *data, size_t len)
{
    if (!data)
        return NULL;
    conc_obj *o = conc__str_alloc(CONC_OBJ_BYTES, len);
    if (o && len)
        memcpy(CONC__STR(o)->data, data, len);
    return o;
}

/* ---- Sequences ---------------------------------------------------------- */

static int
seq_reserve(struct conc__seq *s, size_t extra)
{
    if (s->cap - s->len >= extra)
        return 0;
    if (extra > SIZE_MAX / sizeof(conc_obj *) / 2 - s->len)
        return CONC_ENOMEM;
    size_t cap = s->cap ? s->cap : SEQ_MIN_CAP;
    while (cap < s->len + extra)
        cap *= 2;
    conc_obj **items = conc__realloc(s->items, cap * sizeof *items);
    if (!items)
        return CONC_ENOMEM;
    s->items = items;
    s->cap = cap;
    return 0;
}

int
conc__seq_push(conc_obj *seq, conc_obj *item)
{
    struct conc__seq *s = CONC__SEQ(seq);
    if (seq_reserve(s, 1)) {
        conc_obj_decref(item);
        return CONC_ENOMEM;
    }
    s->items[s->len++] = item;
    return 0;
}

static conc_obj *
seq_new(conc_obj_type type, size_t n)
{
    conc_obj *o = conc__obj_alloc(type, sizeof(struct conc__seq));
    if (!o)
        return NULL;
    if (n && seq_reserve(CONC__SEQ(o), n)) {
        conc__free(o);
        return NULL;
    }
    return o;
}

conc_obj *
conc__seq_from(conc_obj_type type, conc_obj **items, size_t n)
{
    conc_obj *o = seq_new(type, n);
    if (!o) {
        for (size_t i = 0; i < n; i++)
            conc_obj_decref(items[i]);
        return NULL;
    }
    if (n)
        memcpy(CONC__SEQ(o)->items, items, n * sizeof *items);
    CONC__SEQ(o)->len = n;
    return o;
}

conc_obj *
conc_obj_tuple(size_t n)
{
    conc_obj *o = seq_new(CONC_OBJ_TUPLE, n);
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++)
        CONC__SEQ(o)->items[i] = &none_obj;
    CONC__SEQ(o)->len = n;
    return o;
}

conc_obj *
conc_obj_list(void)
{
    return seq_new(CONC_OBJ_LIST, 0);
}

int
conc_obj_list_append_new(conc_obj *list, conc_obj *item)
{
    if (!list || !item) {
        conc_obj_decref(item);
        return CONC_EINVAL;
    }
    if (list->type != CONC_OBJ_LIST) {
        conc_obj_decref(item);
        return CONC_ETYPE;
    }
    return conc__seq_push(list, item);
}

int
conc_obj_list_append(conc_obj *list, conc_obj *item)
{
    if (!list || !item)
        return CONC_EINVAL;
    return conc_obj_list_append_new(list, conc_obj_incref(item));
}

static int
seq_set_new(conc_obj *seq, conc_obj_type type, size_t i, conc_obj *item)
{
    int r = 0;
    if (!seq || !item)
        r = CONC_EINVAL;
    else if (seq->type != type)
        r = CONC_ETYPE;
    else if (i >= CONC__SEQ(seq)->len)
        r = CONC_EINDEX;
    if (r) {
        conc_obj_decref(item);
        return r;
    }
    conc_obj *old = CONC__SEQ(seq)->items[i];
    CONC__SEQ(seq)->items[i] = item;
    conc_obj_decref(old);
    return 0;
}

int
conc_obj_list_set_new(conc_obj *list, size_t i, conc_obj *item)
{
    return seq_set_new(list, CONC_OBJ_LIST, i, item);
}

int
conc_obj_tuple_set_new(conc_obj *tuple, size_t i, conc_obj *item)
{
    return seq_set_new(tuple, CONC_OBJ_TUPLE, i, item);
}

int
conc_obj_list_del(conc_obj *list, size_t i)
{
    if (!list)
        return CONC_EINVAL;
    if (list->type != CONC_OBJ_LIST)
        return CONC_ETYPE;
    struct conc__seq *s = CONC__SEQ(list);
    if (i >= s->len)
        return CONC_EINDEX;
    conc_obj *old = s->items[i];
    memmove(s->items + i, s->items + i + 1,
            (s->len - i - 1) * sizeof *s->items);
    s->len--;
    conc_obj_decref(old);
    return 0;
}

conc_obj *
conc_obj_seq_get(const conc_obj *o, size_t i)
{
    if (!o || (o->type != CONC_OBJ_TUPLE && o->type != CONC_OBJ_LIST))
        return NULL;
    return i < CONC__SEQ(o)->len ? CONC__SEQ(o)->items[i] : NULL;
}

/* ---- Getters ------------------------------------------------------------ */

int
conc_obj_truth(const conc_obj *o)
{
    if (!o)
        return CONC_EINVAL;
    switch (o->type) {
    case CONC_OBJ_NONE:
        return 0;
    case CONC_OBJ_BOOL:
    case CONC_OBJ_INT:
        return CONC__INT(o)->nlimbs || CONC__INT(o)->small;
    case CONC_OBJ_FLOAT:
        return CONC__FLOAT(o)->v != 0.0;
    case CONC_OBJ_FOREIGN:
        return 1;
    default:
        return conc_obj_len(o) != 0;
    }
}

int
conc_obj_int_value(const conc_obj *o, int64_t *v)
{
    if (!o || !v)
        return CONC_EINVAL;
    if (o->type != CONC_OBJ_INT && o->type != CONC_OBJ_BOOL)
        return CONC_ETYPE;
    if (CONC__INT(o)->nlimbs)
        return CONC_EOVERFLOW;
    *v = CONC__INT(o)->small;
    return 0;
}

int
conc_obj_float_value(const conc_obj *o, double *v)
{
    if (!o || !v)
        return CONC_EINVAL;
    if (o->type == CONC_OBJ_FLOAT) {
        *v = CONC__FLOAT(o)->v;
        return 0;
    }
    if (o->type != CONC_OBJ_INT && o->type != CONC_OBJ_BOOL)
        return CONC_ETYPE;
    return conc__int_to_double(o, v);
}

const char *
conc_obj_str_value(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_STR ? CONC__STR(o)->data : NULL;
}

const uint8_t *
conc_obj_bytes_value(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_BYTES ? (uint8_t *)CONC__STR(o)->data
                                          : NULL;
}

size_t
conc_obj_len(const conc_obj *o)
{
    if (!o)
        return 0;
    switch (o->type) {
    case CONC_OBJ_STR:
    case CONC_OBJ_BYTES:
        return CONC__STR(o)->len;
    case CONC_OBJ_TUPLE:
    case CONC_OBJ_LIST:
        return CONC__SEQ(o)->len;
    case CONC_OBJ_DICT:
    case CONC_OBJ_SET:
    case CONC_OBJ_FROZENSET:
        return CONC__TABLE(o)->used;
    default:
        return 0;
    }
}

/* ---- Foreign records ---------------------------------------------------- */

conc_obj *
conc_obj_foreign(const char *module, const char *name, conc_obj *args,
                 conc_obj *state, int newobj)
{
    if (!module || !name || (args && args->type != CONC_OBJ_TUPLE))
        return NULL;
    conc_obj *o =
        conc__obj_alloc(CONC_OBJ_FOREIGN, sizeof(struct conc__foreign));
    if (!o)
        return NULL;
    struct conc__foreign *f = CONC__FOREIGN(o);
    f->module = conc__strdup(module);
    f->name = conc__strdup(name);
    if (!f->module || !f->name) {
        conc_obj_decref(o);
        return NULL;
    }
    f->args = conc_obj_incref(args);
    f->state = conc_obj_incref(state);
    f->newobj = newobj != 0;
    return o;
}

const char *
conc_obj_foreign_module(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_FOREIGN ? CONC__FOREIGN(o)->module : NULL;
}

const char *
conc_obj_foreign_name(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_FOREIGN ? CONC__FOREIGN(o)->name : NULL;
}

conc_obj *
conc_obj_foreign_args(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_FOREIGN ? CONC__FOREIGN(o)->args : NULL;
}

conc_obj *
conc_obj_foreign_state(const conc_obj *o)
{
    return o && o->type == CONC_OBJ_FOREIGN ? CONC__FOREIGN(o)->state : NULL;
}
