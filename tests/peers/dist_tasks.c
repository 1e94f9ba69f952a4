/* A shared library of task functions for conc-worker's test: plain
 * conc_task_fns, as a pool would run them. */
#include <string.h>

#include "conc.h"

int lib_square(const void *arg, size_t len, conc_buf *result);

int
lib_square(const void *arg, size_t len, conc_buf *result)
{
    long v;
    if (len != sizeof v)
        return conc_fail(CONC_EVALUE, "lib_square wants a long");
    memcpy(&v, arg, sizeof v);
    v *= v;
    return conc_buf_append(result, &v, sizeof v);
}
