#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "unix/tid.h"

__thread uint32_t conc__tid_cache __attribute__((tls_model("initial-exec")));

static void
forget_tid(void)
{
    conc__tid_cache = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_tid);
}

uint32_t
conc__tid_slow(void)
{
    pthread_once(&atfork_once, register_atfork);
    conc__tid_cache = (uint32_t)syscall(SYS_gettid);
    return conc__tid_cache;
}
