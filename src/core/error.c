/* Error names and messages from CONC_ERRNO_MAP, and per-thread failure
 * messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conc_config.h"
#include "core/internal.h"

const char *
conc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define X(name, value, msg)                                                    \
    case value:                                                                \
        return msg;
        CONC_ERRNO_MAP(X)
#undef X
    default:
        break;
    }
#ifdef HAVE_STRERRORDESC_NP
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
#endif
    return "unknown error";
}

const char *
conc_err_name(int err)
{
    switch (err) {
    case 0:
        return "0";
#define X(name, value, msg)                                                    \
    case value:                                                                \
        return "CONC_" #name;
        CONC_ERRNO_MAP(X)
#undef X
    default:
        break;
    }
#ifdef HAVE_STRERRORDESC_NP
    if (err < 0 && err > -4096) {
        const char *s = strerrorname_np(-err);
        if (s)
            return s;
    }
#endif
    return "CONC_EUNKNOWN";
}

/* The message lives in static TLS: recording a failure never allocates, so
 * it works when memory is what ran out. A coroutine task has a buffer of
 * its own, which the loop installs while the task runs (tasks share their
 * thread, and a message must survive the task's suspensions). */
static __thread char thread_message[CONC__FAILURE_MAX];
__thread char *conc__task_message
    __attribute__((tls_model("initial-exec"))); /* a task's own, or NULL */
#define failure_message                                                        \
    (conc__task_message ? conc__task_message : thread_message)

int
conc_fail(int err, const char *fmt, ...)
{
    va_list ap;
    if (!fmt) {
        failure_message[0] = '\0';
        return err;
    }
    va_start(ap, fmt);
    vsnprintf(failure_message, CONC__FAILURE_MAX, fmt, ap);
    va_end(ap);
    return err;
}

const char *
conc_failure_message(void)
{
    return failure_message;
}

void
conc_clear_failure(void)
{
    failure_message[0] = '\0';
}
