/* The fork server's reading of a request (the wire format is in
 * process_internal.h). The bytes come from the client, this same program,
 * but they are checked as any bytes from another process are: a request
 * that cannot be followed stops the server, one that cannot be held in
 * memory is read to its end and refused, and nothing is read past the
 * lengths the header gave. Kept apart from the server so that a fuzz
 * target can drive it (fuzz/fuzz_fs_request.c). */
#include <stddef.h>
#include <string.h>

#include "process/process_internal.h"

/* The child reads its argument as a struct: it is aligned as malloc
 * aligns. */
#define ARG_ALIGN ((size_t) _Alignof(max_align_t))

/* Reads `n` bytes and drops them (a request that cannot be served). */
static int
discard(int fd, uint64_t n)
{
    char buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        int rc = conc__fs_read_full(fd, buf, k);
        if (rc)
            return rc;
        n -= k;
    }
    return 0;
}

static int
header_ok(const struct conc__fs_request *h)
{
    return h->magic == CONC__FS_MAGIC && h->module_len < CONC__FS_MAX_STR &&
           h->name_len < CONC__FS_MAX_STR && h->ident_len < CONC__FS_MAX_STR &&
           h->parent_name_len < CONC__FS_MAX_STR;
}

/* Reads the four strings into `p`, each ended by a NUL. */
static int
read_strings(int fd, const struct conc__fs_request *h, char *p,
             struct conc__fs_req *r)
{
    uint32_t lens[4] = {h->module_len, h->name_len, h->ident_len,
                        h->parent_name_len};
    const char **dst[4] = {&r->module, &r->name, &r->ident, &r->parent_name};
    for (int i = 0; i < 4; i++) {
        int rc = conc__fs_read_full(fd, p, lens[i]);
        if (rc)
            return rc;
        p[lens[i]] = '\0';
        *dst[i] = p;
        p += lens[i] + 1;
    }
    return 0;
}

int
conc__fs_read_request(int fd, struct conc__fs_req *r)
{
    struct conc__fs_request h;
    int rc = conc__fs_read_full(fd, &h, sizeof h);
    if (rc)
        return rc;
    if (!header_ok(&h))
        return CONC_EPROTO;
    size_t strs = (size_t)h.module_len + h.name_len + h.ident_len +
                  h.parent_name_len + 4; /* and their NULs */
    /* The argument comes first in the block, then the strings. */
    char *b = NULL;
    size_t arg_room = 0;
    if (h.arg_len <= SIZE_MAX - strs - ARG_ALIGN) {
        arg_room = ((size_t)h.arg_len + ARG_ALIGN - 1) & ~(ARG_ALIGN - 1);
        b = conc__malloc(arg_room + strs);
    }
    if (!b) {
        rc = discard(fd, strs - 4 + h.arg_len);
        return rc ? rc : CONC_ENOMEM;
    }
    *r = (struct conc__fs_req){.fn_off = h.fn_off,
                               .daemon = h.daemon != 0,
                               .arg = b,
                               .len = (size_t)h.arg_len,
                               .block = b};
    rc = read_strings(fd, &h, b + arg_room, r);
    if (!rc)
        rc = conc__fs_read_full(fd, b, r->len);
    if (rc) {
        conc__free(b);
        r->block = NULL;
    }
    return rc;
}
