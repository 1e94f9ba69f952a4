/* Fuzzes the shared arena's block tags (src/core/arena.c): the sizes,
 * flags and free-list links that every process sharing the arena can
 * write. The input is a program of allocations and frees on a small arena,
 * with writes of arbitrary bytes over the tags mixed in. Until the first
 * such write, the arena must behave exactly: allocations are aligned, lie
 * inside it and never overlap a live block, every free of a live block
 * works and every other pointer is refused with CONC_EINVAL, and the whole
 * bookkeeping checks out after every step. After it, every call must
 * still return one of its documented codes, never crash, hang or hand out
 * memory outside the arena, and once a call has said CONC_EBROKEN every
 * later one must say it too. The repair that follows a lock owner's death
 * runs over the tags as they are, too: it must refuse them or leave an
 * arena that checks out. */
#include "conc/error.h"
#include "core/arena_internal.h"
#include "fuzz.h"

#define ARENA_BYTES (64u << 10)
#define TAG         64u
#define HEADER      (2 * TAG)
#define MAX_LIVE    64
#define MAX_OPS     512

struct live {
    char *p;
    size_t len;
};

static struct live live[MAX_LIVE];
static size_t nlive;
static int scribbled, broken;

static int
inside(conc_arena *a, const char *p, size_t len)
{
    const char *base = (const char *)a;
    return p >= base + HEADER + TAG &&
           (size_t)(p - base) + len <= conc_arena_capacity(a) + HEADER + TAG;
}

/* Once broken, a call fails so, unless it refused its arguments first. */
static void
note(int r)
{
    if (broken)
        FUZZ_CHECK(r == CONC_EBROKEN || r == CONC_EINVAL);
    if (r == CONC_EBROKEN) {
        FUZZ_CHECK(scribbled);
        broken = 1;
    }
}

static void
op_alloc(conc_arena *a, struct fuzz_in *in)
{
    size_t len = 1 + (size_t)fuzz_take(in, 2) % (ARENA_BYTES / 4);
    void *p = NULL;
    int r = conc_arena_alloc(a, len, &p);
    FUZZ_CHECK(r == 0 || r == CONC_ENOMEM || r == CONC_EBROKEN);
    note(r);
    if (r)
        return;
    FUZZ_CHECK((uintptr_t)p % TAG == 0 && inside(a, p, len));
    if (!scribbled) {
        for (size_t i = 0; i < nlive; i++)
            FUZZ_CHECK((char *)p + len <= live[i].p - TAG ||
                       (char *)p - TAG >= live[i].p + live[i].len);
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK(((unsigned char *)p)[i] == 0);
    }
    /* A fixed fill: bytes chosen by the input could forge a tag, which
     * is a write over the bookkeeping of another kind. */
    memset(p, 0xa5, len);
    if (nlive < MAX_LIVE)
        live[nlive++] = (struct live){p, len};
    else
        FUZZ_CHECK(conc_arena_dealloc(a, p) == 0 || scribbled);
}

static void
op_free(conc_arena *a, struct fuzz_in *in)
{
    if (!nlive)
        return;
    size_t i = (size_t)fuzz_take(in, 1) % nlive;
    int r = conc_arena_dealloc(a, live[i].p);
    if (!scribbled)
        FUZZ_CHECK(r == 0);
    FUZZ_CHECK(r == 0 || r == CONC_EINVAL || r == CONC_EBROKEN);
    note(r);
    live[i] = live[--nlive];
}

/* Frees a pointer that is no live block (the arena's own header, a
 * payload's middle, a freed block): refused. */
static void
op_free_wild(conc_arena *a, struct fuzz_in *in)
{
    size_t off = (size_t)fuzz_take(in, 2) % ARENA_BYTES;
    char *p = (char *)a + off;
    for (size_t i = 0; i < nlive; i++)
        if (live[i].p == p)
            return;
    int r = conc_arena_dealloc(a, p);
    if (!scribbled)
        FUZZ_CHECK(r == CONC_EINVAL);
    FUZZ_CHECK(r == 0 || r == CONC_EINVAL || r == CONC_EBROKEN);
    note(r);
}

/* Writes bytes over a field of a tag, past the arena's header (whose
 * mutex a stray write could leave locked: that is a hang no check can
 * prevent). */
static void
op_scribble(conc_arena *a, struct fuzz_in *in)
{
    size_t lines = ARENA_BYTES / TAG - HEADER / TAG;
    size_t off = HEADER + (size_t)fuzz_take(in, 2) % lines * TAG +
                 (size_t)fuzz_take(in, 1) % 5 * 8;
    uint64_t v = fuzz_take(in, 8);
    memcpy((char *)a + off, &v, 8);
    scribbled = 1;
}

/* The repair a process runs when it finds the lock's owner dead: it
 * reads every tag of the chain, so it must refuse bad ones, and what it
 * accepts must check out whole. */
static void
op_recover(conc_arena *a)
{
    int r = conc__arena_recover(a);
    FUZZ_CHECK(r == 0 || (scribbled && r == CONC_EBROKEN));
    note(r);
    if (r == 0)
        FUZZ_CHECK(conc__arena_check(a) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    conc_arena *a;
    FUZZ_CHECK(conc_arena_new(ARENA_BYTES - HEADER - TAG, &a) == 0);
    size_t avail = conc_arena_available(a);
    nlive = 0;
    scribbled = broken = 0;
    for (int ops = 0; ops < MAX_OPS && !fuzz_done(&in); ops++) {
        switch (fuzz_take(&in, 1) % 8) {
        case 0:
        case 1:
        case 2:
            op_alloc(a, &in);
            break;
        case 3:
        case 4:
            op_free(a, &in);
            break;
        case 5:
            op_free_wild(a, &in);
            break;
        case 6:
            if (fuzz_take(&in, 1) % 4 == 0)
                op_scribble(a, &in);
            else
                op_recover(a);
            break;
        default: {
            int r = conc__arena_check(a);
            FUZZ_CHECK(r == 0 || (scribbled && r == CONC_EBROKEN));
            note(r);
        }
        }
        if (!scribbled)
            FUZZ_CHECK(conc__arena_check(a) == 0);
    }
    while (nlive) {
        int r = conc_arena_dealloc(a, live[--nlive].p);
        FUZZ_CHECK(scribbled || r == 0);
    }
    if (!scribbled)
        FUZZ_CHECK(conc_arena_available(a) == avail);
    conc_arena_free(a);
    return 0;
}
