/* conc/shm.h: shared memory between processes, as in Python's
 * multiprocessing.Value, multiprocessing.Array and
 * multiprocessing.shared_memory.SharedMemory.
 *
 * Value and Array live in a shared arena (conc/arena.h): processes forked
 * after one was created see the same memory at the same address, and use
 * the same handle. By default each carries a process-shared RLock, as
 * Python's lock=True does, which the get and set functions below take
 * around each access.
 *
 * Any fixed-size struct without pointers (or with pointers only into the
 * same arena) can be shared the same way without Value: allocate it with
 * conc_arena_alloc before forking, and guard it with a Lock created with
 * that arena (conc/sync.h).
 *
 * Named shared memory segments (conc_shm_*) need no common ancestor: any
 * process that knows the name may attach, each at its own address. */
#ifndef CONC_SHM_H
#define CONC_SHM_H

#include "arena.h"
#include "common.h"
#include "sync.h"

CONC_BEGIN_DECLS

/* ---- Element types -------------------------------------------------------
 * Python's typecodes and ctypes types for Value and Array. */
typedef enum conc_ctype {
    CONC_CTYPE_I8 = 1, /* 'b', c_int8 */
    CONC_CTYPE_I16,    /* 'h', c_int16 */
    CONC_CTYPE_I32,    /* 'i', c_int32 */
    CONC_CTYPE_I64,    /* 'q', c_int64 (and 'l' on 64-bit Linux) */
    CONC_CTYPE_U8,     /* 'B', c_uint8 */
    CONC_CTYPE_U16,    /* 'H', c_uint16 */
    CONC_CTYPE_U32,    /* 'I', c_uint32 */
    CONC_CTYPE_U64,    /* 'Q', c_uint64 (and 'L') */
    CONC_CTYPE_FLOAT,  /* 'f', c_float */
    CONC_CTYPE_DOUBLE, /* 'd', c_double */
    CONC_CTYPE_CHAR    /* 'c', c_char: one byte */
} conc_ctype;

/* The size in bytes of one element of `type`, or 0 if `type` is not one of
 * the values above. Any thread. */
CONC_EXTERN size_t conc_ctype_size(conc_ctype type);

/* Options for conc_value_new and conc_array_new; NULL means Python's
 * defaults (the default arena, with a new lock). */
typedef struct conc_value_opts {
    conc_arena *arena; /* NULL: conc_arena_default() */
    int no_lock;       /* nonzero: no lock at all (Python's lock=False) */
    conc_rlock *rlock; /* share this process-shared RLock (borrowed; it must
                          be in `arena` and outlive the object) instead of a
                          new one, to guard several objects with one lock */
} conc_value_opts;

/* ---- Value (multiprocessing.Value) ---------------------------------------
 * One element of a given type in shared memory.
 *
 * Lifetime: the object is in the arena, so one conc_value_free, in any one
 * process, frees it for all; free it once every process is done with it.
 *
 * Typed access converts as Python does between the element and the C type
 * asked for: the integer functions serve every integer type (not CHAR), the
 * double functions serve FLOAT and DOUBLE; other pairings are CONC_EINVAL.
 * A value that does not fit the element type is refused with
 * CONC_EOVERFLOW (Python's ctypes would silently truncate it). Each get or
 * set takes the lock, if any, for its duration; without a lock, each still
 * reads or writes the element in one piece, but a read-modify-write is
 * not atomic, as in Python.
 *
 * If a process died while holding the lock, the get and set functions
 * recover it (conc_rlock_make_consistent) and carry on: they write each
 * element with one store, so a dead writer cannot leave one half-written.
 * Code that holds the lock itself (conc_value_acquire) sees the death as
 * CONC_EOWNERDEAD and decides. */
typedef struct conc_value conc_value;

/* Creates a value of `type` in *out, freed with conc_value_free. `init`
 * points to one element to copy in, or is NULL for zero. `opts` may be
 * NULL. Returns 0, CONC_EINVAL (bad type, `rlock` with `no_lock`, or an
 * `rlock` that is not in the arena), or CONC_ENOMEM (the arena is full).
 * Any thread. */
CONC_EXTERN int conc_value_new(conc_ctype type, const void *init,
                               const conc_value_opts *opts, conc_value **out);

/* Frees the value (and its own lock, never a borrowed one). No process
 * may use it afterwards. NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_value_free(conc_value *v);

/* The element itself, for direct use (Python's raw value): valid until
 * conc_value_free, at the same address in every process that shares it.
 * Accesses through it are not locked.
 * Any thread. */
CONC_EXTERN void *conc_value_ptr(conc_value *v);
CONC_EXTERN conc_ctype conc_value_type(const conc_value *v);

/* The value's lock (Python's get_lock()), borrowed, or NULL if it was
 * created with no_lock.
 * Any thread. */
CONC_EXTERN conc_rlock *conc_value_get_lock(conc_value *v);

/* Acquire and release the lock (Python's v.acquire(), v.release(), and
 * `with v.get_lock():`). Errors as conc_rlock_acquire and
 * conc_rlock_release (CONC_EOWNERDEAD included), or CONC_EINVAL if the
 * value has no lock.
 * Any thread. */
CONC_EXTERN int conc_value_acquire(conc_value *v, double timeout);
CONC_EXTERN int conc_value_release(conc_value *v);

/* Copies the element out to `out` (conc_ctype_size(type) bytes), or in
 * from `in`, under the lock. Returns 0, or CONC_ENOTRECOVERABLE if the
 * lock was left unusable. Any thread of any sharing process. */
CONC_EXTERN int conc_value_get(conc_value *v, void *out);
CONC_EXTERN int conc_value_set(conc_value *v, const void *in);

/* Typed access (Python's v.value), under the lock. Returns 0, CONC_EINVAL
 * for a type of the other family, CONC_EOVERFLOW for a value that does not
 * fit (nothing stored, or nothing read), or CONC_ENOTRECOVERABLE.
 * Any thread. */
CONC_EXTERN int conc_value_get_i64(conc_value *v, int64_t *out);
CONC_EXTERN int conc_value_set_i64(conc_value *v, int64_t x);
CONC_EXTERN int conc_value_get_u64(conc_value *v, uint64_t *out);
CONC_EXTERN int conc_value_set_u64(conc_value *v, uint64_t x);
CONC_EXTERN int conc_value_get_double(conc_value *v, double *out);
CONC_EXTERN int conc_value_set_double(conc_value *v, double x);

/* ---- Array (multiprocessing.Array) ---------------------------------------
 * A fixed number of elements of one type in shared memory, with the same
 * lifetime, lock and conversion rules as Value. An index past the end is
 * CONC_EINVAL (Python's IndexError). */
typedef struct conc_array conc_array;

/* Creates an array of `count` elements of `type` in *out, freed with
 * conc_array_free. `init` points to `count` elements to copy in, or is NULL
 * for zeros. Returns 0, CONC_EINVAL (bad type, count 0, `rlock` with
 * `no_lock`, an `rlock` not in the arena), CONC_EOVERFLOW (count times the
 * element size overflows), or CONC_ENOMEM (the arena is full).
 * conc_array_free: any thread, once no other thread uses the object. The
 * others: any thread. */
CONC_EXTERN int conc_array_new(conc_ctype type, size_t count, const void *init,
                               const conc_value_opts *opts, conc_array **out);
CONC_EXTERN void conc_array_free(conc_array *a);

/* The first element (Python's a.get_obj()), for direct, unlocked use. Any
 * thread.
 * The memory is borrowed from the array: valid until conc_array_free. NULL for
 * a NULL array. */
CONC_EXTERN void *conc_array_ptr(conc_array *a);
CONC_EXTERN size_t conc_array_len(const conc_array *a);
CONC_EXTERN conc_ctype conc_array_type(const conc_array *a);

/* The array's lock and its acquire and release, as
 * conc_value_get_lock, conc_value_acquire and conc_value_release: the
 * lock is borrowed from the array (NULL without one, or for a NULL
 * array); errors as those (CONC_EINVAL for a NULL array or no lock). Any
 * thread; release from the thread that holds the lock. */
CONC_EXTERN conc_rlock *conc_array_get_lock(conc_array *a);
CONC_EXTERN int conc_array_acquire(conc_array *a, double timeout);
CONC_EXTERN int conc_array_release(conc_array *a);

/* Element `index` (a[i], a[i] = x), under the lock. Returns 0, CONC_EINVAL
 * for an index out of range or a type of the other family, CONC_EOVERFLOW,
 * or CONC_ENOTRECOVERABLE.
 * Any thread. */
CONC_EXTERN int conc_array_get(conc_array *a, size_t index, void *out);
CONC_EXTERN int conc_array_set(conc_array *a, size_t index, const void *in);
CONC_EXTERN int conc_array_get_i64(conc_array *a, size_t index, int64_t *out);
CONC_EXTERN int conc_array_set_i64(conc_array *a, size_t index, int64_t x);
CONC_EXTERN int conc_array_get_u64(conc_array *a, size_t index, uint64_t *out);
CONC_EXTERN int conc_array_set_u64(conc_array *a, size_t index, uint64_t x);
CONC_EXTERN int conc_array_get_double(conc_array *a, size_t index, double *out);
CONC_EXTERN int conc_array_set_double(conc_array *a, size_t index, double x);

/* Copies elements [start, stop) out to `out` (a[start:stop]) or in from
 * `in` (a[start:stop] = ...), (stop - start) elements, under the lock for
 * the whole copy. Returns 0, CONC_EINVAL unless start <= stop <= len, or
 * CONC_ENOTRECOVERABLE. An empty slice copies nothing. A slice being
 * written by a process that dies mid-copy may be left partly written, and
 * without a lock a slice copy is not atomic element by element.
 * Any thread. */
CONC_EXTERN int conc_array_get_slice(conc_array *a, size_t start, size_t stop,
                                     void *out);
CONC_EXTERN int conc_array_set_slice(conc_array *a, size_t start, size_t stop,
                                     const void *in);

/* ---- Named shared memory (shared_memory.SharedMemory) --------------------
 * A segment of shared memory with a name in /dev/shm, that any process may
 * attach to by name. A handle is private to the process that made it (a
 * forked child may use an inherited handle's buffer, which stays mapped,
 * but should attach for a handle of its own).
 *
 * Names are as in Python: 1 to 255 bytes without '/' (nor "." or ".."),
 * given with or without one leading '/'; conc_shm_name returns the name
 * without it. Segments are created with mode 0600 (only the same user may
 * attach). A handle may be closed, unlinked or freed by one thread at a
 * time; any thread may read its buffer, size and name.
 *
 * Clean-up at exit: a segment that a process created and did not unlink is
 * unlinked when that process ends normally (exit(), or returning from
 * main), as Python's resource tracker does; forked children never unlink
 * their parent's segments that way, and a segment that was unlinked and
 * re-created under the same name by someone else is left alone. A process
 * killed by a signal, or ending with _exit, runs no clean-up: its segments
 * stay until unlinked by name or until reboot. */
typedef struct conc_shm conc_shm;

/* Creates a segment of `size` bytes, zero-filled, and maps it. `name` NULL
 * makes a new unique name ("conc_" and 16 hex digits). Returns 0 and a new
 * handle in *out, freed with conc_shm_free; CONC_EINVAL for size 0, a size
 * too large for a file, or a bad name; CONC_EEXIST if the name is taken;
 * CONC_EACCES; CONC_ENOMEM; other negated errno values from shm_open,
 * ftruncate or mmap. Any thread. Memory is taken as pages are first
 * touched: touching more than /dev/shm has free kills the process with
 * SIGBUS, as in Python. */
CONC_EXTERN int conc_shm_create(const char *name, size_t size, conc_shm **out);

/* Attaches to the existing segment `name` and maps all of it. Returns 0
 * and a new handle in *out, freed with conc_shm_free; CONC_ENOENT if there
 * is no such segment; CONC_EINVAL for a bad name or an empty segment (its
 * creator has not sized it yet); CONC_EACCES; CONC_ENOMEM; other negated
 * errno values.
 * Any thread. */
CONC_EXTERN int conc_shm_attach(const char *name, conc_shm **out);

/* The mapped memory (Python's buf), or NULL once closed. Any thread.
 * The mapping is owned by the handle: valid until conc_shm_close or
 * conc_shm_free. NULL for a NULL handle. */
CONC_EXTERN void *conc_shm_buf(conc_shm *s);

/* The segment's size in bytes (kept after close). Any thread. */
CONC_EXTERN size_t conc_shm_size(const conc_shm *s);

/* The name, without a leading '/'; valid until conc_shm_free. Any thread. */
CONC_EXTERN const char *conc_shm_name(const conc_shm *s);

/* Unmaps the segment in this process (Python's close()); the segment and
 * its name remain. Calling it again does nothing.
 * One thread at a time per handle. */
CONC_EXTERN void conc_shm_close(conc_shm *s);

/* Removes the name (Python's unlink()): no process can attach any more,
 * and the memory goes once every mapping is gone. Any process may call it,
 * once. Returns 0, CONC_ENOENT if the name is already gone, CONC_EACCES.
 * The handle stays usable, mapping included.
 * One thread at a time per handle. */
CONC_EXTERN int conc_shm_unlink(conc_shm *s);

/* Closes the segment (if still open) and frees the handle; does not
 * unlink. NULL does nothing.
 * Any thread, once no other thread uses the object. */
CONC_EXTERN void conc_shm_free(conc_shm *s);

CONC_END_DECLS

#endif
