/* Per-stage timestamps of a task's round trip (trace.h): a debug build's
 * aid, empty unless built with CONC_DIST_TRACE. */
#include "dist/trace.h"

#ifdef CONC_DIST_TRACE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

/* The trace file's descriptor: TRACE_UNOPENED until the first stage, then
 * the file or -1 for none. */
#define TRACE_UNOPENED (-2)
/* The longest line: a time, a stage's name and a task id. */
#define TRACE_LINE (CONC__DIST_NAME_MAX + 128)
static _Atomic int trace_fd = TRACE_UNOPENED;

static int
trace_open(void)
{
    const char *path = getenv("CONC_DIST_TRACE");
    int fd =
        path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    int expected = TRACE_UNOPENED;
    if (!atomic_compare_exchange_strong(&trace_fd, &expected, fd) && fd >= 0)
        close(fd); /* another thread opened it first */
    return atomic_load(&trace_fd);
}

void
conc__dist_trace(const char *stage, const char *id, size_t len)
{
    int64_t now = conc__now_ns();
    int fd = atomic_load(&trace_fd);
    if (fd == TRACE_UNOPENED)
        fd = trace_open();
    if (fd < 0)
        return;
    char line[TRACE_LINE];
    int n = snprintf(line, sizeof line, "%lld %s %.*s\n", (long long)now, stage,
                     (int)len, id);
    if (n > 0 && (size_t)n < sizeof line)
        (void)!write(fd, line, (size_t)n);
}
#else
/* ISO C wants a declaration in every file. */
typedef int conc__dist_trace_off;
#endif
