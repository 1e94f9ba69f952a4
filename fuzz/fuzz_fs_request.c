/* Fuzzes the fork server's reading of requests, conc__fs_read_request
 * (src/process/fsrequest.c). The input is the byte stream the server reads
 * from its client, served from a memory file. The reader must take any
 * bytes safely: each request it returns has NUL-ended strings shorter
 * than the protocol's limit and an aligned argument inside its block, it
 * never reads past the stream, a refused request (out of memory) leaves
 * the stream in step, and the walk ends. Allocations above ALLOC_LIMIT
 * fail, as a huge argument length would make them fail in a real server,
 * so that the refusal path runs too. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conc/alloc.h"
#include "fuzz.h"
#include "process/process_internal.h"

/* Small, so that a seed can carry a refused request whole. */
#define ALLOC_LIMIT ((size_t)4096)

static volatile unsigned sink;

static void *
small_malloc(size_t n)
{
    return n > ALLOC_LIMIT ? NULL : malloc(n);
}

static void *
small_realloc(void *p, size_t n)
{
    return n > ALLOC_LIMIT ? NULL : realloc(p, n);
}

static void *
small_calloc(size_t c, size_t n)
{
    return n && c > ALLOC_LIMIT / n ? NULL : calloc(c, n);
}

/* Checks one string of a request and reads each of its bytes. */
static unsigned
check_string(const char *s)
{
    size_t n = strlen(s);
    FUZZ_CHECK(n < CONC__FS_MAX_STR);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)s[i];
    return sum;
}

static void
check_request(const struct conc__fs_req *r)
{
    FUZZ_CHECK(r->block && (char *)r->arg == r->block);
    FUZZ_CHECK((uintptr_t)r->arg % _Alignof(max_align_t) == 0);
    unsigned sum = 0;
    for (size_t i = 0; i < r->len; i++)
        sum += ((const unsigned char *)r->arg)[i];
    const char *strs[4] = {r->module, r->name, r->ident, r->parent_name};
    for (int i = 0; i < 4; i++) {
        FUZZ_CHECK(strs[i] >= (const char *)r->arg + r->len);
        sum += check_string(strs[i]);
    }
    FUZZ_CHECK(strs[0] < strs[1] && strs[1] < strs[2] && strs[2] < strs[3]);
    sink = sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        conc_replace_allocator(small_malloc, small_realloc, small_calloc, free);
        ready = 1;
    }
    int fd = memfd_create("fs_request", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    off_t pos = 0;
    for (;;) {
        struct conc__fs_req r;
        int rc = conc__fs_read_request(fd, &r);
        off_t now = lseek(fd, 0, SEEK_CUR);
        FUZZ_CHECK(now >= pos && now <= (off_t)size);
        /* A request served or refused was read whole: the walk moves. */
        FUZZ_CHECK(now > pos || (rc != 0 && rc != CONC_ENOMEM));
        pos = now;
        if (rc == 0) {
            FUZZ_CHECK(now >= (off_t)sizeof(struct conc__fs_request));
            check_request(&r);
            conc__free(r.block);
        } else if (rc != CONC_ENOMEM) {
            break;
        }
    }
    close(fd);
    return 0;
}
