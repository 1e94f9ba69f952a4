/* conc/common.h: the export macro and the few definitions every module uses.
 *
 * Included by every other conc header; has no functions of its own. */
#ifndef CONC_COMMON_H
#define CONC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(CONC_BUILDING) && defined(__GNUC__)
#define CONC_EXTERN __attribute__((visibility("default")))
#else
#define CONC_EXTERN
#endif

#if defined(__GNUC__)
#define CONC_NODISCARD    __attribute__((warn_unused_result))
#define CONC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CONC_NODISCARD
#define CONC_PRINTF(f, a)
#endif

/* C++ sees every declaration with C linkage. */
#ifdef __cplusplus
#define CONC_BEGIN_DECLS extern "C" {
#define CONC_END_DECLS   }
#else
#define CONC_BEGIN_DECLS
#define CONC_END_DECLS
#endif

/* A function that never returns, in a form C11 and C++ compilers accept
 * in a prototype (C++ has no _Noreturn). */
#if defined(__GNUC__)
#define CONC_NORETURN __attribute__((noreturn))
#elif defined(__cplusplus)
#define CONC_NORETURN [[noreturn]]
#else
#define CONC_NORETURN _Noreturn
#endif

/* Timeouts are relative, in seconds, as in Python. CONC_FOREVER is the one
 * value that waits without limit; 0 never blocks, and so does any other
 * negative value (a budget that ran out); NaN is CONC_EINVAL. */
#define CONC_FOREVER (-1.0)

#endif
