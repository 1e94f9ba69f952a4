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
    char *map;       /* the mapping, guard page first; NULL for a base fiber */
    size_t map_size; /* its length, the pool's key */
    char *lo;        /* usable stack [lo, lo + size) */
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
 * (already rounded by the caller), from t's pool or newly mapped; its
 * fields other than the stack's are zero. Returns 0, CONC_EINVAL when the
 * size overflows, or CONC_ENOMEM. */
int conc__stack_take(struct conc__fiber_tls *t, size_t size, conc__fiber **out);

/* Gives f's stack back to t's pool, or unmaps it when the pool is full. */
void conc__stack_give(struct conc__fiber_tls *t, conc__fiber *f);

/* The guard page's size: one page. */
size_t conc__stack_page(void);

#endif
