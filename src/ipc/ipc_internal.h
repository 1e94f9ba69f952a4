/* Internals of connections (src/ipc): the object, the wire format and the
 * descriptor-level helpers the send and receive halves share.
 *
 * Wire format. A connection carries a stream of frames. Each frame starts
 * with an 8-byte header, a little-endian 64-bit word holding the payload
 * length shifted left by 8 and a kind in the low byte:
 *
 *   KIND_BYTES  a byte message; `length` payload bytes follow;
 *   KIND_FD     a descriptor; no payload. On a Unix socket the descriptor
 *               travels attached to the header's bytes (descriptor
 *               passing, unix/platform.h), so it reaches the receiver
 *               together with (or before) the header.
 *
 * Fixed byte order keeps the format the same whatever the machine on the
 * other end of a socket, and 56 bits of length is "any size". A message is
 * written with one writev/sendmsg of header and payload, so a small message
 * costs one system call. */
#ifndef CONC_IPC_INTERNAL_H
#define CONC_IPC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "conc/buf.h"
#include "conc/ipc.h"
#include "core/internal.h"

#define CONC__FRAME_HDR  8
#define CONC__KIND_BYTES 0x42u
#define CONC__KIND_FD    0x46u
#define CONC__FRAME_MAX  ((UINT64_C(1) << 56) - 1)

/* Input buffer size: small messages, and bursts of them, are read into it
 * with one system call; a message whose frame does not fit is read
 * straight into the caller's memory instead. */
#define CONC__CONN_INBUF (64 * 1024)

/* Room for descriptors that one recvmsg may return. One skb carrying
 * descriptors is returned per call, and conc sends one per frame. */
#define CONC__CONN_MAXFDS 16

/* Connection flags, fixed at construction. */
enum {
    CONC__CONN_READ = 1u,   /* may receive */
    CONC__CONN_WRITE = 2u,  /* may send */
    CONC__CONN_SOCKET = 4u, /* a stream socket: send/recv with flags */
    CONC__CONN_FDS = 8u,    /* a Unix socket: may carry descriptors */
};

/* A connection. Nothing is locked: the fields under "receive state" belong
 * to the one receiving thread, the send path reads only fd and flags, and
 * `closed` changes only in conc_conn_close, which no other thread may run
 * against (see ipc.h). */
struct conc_conn {
    int fd;
    unsigned flags;
    int closed;
    size_t max_message; /* 0: no limit */
    int wshut;          /* a timed-out send cut a frame: no more sends */

    /* ---- receive state ---- */
    int rshut;        /* the receiving side is shut after an error */
    uint8_t *in;      /* input buffer of CONC__CONN_INBUF bytes */
    size_t in_head;   /* first unconsumed byte */
    size_t in_tail;   /* end of the bytes read */
    int big;          /* a long message's header has been consumed */
    size_t big_len;   /* its payload length */
    conc_buf big_buf; /* its payload received so far, across timeouts */
    int *fds;         /* descriptors received ahead of their frames */
    size_t nfds, fds_cap;
};

/* Encodes and decodes a frame header. */
static inline void
conc__frame_put(uint8_t *p, unsigned kind, uint64_t len)
{
    uint64_t w = (len << 8) | kind;
    for (int i = 0; i < CONC__FRAME_HDR; i++)
        p[i] = (uint8_t)(w >> (8 * i));
}

static inline void
conc__frame_get(const uint8_t *p, unsigned *kind, uint64_t *len)
{
    uint64_t w = 0;
    for (int i = 0; i < CONC__FRAME_HDR; i++)
        w |= (uint64_t)p[i] << (8 * i);
    *kind = (unsigned)(w & 0xffu);
    *len = w >> 8;
}

/* Waits until `fd` shows one of `events` (POLLIN, POLLOUT) or the absolute
 * deadline passes. Returns 0 when ready (errors and hang-ups count as
 * ready: the following read or write reports them), CONC_ETIMEDOUT, or a
 * negated errno. Signals are retried. */
int conc__conn_wait_fd(int fd, short events, int64_t deadline);

/* Common argument checks of the receive calls: CONC_ECLOSED after close,
 * CONC_EBADF on an end that may not receive. */
int conc__conn_check_recv(const conc_conn *c);

#endif
