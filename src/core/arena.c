/* The shared-memory arena.
 *
 * Design. One MAP_SHARED|MAP_ANONYMOUS mapping; a fork keeps it at the same
 * address in the child, so pointers into it are valid in every process that
 * inherited it. Everything the allocator knows lives inside the mapping:
 * the header in the first cache lines, then blocks. Each block starts with
 * a 64-byte tag (so payloads are cache-line aligned) holding its size, the
 * size of the block before it (boundary tags, for coalescing both ways) and,
 * when free, the links of the free list. Links are offsets from the base.
 * Allocation is first fit with splitting; freeing coalesces with free
 * neighbours. A process-shared lock word guards all of it, so every process
 * may allocate and free.
 *
 * The arena is for long-lived, modest objects (locks, queue rings); its
 * O(free blocks) search is fine for that and simple to trust. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/arena.h"
#include "core/internal.h"
#include "core/lockword.h"

#define ARENA_MAGIC  0x636f6e6361726e61ull /* "concarna" */
#define BLOCK_MAGIC  0x626c6b21u           /* "blk!" */
#define TAG          64u
#define MIN_SPLIT    (2 * TAG)
#define MAX_SIZE     ((size_t)1 << 40)
#define DEFAULT_SIZE ((size_t)64 << 20)

struct block {
    uint32_t magic;
    uint32_t free;
    uint64_t size;      /* whole block, tag included; multiple of TAG */
    uint64_t prev_size; /* 0 for the first block */
    uint64_t next_free; /* offsets; 0 ends the list */
    uint64_t prev_free;
};
_Static_assert(sizeof(struct block) <= TAG, "block tag fits its line");

struct conc_arena {
    uint64_t magic;
    uint64_t size;       /* the whole mapping */
    uint64_t first;      /* offset of the first block */
    conc__lockword lock; /* guards everything below and every block tag */
    uint64_t free_bytes;
    uint64_t free_head;
};

static struct block *
at(const conc_arena *a, uint64_t off)
{
    return (struct block *)((char *)a + off);
}

static uint64_t
off_of(const conc_arena *a, const struct block *b)
{
    return (uint64_t)((const char *)b - (const char *)a);
}

static void
list_remove(conc_arena *a, struct block *b)
{
    if (b->prev_free)
        at(a, b->prev_free)->next_free = b->next_free;
    else
        a->free_head = b->next_free;
    if (b->next_free)
        at(a, b->next_free)->prev_free = b->prev_free;
    b->next_free = b->prev_free = 0;
}

static void
list_push(conc_arena *a, struct block *b)
{
    b->prev_free = 0;
    b->next_free = a->free_head;
    if (a->free_head)
        at(a, a->free_head)->prev_free = off_of(a, b);
    a->free_head = off_of(a, b);
}

static struct block *
next_block(conc_arena *a, struct block *b)
{
    uint64_t off = off_of(a, b) + b->size;
    return off < a->size ? at(a, off) : NULL;
}

int
conc_arena_new(size_t size, conc_arena **out)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size == 0 || size > MAX_SIZE)
        return CONC_EINVAL;
    size_t total = (size + 2 * TAG + page - 1) / page * page;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return CONC_ENOMEM;
    conc_arena *a = m;
    a->magic = ARENA_MAGIC;
    a->size = total;
    a->first = TAG;
    struct block *b = at(a, a->first);
    b->magic = BLOCK_MAGIC;
    b->free = 1;
    b->size = total - TAG;
    a->free_bytes = b->size - TAG;
    list_push(a, b);
    *out = a;
    return 0;
}

void
conc_arena_free(conc_arena *a)
{
    if (a)
        munmap(a, a->size);
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static conc_arena *default_arena;

static void
make_default(void)
{
    if (conc_arena_new(DEFAULT_SIZE, &default_arena) != 0)
        default_arena = NULL;
}

int
conc_arena_default(conc_arena **out)
{
    pthread_once(&default_once, make_default);
    if (!default_arena)
        return CONC_ENOMEM;
    *out = default_arena;
    return 0;
}

int
conc_arena_alloc(conc_arena *a, size_t size, void **out)
{
    if (size == 0)
        return CONC_EINVAL;
    if (size > a->size)
        return CONC_ENOMEM;
    uint64_t need = ((uint64_t)size + TAG + TAG - 1) / TAG * TAG;
    conc__lockword_acquire(&a->lock, CONC__FOREVER, 1);
    struct block *b = NULL;
    for (uint64_t o = a->free_head; o; o = at(a, o)->next_free) {
        if (at(a, o)->size >= need) {
            b = at(a, o);
            break;
        }
    }
    if (!b) {
        conc__lockword_release(&a->lock, 1);
        return CONC_ENOMEM;
    }
    list_remove(a, b);
    if (b->size - need >= MIN_SPLIT) {
        struct block *rest = at(a, off_of(a, b) + need);
        rest->magic = BLOCK_MAGIC;
        rest->free = 1;
        rest->size = b->size - need;
        rest->prev_size = need;
        struct block *after = next_block(a, rest);
        if (after)
            after->prev_size = rest->size;
        b->size = need;
        list_push(a, rest);
        a->free_bytes -= TAG; /* the new tag */
    }
    b->free = 0;
    a->free_bytes -= b->size - TAG;
    conc__lockword_release(&a->lock, 1);
    void *p = (char *)b + TAG;
    memset(p, 0, b->size - TAG);
    *out = p;
    return 0;
}

void
conc_arena_dealloc(conc_arena *a, void *ptr)
{
    if (!ptr)
        return;
    if (!conc_arena_contains(a, ptr) ||
        ((uintptr_t)ptr - (uintptr_t)a) % TAG != 0)
        conc__panic("conc_arena_dealloc: %p is not from this arena", ptr);
    struct block *b = (struct block *)((char *)ptr - TAG);
    conc__lockword_acquire(&a->lock, CONC__FOREVER, 1);
    if (b->magic != BLOCK_MAGIC || b->free)
        conc__panic("conc_arena_dealloc: %p is not an allocated block", ptr);
    b->free = 1;
    a->free_bytes += b->size - TAG;
    struct block *n = next_block(a, b);
    if (n && n->free) {
        list_remove(a, n);
        b->size += n->size;
        n->magic = 0;
        a->free_bytes += TAG;
    }
    if (b->prev_size) {
        struct block *p = at(a, off_of(a, b) - b->prev_size);
        if (p->free) {
            list_remove(a, p);
            p->size += b->size;
            b->magic = 0;
            a->free_bytes += TAG;
            b = p;
        }
    }
    n = next_block(a, b);
    if (n)
        n->prev_size = b->size;
    list_push(a, b);
    conc__lockword_release(&a->lock, 1);
}

int
conc_arena_contains(const conc_arena *a, const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)a;
    return p >= base + a->first + TAG && p < base + a->size;
}

size_t
conc_arena_capacity(const conc_arena *a)
{
    return a->size - a->first - TAG;
}

size_t
conc_arena_available(conc_arena *a)
{
    conc__lockword_acquire(&a->lock, CONC__FOREVER, 1);
    size_t n = a->free_bytes;
    conc__lockword_release(&a->lock, 1);
    return n;
}
