/* Result notices of a submitter's done stream (dist_internal.h): the
 * entries the finish scripts write (wire.c), fields "id", task id, "r",
 * result value, once per result. A pure function over the entry's field
 * bytes: a notice is written by another process, in any language, so its
 * every field is checked like input, and fuzz/fuzz_dist_notice.c feeds it
 * garbage. */
#include <string.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

static int
field_is(const char *s, size_t len, const char *want, size_t want_len)
{
    return s && len == want_len && memcmp(s, want, len) == 0;
}

int
conc__dist_notice_seq(const char *sub, const char *id, size_t len,
                      uint64_t *seq)
{
    size_t sl = strlen(sub);
    if (!id || len <= sl + 1 || memcmp(id, sub, sl) != 0 || id[sl] != ':')
        return CONC_EPROTO;
    const char *digits = id + sl + 1;
    size_t n = len - sl - 1;
    /* One spelling per task: the submitter writes its numbers without
     * leading zeros, so "SUB:07" is no task of its own, not task 7. */
    if (n > 1 && digits[0] == '0')
        return CONC_EPROTO;
    return conc__dist_parse_u64(digits, n, seq);
}

size_t
conc__dist_notice_decode(const char *sub, size_t n, const char *const *vals,
                         const size_t *lens, conc__dist_notice_fn fn, void *arg)
{
    const char *id = NULL;
    size_t id_len = 0, found = 0;
    /* Pairs of name and value; a lone last name has no value. */
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint64_t seq;
        if (field_is(vals[i], lens[i], "id", 2)) {
            id = vals[i + 1];
            id_len = lens[i + 1];
        } else if (field_is(vals[i], lens[i], "r", 1) && id) {
            /* An "r" belongs to the "id" just before it, and to no other:
             * one whose id is not this submitter's is skipped. */
            if (vals[i + 1] &&
                conc__dist_notice_seq(sub, id, id_len, &seq) == 0) {
                fn(arg, seq, vals[i + 1], lens[i + 1]);
                found++;
            }
            id = NULL;
        }
    }
    return found;
}
