/* Growable byte buffers. Capacity doubles, so appends are amortized O(1). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conc/buf.h"
#include "core/internal.h"

void
conc_buf_init(conc_buf *b)
{
    if (!b)
        return;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->borrowed = 0;
}

void
conc_buf_init_with(conc_buf *b, void *storage, size_t cap)
{
    if (!b)
        return;
    b->data = storage;
    b->len = 0;
    b->cap = storage ? cap : 0;
    b->borrowed = storage != NULL;
}

void
conc_buf_free(conc_buf *b)
{
    if (!b)
        return;
    if (!b->borrowed)
        conc__free(b->data);
    conc_buf_init(b);
}

int
conc_buf_reserve(conc_buf *b, size_t extra)
{
    if (!b)
        return CONC_EINVAL;
    if (extra > SIZE_MAX - b->len)
        return CONC_EOVERFLOW;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = b->borrowed ? conc__malloc(cap) : conc__realloc(b->data, cap);
    if (!d)
        return CONC_ENOMEM;
    if (b->borrowed && b->len)
        memcpy(d, b->data, b->len);
    b->borrowed = 0;
    b->data = d;
    b->cap = cap;
    return 0;
}

int
conc_buf_append(conc_buf *b, const void *data, size_t n)
{
    if (!b || !data)
        return CONC_EINVAL;
    if (n == 0)
        return 0;
    int r = conc_buf_reserve(b, n);
    if (r)
        return r;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

int
conc__buf_set(conc_buf *b, const void *data, size_t n)
{
    if (n > b->len) {
        int r = conc_buf_reserve(b, n - b->len);
        if (r)
            return r;
    }
    if (n)
        memcpy(b->data, data, n);
    b->len = n;
    return 0;
}

int
conc_buf_appendf(conc_buf *b, const char *fmt, ...)
{
    if (!b || !fmt)
        return CONC_EINVAL;
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CONC_EINVAL;
    int r = conc_buf_reserve(b, (size_t)n + 1);
    if (r)
        return r;
    if ((size_t)n < sizeof small) {
        memcpy(b->data + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

void
conc_buf_consume(conc_buf *b, size_t n)
{
    if (!b)
        return;
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

uint8_t *
conc_buf_detach(conc_buf *b, size_t *len)
{
    if (!b)
        return NULL;
    uint8_t *d = b->data;
    if (b->borrowed) {
        d = NULL;
        if (b->len && !(d = conc__malloc(b->len)))
            return NULL; /* b unchanged */
        if (d)
            memcpy(d, b->data, b->len);
    }
    if (len)
        *len = b->len;
    conc_buf_init(b);
    return d;
}
