/* Fibers: stacks of their own and the switch between them, the floor under
 * the async layer's coroutines.
 *
 * A fiber is a function running on a stack of its own, in one thread, that
 * gives the processor up only by switching to another fiber of the same
 * thread (there is no scheduler here: the loop above decides who runs).
 * Each thread has a base fiber, its original stack, created on first use.
 *
 * The switch (fiber.c, ctx_x86_64.S, ctx_aarch64.S). conc__fiber_switch is
 * a call, so the compiler has already saved every caller-saved register;
 * the assembly saves only what the ABI says a callee keeps: on x86-64 rbx,
 * rbp, r12-r15, the x87 control word and MXCSR (their rounding and
 * exception-mask bits belong to the code that set them); on aarch64
 * x19-x29, the link register, d8-d15 and FPCR. It pushes them on the
 * running stack, stores the stack pointer in the fiber, loads the other's,
 * pops and returns: a few nanoseconds, no system call. ucontext's
 * swapcontext, the portable alternative, saves the signal mask with a
 * system call (about 500 ns here), so it is used only where neither
 * assembly file applies, or when CMake's CONC_FIBER_PORTABLE asks for it.
 *
 * A new stack is laid out as if its first function had been called from a
 * frame whose return address and frame pointer are both zero, so that a
 * frame-pointer walk (conc__fiber_backtrace, perf, ASan's report printer)
 * stops there, and the entry code marks the return address undefined for
 * DWARF unwinders (gdb).
 *
 * Stacks (stack.c). Each stack is one mmap (MAP_NORESERVE | MAP_STACK:
 * only touched pages take memory) with a PROT_NONE guard page below it.
 * The fiber's own record sits at the top of its mapping, so a fiber costs
 * no heap allocation. A freed fiber goes to a per-thread pool (up to
 * CONC__FIBER_POOL_MAX) for the next fiber of the same size; the pool is
 * unmapped when the thread exits (a thread-specific key's destructor) or at
 * conc__fiber_thread_cleanup.
 *
 * Slab stacks (stack.c). A guarded stack is two kernel mappings (VMAs),
 * and a process may have only vm.max_map_count of them (65,530 by
 * default): 100,000 fibers cannot each have a guard page. Past a budget
 * of guarded stacks (a quarter of max_map_count, read once, so that they
 * use at most half of it; CONC_FIBER_GUARDED_MAX in the environment, read
 * once, sets another), or when mapping a guarded stack fails, stacks come
 * from slabs: one mapping of up to CONC__FIBER_SLAB_STACKS stacks of one
 * size, with a guard page below the lowest only. In place of its guard
 * page each slab stack has a canary page below it, left as the kernel
 * gives it, zero (a canary that costs no resident memory: untouched, it
 * maps the shared zero page). The canary is checked at every switch away
 * from the fiber (the KiB nearest the stack word by word, the rest one
 * word per cache line) and in full when it exits; a damaged one reports "conc:
 * stack overflow in task '<name>'" and aborts. It catches an overflow late (at
 * the next switch, after the write) and misses one that skips the page or
 * writes only zeros to it; the guard page stays the default for that reason. A
 * slab stack is pooled like the others; one freed beyond the pool goes back to
 * its slab with its pages released (madvise), and the slab is unmapped when its
 * last stack comes back.
 *
 * Stack overflow (stack.c). A thread that makes fibers gets a sigaltstack
 * unless it has one, and the process a SIGSEGV handler, installed once,
 * that runs on it: a fault inside the guard page of the running fiber
 * writes "conc: stack overflow in task '<name>'" to stderr (write(2) only:
 * async-signal-safe) and dies of SIGSEGV with the default action; any
 * other fault goes to the handler installed before (ASan's, a user's) or
 * to the default action. A handler installed after the first fiber replaces
 * this one.
 *
 * Sanitizers and valgrind are told of every stack and every switch:
 * ASan through __sanitizer_start_switch_fiber before the switch and
 * __sanitizer_finish_switch_fiber after it (with a NULL fake-stack save
 * when the old fiber has exited, so its fake frames are freed), and a
 * reused stack is unpoisoned, since a fiber that exited never popped its
 * frames' redzones; TSan through __tsan_create_fiber, __tsan_switch_to_fiber
 * and __tsan_destroy_fiber; valgrind through VALGRIND_STACK_REGISTER and
 * _DEREGISTER around each mapping, when valgrind/valgrind.h is there.
 *
 * Threads. Every call here concerns the calling thread's fibers only:
 * fibers never migrate, which is also what makes thread-locals (errno)
 * safe for code that the compiler cached across a switch. Not
 * async-signal-safe. */
#ifndef CONC_UNIX_FIBER_H
#define CONC_UNIX_FIBER_H

#include <stddef.h>

typedef struct conc__fiber conc__fiber;

/* A fiber's function. It must never return: it ends with conc__fiber_exit
 * (a return is a broken invariant and panics). */
typedef void (*conc__fiber_fn)(void *arg);

/* The stack a size of 0 asks for. */
#define CONC__FIBER_STACK_DEFAULT ((size_t)256 * 1024)

/* The smallest stack handed out, whatever is asked: enough for a signal
 * frame and a few calls into libc. */
#define CONC__FIBER_STACK_MIN ((size_t)16 * 1024)

/* Freed stacks each thread keeps for reuse; more are unmapped. */
#define CONC__FIBER_POOL_MAX 64

/* The most stacks one slab holds. */
#define CONC__FIBER_SLAB_STACKS 64

/* conc__fiber_new_flags: the stack comes from a slab (canary, no guard
 * page), whatever the budget of guarded stacks. */
#define CONC__FIBER_SLAB 1u

/* The fiber running now on the calling thread (its base fiber when none
 * other runs). Never NULL unless out of memory (never, as the base fiber
 * lives in thread-local storage). Any thread, for its own fibers. */
conc__fiber *conc__fiber_self(void);

/* The calling thread's base fiber: its original stack, created on first
 * use, released by the thread-exit path. Any thread. */
conc__fiber *conc__fiber_thread(void);

/* A new fiber that will run fn(arg) on a stack of its own of at least
 * `stack_size` usable bytes (0: CONC__FIBER_STACK_DEFAULT; rounded up to
 * whole pages and to at least CONC__FIBER_STACK_MIN), taken from the
 * calling thread's pool or mapped. It starts at the first
 * conc__fiber_switch to it. Returns 0 with *out set, CONC_EINVAL if fn or
 * out is NULL or the size overflows, CONC_ENOMEM if the stack cannot be
 * mapped. *out is a new fiber, freed with conc__fiber_free once it has
 * exited or if it never ran. The thread that makes it is the only one that
 * may run it. */
int conc__fiber_new(size_t stack_size, conc__fiber_fn fn, void *arg,
                    conc__fiber **out);

/* conc__fiber_new with `flags`: 0 or CONC__FIBER_SLAB (a slab stack, from
 * the pool's slab stacks or a slab). Returns as conc__fiber_new, and
 * CONC_EINVAL for an unknown flag. Same ownership and threads. */
int conc__fiber_new_flags(size_t stack_size, unsigned flags, conc__fiber_fn fn,
                          void *arg, conc__fiber **out);

/* Sets the name a stack-overflow report prints (NULL: none). Borrows
 * `name`: it must outlive f or be reset. The fiber's thread. */
void conc__fiber_set_name(conc__fiber *f, const char *name);

/* The name set on f, or NULL. Any thread while f lives. */
const char *conc__fiber_name(const conc__fiber *f);

/* Switches from the running fiber to `to`, a fiber of the same thread that
 * is new or suspended; returns when something switches back. A switch to
 * the running fiber returns at once. A fiber of another thread, or one
 * that exited, is a broken invariant (panic). The thread that owns both. */
void conc__fiber_switch(conc__fiber *to);

/* Ends the running fiber (not a base fiber) and switches to `to` for
 * good: the sanitizers are told the old stack is gone. The old fiber may
 * then be freed by `to`'s side with conc__fiber_free. The thread that owns
 * both. */
_Noreturn void conc__fiber_exit(conc__fiber *to);

/* Returns f's stack to the calling thread's pool (kept up to
 * CONC__FIBER_POOL_MAX, else unmapped). f must have exited or never run;
 * a base, running or suspended fiber is a broken invariant (panic).
 * NULL does nothing. Takes ownership of f. The thread that made f. */
void conc__fiber_free(conc__fiber *f);

/* Writes up to `max` return addresses of suspended fiber f's stack into
 * pcs, innermost first: the one in the switch, then the frame-pointer
 * chain from the saved context, which ends at the zeroed base frame. It
 * never reads outside f's stack, so frames of code built without frame
 * pointers end the walk early. Returns the count (0 for a running, new or
 * exited fiber, or a base fiber). Any thread, while f stays suspended
 * (the watchdog and dumps read other threads' fibers). */
int conc__fiber_backtrace(const conc__fiber *f, void **pcs, int max);

/* The usable stack of f: lowest address and size in bytes, the guard page
 * or the canary just below it (for a base fiber, 0 and NULL). Any thread
 * while f lives. */
size_t conc__fiber_stack(const conc__fiber *f, void **lo);

/* Unmaps the calling thread's pooled stacks and its sigaltstack (if conc
 * made it), as the thread-exit path does; for a thread that ends its use
 * of fibers early (a loop's close) and for leak checks. Fibers in use are
 * untouched and the thread may make fibers again. Call it from the base
 * fiber. */
void conc__fiber_thread_cleanup(void);

/* Stacks mapped by this process and not yet unmapped (pooled ones
 * included; a slab's stack counts while a fiber or a pool holds it). Any
 * thread. */
long conc__fiber_stacks_mapped(void);

/* Slabs mapped by this process and not yet unmapped. Any thread. */
long conc__fiber_slabs_mapped(void);

/* Whether f's stack is a slab's (canary) rather than guarded. Any thread
 * while f lives. */
int conc__fiber_is_slab(const conc__fiber *f);

/* Sets the most guarded stacks the process maps before taking stacks
 * from slabs (max < 0: back to the default, from CONC_FIBER_GUARDED_MAX
 * or max_map_count); returns the budget before. For tests and tuning.
 * Any thread; stacks already mapped stay as they are. */
long conc__fiber_guard_budget(long max);

#endif
