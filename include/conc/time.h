/* conc/time.h: monotonic time and sleeping.
 *
 * Public timeouts are relative seconds as double (CONC_FOREVER waits without
 * limit). Internally they become absolute deadlines on the monotonic clock,
 * which nested calls pass on so a chain of waits never exceeds the caller's
 * budget. */
#ifndef CONC_TIME_H
#define CONC_TIME_H

#include "common.h"

CONC_BEGIN_DECLS

/* Seconds on a clock that never goes back (time.monotonic). Any thread. */
CONC_EXTERN double conc_monotonic(void);

/* Nanoseconds on the same clock (time.monotonic_ns). Any thread. */
CONC_EXTERN int64_t conc_monotonic_ns(void);

/* Sleeps for `seconds` (time.sleep), resuming after signals until the time
 * has passed. Returns 0, or CONC_EINVAL for a negative or NaN duration. Any
 * thread. */
CONC_EXTERN int conc_sleep(double seconds);

CONC_END_DECLS

#endif
