/* Value and Array (multiprocessing.Value and multiprocessing.Array).
 *
 * Design. Both are one block in a shared arena: a header of one cache line
 * (type, element size, count, the lock), then the elements, cache-line
 * aligned. Because the header is in the arena too, the handle a process
 * holds is the same pointer in every process forked after creation, and
 * nothing in it changes after creation, so it needs no lock of its own.
 * A Value is an Array of one element; the two public types exist so that
 * the compiler keeps them apart.
 *
 * The lock is a process-shared RLock, as Python's default. Elements are
 * read and written with relaxed atomic loads and stores of their own size
 * (every type here is 1 to 8 bytes, naturally aligned), so that even
 * without the lock a reader never sees a torn element, and a process that
 * dies cannot leave one half-written: which is why the get and set
 * functions may simply recover a lock whose holder died.
 *
 * Conversions follow the element's family: integers through int64_t or
 * uint64_t with a range check, FLOAT and DOUBLE through double. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "shm/shm_internal.h"
#include "unix/coro.h"

#define HEADER 64 /* the elements start one cache line in */

enum family { NONE, SIGNED, UNSIGNED, REAL, BYTE };

struct ctype_info {
    uint8_t size;
    uint8_t family;
    int64_t min;  /* integers only */
    uint64_t max; /* integers only */
};

static const struct ctype_info INFO[] = {
    [CONC_CTYPE_I8] = {1, SIGNED, INT8_MIN, INT8_MAX},
    [CONC_CTYPE_I16] = {2, SIGNED, INT16_MIN, INT16_MAX},
    [CONC_CTYPE_I32] = {4, SIGNED, INT32_MIN, INT32_MAX},
    [CONC_CTYPE_I64] = {8, SIGNED, INT64_MIN, INT64_MAX},
    [CONC_CTYPE_U8] = {1, UNSIGNED, 0, UINT8_MAX},
    [CONC_CTYPE_U16] = {2, UNSIGNED, 0, UINT16_MAX},
    [CONC_CTYPE_U32] = {4, UNSIGNED, 0, UINT32_MAX},
    [CONC_CTYPE_U64] = {8, UNSIGNED, 0, UINT64_MAX},
    [CONC_CTYPE_FLOAT] = {4, REAL, 0, 0},
    [CONC_CTYPE_DOUBLE] = {8, REAL, 0, 0},
    [CONC_CTYPE_CHAR] = {1, BYTE, 0, 0},
};

/* The header of a Value or Array; immutable after creation. */
struct cells {
    conc_ctype type;
    uint32_t own_lock; /* lock was made here, and is freed here */
    size_t size;       /* of one element */
    size_t count;
    conc_rlock *lock; /* NULL: no lock */
    conc_arena *arena;
};
_Static_assert(sizeof(struct cells) <= HEADER, "header fits its line");

struct conc_value {
    struct cells c;
};

struct conc_array {
    struct cells c;
};

size_t
conc_ctype_size(conc_ctype type)
{
    if ((unsigned)type >= sizeof INFO / sizeof INFO[0])
        return 0;
    return INFO[type].size;
}

static const struct ctype_info *
info(const struct cells *c)
{
    return &INFO[c->type];
}

static unsigned char *
elem(struct cells *c, size_t index)
{
    return (unsigned char *)c + HEADER + index * c->size;
}

/* ---- Creation ----------------------------------------------------------- */

static int
resolve_opts(const conc_value_opts *opts, conc_arena **arena)
{
    *arena = opts ? opts->arena : NULL;
    if (!*arena) {
        int e = conc_arena_default(arena);
        if (e)
            return e;
    }
    if (opts && opts->rlock &&
        (opts->no_lock || !conc_arena_contains(*arena, opts->rlock)))
        return CONC_EINVAL;
    return 0;
}

/* Sets up the lock: borrowed, new, or none. */
static int
attach_lock(struct cells *c, const conc_value_opts *opts)
{
    if (opts && opts->no_lock)
        return 0;
    if (opts && opts->rlock) {
        c->lock = opts->rlock;
        return 0;
    }
    conc_sync_opts so = {.arena = c->arena};
    int e = conc_rlock_new(&so, &c->lock);
    c->own_lock = e == 0;
    return e;
}

static int
cells_new(conc_ctype type, size_t count, const void *init,
          const conc_value_opts *opts, struct cells **out)
{
    size_t size = conc_ctype_size(type);
    if (size == 0 || count == 0)
        return CONC_EINVAL;
    if (count > (SIZE_MAX - HEADER) / size)
        return CONC_EOVERFLOW;
    conc_arena *arena;
    int e = resolve_opts(opts, &arena);
    if (e)
        return e;
    void *p;
    e = conc_arena_alloc(arena, HEADER + count * size, &p);
    if (e)
        return e;
    struct cells *c = p;
    *c = (struct cells){
        .type = type, .size = size, .count = count, .arena = arena};
    e = attach_lock(c, opts);
    if (e) {
        conc_arena_dealloc(arena, c);
        return e;
    }
    if (init)
        memcpy(elem(c, 0), init, count * size);
    *out = c;
    return 0;
}

static void
cells_free(struct cells *c)
{
    if (!c)
        return;
    if (c->own_lock)
        conc_rlock_free(c->lock);
    conc_arena_dealloc(c->arena, c);
}

/* ---- Locking ------------------------------------------------------------ */

/* Takes the lock for one get or set, recovering it if its holder died (an
 * element is never left torn, see above). Returns 0 or
 * CONC_ENOTRECOVERABLE. */
static int
lock_cells(struct cells *c)
{
    if (!c->lock)
        return 0;
    int e = conc_rlock_acquire(c->lock, CONC_FOREVER);
    if (e == CONC_EOWNERDEAD) {
        e = conc_rlock_make_consistent(c->lock);
        if (e)
            conc_rlock_release(c->lock);
    }
    return e;
}

static void
unlock_cells(struct cells *c)
{
    if (c->lock)
        conc_rlock_release(c->lock);
}

static int
acquire_cells(struct cells *c, double timeout)
{
    return c->lock ? conc_rlock_acquire(c->lock, timeout) : CONC_EINVAL;
}

static int
release_cells(struct cells *c)
{
    return c->lock ? conc_rlock_release(c->lock) : CONC_EINVAL;
}

/* ---- Element access ----------------------------------------------------- */

/* The element's bits, zero-extended, read in one piece. */
static uint64_t
load_bits(const unsigned char *p, size_t size)
{
    switch (size) {
    case 1:
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    case 2:
        return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
    case 4:
        return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
    default:
        return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
    }
}

/* Stores the low `size` bytes of `bits` in one piece. */
static void
store_bits(unsigned char *p, size_t size, uint64_t bits)
{
    switch (size) {
    case 1:
        __atomic_store_n(p, (uint8_t)bits, __ATOMIC_RELAXED);
        break;
    case 2:
        __atomic_store_n((uint16_t *)p, (uint16_t)bits, __ATOMIC_RELAXED);
        break;
    case 4:
        __atomic_store_n((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
        break;
    default:
        __atomic_store_n((uint64_t *)p, bits, __ATOMIC_RELAXED);
        break;
    }
}

/* The bits of a signed element, sign-extended to 64. */
static int64_t
as_signed(uint64_t bits, size_t size)
{
    unsigned shift = 64 - 8 * (unsigned)size;
    int64_t v;
    bits <<= shift;
    memcpy(&v, &bits, sizeof v);
    return v >> shift;
}

static int
check_index(const struct cells *c, size_t index)
{
    return index < c->count ? 0 : CONC_EINVAL;
}

/* Copies the element at `p` out to `out`, reading it in one piece. */
static void
copy_out(const unsigned char *p, size_t size, void *out)
{
    uint64_t bits = load_bits(p, size);
    uint8_t b8 = (uint8_t)bits;
    uint16_t b16 = (uint16_t)bits;
    uint32_t b32 = (uint32_t)bits;
    const void *src = size == 1   ? (const void *)&b8
                      : size == 2 ? (const void *)&b16
                      : size == 4 ? (const void *)&b32
                                  : (const void *)&bits;
    memcpy(out, src, size);
}

/* The bits of the element whose bytes are at `in`, zero-extended. */
static uint64_t
bits_of(const void *in, size_t size)
{
    uint8_t b8;
    uint16_t b16;
    uint32_t b32;
    uint64_t b64;
    switch (size) {
    case 1:
        memcpy(&b8, in, 1);
        return b8;
    case 2:
        memcpy(&b16, in, 2);
        return b16;
    case 4:
        memcpy(&b32, in, 4);
        return b32;
    default:
        memcpy(&b64, in, 8);
        return b64;
    }
}

static int
get_raw(struct cells *c, size_t index, void *out)
{
    int e = check_index(c, index);
    if (e || (e = lock_cells(c)))
        return e;
    copy_out(elem(c, index), c->size, out);
    unlock_cells(c);
    return 0;
}

/* Stores already-checked bits. */
static int
put_bits(struct cells *c, size_t index, uint64_t bits)
{
    int e = lock_cells(c);
    if (e)
        return e;
    store_bits(elem(c, index), c->size, bits);
    unlock_cells(c);
    return 0;
}

static int
set_raw(struct cells *c, size_t index, const void *in)
{
    int e = check_index(c, index);
    return e ? e : put_bits(c, index, bits_of(in, c->size));
}

static int
read_bits(struct cells *c, size_t index, int fam, uint64_t *bits)
{
    int e = check_index(c, index);
    if (e)
        return e;
    int f = info(c)->family;
    if (fam == REAL ? f != REAL : f != SIGNED && f != UNSIGNED)
        return CONC_EINVAL;
    if ((e = lock_cells(c)))
        return e;
    *bits = load_bits(elem(c, index), c->size);
    unlock_cells(c);
    return 0;
}

static int
get_i64(struct cells *c, size_t index, int64_t *out)
{
    uint64_t bits;
    int e = read_bits(c, index, SIGNED, &bits);
    if (e)
        return e;
    if (info(c)->family == SIGNED) {
        *out = as_signed(bits, c->size);
        return 0;
    }
    if (bits > INT64_MAX)
        return CONC_EOVERFLOW;
    *out = (int64_t)bits;
    return 0;
}

static int
get_u64(struct cells *c, size_t index, uint64_t *out)
{
    uint64_t bits;
    int e = read_bits(c, index, UNSIGNED, &bits);
    if (e)
        return e;
    if (info(c)->family == SIGNED) {
        int64_t v = as_signed(bits, c->size);
        if (v < 0)
            return CONC_EOVERFLOW;
        bits = (uint64_t)v;
    }
    *out = bits;
    return 0;
}

static int
check_int_target(const struct cells *c, size_t index)
{
    int f = info(c)->family;
    if (f != SIGNED && f != UNSIGNED)
        return CONC_EINVAL;
    return check_index(c, index);
}

static int
set_i64(struct cells *c, size_t index, int64_t x)
{
    int e = check_int_target(c, index);
    if (e)
        return e;
    if (x < 0 ? x < info(c)->min : (uint64_t)x > info(c)->max)
        return CONC_EOVERFLOW;
    return put_bits(c, index, (uint64_t)x);
}

static int
set_u64(struct cells *c, size_t index, uint64_t x)
{
    int e = check_int_target(c, index);
    if (e)
        return e;
    if (x > info(c)->max)
        return CONC_EOVERFLOW;
    return put_bits(c, index, x);
}

static int
get_double(struct cells *c, size_t index, double *out)
{
    uint64_t bits;
    int e = read_bits(c, index, REAL, &bits);
    if (e)
        return e;
    if (c->type == CONC_CTYPE_FLOAT) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        *out = f;
    } else {
        memcpy(out, &bits, sizeof *out);
    }
    return 0;
}

static int
set_double(struct cells *c, size_t index, double x)
{
    int e = check_index(c, index);
    if (e)
        return e;
    if (info(c)->family != REAL)
        return CONC_EINVAL;
    uint64_t bits;
    if (c->type == CONC_CTYPE_FLOAT) {
        /* Converting a finite double beyond float's range is undefined. */
        if (isfinite(x) && fabs(x) > FLT_MAX)
            return CONC_EOVERFLOW;
        float f = (float)x;
        uint32_t b32;
        memcpy(&b32, &f, sizeof b32);
        bits = b32;
    } else {
        memcpy(&bits, &x, sizeof bits);
    }
    return put_bits(c, index, bits);
}

static int
check_slice(const struct cells *c, size_t start, size_t stop)
{
    return start <= stop && stop <= c->count ? 0 : CONC_EINVAL;
}

static int
get_slice(struct cells *c, size_t start, size_t stop, void *out)
{
    int e = check_slice(c, start, stop);
    if (e || start == stop || (e = lock_cells(c)))
        return e;
    memcpy(out, elem(c, start), (stop - start) * c->size);
    unlock_cells(c);
    return 0;
}

static int
set_slice(struct cells *c, size_t start, size_t stop, const void *in)
{
    int e = check_slice(c, start, stop);
    if (e || start == stop || (e = lock_cells(c)))
        return e;
    memcpy(elem(c, start), in, (stop - start) * c->size);
    unlock_cells(c);
    return 0;
}

/* ---- Value -------------------------------------------------------------- */

int
conc_value_new(conc_ctype type, const void *init, const conc_value_opts *opts,
               conc_value **out)
{
    if (!out)
        return CONC_EINVAL;
    struct cells *c;
    int e = cells_new(type, 1, init, opts, &c);
    if (e == 0)
        *out = (conc_value *)c;
    return e;
}

void
conc_value_free(conc_value *v)
{
    cells_free(v ? &v->c : NULL);
}

void *
conc_value_ptr(conc_value *v)
{
    if (!v)
        return NULL;
    return elem(&v->c, 0);
}

conc_ctype
conc_value_type(const conc_value *v)
{
    if (!v)
        return 0;
    return v->c.type;
}

conc_rlock *
conc_value_get_lock(conc_value *v)
{
    if (!v)
        return NULL;
    return v->c.lock;
}

static int
value_acquire_uncancelled(conc_value *v, double timeout)
{
    if (!v)
        return CONC_EINVAL;
    return acquire_cells(&v->c, timeout);
}

int
conc_value_acquire(conc_value *v, double timeout)
{
    CONC__CANCEL_POINT(value_acquire_uncancelled(v, timeout));
}

int
conc_value_release(conc_value *v)
{
    if (!v)
        return CONC_EINVAL;
    return release_cells(&v->c);
}

int
conc_value_get(conc_value *v, void *out)
{
    if (!v || !out)
        return CONC_EINVAL;
    return get_raw(&v->c, 0, out);
}

int
conc_value_set(conc_value *v, const void *in)
{
    if (!v || !in)
        return CONC_EINVAL;
    return set_raw(&v->c, 0, in);
}

int
conc_value_get_i64(conc_value *v, int64_t *out)
{
    if (!v || !out)
        return CONC_EINVAL;
    return get_i64(&v->c, 0, out);
}

int
conc_value_set_i64(conc_value *v, int64_t x)
{
    if (!v)
        return CONC_EINVAL;
    return set_i64(&v->c, 0, x);
}

int
conc_value_get_u64(conc_value *v, uint64_t *out)
{
    if (!v || !out)
        return CONC_EINVAL;
    return get_u64(&v->c, 0, out);
}

int
conc_value_set_u64(conc_value *v, uint64_t x)
{
    if (!v)
        return CONC_EINVAL;
    return set_u64(&v->c, 0, x);
}

int
conc_value_get_double(conc_value *v, double *out)
{
    if (!v)
        return CONC_EINVAL;
    return get_double(&v->c, 0, out);
}

int
conc_value_set_double(conc_value *v, double x)
{
    if (!v)
        return CONC_EINVAL;
    return set_double(&v->c, 0, x);
}

/* ---- Array -------------------------------------------------------------- */

int
conc_array_new(conc_ctype type, size_t count, const void *init,
               const conc_value_opts *opts, conc_array **out)
{
    if (!out)
        return CONC_EINVAL;
    struct cells *c;
    int e = cells_new(type, count, init, opts, &c);
    if (e == 0)
        *out = (conc_array *)c;
    return e;
}

void
conc_array_free(conc_array *a)
{
    cells_free(a ? &a->c : NULL);
}

void *
conc_array_ptr(conc_array *a)
{
    if (!a)
        return NULL;
    return elem(&a->c, 0);
}

size_t
conc_array_len(const conc_array *a)
{
    if (!a)
        return 0;
    return a->c.count;
}

conc_ctype
conc_array_type(const conc_array *a)
{
    if (!a)
        return 0;
    return a->c.type;
}

conc_rlock *
conc_array_get_lock(conc_array *a)
{
    if (!a)
        return NULL;
    return a->c.lock;
}

static int
array_acquire_uncancelled(conc_array *a, double timeout)
{
    if (!a)
        return CONC_EINVAL;
    return acquire_cells(&a->c, timeout);
}

int
conc_array_acquire(conc_array *a, double timeout)
{
    CONC__CANCEL_POINT(array_acquire_uncancelled(a, timeout));
}

int
conc_array_release(conc_array *a)
{
    if (!a)
        return CONC_EINVAL;
    return release_cells(&a->c);
}

int
conc_array_get(conc_array *a, size_t index, void *out)
{
    if (!a || !out)
        return CONC_EINVAL;
    return get_raw(&a->c, index, out);
}

int
conc_array_set(conc_array *a, size_t index, const void *in)
{
    if (!a || !in)
        return CONC_EINVAL;
    return set_raw(&a->c, index, in);
}

int
conc_array_get_i64(conc_array *a, size_t index, int64_t *out)
{
    if (!a || !out)
        return CONC_EINVAL;
    return get_i64(&a->c, index, out);
}

int
conc_array_set_i64(conc_array *a, size_t index, int64_t x)
{
    if (!a)
        return CONC_EINVAL;
    return set_i64(&a->c, index, x);
}

int
conc_array_get_u64(conc_array *a, size_t index, uint64_t *out)
{
    if (!a || !out)
        return CONC_EINVAL;
    return get_u64(&a->c, index, out);
}

int
conc_array_set_u64(conc_array *a, size_t index, uint64_t x)
{
    if (!a)
        return CONC_EINVAL;
    return set_u64(&a->c, index, x);
}

int
conc_array_get_double(conc_array *a, size_t index, double *out)
{
    if (!a)
        return CONC_EINVAL;
    return get_double(&a->c, index, out);
}

int
conc_array_set_double(conc_array *a, size_t index, double x)
{
    if (!a)
        return CONC_EINVAL;
    return set_double(&a->c, index, x);
}

int
conc_array_get_slice(conc_array *a, size_t start, size_t stop, void *out)
{
    if (!a || (!out && start < stop))
        return CONC_EINVAL;
    return get_slice(&a->c, start, stop, out);
}

int
conc_array_set_slice(conc_array *a, size_t start, size_t stop, const void *in)
{
    if (!a || (!in && start < stop))
        return CONC_EINVAL;
    return set_slice(&a->c, start, stop, in);
}
