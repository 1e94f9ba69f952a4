/* Fiber stacks: mapping them with a guard page, the per-thread pool, the
 * thread-exit path, and the report of a stack overflow (fiber.h has the
 * design).
 *
 * A mapping, low addresses first:
 *
 *   | guard page (PROT_NONE) | usable stack ...  | struct conc__fiber |
 *   map                      lo                  lo + size
 *
 * A slab's stack (fiber_slab.c) has the same layout with a canary page in
 * place of the guard page, so that both kinds serve the same pool.
 *
 * No locks: everything here is per thread, except the handler's
 * installation (pthread_once) and the count of mapped stacks (atomic). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "unix/fiber_internal.h"

#ifdef CONC__FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define RECORD_SIZE CONC__STACK_RECORD_SIZE

/* A sigaltstack big enough for the report and for a chained handler's
 * own work (ASan's needs tens of KiB). */
#define ALTSTACK_SIZE ((size_t)64 * 1024)

static _Thread_local struct conc__fiber_tls fiber_tls;
static atomic_long stacks_mapped;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static int exit_key_err;
static struct sigaction prev_segv;

static void pool_drain(struct conc__fiber_tls *t);
static void altstack_drop(struct conc__fiber_tls *t);

size_t
conc__stack_page(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

struct conc__fiber_tls *
conc__fiber_tls(void)
{
    struct conc__fiber_tls *t = &fiber_tls;
    if (CONC__LIKELY(t->current != NULL))
        return t;
    t->base.state = CONC__FIBER_RUNNING;
    t->base.owner = t;
#ifdef CONC__FIBER_TSAN
    t->base.tsan = __tsan_get_current_fiber();
#endif
    t->current = &t->base;
    return t;
}

long
conc__fiber_stacks_mapped(void)
{
    return atomic_load_explicit(&stacks_mapped, memory_order_relaxed);
}

void
conc__stack_count(long delta)
{
    atomic_fetch_add_explicit(&stacks_mapped, delta, memory_order_relaxed);
}

/* ---- Mapping ------------------------------------------------------------ */

/* Maps `len` bytes of stack with a guard page below: the whole range
 * PROT_NONE first, then all but the guard made writable, so that a failure
 * half way leaves nothing writable behind. Returns the mapping or NULL. */
static char *
map_stack(size_t len)
{
    char *p =
        mmap(NULL, len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t guard = conc__stack_page();
    if (mprotect(p + guard, len - guard, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, len);
        return NULL;
    }
    return p;
}

static void
unmap_stack(conc__fiber *f)
{
    if (f->slab) {
        conc__slab_give(f->owner, f);
        return;
    }
    char *map = f->map;
    size_t len = f->map_size;
    CONC__STACK_VG_DEREGISTER(f->vg_id);
    /* ASan keeps shadow bytes over unmapped memory: a later mapping at the
     * same address must not inherit a dead fiber's redzones. */
    CONC__STACK_UNPOISON(f->lo, f->size + RECORD_SIZE);
    munmap(map, len);
    conc__stack_count(-1);
    conc__slab_guard_release();
}

/* The mapping length for `size` usable bytes, or 0 when it overflows. */
static size_t
mapping_length(size_t size)
{
    size_t page = conc__stack_page();
    if (size > SIZE_MAX - RECORD_SIZE - 2 * page)
        return 0;
    return page + (size + RECORD_SIZE + page - 1) / page * page;
}

/* A pooled stack of mapping length `len` (a slab's only, if `slab`). */
static conc__fiber *
pool_find(struct conc__fiber_tls *t, size_t len, int slab)
{
    for (conc__fiber **pp = &t->pool; *pp; pp = &(*pp)->next) {
        conc__fiber *f = *pp;
        if (f->map_size == len && (!slab || f->slab)) {
            *pp = f->next;
            t->npool--;
            return f;
        }
    }
    return NULL;
}

/* A new guarded stack of `len` bytes, within the budget; NULL when over
 * it or when the kernel refuses (out of memory, or of mappings). */
static conc__fiber *
guarded_take(size_t len)
{
    if (!conc__slab_guard_reserve())
        return NULL;
    char *map = map_stack(len);
    if (!map) {
        conc__slab_guard_release();
        return NULL;
    }
    conc__stack_count(1);
    conc__fiber *f = (conc__fiber *)(map + len - RECORD_SIZE);
    f->map = map;
    f->map_size = len;
    f->vg_id = CONC__STACK_VG_REGISTER(map + conc__stack_page(), (char *)f);
    return f;
}

int
conc__stack_take(struct conc__fiber_tls *t, size_t size, unsigned flags,
                 conc__fiber **out)
{
    size_t len = mapping_length(size);
    if (len == 0)
        return CONC_EINVAL;
    int slab = (flags & CONC__FIBER_SLAB) != 0;
    conc__fiber *f = pool_find(t, len, slab);
    if (!f && !slab)
        f = guarded_take(len);
    if (!f)
        f = conc__slab_take(t, len);
    if (!f)
        return CONC_ENOMEM;
    char *map = f->map;
    unsigned vg_id = f->vg_id;
    struct conc__stack_slab *owner_slab = f->slab;
    char *lo = map + conc__stack_page();
    CONC__STACK_UNPOISON(lo, (size_t)((char *)f - lo) + RECORD_SIZE);
    memset(f, 0, sizeof *f);
    f->map = map;
    f->map_size = len;
    f->slab = owner_slab;
    f->lo = lo;
    f->size = (size_t)((char *)f - lo);
    f->vg_id = vg_id;
    f->owner = t;
    *out = f;
    return 0;
}

void
conc__stack_give(struct conc__fiber_tls *t, conc__fiber *f)
{
    if (t->npool >= CONC__FIBER_POOL_MAX) {
        unmap_stack(f);
        return;
    }
    f->next = t->pool;
    t->pool = f;
    t->npool++;
}

static void
pool_drain(struct conc__fiber_tls *t)
{
    while (t->pool) {
        conc__fiber *f = t->pool;
        t->pool = f->next;
        unmap_stack(f);
    }
    t->npool = 0;
}

/* ---- The overflow report ----------------------------------------------- */

static void
write_all(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void
write_str(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    write_all(s, n);
}

void
conc__stack_report(const conc__fiber *f)
{
    write_str("conc: stack overflow in task '");
    write_str(f->name ? f->name : "(unnamed)");
    write_str("'\n");
}

/* Makes SIGSEGV kill the process: the default action, raised now and
 * delivered when the handler returns (a fault would also recur then). */
static void
die_of_segv(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGSEGV, &dfl, NULL);
    raise(SIGSEGV);
}

/* The handler that was there before: called as it asked to be, or, for
 * the default action or a fault that SIG_IGN cannot ignore, death. */
static void
chain_segv(int sig, siginfo_t *si, void *uc)
{
    if (prev_segv.sa_flags & SA_SIGINFO) {
        prev_segv.sa_sigaction(sig, si, uc);
    } else if (prev_segv.sa_handler == SIG_IGN) {
        if (si->si_code > 0) /* a fault, not a kill(): it would recur */
            die_of_segv();
    } else if (prev_segv.sa_handler == SIG_DFL) {
        die_of_segv();
    } else {
        prev_segv.sa_handler(sig);
    }
}

/* Whether a fault at addr is the running fiber f's overflow: in its
 * guard page, or for a slab's stack in the guard page below the slab. */
static int
is_overflow(const conc__fiber *f, const char *addr)
{
    if (!f || !f->map)
        return 0;
    if (f->slab)
        return conc__slab_guard_hit(f, addr);
    return addr >= f->map && addr < f->lo;
}

/* Runs on the thread's sigaltstack. Only a fault in the running fiber's
 * guard page is ours; the fiber record and name are read, never
 * written, so a broken fiber cannot make this handler fault. */
static void
on_segv(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    const conc__fiber *f = fiber_tls.current;
    if (is_overflow(f, si->si_addr)) {
        conc__stack_report(f);
        die_of_segv();
    } else {
        chain_segv(sig, si, uc);
    }
    errno = saved_errno;
}

static void
on_thread_exit(void *arg)
{
    struct conc__fiber_tls *t = arg;
    pool_drain(t);
    altstack_drop(t);
    t->guarded = 0;
}

static void
setup_process(void)
{
    exit_key_err = pthread_key_create(&exit_key, on_thread_exit);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &prev_segv);
}

/* ---- The sigaltstack ------------------------------------------------------
 * A thread that had one (ASan gives every thread its own) keeps it. */

static int
altstack_add(struct conc__fiber_tls *t)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return 0;
    size_t len = ALTSTACK_SIZE + conc__stack_page();
    char *map = map_stack(len);
    if (!map)
        return CONC_ENOMEM;
    stack_t ss = {.ss_sp = map + conc__stack_page(),
                  .ss_size = ALTSTACK_SIZE,
                  .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(map, len);
        return CONC_ENOMEM;
    }
    t->altstack = map;
    t->altstack_size = len;
    return 0;
}

static void
altstack_drop(struct conc__fiber_tls *t)
{
    if (!t->altstack)
        return;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 &&
        (char *)cur.ss_sp == t->altstack + conc__stack_page()) {
        stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    }
    munmap(t->altstack, t->altstack_size);
    t->altstack = NULL;
}

int
conc__stack_thread_setup(struct conc__fiber_tls *t)
{
    if (CONC__LIKELY(t->guarded))
        return 0;
    pthread_once(&setup_once, setup_process);
    if (exit_key_err || pthread_setspecific(exit_key, t) != 0)
        return CONC_ENOMEM;
    int err = altstack_add(t);
    if (err)
        return err;
    t->guarded = 1;
    return 0;
}

void
conc__fiber_thread_cleanup(void)
{
    struct conc__fiber_tls *t = conc__fiber_tls();
    CONC__ASSERT(t->current == &t->base);
    pool_drain(t);
    altstack_drop(t);
    t->guarded = 0;
}
