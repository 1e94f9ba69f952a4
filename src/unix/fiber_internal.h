/* What fiber.c (the switch) and stack.c (stacks, pools, the overflow
 * report) share: the fiber record and the per-thread state. See fiber.h for
 * the design. */
#ifndef CONC_UNIX_FIBER_INTERNAL_H
#define CONC_UNIX_FIBER_INTERNAL_H

#include <stddef.h>

#include "unix/fiber.h"

/* The portable switch: forced by CMake, or where no assembly applies. */
#if defined(CONC_FIBER_PORTABLE) ||                                            \
    !(defined(__x86_64__) || defined(__aarch64__))
#define CONC__FIBER_UCONTEXT 1
#include <ucontext.h>
#endif

/* Which sanitizers are built in (GCC says so with macros, clang with
 * __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define CONC__FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CONC__FIBER_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(CONC__FIBER_ASAN)
#define CONC__FIBER_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(CONC__FIBER_TSAN)
#define CONC__FIBER_TSAN 1
#endif
#endif

#ifdef CONC__FIBER_ASAN
#include <sanitizer/asan_interface.h>
#define CONC__STACK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define CONC__STACK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Valgrind must be told which memory is a stack, or a switch looks like a
 * huge stack-pointer move and floods it with warnings. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CONC__STACK_VG_REGISTER(lo, hi) VALGRIND_STACK_REGISTER((lo), (hi))
#define CONC__STACK_VG_DEREGISTER(id)   VALGRIND_STACK_DEREGISTER(id)
#endif
#endif
#ifndef CONC__STACK_VG_REGISTER
#define CONC__STACK_VG_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define CONC__STACK_VG_DEREGISTER(id)   ((void)(id))
#endif

enum conc__fiber_state {
    CONC__FIBER_NEW,       /* made, never switched to */
    CONC__FIBER_RUNNING,   /* its thread runs it now */
    CONC__FIBER_SUSPENDED, /* switched away from; sp holds its context */
    CONC__FIBER_EXITED     /* ended with conc__fiber_exit */
};

/* One fiber. Every field belongs to the owning thread; the backtrace of a
 * suspended fiber reads sp, state and the stack bounds from elsewhere. A
 * fiber with a stack lives at the top of that stack's mapping. */
struct conc__fiber {
    void *sp; /* saved stack pointer while suspended (assembly switch) */
    enum conc__fiber_state state;
    struct conc__fiber_tls *owner;
    conc__fiber_fn fn;
    void *arg;
    const char *name;
    char *map;       /* the stack's range, guard page or canary first; NULL
                        for a base fiber */
    size_t map_size; /* its length, the pool's key */
    struct conc__stack_slab *slab; /* the slab holding it, NULL if guarded */
    char *lo;                      /* usable stack [lo, lo + size) */
    size_t size;
    struct conc__fiber *next; /* the pool's list */
    /* What the sanitizers and valgrind are told. For the base fiber, ASan
     * learns the stack bounds at the first switch away from it. */
    void *asan_fake;
    const void *asan_lo;
    size_t asan_size;
    void *tsan;
    unsigned vg_id;
#ifdef CONC__FIBER_UCONTEXT
    ucontext_t uc;
    void *fp; /* the frame of conc__fiber_switch while suspended */
#endif
};

/* The calling thread's fibers. Thread-local: only that thread touches it
 * (its SIGSEGV handler included). */
struct conc__fiber_tls {
    conc__fiber base;
    conc__fiber *current;
    conc__fiber *prev; /* the fiber that switched to current */
    conc__fiber *pool; /* freed fibers and their stacks */
    int npool;
    struct conc__stack_slab *partial; /* slabs with a free slot */
    struct conc__stack_slab *full;    /* slabs without */
    int guarded;    /* the key, sigaltstack and handler are set up */
    char *altstack; /* the sigaltstack conc mapped, or NULL */
    size_t altstack_size;
};

/* The calling thread's state, its base fiber made on the first call.
 * Never NULL. */
struct conc__fiber_tls *conc__fiber_tls(void);

/* Sets up the thread's exit path, its sigaltstack and the process's
 * SIGSEGV handler, once per thread. Returns 0 or CONC_ENOMEM. */
int conc__stack_thread_setup(struct conc__fiber_tls *t);

/* A fiber record at the top of a stack of at least `size` usable bytes
 * (already rounded by the caller), from t's pool, newly mapped with a
 * guard page while the process is within its budget of guarded stacks,
 * else from a slab (always from a slab, pooled or not, when `flags` has
 * CONC__FIBER_SLAB); its fields other than the stack's are zero. Returns
 * 0, CONC_EINVAL when the size overflows, or CONC_ENOMEM. */
int conc__stack_take(struct conc__fiber_tls *t, size_t size, unsigned flags,
                     conc__fiber **out);

/* Checks the canary below a slab stack (f->slab not NULL): every word
 * when `full`, else the KiB nearest the stack and one word per cache line,
 * cheap enough for every switch. A damaged canary writes "conc: stack
 * overflow in task '<name>'" to stderr and aborts. The fiber's thread. */
void conc__stack_check(const conc__fiber *f, int full);

/* Gives f's stack back to t's pool, or unmaps it when the pool is full. */
void conc__stack_give(struct conc__fiber_tls *t, conc__fiber *f);

/* The guard page's size: one page. */
size_t conc__stack_page(void);

/* The record's room at the top of a stack, kept a multiple of 64 so the
 * stack's top stays aligned for any ABI. */
#define CONC__STACK_RECORD_SIZE (((sizeof(conc__fiber) + 63) / 64) * 64)

/* Adds delta to the count of mapped stacks (conc__fiber_stacks_mapped). */
void conc__stack_count(long delta);

/* Writes "conc: stack overflow in task '<name>'" to stderr, with write(2)
 * only (async-signal-safe). */
void conc__stack_report(const conc__fiber *f);

/* ---- fiber_slab.c: the budget of guarded stacks, and slabs ---- */

/* Reserves room for one more guarded stack: 1 within the budget, else 0
 * (nothing reserved). */
int conc__slab_guard_reserve(void);

/* Gives back a reservation, for a guarded stack unmapped or never mapped. */
void conc__slab_guard_release(void);

/* A record at the top of a free slot of `len` bytes (canary page, stack,
 * record) of one of t's slabs, a new slab mapped if none has room; map,
 * map_size, slab and vg_id set. Returns NULL when no slab can be mapped. */
conc__fiber *conc__slab_take(struct conc__fiber_tls *t, size_t len);

/* Gives f's slot back to its slab, releasing its pages, and unmaps the
 * slab when it was its last slot in use. */
void conc__slab_give(struct conc__fiber_tls *t, conc__fiber *f);

/* Whether addr lies in the guard page below f's slab (a fault there is
 * f's overflow). Async-signal-safe. */
int conc__slab_guard_hit(const conc__fiber *f, const char *addr);

#endif
