/* Slices of the "list" typeid, as list's own __getitem__, __setitem__ and
 * __delitem__ take them: a new list; a step of 1 replaced by the items of
 * any iterable that travels (the length may change); an extended slice
 * replaced by exactly as many items as it selects; deleted.
 *
 * Lock order: the caller holds the box's lock. */
#include "manager/list_ops.h"

int
conc__mgr_list_slice_get(conc_obj *list, conc_obj *sl, conc_obj **result)
{
    struct conc__mgr_span sp;
    int rc = conc__mgr_span_of(sl, (int64_t)conc_obj_len(list), &sp);
    if (rc < 0)
        return rc;
    conc_obj *out = conc_obj_list();
    rc = out ? 0 : CONC_ENOMEM;
    for (int64_t k = 0, i = sp.start; rc == 0 && k < sp.len; k++, i += sp.step)
        rc = conc_obj_list_append(out, conc_obj_seq_get(list, (size_t)i));
    if (rc < 0) {
        conc_obj_decref(out);
        return rc;
    }
    *result = out;
    return 0;
}

/* list with its span replaced by `from`'s items (NULL: deleted), as a
 * new list: a step of 1 puts all of `from` at the span's start. */
static int
splice(conc_obj *list, const struct conc__mgr_span *sp, conc_obj *from,
       conc_obj **out)
{
    int64_t n = (int64_t)conc_obj_len(list), k;
    conc_obj *next = conc_obj_list();
    int rc = next ? 0 : CONC_ENOMEM;
    for (int64_t i = 0; rc == 0 && i <= n; i++) {
        for (size_t j = 0; from && sp->step == 1 && i == sp->start && rc == 0 &&
                           j < conc_obj_len(from);
             j++)
            rc = conc_obj_list_append(next, conc_obj_seq_get(from, j));
        if (i == n || rc < 0)
            break;
        if (!conc__mgr_span_has(sp, i, &k))
            rc = conc_obj_list_append(next, conc_obj_seq_get(list, (size_t)i));
        else if (from && sp->step != 1)
            rc = conc_obj_list_append(next, conc_obj_seq_get(from, (size_t)k));
    }
    if (rc < 0) {
        conc_obj_decref(next);
        return rc;
    }
    *out = next;
    return 0;
}

int
conc__mgr_list_slice_set(struct conc__mgr_box *b, conc_obj *sl, conc_obj *v)
{
    struct conc__mgr_span sp;
    conc_obj *from = NULL, *next = NULL;
    int rc = conc__mgr_span_of(sl, (int64_t)conc_obj_len(b->v), &sp);
    if (rc == 0 && v && (rc = conc__mgr_items(v, &from)) == CONC_ETYPE)
        rc = conc_fail(CONC_ETYPE, "%s",
                       sp.step == 1 ? "can only assign an iterable"
                                    : "must assign iterable to extended "
                                      "slice");
    if (rc == 0 && from && sp.step != 1 &&
        (int64_t)conc_obj_len(from) != sp.len)
        rc = conc_fail(CONC_EVALUE,
                       "attempt to assign sequence of size %zu to extended "
                       "slice of size %lld",
                       conc_obj_len(from), (long long)sp.len);
    if (rc == 0)
        rc = splice(b->v, &sp, from, &next);
    conc_obj_decref(from);
    if (rc < 0)
        return rc;
    conc_obj_decref(b->v);
    b->v = next;
    return 0;
}
