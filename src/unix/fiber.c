/* Fibers: making one, switching, ending, and walking a suspended stack
 * (fiber.h has the design; stack.c the stacks).
 *
 * A switch, from the running fiber `from` to `to`:
 *
 *   before_switch  tell ASan where `to`'s stack is and save `from`'s fake
 *                  stack (or drop it when `from` exited); tell TSan
 *   ctx_switch     assembly (or swapcontext): save `from`, resume `to`
 *   after_switch   now on `to`: ASan finishes the switch and names the
 *                  stack we came from, which is how the base fiber's
 *                  bounds are learnt
 *
 * A new fiber resumes in the entry code of the assembly file, which calls
 * fiber_start(f) on the fresh stack; fiber_start runs after_switch first.
 *
 * No locks: a fiber is touched only by its thread (the backtrace of a
 * suspended fiber only reads). */
#include <stdint.h>
#include <string.h>

#include "core/internal.h"
#include "unix/fiber_internal.h"

#ifdef CONC__FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CONC__FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* The control words a new fiber starts with: the ABI's defaults (all
 * floating-point exceptions masked, round to nearest). */
#define X86_MXCSR_DEFAULT 0x1F80u
#define X86_FPCW_DEFAULT  0x037Fu

/* The most frames the backtrace follows, whatever `max` says. */
#define BACKTRACE_FRAMES_MAX 1024

#ifndef CONC__FIBER_UCONTEXT
/* ctx_<arch>.S: saves the callee-saved state on the running stack, stores
 * the stack pointer in *save, and resumes the context saved at `sp`. */
void conc__ctx_switch(void **save, void *sp);
/* Where a new fiber's first switch returns to: calls start(f) with f and
 * start taken from the callee-saved registers of its initial frame. */
void conc__ctx_entry(void);
#endif

static void
before_switch(conc__fiber *from, conc__fiber *to, int exiting)
{
#ifdef CONC__FIBER_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake,
                                   to->asan_lo, to->asan_size);
#else
    (void)from;
    (void)exiting;
#endif
#ifdef CONC__FIBER_TSAN
    __tsan_switch_to_fiber(to->tsan, 0);
#else
    (void)to;
#endif
}

static void
after_switch(struct conc__fiber_tls *t, conc__fiber *self)
{
#ifdef CONC__FIBER_ASAN
    const void *prev_lo;
    size_t prev_size;
    __sanitizer_finish_switch_fiber(self->asan_fake, &prev_lo, &prev_size);
    conc__fiber *prev = t->prev;
    if (prev && !prev->map && !prev->asan_lo) {
        prev->asan_lo = prev_lo;
        prev->asan_size = prev_size;
    }
#else
    (void)t;
    (void)self;
#endif
}

/* The first code a new fiber runs, on its own stack. */
static _Noreturn void
fiber_start(conc__fiber *f)
{
    after_switch(f->owner, f);
    f->fn(f->arg);
    conc__panic("fiber function %p returned (it must end with "
                "conc__fiber_exit)",
                (void *)f);
}

#ifdef CONC__FIBER_UCONTEXT
/* makecontext passes int arguments: the pointer travels in two halves. */
static void
fiber_start_ucontext(unsigned hi, unsigned lo)
{
    uintptr_t p = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
    fiber_start((conc__fiber *)p);
}

static void
ctx_init(conc__fiber *f)
{
    if (getcontext(&f->uc) != 0)
        conc__panic("getcontext failed");
    f->uc.uc_stack.ss_sp = f->lo;
    f->uc.uc_stack.ss_size = f->size;
    f->uc.uc_link = NULL;
    uintptr_t p = (uintptr_t)f;
    makecontext(&f->uc, (void (*)(void))fiber_start_ucontext, 2,
                (unsigned)(p >> 16 >> 16), (unsigned)p);
}

static void
ctx_switch(conc__fiber *from, conc__fiber *to)
{
    from->fp = __builtin_frame_address(0);
    if (swapcontext(&from->uc, &to->uc) != 0)
        conc__panic("swapcontext failed");
}
#else
/* The initial frame of a new stack: what conc__ctx_switch pops, laid out
 * as the assembly file says, below a zeroed frame record (frame pointer
 * and return address 0) that ends every walk of the stack. */
static void
ctx_init(conc__fiber *f)
{
    uintptr_t *top = (uintptr_t *)(f->lo + f->size);
    top[-1] = 0; /* the base frame's return address */
    top[-2] = 0; /* and its frame pointer */
    uintptr_t base = (uintptr_t)&top[-2];
#if defined(__x86_64__)
    /* From sp up: control words, r15, r14, r13, r12, rbx, rbp, return. */
    uintptr_t *sp = top - 10;
    sp[0] = X86_MXCSR_DEFAULT | ((uintptr_t)X86_FPCW_DEFAULT << 32);
    sp[1] = sp[2] = 0;                  /* r15, r14 */
    sp[3] = (uintptr_t)fiber_start;     /* r13: the function */
    sp[4] = (uintptr_t)f;               /* r12: its argument */
    sp[5] = 0;                          /* rbx */
    sp[6] = base;                       /* rbp */
    sp[7] = (uintptr_t)conc__ctx_entry; /* return address */
#elif defined(__aarch64__)
    /* 176 bytes from sp up: x19-x28, x29, x30, d8-d15, FPCR, padding. */
    uintptr_t *sp = top - 2 - 22;
    memset(sp, 0, 22 * sizeof *sp);
    sp[0] = (uintptr_t)f;                /* x19: the argument */
    sp[1] = (uintptr_t)fiber_start;      /* x20: the function */
    sp[10] = base;                       /* x29 */
    sp[11] = (uintptr_t)conc__ctx_entry; /* x30 */
#endif
    f->sp = sp;
}

static inline void
ctx_switch(conc__fiber *from, conc__fiber *to)
{
    conc__ctx_switch(&from->sp, to->sp);
}
#endif

/* Where the saved context keeps the frame pointer and the return address,
 * in words from the saved stack pointer. */
#if defined(__x86_64__)
#define CTX_FP_SLOT 6
#define CTX_PC_SLOT 7
#elif defined(__aarch64__)
#define CTX_FP_SLOT 10
#define CTX_PC_SLOT 11
#endif

conc__fiber *
conc__fiber_self(void)
{
    return conc__fiber_tls()->current;
}

conc__fiber *
conc__fiber_thread(void)
{
    return &conc__fiber_tls()->base;
}

static size_t
round_size(size_t stack_size)
{
    if (stack_size == 0)
        return CONC__FIBER_STACK_DEFAULT;
    return stack_size < CONC__FIBER_STACK_MIN ? CONC__FIBER_STACK_MIN
                                              : stack_size;
}

int
conc__fiber_new(size_t stack_size, conc__fiber_fn fn, void *arg,
                conc__fiber **out)
{
    return conc__fiber_new_flags(stack_size, 0, fn, arg, out);
}

int
conc__fiber_new_flags(size_t stack_size, unsigned flags, conc__fiber_fn fn,
                      void *arg, conc__fiber **out)
{
    if (!fn || !out || (flags & ~CONC__FIBER_SLAB))
        return CONC_EINVAL;
    struct conc__fiber_tls *t = conc__fiber_tls();
    int err = conc__stack_thread_setup(t);
    if (err)
        return err;
    conc__fiber *f;
    err = conc__stack_take(t, round_size(stack_size), flags, &f);
    if (err)
        return err;
    f->fn = fn;
    f->arg = arg;
    f->state = CONC__FIBER_NEW;
    f->asan_lo = f->lo;
    f->asan_size = f->size;
#ifdef CONC__FIBER_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    ctx_init(f);
    *out = f;
    return 0;
}

void
conc__fiber_set_name(conc__fiber *f, const char *name)
{
    f->name = name;
#ifdef CONC__FIBER_TSAN
    if (f->tsan && name)
        __tsan_set_fiber_name(f->tsan, name);
#endif
}

const char *
conc__fiber_name(const conc__fiber *f)
{
    return f->name;
}

/* The checks every switch makes: cheap, and each failure is a bug of the
 * layer above (a fiber of another thread, or one that has ended). */
static struct conc__fiber_tls *
switch_check(conc__fiber *to)
{
    struct conc__fiber_tls *t = conc__fiber_tls();
    if (CONC__UNLIKELY(to->owner != t))
        conc__panic("switch to fiber %p of another thread", (void *)to);
    if (CONC__UNLIKELY(to->state == CONC__FIBER_EXITED))
        conc__panic("switch to fiber %p, which has exited", (void *)to);
    return t;
}

void
conc__fiber_switch(conc__fiber *to)
{
    struct conc__fiber_tls *t = switch_check(to);
    conc__fiber *from = t->current;
    if (to == from)
        return;
    if (CONC__UNLIKELY(from->slab != NULL)) /* no guard page: the canary */
        conc__stack_check(from, 0);
    from->state = CONC__FIBER_SUSPENDED;
    to->state = CONC__FIBER_RUNNING;
    t->prev = from;
    t->current = to;
    before_switch(from, to, 0);
    ctx_switch(from, to);
    after_switch(t, from);
}

_Noreturn void
conc__fiber_exit(conc__fiber *to)
{
    struct conc__fiber_tls *t = switch_check(to);
    conc__fiber *from = t->current;
    if (from == &t->base || to == from)
        conc__panic("fiber_exit from %s",
                    from == to ? "a fiber to itself" : "a base fiber");
    if (from->slab)
        conc__stack_check(from, 1);
    from->state = CONC__FIBER_EXITED;
    to->state = CONC__FIBER_RUNNING;
    t->prev = from;
    t->current = to;
    before_switch(from, to, 1);
    ctx_switch(from, to);
    conc__panic("exited fiber %p resumed", (void *)from);
}

void
conc__fiber_free(conc__fiber *f)
{
    if (!f)
        return;
    if (!f->map ||
        (f->state != CONC__FIBER_NEW && f->state != CONC__FIBER_EXITED))
        conc__panic("free of fiber %p, which is a base fiber or alive",
                    (void *)f);
#ifdef CONC__FIBER_TSAN
    if (f->tsan)
        __tsan_destroy_fiber(f->tsan);
    f->tsan = NULL;
#endif
    conc__stack_give(conc__fiber_tls(), f);
}

size_t
conc__fiber_stack(const conc__fiber *f, void **lo)
{
    *lo = f->map ? f->lo : NULL;
    return f->map ? f->size : 0;
}

/* The walk's first frame pointer and return address, from the saved
 * context (the assembly switch) or the switch's own frame (ucontext). */
static int
walk_start(const conc__fiber *f, uintptr_t *fp, void **pc)
{
#ifdef CONC__FIBER_UCONTEXT
    const uintptr_t *frame = f->fp;
    uintptr_t lo = (uintptr_t)f->lo, hi = lo + f->size;
    if ((uintptr_t)frame < lo || (uintptr_t)frame > hi - 2 * sizeof *frame)
        return 0;
    *pc = (void *)frame[1];
    *fp = frame[0];
#else
    const uintptr_t *sp = f->sp;
    uintptr_t lo = (uintptr_t)f->lo, hi = lo + f->size;
    if ((uintptr_t)sp < lo || (uintptr_t)(sp + CTX_PC_SLOT) >= hi)
        return 0;
    *pc = (void *)sp[CTX_PC_SLOT];
    *fp = sp[CTX_FP_SLOT];
#endif
    return 1;
}

int
conc__fiber_backtrace(const conc__fiber *f, void **pcs, int max)
{
    if (!f || !pcs || max <= 0 || !f->map || f->state != CONC__FIBER_SUSPENDED)
        return 0;
    uintptr_t lo = (uintptr_t)f->lo, hi = lo + f->size;
    uintptr_t fp;
    void *pc;
    if (!walk_start(f, &fp, &pc))
        return 0;
    int n = 0;
    if (max > BACKTRACE_FRAMES_MAX)
        max = BACKTRACE_FRAMES_MAX;
    /* Each frame record is [caller's frame pointer, return address]; a
     * record must lie inside the stack, aligned, above the previous one. */
    while (pc && n < max) {
        pcs[n++] = pc;
        if (fp < lo || fp > hi - 2 * sizeof(uintptr_t) ||
            fp % sizeof(uintptr_t))
            break;
        const uintptr_t *rec = (const uintptr_t *)fp;
        pc = (void *)rec[1];
        /* A caller's frame lies above; anything else ends the walk after
         * this return address (0 is outside every stack). */
        fp = rec[0] > fp ? rec[0] : 0;
    }
    return n;
}
