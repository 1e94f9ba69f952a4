/* The ring of a process queue: how messages are framed, committed, waited
 * for and recovered after a crash.
 *
 * Layout. The queue's shared part (struct conc__mpq_shared) sits in an
 * arena block: a read-only line (capacity, maxsize, flags), the producer
 * side (its lock and private bookkeeping), the published `tail`, the
 * consumer side (its lock and bookkeeping), the published `head`, a line of
 * sleep flags and sequence words, a line for JoinableQueue counters, then
 * the ring itself: `cap` bytes, a power of two. Each group has its own
 * cache line, so a producer and a consumer that run at the same time write
 * to different lines and read each other's line only when they must.
 *
 * Frames. A message is written as a frame: an 8-byte header (payload length
 * and kind), then the payload, padded to 8 bytes. Frames follow each other
 * around the ring and may wrap at its end (the copy is split in two), so
 * the whole ring is usable and no padding frame is needed. A message whose
 * frame fits in the ring is one WHOLE frame. A larger message is cut into
 * pieces of at most a quarter of the ring each: a FIRST frame (whose header
 * is followed by the message's total length and a generation number), MORE
 * frames, and a LAST frame.
 *
 * Sides. Producers take turns through the producer lock and consumers
 * through the consumer lock (sidelock.c); between the two sides the ring is
 * a single-producer single-consumer ring, so one producer and one consumer
 * never contend. `tail` and `head` are 64-bit words that each pack a byte
 * position (low half) and a message count (high half), so one store
 * publishes both. Each side keeps the last value it read of the other
 * side's word and reads the real one only when that copy says "full" (or
 * "empty"), so a side that runs ahead reads the other's line once per
 * batch, not once per message.
 *
 * Commit protocol. A producer writes the whole frame into free space past
 * `tail` and only then stores the new `tail` (one store, which also counts
 * the message). A consumer copies the whole payload out first and only then
 * stores the new `head`. Anything beyond `tail` is invisible to consumers,
 * and anything before `head` is never read again. So:
 *   - a producer killed before its commit leaves nothing behind: the bytes
 *     it wrote past `tail` are overwritten by the next producer;
 *   - a consumer killed before its commit took nothing: the message is
 *     still at `head` for the next consumer;
 *   - a commit is one store, so nothing is half-published or half-taken,
 *     and since only the lock holder moves `tail` (or `head`), and it moves
 *     it past a message exactly once, nothing is delivered twice.
 * For a message in pieces each piece is committed on its own (the consumer
 * must free room before the rest can come), and the message counts as put
 * when its LAST frame is committed. The consumer that assembles it knows
 * which producer writes it (the generation and the owner in the producer
 * side's `chunk` and `chunk_owner`). If that producer dies, or gives up at
 * its timeout, before its LAST frame, the consumer discards what it
 * assembled and goes on with the next message; a FIRST or WHOLE frame met
 * while assembling means the same. Pieces met without their FIRST frame
 * (the consumer that had begun the message died) are skipped. The one
 * loss a crash can cause is therefore the message in pieces that a killed
 * consumer had begun to take. A producer that gives up at its timeout
 * also takes its committed pieces back (retract_pieces), so that a failed
 * put leaves no bytes in the ring: a put that follows on an empty queue
 * finds all of it free.
 *
 * Streaming. A large WHOLE frame (64 KiB or a quarter of the ring) is
 * written in steps, and after each step the producer publishes how much is
 * written in `fill` (a generation, odd while the stream is on, and a byte
 * count), with `fill_pos` saying where the frame starts. A consumer that
 * finds nothing committed but a stream at head copies the frame out as it
 * is written, so the two copies of a large message overlap instead of
 * following each other. The commit protocol is unchanged: the frame counts
 * only once the producer has moved `tail` past it (then `fill` becomes the
 * next, even, generation with FILL_DONE), and head moves only once the
 * consumer has all of it. If the producer dies mid-stream the generation
 * moves on without FILL_DONE (set by the producer that takes its lock over,
 * or by the consumer that finds it dead), and the consumer drops its copy;
 * a consumer killed mid-stream took nothing.
 *
 * Sleeping. A side that must wait (consumer: ring empty; producer: no room
 * or maxsize reached) spins a little, then sets its `*_waiting` flag, reads
 * the matching sequence word, checks once more and sleeps on the sequence
 * word. The other side publishes with a sequentially consistent store and
 * then reads the flag; only if it is set does it claim it (an exchange to
 * 0, so one wake serves one sleep), bump the sequence and call futex
 * wake. In the single total order of these operations either the
 * sleeper sees the new position or the other side sees the flag, so no
 * wake-up is lost, and while nobody sleeps nobody makes a system call.
 * Only the holder of a side's lock sleeps on that side's flag (the other
 * members of the side wait on the lock), so a flag is a plain 0 or 1 that
 * the next holder clears if its owner died. Every sleep is cut into slices
 * (mpqueue_internal.h) after which the sleeper looks again, because a
 * process killed between publishing and waking would otherwise leave the
 * other side asleep; a consumer that waits for the next piece of a message,
 * or for more of a stream, also checks at each slice that the producer is
 * alive.
 *
 * Recovery. The next holder of a lock whose owner died repairs its side:
 * the producer side clears its sleep flag and ends a message in pieces or
 * a stream that the dead producer had begun (waking a consumer that waits
 * for it); the consumer side clears its sleep flag. Positions need no repair:
 * they were committed whole. */
#include <limits.h>
#include <string.h>

#include "mpqueue/mpqueue_internal.h"
#include "unix/futex.h"

#define HDR 8u  /* frame header */
#define EXT 16u /* after a FIRST header: total length, generation */

/* The kind word's high half is a constant, so a corrupt header (a bug)
 * is caught rather than followed. */
#define KIND_TAG  0x4d510000u
#define KIND_MASK 0xffffu
enum { WHOLE = 1, FIRST = 2, MORE = 3, LAST = 4 };

/* Returned by the consumer's waits: the message in pieces being assembled
 * (or the frame being streamed) will never be finished. */
#define ABANDONED 1

/* Returned by wait_data: nothing is committed, but a frame is being
 * streamed at head. */
#define STREAMING 2

/* Whole frames of at least STREAM_MIN payload bytes (or a quarter of the
 * ring, if less) are streamed, with progress published every STREAM_STEP
 * bytes (or a sixteenth of the ring). */
#define STREAM_MIN  (64u << 10)
#define STREAM_STEP (32u << 10)

/* `fill`: generation << 32 | bytes. An odd generation: a frame is being
 * streamed at tail and that many payload bytes are written. An even one:
 * idle; the bytes are FILL_DONE when the last stream ended committed, 0
 * when it was given up. */
#define FILL_DONE 0xffffffffu

struct hdr {
    uint32_t len;
    uint32_t kind;
};

struct ext {
    uint64_t total;
    uint64_t gen;
};

/* What a consumer assembling a message in pieces watches: the `chunk`
 * value while that message is being put, and its producer. */
struct watch {
    uint64_t chunk;
    uint64_t owner;
};

static uint32_t
pad8(size_t n)
{
    return (uint32_t)((n + 7) & ~(size_t)7);
}

/* Moves a packed position on by `bytes` bytes and `msgs` messages, each
 * half wrapping on its own. */
static uint64_t
advance(uint64_t pos, uint32_t bytes, uint32_t msgs)
{
    return (uint64_t)(conc__mpq_msgs(pos) + msgs) << 32 |
           (uint32_t)(conc__mpq_bytes(pos) + bytes);
}

static void
ring_write(struct conc__mpq_shared *s, uint32_t pos, const void *src, size_t n)
{
    uint32_t off = pos & (s->cap - 1);
    size_t room = s->cap - off;
    if (n <= room) {
        memcpy(s->ring + off, src, n);
    } else {
        memcpy(s->ring + off, src, room);
        memcpy(s->ring, (const uint8_t *)src + room, n - room);
    }
}

static void
ring_read(const struct conc__mpq_shared *s, uint32_t pos, void *dst, size_t n)
{
    uint32_t off = pos & (s->cap - 1);
    size_t room = s->cap - off;
    if (n <= room) {
        memcpy(dst, s->ring + off, n);
    } else {
        memcpy(dst, s->ring + off, room);
        memcpy((uint8_t *)dst + room, s->ring, n - room);
    }
}

static void
bump(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
    conc__futex_wake(seq, INT_MAX, 1);
}

/* Called after publishing: wakes the other side if it sleeps. The flag is
 * claimed with an exchange, so only the first publication after the
 * sleeper went to sleep pays for the wake; the sleeper sets it again if it
 * must sleep once more. The plain load first keeps the line unwritten (and
 * shared) while nobody sleeps. */
static void
wake_if_waiting(_Atomic uint32_t *waiting, _Atomic uint32_t *seq)
{
    if (atomic_load_explicit(waiting, memory_order_seq_cst) &&
        atomic_exchange_explicit(waiting, 0, memory_order_seq_cst))
        bump(seq);
}

void
conc__mpq_wake_all(struct conc__mpq_shared *s)
{
    bump(&s->data_seq);
    bump(&s->room_seq);
}

int
conc__mpq_corrupt(struct conc__mpq_shared *s, const char *what, uint32_t pos)
{
    atomic_store_explicit(&s->broken, 1, memory_order_seq_cst);
    conc__mpq_wake_all(s);
    return conc_fail(CONC_EBROKEN,
                     "process queue: %s (ring position %u); another "
                     "process wrote over the queue's shared memory",
                     what, pos);
}

int
conc__mpq_check(struct conc__mpq_shared *s, uint32_t cap)
{
    if (CONC__UNLIKELY(atomic_load_explicit(&s->broken, memory_order_relaxed)))
        return conc_fail(CONC_EBROKEN, "process queue: broken earlier, when "
                                       "its shared memory was found corrupt");
    if (CONC__UNLIKELY(s->magic != CONC__MPQ_MAGIC || s->cap != cap))
        return conc__mpq_corrupt(s, "its capacity or magic number overwritten",
                                 0);
    return 0;
}

/* Whether `used` bytes can lie between head and tail: at most the ring,
 * and whole frames, which are multiples of 8 bytes. */
static int
plausible(const struct conc__mpq_shared *s, uint32_t used)
{
    return used <= s->cap && (used & 7) == 0;
}

/* ---- Producer ----------------------------------------------------------- */

/* 1 if, by the head last seen, there are `need` free bytes past `tail`
 * and, when `count`, a free slot under maxsize; 0 if not; CONC_EBROKEN if
 * the positions are corrupt. */
static int
has_room(struct conc__mpq_shared *s, uint64_t tail, uint32_t need, int count)
{
    uint64_t head = s->head_seen;
    uint32_t used = conc__mpq_bytes(tail) - conc__mpq_bytes(head);
    if (CONC__UNLIKELY(!plausible(s, used)))
        return conc__mpq_corrupt(s, "head and tail that no frames fit between",
                                 conc__mpq_bytes(tail));
    if (s->cap - used < need)
        return 0;
    return !count || !s->maxsize ||
           (uint32_t)(conc__mpq_msgs(tail) - conc__mpq_msgs(head)) < s->maxsize;
}

static int
look_for_room(struct conc__mpq_shared *s, uint64_t tail, uint32_t need,
              int count, memory_order order)
{
    s->head_seen = atomic_load_explicit(&s->head, order);
    return has_room(s, tail, need, count);
}

static int
sleep_for_room(struct conc__mpq_shared *s, uint64_t tail, uint32_t need,
               int count, int64_t deadline)
{
    int64_t slice = CONC__MPQ_SLICE_MIN;
    int r;
    for (;;) {
        atomic_store_explicit(&s->room_waiting, 1, memory_order_seq_cst);
        uint32_t seq = atomic_load_explicit(&s->room_seq, memory_order_seq_cst);
        r = look_for_room(s, tail, need, count, memory_order_seq_cst);
        if (r) {
            r = r > 0 ? 0 : r;
            break;
        }
        if (atomic_load_explicit(&s->broken, memory_order_seq_cst)) {
            r = CONC_EBROKEN;
            break;
        }
        if (atomic_load_explicit(&s->shut, memory_order_seq_cst)) {
            r = CONC_ECLOSED;
            break;
        }
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline) {
            r = CONC_EFULL;
            break;
        }
        conc__mpq_sleep(&s->room_seq, seq, &slice, deadline);
    }
    atomic_store_explicit(&s->room_waiting, 0, memory_order_relaxed);
    return r;
}

/* Waits for room for a frame of `need` bytes. Returns 0, CONC_EFULL,
 * CONC_ECLOSED or CONC_EBROKEN. */
static int
wait_room(struct conc__mpq_shared *s, uint64_t tail, uint32_t need, int count,
          int64_t deadline)
{
    int r = has_room(s, tail, need, count);
    if (!r)
        r = look_for_room(s, tail, need, count, memory_order_acquire);
    if (r)
        return r > 0 ? 0 : r;
    if (atomic_load_explicit(&s->shut, memory_order_relaxed))
        return CONC_ECLOSED;
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if ((r = look_for_room(s, tail, need, count, memory_order_acquire)))
            return r > 0 ? 0 : r;
    return sleep_for_room(s, tail, need, count, deadline);
}

/* Publishes frames up to `tail` and wakes a consumer that sleeps. */
static void
commit_tail(struct conc__mpq_shared *s, uint64_t tail)
{
    atomic_store_explicit(&s->tail, tail, memory_order_seq_cst);
    wake_if_waiting(&s->data_waiting, &s->data_seq);
}

/* Writes a frame at `tail`: header, the extension if any, the payload. */
static void
write_frame(struct conc__mpq_shared *s, uint64_t tail, uint32_t kind,
            const struct ext *e, const uint8_t *data, uint32_t len)
{
    struct hdr h = {len, KIND_TAG | kind};
    uint32_t pos = conc__mpq_bytes(tail);
    ring_write(s, pos, &h, HDR);
    pos += HDR;
    if (e) {
        ring_write(s, pos, e, EXT);
        pos += EXT;
    }
    if (len)
        ring_write(s, pos, data, len);
}

static uint64_t
fill_word(uint32_t gen, uint32_t bytes)
{
    return (uint64_t)gen << 32 | bytes;
}

static uint32_t
fill_gen(uint64_t f)
{
    return (uint32_t)(f >> 32);
}

/* Writes a WHOLE frame at `tail` (room is there) while publishing its
 * progress in `fill`, so that a waiting consumer copies it out as it is
 * written, then commits it. */
static void
put_streamed(struct conc__mpq_shared *s, uint64_t tail, const uint8_t *data,
             uint32_t len)
{
    uint32_t gen =
        (fill_gen(atomic_load_explicit(&s->fill, memory_order_relaxed)) + 1) |
        1;
    uint32_t step = s->cap / 16 < STREAM_STEP ? s->cap / 16 : STREAM_STEP;
    uint32_t pos = conc__mpq_bytes(tail) + HDR;
    struct hdr h = {len, KIND_TAG | WHOLE};
    ring_write(s, conc__mpq_bytes(tail), &h, HDR);
    atomic_store_explicit(&s->fill_owner, conc__mpq_self(),
                          memory_order_relaxed);
    atomic_store_explicit(&s->fill_pos, conc__mpq_bytes(tail),
                          memory_order_relaxed);
    atomic_store_explicit(&s->fill, fill_word(gen, 0), memory_order_seq_cst);
    wake_if_waiting(&s->data_waiting, &s->data_seq);
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < step ? len - off : step;
        ring_write(s, pos + off, data + off, n);
        off += n;
        atomic_store_explicit(&s->fill, fill_word(gen, off),
                              memory_order_release);
    }
    atomic_store_explicit(&s->tail, advance(tail, HDR + pad8(len), 1),
                          memory_order_seq_cst);
    atomic_store_explicit(&s->fill, fill_word(gen + 1, FILL_DONE),
                          memory_order_seq_cst);
    wake_if_waiting(&s->data_waiting, &s->data_seq);
}

static int
put_whole(struct conc__mpq_shared *s, const uint8_t *data, uint32_t len,
          int64_t deadline)
{
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    uint32_t need = HDR + pad8(len);
    int r = wait_room(s, tail, need, 1, deadline);
    if (r)
        return r;
    if (len >= STREAM_MIN || len >= s->cap / 4) {
        put_streamed(s, tail, data, len);
        return 0;
    }
    write_frame(s, tail, WHOLE, NULL, data, len);
    commit_tail(s, advance(tail, need, 1));
    return 0;
}

/* Ends the message in pieces of generation `gen`, finished or not, and
 * wakes a consumer that waits for its next piece. */
static void
end_chunk(struct conc__mpq_shared *s, uint64_t gen)
{
    atomic_store_explicit(&s->chunk, gen << 1, memory_order_seq_cst);
    wake_if_waiting(&s->data_waiting, &s->data_seq);
}

/* How long a producer whose message in pieces failed tries to take its
 * pieces back while a consumer holds the consumer lock without reaching
 * them: a consumer busy with an earlier message lets go within that time,
 * and one that died is found dead at its first sleep slice. Past it the
 * pieces stay, for the next get to skip. */
#define RETRACT_NS (2 * CONC__MPQ_SLICE_MAX)

static void commit_head(struct conc__mpq_shared *s, uint64_t head);

/* Drops the pieces committed from `first` to `tail`; both locks held. If
 * no consumer has begun them, `tail` moves back to `first`, as if they had
 * never been put; if a consumer took some and went away (it died, or its
 * successor found it dead), `head` moves on to `tail`, as the next get
 * would skip them. Pieces count no message, so only byte positions move. */
static void
drop_pieces(struct conc__mpq_shared *s, uint64_t first, uint64_t tail)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    uint32_t left = conc__mpq_bytes(tail) - conc__mpq_bytes(head);
    uint32_t ours = conc__mpq_bytes(tail) - conc__mpq_bytes(first);
    if (left >= ours) {
        atomic_store_explicit(&s->tail, first, memory_order_seq_cst);
        s->tail_seen = first;
    } else if (left) {
        s->tail_seen = tail;
        commit_head(s, advance(head, left, 0));
    }
}

/* Takes back the pieces of a given-up message, committed from `first` to
 * `tail`, so that a failed put leaves nothing in the ring. plock is held
 * and `chunk` already says the message is over. Only the holder of the
 * consumer lock may move `head` or trust where consumers stand, so the
 * producer takes that lock too: plock before clock is the one order in
 * which a process ever holds both (consumers never take plock). A
 * consumer already at the pieces takes and discards them itself. */
static void
retract_pieces(struct conc__mpq_shared *s, uint64_t first, uint64_t tail)
{
    int64_t until = conc__now_ns() + RETRACT_NS;
    for (;;) {
        uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
        if (conc__mpq_bytes(head) == conc__mpq_bytes(tail))
            return; /* taken or skipped by a consumer, or none written */
        int r = conc__mpq_lock_acquire(&s->clock,
                                       conc__now_ns() + CONC__MPQ_SLICE_MIN);
        if (r == CONC__MPQ_RECOVERED)
            conc__mpq_repair_consumer(s);
        if (r != CONC_ETIMEDOUT) {
            drop_pieces(s, first, tail);
            conc__mpq_lock_release(&s->clock);
            return;
        }
        if (conc__now_ns() >= until)
            return;
    }
}

static int
put_chunked(struct conc__mpq_shared *s, const uint8_t *data, size_t len,
            int64_t deadline)
{
    uint32_t piece = s->cap / 4; /* frame bytes, a multiple of 8 */
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    uint64_t first = tail;
    uint32_t n = piece - HDR - EXT;
    int r = wait_room(s, tail, piece, 1, deadline);
    if (r)
        return r;
    uint64_t gen = ++s->chunk_gen;
    atomic_store_explicit(&s->chunk_owner, conc__mpq_self(),
                          memory_order_relaxed);
    atomic_store_explicit(&s->chunk, gen << 1 | 1, memory_order_seq_cst);
    struct ext e = {len, gen};
    write_frame(s, tail, FIRST, &e, data, n);
    tail = advance(tail, piece, 0);
    commit_tail(s, tail);
    for (size_t done = n; done < len; done += n) {
        n = piece - HDR;
        int last = len - done <= n;
        if (last)
            n = (uint32_t)(len - done);
        r = wait_room(s, tail, HDR + pad8(n), 0, deadline);
        if (r) {
            end_chunk(s, gen); /* a consumer at them discards them */
            retract_pieces(s, first, tail);
            return r;
        }
        write_frame(s, tail, last ? LAST : MORE, NULL, data + done, n);
        tail = advance(tail, HDR + pad8(n), last);
        commit_tail(s, tail);
    }
    end_chunk(s, gen);
    return 0;
}

int
conc__mpq_put_locked(struct conc__mpq_shared *s, const uint8_t *data,
                     size_t len, int64_t deadline)
{
    if (len <= s->cap - HDR)
        return put_whole(s, data, (uint32_t)len, deadline);
    return put_chunked(s, data, len, deadline);
}

void
conc__mpq_repair_producer(struct conc__mpq_shared *s)
{
    atomic_store_explicit(&s->room_waiting, 0, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&s->chunk, memory_order_relaxed);
    if (c & 1)
        end_chunk(s, c >> 1);
    uint32_t gen =
        fill_gen(atomic_load_explicit(&s->fill, memory_order_relaxed));
    if (gen & 1) { /* a stream given up: its consumer discards its copy */
        atomic_store_explicit(&s->fill, fill_word(gen + 1, 0),
                              memory_order_seq_cst);
        wake_if_waiting(&s->data_waiting, &s->data_seq);
    }
}

/* ---- Consumer ----------------------------------------------------------- */

/* Whether, by the tail last seen, a frame is ready at `head`. The tail
 * only ever covers whole frames. */
static int
has_data(const struct conc__mpq_shared *s, uint64_t head)
{
    return conc__mpq_bytes(s->tail_seen) != conc__mpq_bytes(head);
}

static int
look_for_data(struct conc__mpq_shared *s, uint64_t head, memory_order order)
{
    s->tail_seen = atomic_load_explicit(&s->tail, order);
    return has_data(s, head);
}

/* Whether nothing is committed at `head` but a frame is being streamed
 * there; if so, stores its generation in *gen. The stream's position is
 * read between two reads of `fill` that must agree, so that it belongs to
 * that generation; a frame that starts at head and that head has not
 * passed is one this consumer has not taken yet. */
static int
stream_at(struct conc__mpq_shared *s, uint64_t head, uint32_t *gen)
{
    uint64_t f = atomic_load_explicit(&s->fill, memory_order_seq_cst);
    if (!(fill_gen(f) & 1))
        return 0;
    uint64_t pos = atomic_load_explicit(&s->fill_pos, memory_order_seq_cst);
    if (pos != conc__mpq_bytes(head) ||
        look_for_data(s, head, memory_order_seq_cst) ||
        fill_gen(atomic_load_explicit(&s->fill, memory_order_seq_cst)) !=
            fill_gen(f))
        return 0;
    *gen = fill_gen(f);
    return 1;
}

/* One sleep of a consumer. Without `w`, waits for data until `deadline`;
 * with `w`, waits for the next piece of a message while its producer is at
 * it, whatever the deadline. */
static int
sleep_for_data(struct conc__mpq_shared *s, uint64_t head, int64_t deadline,
               const struct watch *w)
{
    int64_t slice = CONC__MPQ_SLICE_MIN;
    uint32_t gen;
    int r;
    for (;;) {
        atomic_store_explicit(&s->data_waiting, 1, memory_order_seq_cst);
        uint32_t seq = atomic_load_explicit(&s->data_seq, memory_order_seq_cst);
        uint64_t c = atomic_load_explicit(&s->chunk, memory_order_seq_cst);
        if (look_for_data(s, head, memory_order_seq_cst)) {
            r = 0;
            break;
        }
        if (w && c != w->chunk) {
            r = ABANDONED;
            break;
        }
        if (!w && stream_at(s, head, &gen)) {
            r = STREAMING;
            break;
        }
        if (atomic_load_explicit(&s->broken, memory_order_seq_cst)) {
            r = CONC_EBROKEN;
            break;
        }
        if (!w && atomic_load_explicit(&s->shut, memory_order_seq_cst)) {
            r = CONC_ECLOSED;
            break;
        }
        if (!w && deadline != CONC__FOREVER && conc__now_ns() >= deadline) {
            r = CONC_EEMPTY;
            break;
        }
        if (conc__mpq_sleep(&s->data_seq, seq, &slice,
                            w ? CONC__FOREVER : deadline) == -ETIMEDOUT &&
            w && conc__mpq_owner_dead(w->owner)) {
            r = ABANDONED;
            break;
        }
    }
    atomic_store_explicit(&s->data_waiting, 0, memory_order_relaxed);
    return r;
}

/* Waits for a frame at `head`. Returns 0, CONC_EEMPTY, CONC_ECLOSED,
 * CONC_EBROKEN, and without `w` STREAMING, with `w` ABANDONED. */
static int
wait_data(struct conc__mpq_shared *s, uint64_t head, int64_t deadline,
          const struct watch *w)
{
    uint32_t gen;
    if (has_data(s, head) || look_for_data(s, head, memory_order_acquire))
        return 0;
    if (!w && stream_at(s, head, &gen))
        return STREAMING;
    if (!w && atomic_load_explicit(&s->shut, memory_order_relaxed))
        return CONC_ECLOSED;
    /* A watched stream is waited for even by a call that must not block. */
    struct conc__spin sp =
        conc__spin_start(CONC__SPIN_NS, w ? CONC__FOREVER : deadline);
    while (conc__spin_more(&sp)) {
        if (look_for_data(s, head, memory_order_acquire))
            return 0;
        if (!w && stream_at(s, head, &gen))
            return STREAMING;
    }
    return sleep_for_data(s, head, deadline, w);
}

/* Retires frames up to `head` and wakes a producer that sleeps. */
static void
commit_head(struct conc__mpq_shared *s, uint64_t head)
{
    atomic_store_explicit(&s->head, head, memory_order_seq_cst);
    wake_if_waiting(&s->room_waiting, &s->room_seq);
}

/* Reads the header of the frame at `head` into *h and checks it against
 * the committed bytes (up to the tail last seen): a known kind, and a
 * frame that ends within them. Returns 0 or CONC_EBROKEN. */
static int
read_hdr(struct conc__mpq_shared *s, uint64_t head, struct hdr *h)
{
    uint32_t pos = conc__mpq_bytes(head);
    uint32_t avail = conc__mpq_bytes(s->tail_seen) - pos;
    if (!plausible(s, avail) || avail < HDR)
        return conc__mpq_corrupt(s, "head and tail that no frames fit between",
                                 pos);
    ring_read(s, pos, h, HDR);
    uint32_t kind = h->kind & KIND_MASK;
    if ((h->kind & ~KIND_MASK) != KIND_TAG || kind < WHOLE || kind > LAST)
        return conc__mpq_corrupt(s, "a frame header of no known kind", pos);
    uint64_t size = HDR + (kind == FIRST ? EXT : 0) + (uint64_t)h->len;
    if (size > avail)
        return conc__mpq_corrupt(s, "a frame longer than the bytes put", pos);
    return 0;
}

/* Makes `k` ready for a message of `total` bytes. Returns 0, CONC_EMSGSIZE
 * (k->len is then the length) or CONC_ENOMEM; on failure nothing is
 * written. */
static int
sink_begin(struct conc__mpq_sink *k, uint64_t total)
{
    if (!k->buf) {
        if (total > k->cap) {
            k->len = (size_t)total;
            return CONC_EMSGSIZE;
        }
    } else if (total > k->buf->cap) {
        if (total > SIZE_MAX)
            return CONC_ENOMEM;
        size_t keep = k->buf->len;
        k->buf->len = 0;
        int r = conc_buf_reserve(k->buf, (size_t)total);
        k->buf->len = keep;
        if (r)
            return r;
    }
    k->len = 0;
    return 0;
}

/* Copies `n` payload bytes at ring position `pos` to the sink. */
static void
sink_take(const struct conc__mpq_shared *s, struct conc__mpq_sink *k,
          uint32_t pos, uint32_t n)
{
    uint8_t *dst = k->buf ? k->buf->data : k->dst;
    if (n)
        ring_read(s, pos, dst + k->len, n);
    k->len += n;
}

static void
sink_end(struct conc__mpq_sink *k)
{
    if (k->buf)
        k->buf->len = k->len;
}

static int
take_whole(struct conc__mpq_shared *s, uint64_t head, struct hdr h,
           struct conc__mpq_sink *k)
{
    int r = sink_begin(k, h.len);
    if (r)
        return r;
    sink_take(s, k, conc__mpq_bytes(head) + HDR, h.len);
    commit_head(s, advance(head, HDR + pad8(h.len), 1));
    sink_end(k);
    return 0;
}

/* Takes the pieces after a FIRST frame that is already copied; *headp is
 * past it. Returns 0 at the LAST piece, ABANDONED with *headp at the frame
 * to read next, or CONC_EBROKEN. */
static int
take_pieces(struct conc__mpq_shared *s, uint64_t *headp, uint64_t total,
            const struct watch *w, struct conc__mpq_sink *k)
{
    uint64_t head = *headp;
    for (;;) {
        int r = wait_data(s, head, CONC__FOREVER, w);
        if (r == CONC_EBROKEN)
            return r;
        if (r)
            break;
        struct hdr h;
        if ((r = read_hdr(s, head, &h)))
            return r;
        uint32_t kind = h.kind & KIND_MASK;
        if (kind != MORE && kind != LAST)
            break; /* a new message: the producer gave this one up */
        if (k->len + h.len > total || (kind == LAST && k->len + h.len < total))
            return conc__mpq_corrupt(s,
                                     "pieces that do not add up to their "
                                     "message's length",
                                     conc__mpq_bytes(head));
        sink_take(s, k, conc__mpq_bytes(head) + HDR, h.len);
        head = advance(head, HDR + pad8(h.len), kind == LAST);
        commit_head(s, head);
        if (kind == LAST) {
            *headp = head;
            return 0;
        }
    }
    *headp = head;
    return ABANDONED;
}

/* Takes a message in pieces whose FIRST frame is at *headp. Returns 0,
 * ABANDONED (*headp then at the frame to read next), CONC_EBROKEN, or,
 * with nothing taken, CONC_EMSGSIZE or CONC_ENOMEM. */
static int
take_chunked(struct conc__mpq_shared *s, uint64_t *headp, struct hdr h,
             struct conc__mpq_sink *k)
{
    uint64_t head = *headp;
    struct ext e;
    ring_read(s, conc__mpq_bytes(head) + HDR, &e, EXT);
    /* Only a message too long for one frame goes in pieces. */
    if (e.total <= s->cap - HDR || e.total < h.len)
        return conc__mpq_corrupt(s, "a message in pieces with a wrong length",
                                 conc__mpq_bytes(head));
    int r = sink_begin(k, e.total);
    if (r)
        return r;
    /* While `chunk` still holds this generation, chunk_owner is its
     * producer; once it moves on, the owner no longer matters. */
    struct watch w = {
        e.gen << 1 | 1,
        atomic_load_explicit(&s->chunk_owner, memory_order_acquire)};
    sink_take(s, k, conc__mpq_bytes(head) + HDR + EXT, h.len);
    head = advance(head, HDR + EXT + pad8(h.len), 0);
    commit_head(s, head);
    r = take_pieces(s, &head, e.total, &w, k);
    *headp = head;
    if (r == 0)
        sink_end(k); /* take_pieces checked the length */
    return r;
}

/* While a stream at `head` shows `f`: spins, then sleeps a slice. Returns
 * ABANDONED if its producer `owner` is found dead, after marking the
 * stream given up (a dead owner writes no more, and the CAS fails if a
 * producer that took its lock over already did so), else 0. */
static int
await_fill(struct conc__mpq_shared *s, uint64_t f, uint64_t owner,
           struct conc__spin *sp, int64_t *slice)
{
    if (conc__spin_more(sp))
        return 0;
    atomic_store_explicit(&s->data_waiting, 1, memory_order_seq_cst);
    uint32_t seq = atomic_load_explicit(&s->data_seq, memory_order_seq_cst);
    int r = 0;
    if (atomic_load_explicit(&s->fill, memory_order_seq_cst) == f &&
        conc__mpq_sleep(&s->data_seq, seq, slice, CONC__FOREVER) ==
            -ETIMEDOUT &&
        conc__mpq_owner_dead(owner)) {
        atomic_compare_exchange_strong_explicit(
            &s->fill, &f, fill_word(fill_gen(f) + 1, 0), memory_order_seq_cst,
            memory_order_relaxed);
        r = ABANDONED;
    }
    atomic_store_explicit(&s->data_waiting, 0, memory_order_relaxed);
    return r;
}

/* Reads the header of the frame streamed at `head` by generation `gen`.
 * It is that stream's only if the stream is still on after it was read: a
 * producer that took over from a dead one could be writing another frame
 * at the same place. Returns 1, 0 when the stream is over, or
 * CONC_EBROKEN. */
static int
stream_header(struct conc__mpq_shared *s, uint64_t head, uint32_t gen,
              struct hdr *h)
{
    ring_read(s, conc__mpq_bytes(head), h, HDR);
    atomic_thread_fence(memory_order_acquire);
    if (fill_gen(atomic_load_explicit(&s->fill, memory_order_relaxed)) != gen)
        return 0;
    if (h->kind != (KIND_TAG | WHOLE) || h->len > s->cap - HDR)
        return conc__mpq_corrupt(s, "a streamed frame's header",
                                 conc__mpq_bytes(head));
    return 1;
}

/* Takes the frame being streamed at `head`, copying it out as it is
 * written; head moves only once the frame is committed and copied, so a
 * consumer killed meanwhile takes nothing. Returns 0, or with nothing
 * taken ABANDONED (its producer gave it up or died, or another frame
 * came first), CONC_EMSGSIZE, CONC_ENOMEM or CONC_EBROKEN. */
static int
take_streamed(struct conc__mpq_shared *s, uint64_t head,
              struct conc__mpq_sink *k)
{
    uint32_t gen;
    if (!stream_at(s, head, &gen))
        return ABANDONED; /* over already: take it the usual way */
    uint64_t owner = atomic_load_explicit(&s->fill_owner, memory_order_relaxed);
    struct hdr h;
    int r = stream_header(s, head, gen, &h);
    if (r <= 0)
        return r ? r : ABANDONED;
    r = sink_begin(k, h.len);
    if (r)
        return r;
    uint32_t pos = conc__mpq_bytes(head) + HDR;
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
    int64_t slice = CONC__MPQ_SLICE_MIN;
    for (;;) {
        uint64_t f = atomic_load_explicit(&s->fill, memory_order_acquire);
        uint32_t done = fill_gen(f) == gen                   ? (uint32_t)f
                        : f == fill_word(gen + 1, FILL_DONE) ? h.len
                                                             : 0;
        if (fill_gen(f) != gen && done == 0 && h.len > 0)
            return ABANDONED;
        if (done > k->len) {
            sink_take(s, k, pos + (uint32_t)k->len, done - (uint32_t)k->len);
            sp = conc__spin_start(CONC__SPIN_NS, CONC__FOREVER);
        }
        if (fill_gen(f) != gen)
            break; /* committed, and all of it copied */
        if (await_fill(s, f, owner, &sp, &slice))
            return ABANDONED;
    }
    /* The commit was stored before FILL_DONE, so this tail covers it and
     * tail_seen stays ahead of head. */
    s->tail_seen = atomic_load_explicit(&s->tail, memory_order_acquire);
    commit_head(s, advance(head, HDR + pad8(h.len), 1));
    sink_end(k);
    return 0;
}

/* A message streamed or in pieces may be given up half-copied (its
 * producer died) and the get may then fail: when the caller's buffer holds
 * content, such a message goes to a buffer of its own first, handed over
 * only once whole, so that a get that fails leaves the caller's content as
 * it was (conc_buf's rule). An empty buffer has no content to keep. */
static int
take_guarded(struct conc__mpq_shared *s, uint64_t *headp, struct hdr h,
             struct conc__mpq_sink *k, int streamed)
{
    conc_buf tmp = CONC_BUF_INIT;
    struct conc__mpq_sink t = {&tmp, NULL, 0, 0};
    struct conc__mpq_sink *to = k->buf && k->buf->len ? &t : k;
    int r =
        streamed ? take_streamed(s, *headp, to) : take_chunked(s, headp, h, to);
    if (to == &t && r == 0) {
        conc_buf_free(k->buf);
        *k->buf = tmp;
    } else {
        conc_buf_free(&tmp);
    }
    return r;
}

int
conc__mpq_get_locked(struct conc__mpq_shared *s, struct conc__mpq_sink *k,
                     int64_t deadline)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    for (;;) {
        int r = wait_data(s, head, deadline, NULL);
        if (r == STREAMING) {
            r = take_guarded(s, &head, (struct hdr){0}, k, 1);
            if (r != ABANDONED)
                return r;
            continue;
        }
        if (r)
            return r;
        struct hdr h;
        if ((r = read_hdr(s, head, &h)))
            return r;
        switch (h.kind & KIND_MASK) {
        case WHOLE:
            return take_whole(s, head, h, k);
        case FIRST:
            r = take_guarded(s, &head, h, k, 0);
            if (r != ABANDONED)
                return r;
            break;
        case MORE:
        case LAST: /* pieces of a message whose consumer died: skip */
            head =
                advance(head, HDR + pad8(h.len), (h.kind & KIND_MASK) == LAST);
            commit_head(s, head);
            break;
        default: /* read_hdr checked the kind */
            return conc__mpq_corrupt(s, "a frame header of no known kind",
                                     conc__mpq_bytes(head));
        }
    }
}

void
conc__mpq_repair_consumer(struct conc__mpq_shared *s)
{
    atomic_store_explicit(&s->data_waiting, 0, memory_order_relaxed);
}
