/* Slab stacks: the budget of guarded stacks, slabs of canary-protected
 * stacks past it, and the canary check (fiber.h has the design).
 *
 * A slab, low addresses first, each slot laid out as a guarded stack's
 * mapping with a canary page in place of the guard page:
 *
 *   | guard page | canary | stack | record | canary | stack | record | ...
 *   map          slot 0                    slot 1
 *
 * The canary is the zero the kernel fills a new page with: never written,
 * it costs no resident memory, and madvise(MADV_DONTNEED) on a slot given
 * back to its slab zeroes it again. A slab's header is a heap block.
 *
 * No locks: slabs are per thread (the fiber layer's thread-local state
 * lists them); the budget and the counts are atomics. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/internal.h"
#include "unix/fiber_internal.h"

/* The default budget of guarded stacks is max_map_count divided by this:
 * two mappings each, so they take at most half of the process's mappings
 * and leave the other half to everything else. */
#define GUARD_SHARE_DIVISOR 4

/* max_map_count when /proc does not say (the kernel's default). */
#define MAP_COUNT_DEFAULT 65530L

/* The environment variable that sets the budget, read once. */
#define GUARD_ENV "CONC_FIBER_GUARDED_MAX"

/* A slab's mapping is kept to about this size, so that a slab of large
 * stacks holds fewer of them (it is address space only until touched). */
#define SLAB_BYTES ((size_t)64 * 1024 * 1024)

/* The canary check at a switch: every word of the top KiB of the canary
 * (where an overflow by a few frames writes first), then one word per
 * cache line of the rest. The zero page they read is shared by every
 * canary, so it stays in the cache. */
#define CANARY_TOP_WORDS    128
#define CANARY_STRIDE_WORDS 8

/* Bytes read from /proc/sys/vm/max_map_count, enough for any long. */
#define MAP_COUNT_TEXT 32

struct conc__stack_slab {
    char *map; /* the guard page, then the slots */
    size_t map_size;
    size_t slot_size; /* each slot's length, the pool's key */
    int nslots;
    uint64_t free;                        /* bit i: slot i is free */
    struct conc__stack_slab *prev, *next; /* in t->partial or t->full */
};

static atomic_long guarded;     /* guarded stacks mapped */
static atomic_long budget = -1; /* the most of them; -1: not yet read */
static atomic_long slabs_mapped;
static long budget_default;
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

/* ---- The budget -----------------------------------------------------------
 */

static long
parse_long(const char *s)
{
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : -1;
    return s && *s && *end <= ' ' && v >= 0 ? v : -1;
}

static long
read_map_count(void)
{
    char text[MAP_COUNT_TEXT] = {0};
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MAP_COUNT_DEFAULT;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    long v = n > 0 ? parse_long(text) : -1;
    return v > 0 ? v : MAP_COUNT_DEFAULT;
}

static void
budget_read(void)
{
    long v = parse_long(getenv(GUARD_ENV));
    budget_default = v >= 0 ? v : read_map_count() / GUARD_SHARE_DIVISOR;
}

static long
budget_now(void)
{
    long b = atomic_load_explicit(&budget, memory_order_relaxed);
    if (CONC__LIKELY(b >= 0))
        return b;
    pthread_once(&budget_once, budget_read);
    long unset = -1;
    atomic_compare_exchange_strong(&budget, &unset, budget_default);
    return atomic_load_explicit(&budget, memory_order_relaxed);
}

long
conc__fiber_guard_budget(long max)
{
    long before = budget_now();
    if (max < 0) {
        pthread_once(&budget_once, budget_read);
        max = budget_default;
    }
    atomic_store_explicit(&budget, max, memory_order_relaxed);
    return before;
}

int
conc__slab_guard_reserve(void)
{
    long limit = budget_now();
    long n = atomic_fetch_add_explicit(&guarded, 1, memory_order_relaxed);
    if (n < limit)
        return 1;
    atomic_fetch_sub_explicit(&guarded, 1, memory_order_relaxed);
    return 0;
}

void
conc__slab_guard_release(void)
{
    atomic_fetch_sub_explicit(&guarded, 1, memory_order_relaxed);
}

long
conc__fiber_slabs_mapped(void)
{
    return atomic_load_explicit(&slabs_mapped, memory_order_relaxed);
}

int
conc__fiber_is_slab(const conc__fiber *f)
{
    return f->slab != NULL;
}

/* ---- Slabs ----------------------------------------------------------------
 */

static void
list_remove(struct conc__stack_slab **head, struct conc__stack_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void
list_push(struct conc__stack_slab **head, struct conc__stack_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

/* Maps a slab of slots of `len` bytes: all PROT_NONE, then all but the
 * guard page writable (as a guarded stack is mapped). NULL on failure. */
static struct conc__stack_slab *
slab_new(size_t len)
{
    size_t page = conc__stack_page();
    size_t n = SLAB_BYTES / len;
    n = n < 1 ? 1 : n > CONC__FIBER_SLAB_STACKS ? CONC__FIBER_SLAB_STACKS : n;
    if (len > (SIZE_MAX - page) / n)
        return NULL;
    struct conc__stack_slab *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->map_size = page + n * len;
    s->map =
        mmap(NULL, s->map_size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (s->map == MAP_FAILED ||
        mprotect(s->map + page, n * len, PROT_READ | PROT_WRITE) != 0) {
        if (s->map != MAP_FAILED)
            munmap(s->map, s->map_size);
        free(s);
        return NULL;
    }
    /* A huge page would make every touched stack top cost 2 MiB. */
    (void)madvise(s->map + page, n * len, MADV_NOHUGEPAGE);
    s->slot_size = len;
    s->nslots = (int)n;
    s->free = n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    atomic_fetch_add_explicit(&slabs_mapped, 1, memory_order_relaxed);
    return s;
}

static void
slab_unmap(struct conc__stack_slab *s)
{
    /* ASan keeps shadow bytes over unmapped memory: a later mapping at the
     * same address must not inherit a dead fiber's redzones. */
    CONC__STACK_UNPOISON(s->map + conc__stack_page(),
                         s->map_size - conc__stack_page());
    munmap(s->map, s->map_size);
    free(s);
    atomic_fetch_sub_explicit(&slabs_mapped, 1, memory_order_relaxed);
}

static struct conc__stack_slab *
slab_with_room(struct conc__fiber_tls *t, size_t len)
{
    for (struct conc__stack_slab *s = t->partial; s; s = s->next)
        if (s->slot_size == len)
            return s;
    struct conc__stack_slab *s = slab_new(len);
    if (s)
        list_push(&t->partial, s);
    return s;
}

conc__fiber *
conc__slab_take(struct conc__fiber_tls *t, size_t len)
{
    struct conc__stack_slab *s = slab_with_room(t, len);
    if (!s)
        return NULL;
    int i = __builtin_ctzll(s->free);
    s->free &= ~((uint64_t)1 << i);
    if (s->free == 0) {
        list_remove(&t->partial, s);
        list_push(&t->full, s);
    }
    char *slot = s->map + conc__stack_page() + (size_t)i * len;
    conc__fiber *f = (conc__fiber *)(slot + len - CONC__STACK_RECORD_SIZE);
    f->map = slot;
    f->map_size = len;
    f->slab = s;
    f->vg_id = CONC__STACK_VG_REGISTER(slot + conc__stack_page(), (char *)f);
    conc__stack_count(1);
    return f;
}

void
conc__slab_give(struct conc__fiber_tls *t, conc__fiber *f)
{
    struct conc__stack_slab *s = f->slab;
    char *slot = f->map;
    size_t len = f->map_size;
    int i = (int)((size_t)(slot - s->map - conc__stack_page()) / len);
    CONC__STACK_VG_DEREGISTER(f->vg_id);
    CONC__STACK_UNPOISON(slot, len);
    conc__stack_count(-1);
    if (s->free == 0) {
        list_remove(&t->full, s);
        list_push(&t->partial, s);
    }
    s->free |= (uint64_t)1 << i;
    uint64_t all =
        s->nslots == 64 ? ~(uint64_t)0 : ((uint64_t)1 << s->nslots) - 1;
    if (s->free == all) {
        list_remove(&t->partial, s);
        slab_unmap(s);
        return;
    }
    /* The slot's pages go back to the kernel, and its canary to zero. */
    (void)madvise(slot, len, MADV_DONTNEED);
}

int
conc__slab_guard_hit(const conc__fiber *f, const char *addr)
{
    const struct conc__stack_slab *s = f->slab;
    return addr >= s->map && addr < s->map + conc__stack_page();
}

/* ---- The canary -----------------------------------------------------------
 */

/* Reads the canary as raw memory: under ASan a fiber that overflowed into
 * it may have left redzones there, and the report must be ours. */
#if defined(CONC__FIBER_ASAN)
__attribute__((no_sanitize_address))
#endif
static uint64_t
canary_bits(const uint64_t *lo, const uint64_t *hi, int full)
{
    uint64_t acc = 0;
    const uint64_t *p;
    const uint64_t *top =
        hi - CANARY_TOP_WORDS > lo ? hi - CANARY_TOP_WORDS : lo;
    for (p = top; p < hi; p++)
        acc |= *p;
    size_t step = full ? 1 : CANARY_STRIDE_WORDS;
    for (p = lo; p < hi; p += step)
        acc |= *p;
    return acc;
}

void
conc__stack_check(const conc__fiber *f, int full)
{
    const uint64_t *lo = (const uint64_t *)(const void *)f->map;
    const uint64_t *hi = (const uint64_t *)(const void *)f->lo;
    if (CONC__LIKELY(canary_bits(lo, hi, full) == 0))
        return;
    conc__stack_report(f);
    abort();
}
