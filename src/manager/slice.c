/* Slices as list and array.array read them (slice.h). */
#include "manager/slice.h"

#include <string.h>

/* One bound of a slice (None: the default), clipped as slice.indices. */
static int
bound(conc_obj *o, int64_t n, int64_t step, int64_t dflt, int64_t *out)
{
    if (!o || conc_obj_typeof(o) == CONC_OBJ_NONE) {
        *out = dflt;
        return 0;
    }
    conc_obj_type t = conc_obj_typeof(o);
    if (t != CONC_OBJ_INT && t != CONC_OBJ_BOOL)
        return conc_fail(CONC_ETYPE, "slice indices must be integers or "
                                     "None or have an __index__ method");
    if (conc_obj_int_value(o, out) < 0) { /* beyond int64_t: clipped */
        conc_buf text = CONC_BUF_INIT;
        int negative = conc_obj_repr(o, &text) == 0 && text.data[0] == '-';
        conc_buf_free(&text);
        *out = negative ? -n - 1 : n + 1;
    }
    if (*out < 0)
        *out += n;
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    *out = *out < lo ? lo : *out > hi ? hi : *out;
    return 0;
}

/* The span a builtins.slice record selects out of n items. */
int
conc__mgr_span_of(conc_obj *sl, int64_t n, struct conc__mgr_span *sp)
{
    conc_obj *a = conc_obj_foreign_args(sl);
    conc_obj *st = conc_obj_seq_get(a, 2);
    sp->step = 1;
    if (st && conc_obj_typeof(st) != CONC_OBJ_NONE &&
        conc_obj_int_value(st, &sp->step) < 0)
        return conc_fail(CONC_ETYPE, "slice indices must be integers or "
                                     "None or have an __index__ method");
    if (sp->step == 0)
        return conc_fail(CONC_EVALUE, "slice step cannot be zero");
    int64_t step = sp->step;
    int rc = bound(conc_obj_seq_get(a, 0), n, step, step < 0 ? n - 1 : 0,
                   &sp->start);
    if (rc == 0)
        rc = bound(conc_obj_seq_get(a, 1), n, step, step < 0 ? -1 : n,
                   &sp->stop);
    if (rc < 0)
        return rc;
    int64_t d = step > 0 ? sp->stop - sp->start : sp->start - sp->stop;
    int64_t s = step > 0 ? step : -step;
    sp->len = d <= 0 ? 0 : (d - 1) / s + 1;
    return 0;
}

int
conc__mgr_is_slice(conc_obj *o)
{
    const char *m = conc_obj_foreign_module(o), *n = conc_obj_foreign_name(o);
    return m && n && !strcmp(m, "builtins") && !strcmp(n, "slice");
}

int
conc__mgr_span_has(const struct conc__mgr_span *sp, int64_t i, int64_t *k)
{
    int64_t d = i - sp->start;
    if (sp->len == 0 || d % sp->step != 0)
        return 0;
    *k = d / sp->step;
    return *k >= 0 && *k < sp->len;
}
