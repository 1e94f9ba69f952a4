/* Futex wait and wake on a 32-bit word, the sleeping half of every conc
 * primitive. `shared` selects a process-shared futex (for words in a shared
 * mapping); private futexes are cheaper for the kernel to hash. */
#ifndef CONC_UNIX_FUTEX_H
#define CONC_UNIX_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *word == expected, until woken or the absolute monotonic
 * `deadline` (ns; CONC__FOREVER for none). Returns 0 when woken (or
 * spuriously), -EAGAIN if *word != expected on entry, -EINTR on a signal,
 * -ETIMEDOUT at the deadline. Callers re-check their condition in all
 * cases. */
int conc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                     int64_t deadline, int shared);

/* Wakes up to `n` threads sleeping on `word` (INT32_MAX for all). Returns
 * the number woken. */
int conc__futex_wake(_Atomic uint32_t *word, int n, int shared);

/* The bitset bit only the proxies of park.c wait with. */
#define CONC__FUTEX_PROXY_BIT 0x80000000u

/* conc__futex_wait in the kernel, whatever the caller, with the bitset
 * `bits` (FUTEX_WAIT_BITSET). For park.c's proxies. */
int conc__futex_wait_bits(_Atomic uint32_t *word, uint32_t expected,
                          int64_t deadline, int shared, uint32_t bits);

/* Wakes up to n kernel waiters whose bitset meets `bits`. For park.c. */
void conc__futex_wake_bits(_Atomic uint32_t *word, int n, int shared,
                           uint32_t bits);

/* One spin-wait iteration hint to the CPU. */
static inline void
conc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
