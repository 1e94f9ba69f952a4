/* Hashing, equality, and the table behind dict, set and frozenset.
 *
 * Equality and hashing are Python's, so that a key found by Python is
 * found by conc: numbers compare by value across int, float and bool and
 * hash alike (CPython's own numeric hash, modulo 2^61 - 1); a NaN equals
 * only itself (containers test identity first, as PyObject_RichCompareBool
 * does); tuples and frozensets hash with CPython's formulas over their
 * members' hashes. str and bytes use SipHash-1-3 (CPython's choice) with a
 * key drawn from the kernel once per process, so that a peer cannot pick
 * keys that all collide.
 *
 * The table is CPython's compact dict: `entries` in insertion order, and
 * a power-of-two array of `slots` that index them, probed with CPython's
 * perturbed sequence (open addressing). A deletion leaves a dummy slot and
 * an entry with no key; growing rebuilds both arrays without the holes.
 * Entries fill at most two thirds of the slots. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "obj/obj_internal.h"
#include "unix/platform.h"

#define SLOT_EMPTY    (-1)
#define SLOT_DUMMY    (-2)
#define MIN_SLOTS     8
#define PERTURB_SHIFT 5 /* CPython's probe sequence */
/* Most entries a table holds (slots are int32_t). */
#define MAX_ENTRIES ((size_t)INT32_MAX / 2)

/* CPython's constants for numeric, tuple and frozenset hashes. */
#define HASH_BITS    61
#define HASH_MODULUS (((uint64_t)1 << HASH_BITS) - 1)
#define HASH_INF     314159
#define HASH_NONE    0xFCA86420
#define XXPRIME_1    11400714785074694791ULL
#define XXPRIME_2    14029467366897019727ULL
#define XXPRIME_5    2870177450012600261ULL
#define XX_LEN_MIX   3527539ULL
#define TUPLE_NEG1   1546275796
#define FSET_NEG1    590923713

/* ---- SipHash-1-3 over str and bytes -------------------------------------- */

static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void
sip_init(void)
{
    /* Without the kernel's generator the key stays predictable but the
     * table still works; hashing must not fail. */
    if (conc__random_bytes(sip_key, sizeof sip_key) != 0) {
        sip_key[0] = (uint64_t)(uintptr_t)&sip_key ^ 0x736f6d6570736575ULL;
        sip_key[1] = (uint64_t)conc__now_ns();
    }
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = ROTL(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = ROTL(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = ROTL(v2, 32);                                                     \
    } while (0)

static uint64_t
siphash13(const uint8_t *p, size_t len)
{
    pthread_once(&sip_once, sip_init);
    uint64_t k0 = sip_key[0], k1 = sip_key[1];
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)len << 56, m;
    for (; len >= 8; len -= 8, p += 8) {
        memcpy(&m, p, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- Hashes -------------------------------------------------------------- */

static int64_t
hash_pointer(const void *p)
{
    uintptr_t y = (uintptr_t)p;
    int64_t h = (int64_t)((y >> 4) | (y << (8 * sizeof y - 4)));
    return h == -1 ? -2 : h;
}

/* CPython's _Py_HashDouble: the value modulo 2^61 - 1, so that an integral
 * float hashes as the int it equals. */
int64_t
conc__hash_double(double v)
{
    if (isinf(v))
        return v > 0 ? HASH_INF : -HASH_INF;
    int e, sign = 1;
    double m = frexp(v, &e);
    if (m < 0)
        sign = -1, m = -m;
    uint64_t x = 0;
    while (m) {
        x = ((x << 28) & HASH_MODULUS) | x >> (HASH_BITS - 28);
        m *= 268435456.0; /* 2^28 */
        e -= 28;
        uint64_t y = (uint64_t)m;
        m -= (double)y;
        x += y;
        if (x >= HASH_MODULUS)
            x -= HASH_MODULUS;
    }
    e = e >= 0 ? e % HASH_BITS : HASH_BITS - 1 - ((-1 - e) % HASH_BITS);
    x = ((x << e) & HASH_MODULUS) | x >> (HASH_BITS - e);
    int64_t h = (int64_t)x * sign;
    return h == -1 ? -2 : h;
}

static int
hash_tuple(const conc_obj *o, int64_t *out, int depth)
{
    const struct conc__seq *s = CONC__SEQ(o);
    uint64_t acc = XXPRIME_5;
    for (size_t i = 0; i < s->len; i++) {
        int64_t lane;
        int r = conc__hash(s->items[i], &lane, depth - 1);
        if (r)
            return r;
        acc += (uint64_t)lane * XXPRIME_2;
        acc = ROTL(acc, 31);
        acc *= XXPRIME_1;
    }
    acc += s->len ^ (XXPRIME_5 ^ XX_LEN_MIX);
    *out = acc == (uint64_t)-1 ? TUPLE_NEG1 : (int64_t)acc;
    return 0;
}

static uint64_t
shuffle_bits(uint64_t h)
{
    return ((h ^ 89869747ULL) ^ (h << 16)) * 3644798167ULL;
}

static int64_t
hash_frozenset(const conc_obj *o)
{
    const struct conc__table *t = CONC__TABLE(o);
    uint64_t h = 0;
    for (size_t i = 0; i < t->nentries; i++)
        if (t->entries[i].key)
            h ^= shuffle_bits((uint64_t)t->entries[i].hash);
    h ^= ((uint64_t)t->used + 1) * 1927868237ULL;
    h ^= (h >> 11) ^ (h >> 25);
    h = h * 69069U + 907133923ULL;
    return h == (uint64_t)-1 ? FSET_NEG1 : (int64_t)h;
}

int
conc__hash(const conc_obj *o, int64_t *hash, int depth)
{
    if (depth <= 0)
        return CONC_EOVERFLOW;
    switch (o->type) {
    case CONC_OBJ_NONE:
        *hash = HASH_NONE;
        return 0;
    case CONC_OBJ_BOOL:
    case CONC_OBJ_INT:
        *hash = conc__int_hash(o);
        return 0;
    case CONC_OBJ_FLOAT: {
        double v = CONC__FLOAT(o)->v;
        *hash = isnan(v) ? hash_pointer(o) : conc__hash_double(v);
        return 0;
    }
    case CONC_OBJ_STR:
    case CONC_OBJ_BYTES: {
        const struct conc__str *s = CONC__STR(o);
        int64_t h = (int64_t)siphash13((const uint8_t *)s->data, s->len);
        *hash = h == -1 ? -2 : h;
        return 0;
    }
    case CONC_OBJ_TUPLE:
        return hash_tuple(o, hash, depth);
    case CONC_OBJ_FROZENSET:
        *hash = hash_frozenset(o);
        return 0;
    case CONC_OBJ_FOREIGN:
        *hash = hash_pointer(o);
        return 0;
    default:
        return CONC_ETYPE; /* list, dict, set: unhashable */
    }
}

/* ---- Equality ------------------------------------------------------------ */

static bool
is_number(const conc_obj *o)
{
    return o->type == CONC_OBJ_INT || o->type == CONC_OBJ_BOOL ||
           o->type == CONC_OBJ_FLOAT;
}

static int
numbers_equal(const conc_obj *a, const conc_obj *b)
{
    bool fa = a->type == CONC_OBJ_FLOAT, fb = b->type == CONC_OBJ_FLOAT;
    if (fa && fb)
        return CONC__FLOAT(a)->v == CONC__FLOAT(b)->v;
    if (fa)
        return conc__int_equal_double(b, CONC__FLOAT(a)->v);
    if (fb)
        return conc__int_equal_double(a, CONC__FLOAT(b)->v);
    return conc__int_equal(a, b);
}

static int
seqs_equal(const conc_obj *a, const conc_obj *b, int depth)
{
    const struct conc__seq *x = CONC__SEQ(a), *y = CONC__SEQ(b);
    if (x->len != y->len)
        return 0;
    for (size_t i = 0; i < x->len; i++) {
        int r = conc__equal(x->items[i], y->items[i], depth - 1);
        if (r != 1)
            return r;
    }
    return 1;
}

static int lookup(const conc_obj *t, const conc_obj *key, int64_t hash,
                  int depth, size_t *slot, int32_t *index);

/* Every entry of a is in b (with an equal value, for dicts). */
static int
tables_equal(const conc_obj *a, const conc_obj *b, int depth)
{
    const struct conc__table *x = CONC__TABLE(a), *y = CONC__TABLE(b);
    if (x->used != y->used)
        return 0;
    for (size_t i = 0; i < x->nentries; i++) {
        const struct conc__entry *e = &x->entries[i];
        if (!e->key)
            continue;
        size_t slot;
        int32_t ix;
        int r = lookup(b, e->key, e->hash, depth - 1, &slot, &ix);
        if (r < 0)
            return r;
        if (ix < 0)
            return 0;
        if (e->value) {
            r = conc__equal(e->value, y->entries[ix].value, depth - 1);
            if (r != 1)
                return r;
        }
    }
    return 1;
}

static bool
is_setlike(const conc_obj *o)
{
    return o->type == CONC_OBJ_SET || o->type == CONC_OBJ_FROZENSET;
}

int
conc__equal(const conc_obj *a, const conc_obj *b, int depth)
{
    if (a == b)
        return 1;
    if (depth <= 0)
        return CONC_EOVERFLOW;
    if (is_number(a) && is_number(b))
        return numbers_equal(a, b);
    if (is_setlike(a) && is_setlike(b))
        return tables_equal(a, b, depth);
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case CONC_OBJ_STR:
    case CONC_OBJ_BYTES:
        return CONC__STR(a)->len == CONC__STR(b)->len &&
               memcmp(CONC__STR(a)->data, CONC__STR(b)->data,
                      CONC__STR(a)->len) == 0;
    case CONC_OBJ_TUPLE:
    case CONC_OBJ_LIST:
        return seqs_equal(a, b, depth);
    case CONC_OBJ_DICT:
        return tables_equal(a, b, depth);
    default:
        return 0; /* None is one object; foreign records are identities */
    }
}

int
conc_obj_equal(const conc_obj *a, const conc_obj *b)
{
    if (!a || !b)
        return CONC_EINVAL;
    return conc__equal(a, b, CONC_OBJ_MAX_DEPTH);
}

int
conc_obj_hash(const conc_obj *o, int64_t *hash)
{
    if (!o || !hash)
        return CONC_EINVAL;
    return conc__hash(o, hash, CONC_OBJ_MAX_DEPTH);
}

/* ---- The table ----------------------------------------------------------- */

conc_obj *
conc__table_new(conc_obj_type type)
{
    return conc__obj_alloc(type, sizeof(struct conc__table));
}

conc_obj *
conc_obj_dict(void)
{
    return conc__table_new(CONC_OBJ_DICT);
}

conc_obj *
conc_obj_set(void)
{
    return conc__table_new(CONC_OBJ_SET);
}

void
conc__table_clear(conc_obj *o)
{
    struct conc__table *t = CONC__TABLE(o);
    for (size_t i = 0; i < t->nentries; i++) {
        conc_obj_decref(t->entries[i].key);
        conc_obj_decref(t->entries[i].value);
    }
    conc__free(t->entries);
    conc__free(t->slots);
}

/* Finds `key` (of hash `hash`): *index gets its entry or -1, *slot the
 * slot that holds it or, when absent, the slot a new entry would take.
 * Returns 0 or an error of equality. */
static int
lookup(const conc_obj *o, const conc_obj *key, int64_t hash, int depth,
       size_t *slot, int32_t *index)
{
    const struct conc__table *t = CONC__TABLE(o);
    *index = -1;
    if (!t->slots) {
        *slot = 0;
        return 0;
    }
    size_t i = (size_t)hash & t->mask, free_slot = SIZE_MAX;
    uint64_t perturb = (uint64_t)hash;
    for (;;) {
        int32_t ix = t->slots[i];
        if (ix == SLOT_EMPTY) {
            *slot = free_slot != SIZE_MAX ? free_slot : i;
            return 0;
        }
        if (ix == SLOT_DUMMY) {
            if (free_slot == SIZE_MAX)
                free_slot = i;
        } else if (t->entries[ix].hash == hash) {
            int r = conc__equal(t->entries[ix].key, key, depth);
            if (r < 0)
                return r;
            if (r) {
                *slot = i;
                *index = ix;
                return 0;
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & t->mask;
    }
}

/* Rebuilds the table with room for `need` live entries, dropping holes. */
static int
table_resize(struct conc__table *t, size_t need)
{
    size_t nslots = MIN_SLOTS;
    while (nslots / 3 * 2 < need)
        nslots *= 2;
    size_t cap = nslots / 3 * 2;
    int32_t *slots = conc__malloc(nslots * sizeof *slots);
    struct conc__entry *entries = conc__malloc(cap * sizeof *entries);
    if (!slots || !entries) {
        conc__free(slots);
        conc__free(entries);
        return CONC_ENOMEM;
    }
    memset(slots, 0xff, nslots * sizeof *slots); /* SLOT_EMPTY */
    size_t n = 0, mask = nslots - 1;
    for (size_t k = 0; k < t->nentries; k++) {
        if (!t->entries[k].key)
            continue;
        entries[n] = t->entries[k];
        uint64_t perturb = (uint64_t)entries[n].hash;
        size_t i = (size_t)entries[n].hash & mask;
        while (slots[i] != SLOT_EMPTY) {
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + perturb + 1) & mask;
        }
        slots[i] = (int32_t)n++;
    }
    conc__free(t->slots);
    conc__free(t->entries);
    t->slots = slots;
    t->entries = entries;
    t->nentries = n;
    t->cap = cap;
    t->mask = mask;
    return 0;
}

/* Adds or replaces; steals key and value. */
static int
table_put(conc_obj *o, conc_obj *key, conc_obj *value, int64_t hash)
{
    struct conc__table *t = CONC__TABLE(o);
    size_t slot;
    int32_t ix;
    int r = lookup(o, key, hash, CONC_OBJ_MAX_DEPTH, &slot, &ix);
    if (r == 0 && ix >= 0) {
        conc_obj *old = t->entries[ix].value;
        t->entries[ix].value = value;
        conc_obj_decref(old);
        conc_obj_decref(key);
        return 0;
    }
    if (r == 0 && t->nentries == t->cap) {
        r = t->used >= MAX_ENTRIES ? CONC_ENOMEM
                                   : table_resize(t, t->used * 2 + 1);
        if (r == 0)
            r = lookup(o, key, hash, CONC_OBJ_MAX_DEPTH, &slot, &ix);
    }
    if (r) {
        conc_obj_decref(key);
        conc_obj_decref(value);
        return r;
    }
    t->entries[t->nentries] = (struct conc__entry){hash, key, value};
    t->slots[slot] = (int32_t)t->nentries++;
    t->used++;
    return 0;
}

int
conc__table_insert(conc_obj *t, conc_obj *key, conc_obj *value)
{
    int64_t hash;
    int r = conc__hash(key, &hash, CONC_OBJ_MAX_DEPTH);
    if (r) {
        conc_obj_decref(key);
        conc_obj_decref(value);
        return r;
    }
    return table_put(t, key, value, hash);
}

/* The entry of `key` in table o: its index, or -1; or an error. */
static int
find(const conc_obj *o, const conc_obj *key, size_t *slot, int32_t *ix)
{
    int64_t hash;
    int r = conc__hash(key, &hash, CONC_OBJ_MAX_DEPTH);
    if (r)
        return r;
    return lookup(o, key, hash, CONC_OBJ_MAX_DEPTH, slot, ix);
}

/* ---- dict ---------------------------------------------------------------- */

int
conc_obj_dict_set_new(conc_obj *d, conc_obj *key, conc_obj *value)
{
    int r = 0;
    if (!d || !key || !value)
        r = CONC_EINVAL;
    else if (d->type != CONC_OBJ_DICT)
        r = CONC_ETYPE;
    if (r) {
        conc_obj_decref(key);
        conc_obj_decref(value);
        return r;
    }
    return conc__table_insert(d, key, value);
}

int
conc_obj_dict_set(conc_obj *d, conc_obj *key, conc_obj *value)
{
    if (!d || !key || !value)
        return CONC_EINVAL;
    return conc_obj_dict_set_new(d, conc_obj_incref(key),
                                 conc_obj_incref(value));
}

int
conc_obj_dict_get(const conc_obj *d, const conc_obj *key, conc_obj **value)
{
    if (!d || !key || !value)
        return CONC_EINVAL;
    if (d->type != CONC_OBJ_DICT)
        return CONC_ETYPE;
    size_t slot;
    int32_t ix;
    int r = find(d, key, &slot, &ix);
    if (r)
        return r;
    if (ix < 0)
        return CONC_EKEY;
    *value = CONC__TABLE(d)->entries[ix].value;
    return 0;
}

conc_obj *
conc_obj_dict_get_str(const conc_obj *d, const char *key)
{
    if (!d || !key || d->type != CONC_OBJ_DICT)
        return NULL;
    /* A str on the stack would need its length up front; a short-lived
     * one costs one allocation and keeps hashing in one place. */
    conc_obj *k = conc_obj_str(key), *v = NULL;
    if (k && conc_obj_dict_get(d, k, &v) != 0)
        v = NULL;
    conc_obj_decref(k);
    return v;
}

int
conc_obj_dict_del(conc_obj *d, const conc_obj *key)
{
    if (!d || !key)
        return CONC_EINVAL;
    if (d->type != CONC_OBJ_DICT)
        return CONC_ETYPE;
    struct conc__table *t = CONC__TABLE(d);
    size_t slot;
    int32_t ix;
    int r = find(d, key, &slot, &ix);
    if (r)
        return r;
    if (ix < 0)
        return CONC_EKEY;
    conc_obj *k = t->entries[ix].key, *v = t->entries[ix].value;
    t->entries[ix].key = t->entries[ix].value = NULL;
    t->slots[slot] = SLOT_DUMMY;
    t->used--;
    conc_obj_decref(k);
    conc_obj_decref(v);
    return 0;
}

int
conc_obj_next(const conc_obj *d, size_t *pos, conc_obj **key, conc_obj **value)
{
    if (!d || !pos || !key)
        return CONC_EINVAL;
    if (d->type != CONC_OBJ_DICT && !is_setlike(d))
        return CONC_ETYPE;
    const struct conc__table *t = CONC__TABLE(d);
    while (*pos < t->nentries && !t->entries[*pos].key)
        (*pos)++;
    if (*pos >= t->nentries)
        return 0;
    *key = t->entries[*pos].key;
    if (value)
        *value = t->entries[*pos].value;
    (*pos)++;
    return 1;
}

/* ---- set and frozenset --------------------------------------------------- */

int
conc_obj_set_add_new(conc_obj *s, conc_obj *item)
{
    int r = 0;
    if (!s || !item)
        r = CONC_EINVAL;
    else if (s->type != CONC_OBJ_SET)
        r = CONC_ETYPE;
    if (r) {
        conc_obj_decref(item);
        return r;
    }
    return conc__table_insert(s, item, NULL);
}

int
conc_obj_set_add(conc_obj *s, conc_obj *item)
{
    if (!s || !item)
        return CONC_EINVAL;
    return conc_obj_set_add_new(s, conc_obj_incref(item));
}

int
conc_obj_frozenset(const conc_obj *items, conc_obj **out)
{
    if (!items || !out)
        return CONC_EINVAL;
    conc_obj *fs = conc__table_new(CONC_OBJ_FROZENSET);
    if (!fs)
        return CONC_ENOMEM;
    int r = 0;
    if (items->type == CONC_OBJ_LIST || items->type == CONC_OBJ_TUPLE) {
        const struct conc__seq *s = CONC__SEQ(items);
        for (size_t i = 0; !r && i < s->len; i++)
            r = conc__table_insert(fs, conc_obj_incref(s->items[i]), NULL);
    } else if (is_setlike(items)) {
        size_t pos = 0;
        conc_obj *k;
        while (!r && conc_obj_next(items, &pos, &k, NULL) == 1)
            r = conc__table_insert(fs, conc_obj_incref(k), NULL);
    } else {
        r = CONC_ETYPE;
    }
    if (r) {
        conc_obj_decref(fs);
        return r;
    }
    *out = fs;
    return 0;
}

int
conc_obj_contains(const conc_obj *c, const conc_obj *item)
{
    if (!c || !item)
        return CONC_EINVAL;
    if (c->type == CONC_OBJ_LIST || c->type == CONC_OBJ_TUPLE) {
        const struct conc__seq *s = CONC__SEQ(c);
        for (size_t i = 0; i < s->len; i++) {
            int r = conc__equal(s->items[i], item, CONC_OBJ_MAX_DEPTH);
            if (r)
                return r;
        }
        return 0;
    }
    if (c->type != CONC_OBJ_DICT && !is_setlike(c))
        return CONC_ETYPE;
    size_t slot;
    int32_t ix;
    int r = find(c, item, &slot, &ix);
    return r ? r : ix >= 0;
}
