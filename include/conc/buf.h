/* conc/buf.h: growable byte buffers.
 *
 * A conc_buf is a plain value the caller owns (often on the stack): start it
 * with CONC_BUF_INIT or conc_buf_init, grow it with the functions below, and
 * release its memory with conc_buf_free. A buffer is not thread-safe: one
 * thread at a time. */
#ifndef CONC_BUF_H
#define CONC_BUF_H

#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_buf {
    uint8_t *data; /* len bytes of content, then spare room up to cap */
    size_t len;
    size_t cap;
    int borrowed; /* 1 while data is storage the buffer does not own */
} conc_buf;

#define CONC_BUF_INIT                                                          \
    {                                                                          \
        NULL, 0, 0, 0                                                          \
    }

/* Makes `b` an empty buffer with no memory. One thread at a time per buffer. */
CONC_EXTERN void conc_buf_init(conc_buf *b);

/* Makes `b` an empty buffer that writes into `storage` (`cap` bytes, the
 * caller's) until its content outgrows it, then moves it to memory of its
 * own: a small-buffer start that costs no allocation while it fits. The
 * storage must stay valid while b points into it; conc_buf_free never
 * frees it.
 * One thread at a time per buffer. */
CONC_EXTERN void conc_buf_init_with(conc_buf *b, void *storage, size_t cap);

/* Releases b's memory and leaves it empty. Safe on an empty buffer. Any thread,
 * once no other thread uses the object. */
CONC_EXTERN void conc_buf_free(conc_buf *b);

/* Ensures room for `extra` more bytes beyond len without a further
 * allocation. Returns 0, CONC_ENOMEM, or CONC_EOVERFLOW if len + extra does
 * not fit in size_t. On failure the buffer is unchanged.
 * One thread at a time per buffer. */
CONC_EXTERN int conc_buf_reserve(conc_buf *b, size_t extra);

/* Appends `n` bytes from `data` (which may not point into b). Errors as for
 * conc_buf_reserve; on failure the buffer is unchanged.
 * One thread at a time per buffer. */
CONC_EXTERN int conc_buf_append(conc_buf *b, const void *data, size_t n);

/* Appends printf-style formatted text, keeping a NUL after it (not counted
 * in len). Returns 0, CONC_ENOMEM or CONC_EINVAL for a bad format.
 * One thread at a time per buffer. */
CONC_EXTERN int conc_buf_appendf(conc_buf *b, const char *fmt, ...)
    CONC_PRINTF(2, 3);

/* Removes the first `n` bytes (all of them if n >= len), keeping the rest. One
 * thread at a time per buffer. */
CONC_EXTERN void conc_buf_consume(conc_buf *b, size_t n);

/* Hands the buffer's memory to the caller, who frees it with conc_free, and
 * leaves `b` empty. Returns NULL for a buffer that has no memory. A buffer
 * still in storage given to conc_buf_init_with hands over a copy of its
 * content instead (NULL when it is empty, or out of memory: then b is
 * unchanged).
 * One thread at a time per buffer. */
CONC_EXTERN uint8_t *conc_buf_detach(conc_buf *b, size_t *len);

CONC_END_DECLS

#endif
