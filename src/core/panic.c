/* conc__panic: a broken internal invariant. Never used for bad input. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"

void
conc__panic(const char *fmt, ...)
{
    va_list ap;
    fputs("conc: panic: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
