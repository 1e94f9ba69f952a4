/* A single-producer single-consumer byte ring in shared memory: the
 * channel between a process pool and one of its workers, one per
 * direction. Frames are a 64-bit length and the payload padded to 8 bytes;
 * a frame may wrap around the end of the ring. The producer publishes
 * `tail` after the bytes, the consumer `head` after reading them, so a
 * process that dies half-way through a frame leaves nothing half-visible.
 * Each side keeps, on a line of its own, the other side's position as it
 * last read it, and reads the real one again only when that copy says the
 * ring is full (producer) or empty (consumer): a busy ring then costs one
 * cache miss per run of frames instead of one per frame. */
#ifndef CONC_EXECUTOR_RING_H
#define CONC_EXECUTOR_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CONC__RING_CAP ((size_t)256 << 10) /* a power of two */

struct conc__ring {
    _Alignas(64) _Atomic uint64_t head; /* consumer position */
    _Atomic uint32_t space;             /* bumped by the consumer; futex */
    _Atomic uint32_t producer_waiting;
    _Alignas(64) _Atomic uint64_t tail; /* producer position */
    _Atomic uint32_t data;              /* bumped by the producer; futex */
    _Atomic uint32_t consumer_waiting;
    _Alignas(64) uint64_t head_seen; /* the producer's copy of head */
    _Alignas(64) uint64_t tail_seen; /* the consumer's copy of tail */
    _Alignas(64) uint8_t bytes[CONC__RING_CAP];
};

/* Sets an empty ring's positions to `pos` (a zeroed ring starts at 0).
 * Neither side may use the ring meanwhile. */
void conc__ring_reset(struct conc__ring *r, uint64_t pos);

/* The largest frame payload the ring takes in one piece. */
#define CONC__RING_MAX_FRAME (CONC__RING_CAP / 2)

/* Writes a frame of the `n` parts (total payload at most
 * CONC__RING_MAX_FRAME) if it fits now. Returns 1 if written, 0 if the
 * ring is too full. Wakes a waiting consumer. Producer only. */
int conc__ring_put(struct conc__ring *r, const void *const *parts,
                   const size_t *lens, int n);

/* Like conc__ring_put, but waits (sleeping on the ring) for room until the
 * absolute deadline. Returns 1, or 0 at the deadline. */
int conc__ring_put_wait(struct conc__ring *r, const void *const *parts,
                        const size_t *lens, int n, int64_t deadline);

/* The payload length of the frame at the head, or -1 if the ring is
 * empty. Consumer only. */
int64_t conc__ring_peek(struct conc__ring *r);

/* Copies `n` bytes of the head frame's payload from offset `off`. */
void conc__ring_read(struct conc__ring *r, size_t off, void *dst, size_t n);

/* Drops the head frame and wakes a producer waiting for room. */
void conc__ring_pop(struct conc__ring *r);

/* Waits until the ring has a frame or the deadline passes, spinning for
 * `spin_ns` first (core/wait.h), yielding the CPU between looks. Returns 1
 * if a frame is there, 0 otherwise. */
int conc__ring_wait(struct conc__ring *r, int64_t deadline, int64_t spin_ns);

#endif
