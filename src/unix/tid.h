/* The calling thread's kernel id, cached per thread. The cache is reset in
 * a forked child (whose only thread has a new id). */
#ifndef CONC_UNIX_TID_H
#define CONC_UNIX_TID_H

#include <stdint.h>

extern __thread uint32_t conc__tid_cache
    __attribute__((tls_model("initial-exec")));
uint32_t conc__tid_slow(void);

static inline uint32_t
conc__tid(void)
{
    uint32_t t = conc__tid_cache;
    return t ? t : conc__tid_slow();
}

#endif
