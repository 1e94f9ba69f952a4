/* CPython's TypeErrors for a call's arguments, which a typeid's create
 * gives as CPython's server does when it calls the class: too many
 * positional arguments, a keyword the signature lacks or gives twice,
 * missing required ones, each with Python's own text (3.11's, the same
 * through 3.14). A method's counts include self, as Python's do.
 *
 * No locks: pure functions of their arguments. */
#include <stdio.h>

#include "manager/sync_types.h"

static size_t
n_params(const struct conc__mgr_sig *sig)
{
    size_t n = 0;
    while (sig->params[n])
        n++;
    return n;
}

static int
too_many(const struct conc__mgr_sig *sig, size_t max, size_t given)
{
    size_t self = (size_t)sig->self, lo = sig->required + self, hi = max + self,
           got = given + self;
    char takes[64];
    if (lo == hi)
        snprintf(takes, sizeof takes, "%zu positional argument%s", lo,
                 lo == 1 ? "" : "s");
    else
        snprintf(takes, sizeof takes, "from %zu to %zu positional arguments",
                 lo, hi);
    return conc_fail(CONC_ETYPE, "%s() takes %s but %zu %s given", sig->name,
                     takes, got, got == 1 ? "was" : "were");
}

/* The index of parameter `name`, or -1. */
static long
param_index(const struct conc__mgr_sig *sig, const char *name)
{
    for (size_t i = 0; name && sig->params[i]; i++)
        if (!strcmp(sig->params[i], name))
            return (long)i;
    return -1;
}

static int
missing(const struct conc__mgr_sig *sig, conc_obj *args, conc_obj *kwds)
{
    conc_buf names = CONC_BUF_INIT;
    size_t n = 0, total = 0;
    for (size_t i = conc_obj_len(args); i < sig->required; i++)
        total += !conc_obj_dict_get_str(kwds, sig->params[i]);
    int rc = 0;
    for (size_t i = conc_obj_len(args); rc == 0 && i < sig->required; i++) {
        if (conc_obj_dict_get_str(kwds, sig->params[i]))
            continue;
        n++;
        const char *sep = n == 1       ? ""
                          : n < total  ? ", "
                          : total == 2 ? " and "
                                       : ", and ";
        rc = conc_buf_appendf(&names, "%s'%s'", sep, sig->params[i]);
    }
    if (rc == 0 && n > 0)
        rc = conc_fail(CONC_ETYPE,
                       "%s() missing %zu required positional argument%s: %.*s",
                       sig->name, n, n == 1 ? "" : "s", (int)names.len,
                       (const char *)names.data);
    conc_buf_free(&names);
    return rc;
}

int
conc__mgr_check_args(const struct conc__mgr_sig *sig, conc_obj *args,
                     conc_obj *kwds)
{
    size_t max = n_params(sig), given = conc_obj_len(args);
    conc_obj *k;
    if (given > max)
        return too_many(sig, max, given);
    for (size_t pos = 0; kwds && conc_obj_next(kwds, &pos, &k, NULL) == 1;) {
        const char *name = conc_obj_str_value(k);
        long i = param_index(sig, name);
        if (i < 0)
            return conc_fail(CONC_ETYPE,
                             "%s() got an unexpected keyword argument '%s'",
                             sig->name, name ? name : "?");
        if ((size_t)i < given)
            return conc_fail(CONC_ETYPE,
                             "%s() got multiple values for argument '%s'",
                             sig->name, name);
    }
    return missing(sig, args, kwds);
}
