/* The shared-memory arena.
 *
 * Design. One MAP_SHARED|MAP_ANONYMOUS mapping; a fork keeps it at the same
 * address in the child, so pointers into it are valid in every process that
 * inherited it. Everything the allocator knows lives inside the mapping:
 * the header in the first two cache lines, then blocks. Each block starts
 * with a 64-byte tag (so payloads are cache-line aligned) holding its size,
 * the size of the block before it (boundary tags, for coalescing both ways)
 * and, when free, the links of the free list. Links are offsets from the
 * base. Allocation is first fit with splitting; freeing coalesces with free
 * neighbours. One lock guards all of it, so every process may allocate and
 * free.
 *
 * Crashes. A process may be killed at any instruction, also while it holds
 * the lock in the middle of a split or a merge. The lock is therefore a
 * robust process-shared pthread mutex, as under every shared conc Lock
 * (sync/robust.c explains the kernel's part): the next process to lock it
 * is told that the owner died. It then rebuilds the arena's bookkeeping
 * from the one structure that is always whole, the chain of blocks (each
 * block's size leads to the next), and marks the lock consistent again.
 * That chain stays whole because every change to it is one store made
 * after everything it makes reachable is written:
 *
 *   - a split writes the new free block's whole tag inside the old block
 *     first, and only then shrinks the old block (the store that links the
 *     new tag into the chain);
 *   - a merge grows the surviving block (the store that unlinks the other
 *     tag from the chain) and only then clears the swallowed tag's magic.
 *
 * Everything else (`prev_size`, the free list, `free_bytes`) is derived,
 * and the repair recomputes it in one walk, merging neighbours that a
 * killed merge left apart. A block being allocated by the process that
 * died was never handed out, so the repair sees it free, or allocated and
 * lost with the rest of that process's blocks; a block being freed ends
 * either way. The repair is itself safe to kill: it only ever makes the
 * same single-store changes, and the next owner repairs again.
 *
 * Untrusted bytes. Every process that inherited the arena can write over
 * the tags (a stray pointer is enough), so every offset, size and link is
 * checked before it is followed, and a free list is walked only as long
 * as each node's back link names the node before it (which also bounds a
 * walk that a cycle would make endless). A check that fails marks the
 * arena broken: from then on every call fails with CONC_EBROKEN and a
 * message saying what was found, instead of crashing or handing out
 * memory twice.
 *
 * The arena is for long-lived, modest objects (locks, queue rings); its
 * O(free blocks) search is fine for that and simple to trust. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conc/arena.h"
#include "core/arena_internal.h"
#include "core/internal.h"
#include "core/pmutex.h"
#include "unix/platform.h"

#define ARENA_MAGIC  0x636f6e6361726e61ull /* "concarna" */
#define BLOCK_MAGIC  0x626c6b21u           /* "blk!" */
#define TAG          64u
#define HEADER       (2 * TAG) /* the arena's header, with its mutex */
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
    uint64_t size;  /* the whole mapping */
    uint64_t first; /* offset of the first block */
    /* Set once the bookkeeping was found corrupt; never cleared. */
    _Atomic uint32_t broken;
    uint32_t pad;
    uint64_t free_bytes; /* guarded by lock, as every block tag */
    uint64_t free_head;
    /* Where another process finds the memory (see sharing.c's design):
     * the creator's pid and its descriptor of the memfd, -1 for none.
     * Fixed at creation. */
    int32_t creator;
    int32_t fd;
    pthread_mutex_t lock; /* robust, process-shared */
};
_Static_assert(sizeof(struct conc_arena) <= HEADER, "header fits");

void (*conc__arena_hook)(enum conc__arena_point point);

/* Calls the test hook, if any, at `point`. */
#define HOOK(point)                                                            \
    do {                                                                       \
        if (CONC__UNLIKELY(conc__arena_hook != NULL))                          \
            conc__arena_hook(point);                                           \
    } while (0)

/* Keeps the compiler from moving stores across it: the order of the
 * stores that change the chain of blocks is what a repair relies on. A
 * process that is killed has its executed stores reach memory anyway. */
#define ORDER() atomic_signal_fence(memory_order_seq_cst)

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

/* Marks the arena broken. Returns CONC_EBROKEN, with what was found at
 * offset `off` as the calling thread's failure message. */
static int
corrupt(conc_arena *a, const char *what, uint64_t off)
{
    atomic_store_explicit(&a->broken, 1, memory_order_relaxed);
    return conc_fail(CONC_EBROKEN,
                     "shared arena: %s (offset %llu); a process wrote over "
                     "the arena's bookkeeping",
                     what, (unsigned long long)off);
}

/* Whether a block of `size` bytes may start at `off`: inside the mapping,
 * after the header, on a tag boundary, and not past the end. */
static int
fits(const conc_arena *a, uint64_t off, uint64_t size)
{
    return off >= a->first && off % TAG == 0 && size >= TAG &&
           size % TAG == 0 && off < a->size && size <= a->size - off;
}

/* Whether `off` holds a plausible block tag. */
static int
is_block(const conc_arena *a, uint64_t off)
{
    return off >= a->first && off % TAG == 0 && off <= a->size - TAG &&
           at(a, off)->magic == BLOCK_MAGIC && fits(a, off, at(a, off)->size);
}

/* ---- The lock ------------------------------------------------------------ */

static int repair(conc_arena *a);

/* Takes the lock. A dead owner's half-done work is repaired first. Returns
 * 0 (held), or CONC_EBROKEN (not held) when the arena is broken. Only
 * pthread_mutex_lock is used: it waits without limit, but every holder
 * holds the lock for a bounded walk, and a holder that dies is reported.
 * (The try variant has a glibc bug with unrecoverable mutexes that
 * sync/robust.c works around; a blocking lock does not need it.) */
static int
lock(conc_arena *a)
{
    if (CONC__UNLIKELY(a->magic != ARENA_MAGIC))
        return corrupt(a, "the header overwritten", 0);
    int e = pthread_mutex_lock(&a->lock);
    if (CONC__UNLIKELY(e == EOWNERDEAD)) {
        int r = repair(a);
        /* Consistent either way: a broken arena answers CONC_EBROKEN to
         * whoever takes the lock, rather than leaving it unusable. */
        pthread_mutex_consistent(&a->lock);
        if (r) {
            pthread_mutex_unlock(&a->lock);
            return r;
        }
    } else if (CONC__UNLIKELY(e != 0)) {
        return conc_fail(CONC_EBROKEN, "shared arena: its lock failed (%d)", e);
    }
    if (CONC__UNLIKELY(
            atomic_load_explicit(&a->broken, memory_order_relaxed))) {
        pthread_mutex_unlock(&a->lock);
        return conc_fail(CONC_EBROKEN, "shared arena: broken earlier, when "
                                       "its bookkeeping was found corrupt");
    }
    return 0;
}

static void
unlock(conc_arena *a)
{
    pthread_mutex_unlock(&a->lock);
}

/* ---- The free list --------------------------------------------------------
 * Doubly linked through the tags of the free blocks, in no order. */

static void
list_push(conc_arena *a, struct block *b)
{
    b->prev_free = 0;
    b->next_free = a->free_head;
    if (a->free_head)
        at(a, a->free_head)->prev_free = off_of(a, b);
    a->free_head = off_of(a, b);
}

/* Whether `off` is a free block whose back link is `prev` (0: the head). */
static int
is_free_node(const conc_arena *a, uint64_t off, uint64_t prev)
{
    return is_block(a, off) && at(a, off)->free == 1 &&
           at(a, off)->prev_free == prev && (prev || a->free_head == off);
}

/* Unlinks free block `b`, checking its neighbours' links first. Returns 0
 * or CONC_EBROKEN. */
static int
list_remove(conc_arena *a, struct block *b)
{
    uint64_t off = off_of(a, b), p = b->prev_free, n = b->next_free;
    if ((p ? !is_block(a, p) || at(a, p)->next_free != off
           : a->free_head != off) ||
        (n && !is_free_node(a, n, off)))
        return corrupt(a, "a free list link that does not point back", off);
    if (p)
        at(a, p)->next_free = n;
    else
        a->free_head = n;
    if (n)
        at(a, n)->prev_free = p;
    b->next_free = b->prev_free = 0;
    return 0;
}

/* ---- Repair after an owner died ----------------------------------------- */

/* Walks the chain of blocks, fixing each `prev_size`, merging free
 * neighbours, and rebuilding the free list and `free_bytes`. Returns 0,
 * or CONC_EBROKEN when the chain itself does not hold together. */
static int
repair(conc_arena *a)
{
    a->free_head = 0;
    uint64_t free_bytes = 0, prev = 0, last_free = 0;
    for (uint64_t off = a->first; off < a->size;) {
        if (!is_block(a, off) || at(a, off)->free > 1)
            return corrupt(a,
                           "a block tag that is not one, seen after the "
                           "lock's owner died",
                           off);
        struct block *b = at(a, off);
        if (b->free && last_free) { /* a merge that was cut short */
            struct block *l = at(a, last_free);
            l->size += b->size;
            ORDER();
            b->magic = 0;
            free_bytes += b->size; /* its payload and its tag */
            prev = l->size;
            off = last_free + l->size;
            continue;
        }
        b->prev_size = prev;
        prev = b->size;
        if (b->free) {
            free_bytes += b->size - TAG;
            last_free = off;
        } else {
            last_free = 0;
        }
        off += b->size;
    }
    /* The list is rebuilt once the chain is whole: a repair killed in
     * the walk leaves the list empty, which the next repair rebuilds. */
    for (uint64_t off = a->first; off < a->size; off += at(a, off)->size)
        if (at(a, off)->free)
            list_push(a, at(a, off));
    a->free_bytes = free_bytes;
    return 0;
}

/* ---- Public calls -------------------------------------------------------- */

/* ---- Mapping, and opening in another process ----------------------------
 * The memory is a memfd, so that a process that did not inherit the
 * mapping (one started by the fork server) can map the same pages: it
 * opens the creator's descriptor through /proc/<pid>/fd/<n> and maps it at
 * the creator's address, where every pointer into the arena (a Lock, a
 * Condition's waiters, a Value) stays valid. A fresh process has that
 * range free unless its own mappings happen to lie there; then
 * MAP_FIXED_NOREPLACE refuses, and conc_arena_open says so. A process
 * remembers the arenas it maps in `mapped` (a fork copies the table along
 * with the mappings), so opening one it has already is free. */

#define MAX_MAPPED 64
#define REF_MAGIC  0x636f6e6372656621ull /* "concref!" */

static _Atomic(conc_arena *) mapped[MAX_MAPPED];

static void
remember(conc_arena *a)
{
    for (int i = 0; i < MAX_MAPPED; i++) {
        conc_arena *none = NULL;
        if (atomic_compare_exchange_strong(&mapped[i], &none, a))
            return;
    }
    /* A full table only means that opening this arena again maps it
     * again; nothing depends on finding it. */
}

static void
forget(conc_arena *a)
{
    for (int i = 0; i < MAX_MAPPED; i++) {
        conc_arena *was = a;
        if (atomic_compare_exchange_strong(&mapped[i], &was, NULL))
            return;
    }
}

static conc_arena *
find_mapped(uint64_t base)
{
    for (int i = 0; i < MAX_MAPPED; i++) {
        conc_arena *a = atomic_load(&mapped[i]);
        if (a && (uint64_t)(uintptr_t)a == base)
            return a;
    }
    return NULL;
}

/* Maps `total` bytes of a new memfd (its descriptor in *fd), or, where
 * memfd is refused (an old kernel, a sandbox), of anonymous shared memory
 * that only forked children see (*fd = -1). */
static void *
map_new(size_t total, int *fd)
{
    *fd = conc__memfd_new(total);
    if (*fd >= 0) {
        void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_NORESERVE, *fd, 0);
        if (m != MAP_FAILED)
            return m;
        close(*fd);
    }
    *fd = -1;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

int
conc_arena_new(size_t size, conc_arena **out)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!out || size == 0 || size > MAX_SIZE)
        return CONC_EINVAL;
    size_t total = (size + HEADER + TAG + page - 1) / page * page;
    int fd;
    conc_arena *a = map_new(total, &fd);
    if (!a) {
        if (fd >= 0)
            close(fd);
        return CONC_ENOMEM;
    }
    int r = conc__robust_init(&a->lock, 0);
    if (r) {
        munmap(a, total);
        if (fd >= 0)
            close(fd);
        return r;
    }
    a->magic = ARENA_MAGIC;
    a->size = total;
    a->first = HEADER;
    a->creator = (int32_t)getpid();
    a->fd = fd;
    struct block *b = at(a, a->first);
    b->magic = BLOCK_MAGIC;
    b->free = 1;
    b->size = total - HEADER;
    a->free_bytes = b->size - TAG;
    list_push(a, b);
    remember(a);
    *out = a;
    return 0;
}

void
conc_arena_free(conc_arena *a)
{
    if (!a)
        return;
    forget(a);
    if (a->fd >= 0 && a->creator == (int32_t)getpid())
        close(a->fd);
    munmap(a, a->size);
}

int
conc_arena_share(conc_arena *a, conc_arena_ref *ref)
{
    if (!a || !ref)
        return CONC_EINVAL;
    if (a->magic != ARENA_MAGIC)
        return corrupt(a, "the header overwritten", 0);
    if (a->fd < 0)
        return conc_fail(-ENOSYS, "shared arena: made without memfd, it "
                                  "reaches forked children only");
    ref->magic = REF_MAGIC;
    ref->base = (uint64_t)(uintptr_t)a;
    ref->size = a->size;
    ref->pid = a->creator;
    ref->fd = a->fd;
    return 0;
}

/* Maps the creator's memfd at the creator's address. */
static int
map_ref(const conc_arena_ref *ref, conc_arena **out)
{
    int fd = conc__open_fd_of(ref->pid, ref->fd);
    if (fd < 0)
        return conc_fail(fd,
                         "shared arena: cannot open descriptor %d of "
                         "process %d (has its creator ended?)",
                         (int)ref->fd, (int)ref->pid);
    struct stat st;
    void *want = (void *)(uintptr_t)ref->base, *m = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >= ref->size)
        m = mmap(want, ref->size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED || m != want) {
        if (m != MAP_FAILED)
            munmap(m, ref->size); /* a kernel that ignored NOREPLACE */
        return conc_fail(m == MAP_FAILED && e != EEXIST ? -e : CONC_EEXIST,
                         "shared arena: its addresses are taken in this "
                         "process");
    }
    conc_arena *a = m;
    if (a->magic != ARENA_MAGIC || a->size != ref->size) {
        munmap(m, ref->size);
        return CONC_EINVAL;
    }
    remember(a);
    *out = a;
    return 0;
}

int
conc_arena_open(const conc_arena_ref *ref, conc_arena **out)
{
    if (!ref || !out || ref->magic != REF_MAGIC || !ref->size ||
        ref->base % TAG)
        return CONC_EINVAL;
    conc_arena *a = find_mapped(ref->base);
    if (a) {
        if (a->size != ref->size)
            return CONC_EINVAL;
        *out = a;
        return 0;
    }
    return map_ref(ref, out);
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
    if (!out)
        return CONC_EINVAL;
    pthread_once(&default_once, make_default);
    if (!default_arena)
        return CONC_ENOMEM;
    *out = default_arena;
    return 0;
}

/* The first free block of at least `need` bytes, or NULL; *err is set to
 * CONC_EBROKEN when the list does not hold together. */
static struct block *
first_fit(conc_arena *a, uint64_t need, int *err)
{
    uint64_t prev = 0;
    for (uint64_t o = a->free_head; o; o = at(a, o)->next_free) {
        if (!is_free_node(a, o, prev)) {
            *err = corrupt(a, "a free list node that is not one", o);
            return NULL;
        }
        if (at(a, o)->size >= need)
            return at(a, o);
        prev = o;
    }
    return NULL;
}

/* The block after `b`, checked: NULL at the end of the mapping. Sets *err
 * to CONC_EBROKEN when the tag there is not a block's that follows `b`. */
static struct block *
next_block(conc_arena *a, struct block *b, int *err)
{
    uint64_t off = off_of(a, b) + b->size;
    if (off >= a->size)
        return NULL;
    if (!is_block(a, off) || at(a, off)->prev_size != b->size) {
        *err =
            corrupt(a, "a block tag that does not follow its neighbour", off);
        return NULL;
    }
    return at(a, off);
}

/* Cuts `need` bytes off the front of free block `b` (off the list); the
 * rest becomes a free block. The chain changes in one store, last. */
static int
split(conc_arena *a, struct block *b, uint64_t need)
{
    int err = 0;
    struct block *after = next_block(a, b, &err);
    if (err)
        return err;
    struct block *rest = at(a, off_of(a, b) + need);
    rest->magic = BLOCK_MAGIC;
    rest->free = 1;
    rest->size = b->size - need;
    rest->prev_size = need;
    rest->next_free = rest->prev_free = 0;
    ORDER();
    HOOK(CONC__ARENA_SPLIT_WRITTEN);
    b->size = need; /* the commit: `rest` joins the chain */
    ORDER();
    HOOK(CONC__ARENA_SPLIT_DONE);
    if (after)
        after->prev_size = rest->size;
    list_push(a, rest);
    a->free_bytes -= TAG; /* the new tag */
    return 0;
}

int
conc_arena_alloc(conc_arena *a, size_t size, void **out)
{
    if (!a || !out || size == 0)
        return CONC_EINVAL;
    if (size > a->size)
        return CONC_ENOMEM;
    uint64_t need = ((uint64_t)size + TAG + TAG - 1) / TAG * TAG;
    int r = lock(a);
    if (r)
        return r;
    struct block *b = first_fit(a, need, &r);
    if (!b) {
        unlock(a);
        return r ? r : CONC_ENOMEM;
    }
    r = list_remove(a, b);
    if (!r && b->size - need >= MIN_SPLIT)
        r = split(a, b, need);
    if (r) {
        unlock(a);
        return r;
    }
    b->free = 0;
    a->free_bytes -= b->size - TAG;
    HOOK(CONC__ARENA_ALLOC_TAKEN);
    unlock(a);
    void *p = (char *)b + TAG;
    memset(p, 0, b->size - TAG);
    *out = p;
    return 0;
}

/* Makes `n`, the block after `b`, part of `b` (both free, and `n` off
 * the free list). The chain changes in one store, first. */
static void
merge(conc_arena *a, struct block *b, struct block *n)
{
    b->size += n->size; /* the commit: `n` leaves the chain */
    ORDER();
    HOOK(CONC__ARENA_MERGED);
    n->magic = 0;
    a->free_bytes += TAG;
}

/* The block before `b`, checked: NULL for the first block. */
static struct block *
prev_block(conc_arena *a, struct block *b, int *err)
{
    if (!b->prev_size)
        return NULL;
    uint64_t off = off_of(a, b);
    if (b->prev_size > off - a->first || !is_block(a, off - b->prev_size) ||
        at(a, off - b->prev_size)->size != b->prev_size) {
        *err = corrupt(a, "a block tag whose neighbour does not match", off);
        return NULL;
    }
    return at(a, off - b->prev_size);
}

/* Frees allocated block `b` and merges it with its free neighbours. It is
 * marked free first, so that a repair after a crash in the middle finds
 * it free rather than holding its neighbour's bytes. */
static int
release(conc_arena *a, struct block *b)
{
    int r = 0;
    struct block *n = next_block(a, b, &r);
    struct block *p = r ? NULL : prev_block(a, b, &r);
    if (r)
        return r;
    b->free = 1;
    a->free_bytes += b->size - TAG;
    ORDER();
    if (n && n->free) {
        if ((r = list_remove(a, n)))
            return r;
        merge(a, b, n);
    }
    if (p && p->free) {
        merge(a, p, b); /* p stays on the list */
        b = p;
    } else {
        list_push(a, b);
    }
    uint64_t after = off_of(a, b) + b->size;
    if (after < a->size) {
        if (!is_block(a, after))
            return corrupt(a, "a block tag that is not one", after);
        at(a, after)->prev_size = b->size;
    }
    return 0;
}

int
conc_arena_dealloc(conc_arena *a, void *ptr)
{
    if (!a)
        return CONC_EINVAL;
    if (!ptr)
        return 0;
    if (!conc_arena_contains(a, ptr) ||
        ((uintptr_t)ptr - (uintptr_t)a) % TAG != 0)
        return CONC_EINVAL;
    struct block *b = (struct block *)((char *)ptr - TAG);
    int r = lock(a);
    if (r)
        return r;
    if (!is_block(a, off_of(a, b)) || b->free != 0) {
        unlock(a);
        return CONC_EINVAL; /* not a block, or freed already */
    }
    r = release(a, b);
    unlock(a);
    return r;
}

int
conc_arena_contains(const conc_arena *a, const void *ptr)
{
    if (!a)
        return CONC_EINVAL;
    if (!ptr)
        return 0;
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)a;
    return p >= base + a->first + TAG && p < base + a->size;
}

size_t
conc_arena_capacity(const conc_arena *a)
{
    return a ? a->size - a->first - TAG : 0;
}

size_t
conc_arena_available(conc_arena *a)
{
    if (!a || lock(a))
        return 0;
    size_t n = a->free_bytes;
    unlock(a);
    return n;
}

int
conc__arena_recover(conc_arena *a)
{
    int r = lock(a);
    if (r)
        return r;
    r = repair(a);
    unlock(a);
    return r;
}

int
conc__arena_check(conc_arena *a)
{
    int r = lock(a);
    if (r)
        return r;
    uint64_t prev = 0, free_bytes = 0, listed = 0, nfree = 0;
    for (uint64_t off = a->first; off < a->size; off += at(a, off)->size) {
        struct block *b = at(a, off);
        if (!is_block(a, off) || b->prev_size != prev ||
            (b->free && prev && at(a, off - prev)->free)) {
            unlock(a);
            return corrupt(a, "the chain of blocks does not hold", off);
        }
        prev = b->size;
        nfree += b->free;
        free_bytes += b->free ? b->size - TAG : 0;
    }
    uint64_t p = 0;
    for (uint64_t o = a->free_head; o && listed <= nfree;
         o = at(a, o)->next_free) {
        if (!is_free_node(a, o, p)) {
            unlock(a);
            return corrupt(a, "the free list does not hold", o);
        }
        listed++;
        p = o;
    }
    r = listed != nfree || free_bytes != a->free_bytes
            ? corrupt(a, "the free list or count is off", 0)
            : 0;
    unlock(a);
    return r;
}
