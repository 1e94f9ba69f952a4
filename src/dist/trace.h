/* Per-stage timestamps of a task's round trip, for measuring where its
 * time goes: compiled in only with -DCONC_DIST_TRACE=ON (CMake), never in
 * a release build. Each stage appends a line "NS STAGE TASK-ID" (NS on
 * the monotonic clock, which every process of the machine shares) to the
 * file named by the environment variable CONC_DIST_TRACE, one write()
 * per line with O_APPEND, so the executor's and the workers' processes
 * may share one file; bench/dist_trace.py turns it into the median time
 * between stages. A write costs a system call: the traced round trip is a
 * few microseconds slower than an untraced one. */
#ifndef CONC_DIST_TRACE_H
#define CONC_DIST_TRACE_H

#include <stddef.h>

#ifdef CONC_DIST_TRACE
/* Records that task `id` (len bytes, not terminated) reached `stage` now.
 * Any thread. */
void conc__dist_trace(const char *stage, const char *id, size_t len);
#define CONC__DIST_TRACE(stage, id, len) conc__dist_trace(stage, id, len)
#else
#define CONC__DIST_TRACE(stage, id, len) ((void)0)
#endif

#endif
