/* What the kernel says about a thread of this process: whether it is
 * running (or waiting for a CPU) or asleep, and how much CPU it used. */
#ifndef CONC_UNIX_TASKSTATE_H
#define CONC_UNIX_TASKSTATE_H

#include <stdint.h>

/* The state letter of thread `tid` of this process, as /proc shows it:
 * 'R' running or runnable, 'S' or 'D' asleep in a system call, 'T' or 't'
 * stopped, 'Z' or 'X' ended. 0 when /proc cannot tell (not mounted, or
 * the thread is gone). */
char conc__task_state(uint32_t tid);

/* The CPU time thread `tid` of this process has used, in nanoseconds, or
 * -1 if it is gone. */
int64_t conc__task_cpu_ns(uint32_t tid);

#endif
