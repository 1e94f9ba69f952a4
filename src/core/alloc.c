/* The replaceable allocator. The four pointers are read without a lock:
 * conc_replace_allocator is documented to run while no other thread uses
 * conc, so plain atomics with relaxed order suffice. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conc/alloc.h"
#include "core/internal.h"

static _Atomic(conc_malloc_fn) malloc_fn = malloc;
static _Atomic(conc_realloc_fn) realloc_fn = realloc;
static _Atomic(conc_calloc_fn) calloc_fn = calloc;
static _Atomic(conc_free_fn) free_fn = free;

int
conc_replace_allocator(conc_malloc_fn m, conc_realloc_fn r, conc_calloc_fn c,
                       conc_free_fn f)
{
    if (!m || !r || !c || !f)
        return CONC_EINVAL;
    atomic_store_explicit(&malloc_fn, m, memory_order_relaxed);
    atomic_store_explicit(&realloc_fn, r, memory_order_relaxed);
    atomic_store_explicit(&calloc_fn, c, memory_order_relaxed);
    atomic_store_explicit(&free_fn, f, memory_order_relaxed);
    return 0;
}

void *
conc__malloc(size_t size)
{
    return atomic_load_explicit(&malloc_fn, memory_order_relaxed)(size);
}

void *
conc__calloc(size_t count, size_t size)
{
    return atomic_load_explicit(&calloc_fn, memory_order_relaxed)(count, size);
}

void *
conc__realloc(void *ptr, size_t size)
{
    return atomic_load_explicit(&realloc_fn, memory_order_relaxed)(ptr, size);
}

void
conc__free(void *ptr)
{
    if (ptr)
        atomic_load_explicit(&free_fn, memory_order_relaxed)(ptr);
}

void
conc_free(void *ptr)
{
    conc__free(ptr);
}

char *
conc__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = conc__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The block starts `align` bytes or fewer past what the allocator gave,
 * and the allocator's pointer is kept in the word just before it. */
void *
conc__calloc_aligned(size_t align, size_t size)
{
    if (size > SIZE_MAX - align - sizeof(void *))
        return NULL;
    uint8_t *raw = conc__calloc(1, size + align + sizeof(void *));
    if (!raw)
        return NULL;
    uintptr_t at =
        ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
    memcpy((void *)(at - sizeof(void *)), &raw, sizeof raw);
    return (void *)at;
}

void
conc__free_aligned(void *ptr)
{
    if (!ptr)
        return;
    void *raw;
    memcpy(&raw, (uint8_t *)ptr - sizeof raw, sizeof raw);
    conc__free(raw);
}
