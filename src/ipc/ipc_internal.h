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

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "conc/buf.h"
#include "conc/ipc.h"
#include "core/internal.h"
#include "core/wait.h"

#define CONC__FRAME_HDR  8
#define CONC__KIND_BYTES 0x42u
#define CONC__KIND_FD    0x46u
/* Frames of the shared rings between the ends of a conc_pipe (ring.c):
 * RING on the descriptor says "what follows comes through the ring", DIVERT
 * in the ring says "the next message comes through the descriptor", and
 * WAKE on the descriptor carries nothing (it makes the descriptor readable
 * for a reader that waits on it). */
#define CONC__KIND_RING   0x52u
#define CONC__KIND_DIVERT 0x44u
#define CONC__KIND_WAKE   0x57u
#define CONC__FRAME_MAX   ((UINT64_C(1) << 56) - 1)
/* The longest header of either framing (CPython's with its 8-byte
 * escape, frame.c). */
#define CONC__HDR_MAX 12

/* Input buffer size: small messages, and bursts of them, are read into it
 * with one system call; a message whose frame does not fit is read
 * straight into the caller's memory instead. */
#define CONC__CONN_INBUF (64 * 1024)

/* Room for descriptors that one recvmsg may return. One skb carrying
 * descriptors is returned per call, and conc sends one per frame. */
#define CONC__CONN_MAXFDS 16

/* Connection flags, fixed at construction. */
enum {
    CONC__CONN_READ = 1u,    /* may receive */
    CONC__CONN_WRITE = 2u,   /* may send */
    CONC__CONN_SOCKET = 4u,  /* a stream socket: send/recv with flags */
    CONC__CONN_FDS = 8u,     /* a Unix socket: may carry descriptors */
    CONC__CONN_PYWIRE = 16u, /* CPython's framing (frame.c), bytes only */
};

/* What a receive wants, and where it goes. */
struct conc__sink {
    unsigned kind; /* CONC__KIND_BYTES or CONC__KIND_FD */
    conc_buf *out; /* recv_bytes */
    uint8_t *buf;  /* recv_bytes_into: buf, cap, *len */
    size_t cap;
    size_t *len;
    int *fd; /* recv_fd */
};

/* One direction's ring in the shared mapping (ring.c): the writer's
 * position, the reader's, a line of control words, then the frames. */
#define CONC__RING_CAP     ((uint64_t)64 << 10)
#define CONC__RING_MSG_MAX ((size_t)16 << 10) /* larger: the descriptor */
#define CONC__RING_LINE    64
struct conc__ring_side {
    _Alignas(CONC__RING_LINE) _Atomic uint64_t tail; /* the writer's */
    _Alignas(CONC__RING_LINE) _Atomic uint64_t head; /* the reader's */
    _Alignas(CONC__RING_LINE) _Atomic uint32_t attach;
    _Atomic uint32_t hup;        /* a copy of the writing end closed */
    _Atomic uint32_t rx_waiting; /* the reader sleeps on rx_seq */
    _Atomic uint32_t tx_waiting; /* the writer sleeps on tx_seq */
    _Atomic uint32_t rx_seq;
    _Atomic uint32_t tx_seq;
    _Alignas(CONC__RING_LINE) uint8_t data[CONC__RING_CAP];
};

/* What a socket's receive learnt of its waits (recv_spin.c). */
struct conc__conn_spin_stats {
    int64_t budget; /* ns a spin lasts; 0: none (messages come far apart) */
    int64_t spun;   /* average wait that spun, ns; 0: none measured yet */
    int64_t slept;  /* average wait that did not spin, ns; 0: none yet */
    unsigned waits; /* waits that found the socket empty, for the probes */
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

    /* ---- shared rings (ring.c), NULL for a connection without them ---- */
    void *map; /* this end's mapping of both rings */
    size_t map_len;
    struct conc__ring_side *rx; /* the ring this end reads, or NULL */
    struct conc__ring_side *tx; /* the ring this end writes, or NULL */
    int tx_ring;                /* the sender has switched to the ring */
    uint64_t tx_head;           /* the reader's position last read */

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
    int rx_ring;      /* the receiver has switched to the ring */
    int rx_pid;       /* the process that told the writer it reads the ring */
    uint64_t diverts; /* DIVERT frames taken whose message is still due */
    uint64_t rx_tail; /* the writer's position last read */
    unsigned rx_idle; /* receives of timeout 0 that found nothing */
    struct conc__conn_spin_stats spin; /* a socket receive's (recv_spin.c) */
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

/* frame.c: CPython's framing. conc__pyframe_put writes the header for a
 * payload of `len` bytes at p (room for CONC__HDR_MAX) and returns its
 * size. conc__pyframe_get decodes the header at p, of which `have` bytes
 * are there: 0 with the payload length and the header's size, 1 when more
 * bytes are needed, CONC_EPROTO for a length Python never writes.
 * conc__conn_frame_get does the same in the connection's framing, giving
 * the frame's kind too. */
size_t conc__pyframe_put(uint8_t *p, uint64_t len);
int conc__pyframe_get(const uint8_t *p, size_t have, uint64_t *len,
                      size_t *hdr);
int conc__conn_frame_get(const conc_conn *c, const uint8_t *p, size_t have,
                         unsigned *kind, uint64_t *len, size_t *hdr);

/* conn.c: wraps a stream socket with the given CONC__CONN_* flags (for
 * the listener and client, which know what they made). Does not close
 * `fd` on failure. */
int conc__conn_wrap(int fd, unsigned flags, size_t max_message,
                    conc_conn **out);

/* Waits until `fd` shows one of `events` (POLLIN, POLLOUT) or the absolute
 * deadline passes. Returns 0 when ready (errors and hang-ups count as
 * ready: the following read or write reports them), CONC_ETIMEDOUT, or a
 * negated errno. Signals are retried. */
int conc__conn_wait_fd(int fd, short events, int64_t deadline);

/* recv.c: the descriptor side of a receive. conc__conn_recv_sock takes
 * the next frame from the descriptor (and the input buffer) into the sink,
 * waiting until the deadline; it returns what a receive returns, or
 * CONC__RING_SWITCH after taking a RING frame (on a connection with
 * rings). conc__conn_poll_sock is conc_conn_poll on the descriptor alone,
 * except that it returns CONC__RING_SWITCH after taking a RING frame.
 * conc__conn_take_marker takes a RING or WAKE frame at the front of the
 * input buffer: CONC__RING_SWITCH for RING (and sets rx_ring), 1 for
 * WAKE, 0 for none. conc__conn_buffered is conc__conn_poll_sock without
 * reading: 1 when the input buffer (or a shut receiving side) lets a
 * receive go on at once. conc__conn_shut shuts the receiving side and
 * returns err. */
#define CONC__RING_SWITCH 2
int conc__conn_recv_sock(conc_conn *c, const struct conc__sink *s,
                         int64_t deadline);
int conc__conn_poll_sock(conc_conn *c, int64_t deadline);
int conc__conn_take_marker(conc_conn *c);
int conc__conn_buffered(conc_conn *c);
int conc__conn_shut(conc_conn *c, int err);

/* send.c: sends one frame on the descriptor, attaching *cmsg_fd if any,
 * waiting for room until the deadline. */
int conc__conn_send_frame(conc_conn *c, unsigned kind, const void *data,
                          size_t len, int *cmsg_fd, int64_t deadline);

/* ring.c: the shared rings of a conc_pipe. conc__ring_pair maps a pair of
 * rings (one per direction, `simplex`: one) into both ends, or leaves both
 * without when the system refuses (the descriptor then carries
 * everything). conc__ring_unmap releases an end's mapping once its descriptor
 * is closed, after telling the other end. conc__ring_send, conc__ring_recv and
 * conc__ring_poll replace the descriptor paths on an end with rings;
 * conc__ring_refuse makes the other end send everything through the
 * descriptor from now on (conc_conn_fileno). */
void conc__ring_pair(conc_conn *a, conc_conn *b, int simplex);
void conc__ring_unmap(conc_conn *c);
int conc__ring_send(conc_conn *c, unsigned kind, const void *data, size_t len,
                    int *fd, int64_t deadline);
int conc__ring_recv(conc_conn *c, const struct conc__sink *s, int64_t deadline);
int conc__ring_poll(conc_conn *c, int64_t deadline);
void conc__ring_refuse(const conc_conn *c);

/* ring.c: prepares an end with rings to be handed on (conc_conn_share):
 * the other end's ring is refused, and this end's ring is marked GONE,
 * so that every later message comes through the descriptor. Returns 0, or
 * CONC_ESTATE (with a failure message) when messages may be in the ring
 * or on their way into it; nothing changes then but the refusal. */
int conc__ring_hand_over(conc_conn *c);

/* recv_spin.c: the spin of a socket's receive before it sleeps (see
 * there for the policy). A wait that found the socket empty starts with
 * conc__conn_spin_begin, looks again (a read with MSG_DONTWAIT) while
 * conc__conn_spin_more says so, and ends with conc__conn_spin_end:
 * `caught` when a look found bytes, else after its sleep, with `came`
 * set when bytes came (0: the deadline passed first). Spinning is off
 * inside a coroutine, on one CPU, for a call that must not block, and
 * on descriptors that are not sockets. conc__conn_spin_choose and
 * conc__conn_spin_learn are the policy itself, apart for its test. */
struct conc__conn_spin {
    struct conc__spin sp;
    int64_t t0;     /* when the wait began */
    int64_t budget; /* the spin's, 0 when it does not spin */
    int learn;      /* whether the outcome adapts the policy */
};
#define CONC__CONN_SPIN_MIN_NS 5000
#define CONC__CONN_SPIN_MAX_NS 60000 /* recv_spin.c says why */
#define CONC__CONN_SPIN_PROBE  32
void conc__conn_spin_begin(conc_conn *c, int64_t deadline,
                           struct conc__conn_spin *w);
int conc__conn_spin_more(struct conc__conn_spin *w);
void conc__conn_spin_end(conc_conn *c, const struct conc__conn_spin *w,
                         int caught, int came);
void conc__conn_spin_init(struct conc__conn_spin_stats *st);
int64_t conc__conn_spin_choose(struct conc__conn_spin_stats *st);
void conc__conn_spin_learn(struct conc__conn_spin_stats *st, int64_t budget,
                           int64_t took, int caught, int came);

/* Common argument checks of the receive calls: CONC_ECLOSED after close,
 * CONC_EBADF on an end that may not receive. */
int conc__conn_check_recv(const conc_conn *c);

#endif
