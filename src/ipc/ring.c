/* The shared rings of a conc_pipe: messages between the two ends without a
 * system call while both sides are awake.
 *
 * Layout. conc_pipe maps one memfd into each end (each end owns its own
 * mapping, so closing one end never pulls memory from under the other).
 * It holds one ring per direction (one for a simplex pipe), a
 * struct conc__ring_side: the writer's `tail`, the reader's `head`, a line
 * of control words, then RING_CAP bytes of frames. Positions are byte
 * counts that only grow; a frame is the descriptor's 8-byte header (kind
 * and length) and the payload padded to 8 bytes, and it may wrap at the
 * ring's end (the copy is split in two). Only messages of at most
 * RING_MSG_MAX bytes go into the ring.
 *
 * The descriptor stays. It carries descriptors (ancillary data), messages too
 * large for the ring, and the end of the stream: the kernel knows when
 * every copy of an end, in every process, is closed, and no shared word
 * can. A message on the descriptor is announced in the ring by a DIVERT
 * frame written before it, so the reader, which takes frames from the
 * ring in order, knows to take the next message from the descriptor, and
 * the order of bytes and descriptors is kept.
 *
 * Switching. An end may meet a peer that has no ring: its descriptor was
 * passed on (conc_conn_send_fd) and wrapped with conc_conn_from_fd, say in
 * a fork server's child. So nothing goes into a ring before its reader has
 * said it reads it: a receiving end with rings sets `attach` on its first
 * receive (and again after the process that had set it closed its copy;
 * a copy that a fork left in another process does not detach), and a sender
 * that sees it sends one RING frame on the descriptor and from then on
 * writes to the ring; the reader takes the descriptor until it meets the
 * RING frame, then the ring. A sender whose reader is not attached (it
 * closed, or gave up the ring in conc_conn_fileno, which sets `attach` to
 * REFUSED so that the descriptor shows every message) goes on with
 * DIVERT + descriptor, which is also how a send to a closed peer still
 * fails with CONC_EPIPE. A reader in ring mode that finds the ring empty
 * and the descriptor readable takes a frame from the descriptor as well: a
 * message whose DIVERT it has not seen cannot be there (the DIVERT is
 * published first), so it comes from a peer without a ring; the reader
 * then refuses the ring itself and waits on the descriptor from now on,
 * since that peer never wakes the futex.
 *
 * Lost on a hand-over: messages already in the ring when its reader hands
 * its descriptor on stay there (ipc.h says so at conc_pipe).
 * conc_conn_share hands an end on without that loss: it marks the ring
 * GONE, so the writer puts nothing more into it (not even DIVERT frames,
 * which nobody would take), only while the ring is empty and its reader
 * has not switched to it; otherwise it refuses. The writer decides per
 * message by the attach word, and before a reader attaches it writes the
 * descriptor only, so a ring that is DETACHED or REFUSED, empty, and not
 * switched to by this copy has no message in flight toward it.
 *
 * Sleeping. A side that must wait (reader: ring empty; writer: no room)
 * spins by the core policy (core/wait.h; the reader yields the CPU at
 * each look at the clock, since the writer may share its CPU), then
 * raises its
 * `*_waiting` flag, reads its sequence word, looks once more and sleeps on
 * the sequence word (a process-shared futex). The other side publishes its
 * position with a sequentially consistent store and then reads the flag;
 * only if it is
 * set does it claim it, bump the sequence and wake. Either the sleeper
 * sees the new position or the other side sees the flag, so no wake-up is
 * lost and nobody makes a system call while nobody sleeps. Every sleep is
 * cut into slices of SLICE_NS after which the sleeper looks at the
 * descriptor: a peer that died (SIGKILL) never wakes anybody, but its
 * descriptor shows the hang-up. A close of an end wakes the other side at
 * once (the `hup` word), so a clean close is seen without waiting for a
 * slice. A receive with timeout 0 that finds nothing looks at the
 * descriptor only every IDLE_CHECK calls (or after a close), so that a
 * spinning reader costs no system call per look.
 *
 * Trust. The other process writes the positions and the frames. Every
 * value read from the mapping is checked before use: a position that runs
 * backwards or past the ring, a frame that claims more than what is
 * published or a kind that is not one of the ring's fail the call with
 * CONC_EBROKEN (and shut the receiving side), never a panic, a read out of
 * bounds or a wait without end: every wait is sliced. */
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc/ipc_internal.h"
#include "core/wait.h"
#include "unix/platform.h"

#define RING_CAP     CONC__RING_CAP
#define RING_MSG_MAX CONC__RING_MSG_MAX
#define SLICE_NS     ((int64_t)20 * 1000000)
#define IDLE_CHECK   256u

enum { DETACHED = 0, ATTACHED = 1, REFUSED = 2, GONE = 3 };

/* What ring_take found besides a delivered message and errors. */
enum { EMPTY = 1, MARKER = 2 };

static uint64_t
frame_size(uint64_t len)
{
    return CONC__FRAME_HDR + ((len + 7) & ~(uint64_t)7);
}

/* ---- mapping --------------------------------------------------------- */

void
conc__ring_pair(conc_conn *a, conc_conn *b, int simplex)
{
    size_t n = (simplex ? 1 : 2) * sizeof(struct conc__ring_side);
    int fd = conc__memfd_new(n);
    if (fd < 0)
        return; /* the descriptors carry everything */
    void *ma = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void *mb = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (ma == MAP_FAILED || mb == MAP_FAILED) {
        if (ma != MAP_FAILED)
            munmap(ma, n);
        if (mb != MAP_FAILED)
            munmap(mb, n);
        return;
    }
    struct conc__ring_side *ra = ma, *rb = mb;
    a->map = ma;
    b->map = mb;
    a->map_len = b->map_len = n;
    if (simplex) { /* a receives, b sends */
        a->rx = &ra[0];
        b->tx = &rb[0];
        return;
    }
    a->tx = &ra[0];
    b->rx = &rb[0];
    b->tx = &rb[1];
    a->rx = &ra[1];
}

/* Wakes the side sleeping on `seq` if its flag is up. */
static void
wake(_Atomic uint32_t *flag, _Atomic uint32_t *seq)
{
    if (atomic_load(flag) && atomic_exchange(flag, 0)) {
        atomic_fetch_add(seq, 1);
        conc__futex_wake(seq, INT32_MAX, 1);
    }
}

void
conc__ring_unmap(conc_conn *c)
{
    if (!c->map)
        return;
    if (c->tx) { /* the reader looks at the (closed) descriptor now */
        atomic_store(&c->tx->hup, 1);
        atomic_fetch_add(&c->tx->rx_seq, 1);
        conc__futex_wake(&c->tx->rx_seq, INT32_MAX, 1);
    }
    if (c->rx && c->rx_pid && c->rx_pid == getpid()) {
        uint32_t want = ATTACHED;
        atomic_compare_exchange_strong(&c->rx->attach, &want, DETACHED);
    }
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->rx = c->tx = NULL;
}

/* Makes the writer of `r` show every message on the descriptor, unless the
 * ring's reader was handed on already. */
static void
refuse(struct conc__ring_side *r)
{
    uint32_t was = atomic_load(&r->attach);
    while (was != GONE && was != REFUSED &&
           !atomic_compare_exchange_weak(&r->attach, &was, REFUSED))
        ;
}

void
conc__ring_refuse(const conc_conn *c)
{
    if (c->rx)
        refuse(c->rx);
}

/* Why an end's receiving ring keeps it from being handed on, or NULL. */
static const char *
hand_over_blocker(const conc_conn *c, uint32_t state)
{
    if (state == ATTACHED || c->rx_ring || c->diverts)
        return "it has received through its shared ring (hand an end on "
               "before its first receive)";
    uint64_t head = atomic_load(&c->rx->head);
    if (atomic_load(&c->rx->tail) != head)
        return "messages sent to it wait in its shared ring";
    return NULL;
}

int
conc__ring_hand_over(conc_conn *c)
{
    if (c->tx) /* the other end waits on the descriptor from now on */
        refuse(c->tx);
    if (!c->rx)
        return 0;
    uint32_t state = atomic_load(&c->rx->attach);
    if (state == GONE)
        return 0;
    const char *why = hand_over_blocker(c, state);
    if (why)
        return conc_fail(CONC_ESTATE, "conc_conn_share: %s", why);
    /* A reader that attached meanwhile (a fork's copy) keeps the ring. */
    if (!atomic_compare_exchange_strong(&c->rx->attach, &state, GONE))
        return conc_fail(CONC_ESTATE, "conc_conn_share: another copy of the "
                                      "end began to receive meanwhile");
    return 0;
}

/* ---- copying and waiting --------------------------------------------- */

static void
ring_write(struct conc__ring_side *r, uint64_t pos, const void *src, size_t n)
{
    size_t at = (size_t)(pos % RING_CAP);
    size_t first = RING_CAP - at < n ? RING_CAP - at : n;
    memcpy(r->data + at, src, first);
    memcpy(r->data, (const uint8_t *)src + first, n - first);
}

static void
ring_read(const struct conc__ring_side *r, uint64_t pos, void *dst, size_t n)
{
    if (n == 0)
        return; /* dst may be NULL */
    size_t at = (size_t)(pos % RING_CAP);
    size_t first = RING_CAP - at < n ? RING_CAP - at : n;
    memcpy(dst, r->data + at, first);
    memcpy((uint8_t *)dst + first, r->data, n - first);
}

/* Spins by the core policy (core/wait.h, CONC__SPIN_NS) until *pos
 * differs from `seen`. Returns 1 if it changed. */
static int
spin_change(_Atomic uint64_t *pos, uint64_t seen, int64_t deadline,
            unsigned flags)
{
    struct conc__spin sp =
        conc__spin_start_flags(CONC__SPIN_NS, deadline, flags);
    do {
        if (atomic_load_explicit(pos, memory_order_relaxed) != seen)
            return 1;
    } while (conc__spin_more(&sp));
    return 0;
}

/* One sleep slice on `seq` while *pos is `seen` (see "Sleeping").
 * Returns 1 if the slice ran out (not the deadline): the sleeper should
 * look at the descriptor. */
static int
sleep_change(_Atomic uint32_t *flag, _Atomic uint32_t *seq,
             _Atomic uint64_t *pos, uint64_t seen, int64_t deadline)
{
    int sliced = 0;
    atomic_store(flag, 1);
    uint32_t s = atomic_load(seq);
    if (atomic_load(pos) == seen) {
        int64_t end = conc__now_ns() + SLICE_NS;
        sliced = end < deadline;
        int e = conc__futex_wait(seq, s, sliced ? end : deadline, 1);
        sliced = sliced && e == -ETIMEDOUT;
    }
    atomic_store(flag, 0);
    return sliced;
}

/* ---- sending --------------------------------------------------------- */

/* Waits until the ring has room for `need` bytes past `tail`, or the
 * deadline. Returns 0, CONC_ETIMEDOUT, CONC_EPIPE when the descriptor
 * shows the reader gone, CONC_EBROKEN for a position that cannot be. */
static int
tx_room(conc_conn *c, uint64_t tail, uint64_t need, int64_t deadline)
{
    struct conc__ring_side *r = c->tx;
    for (;;) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (head > tail || tail - head > RING_CAP || head % 8)
            return CONC_EBROKEN;
        c->tx_head = head;
        if (RING_CAP - (tail - head) >= need)
            return 0;
        if (spin_change(&r->head, head, deadline, 0))
            continue;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (conc__poll_until(&p, 1, CONC__POLL) > 0 &&
            (p.revents & (POLLERR | POLLHUP)))
            return CONC_EPIPE;
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline)
            return CONC_ETIMEDOUT;
        sleep_change(&r->tx_waiting, &r->tx_seq, &r->head, head, deadline);
    }
}

/* Writes one frame into the ring and publishes it; nothing is written
 * when it fails. */
static int
ring_put(conc_conn *c, unsigned kind, const void *data, size_t len,
         int64_t deadline)
{
    struct conc__ring_side *r = c->tx;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t need = frame_size(len);
    if (tail % 8)
        return CONC_EBROKEN;
    if (tail - c->tx_head > RING_CAP - need || c->tx_head > tail) {
        int e = tx_room(c, tail, need, deadline);
        if (e)
            return e;
    }
    uint8_t hdr[CONC__FRAME_HDR];
    conc__frame_put(hdr, kind, len);
    ring_write(r, tail, hdr, sizeof hdr);
    if (len)
        ring_write(r, tail + CONC__FRAME_HDR, data, len);
    atomic_store(&r->tail, tail + need);
    wake(&r->rx_waiting, &r->rx_seq);
    return 0;
}

/* After a message went into the ring: if the reader gave the ring up
 * meanwhile, it waits on the descriptor, which must show the message. */
static int
nudge_if_refused(conc_conn *c, int64_t deadline)
{
    if (atomic_load(&c->tx->attach) != REFUSED)
        return 0;
    return conc__conn_send_frame(c, CONC__KIND_WAKE, NULL, 0, NULL, deadline);
}

int
conc__ring_send(conc_conn *c, unsigned kind, const void *data, size_t len,
                int *fd, int64_t deadline)
{
    uint32_t state = atomic_load(&c->tx->attach);
    int attached = state == ATTACHED;
    int fits = kind == CONC__KIND_BYTES && len <= RING_MSG_MAX;
    int e;
    if (state == GONE) /* the reader was handed on: nobody reads the ring */
        return conc__conn_send_frame(c, kind, data, len, fd, deadline);
    if (!c->tx_ring) {
        if (!attached || !fits)
            return conc__conn_send_frame(c, kind, data, len, fd, deadline);
        e = conc__conn_send_frame(c, CONC__KIND_RING, NULL, 0, NULL, deadline);
        if (e)
            return e;
        c->tx_ring = 1;
    }
    if (attached && fits) {
        e = ring_put(c, CONC__KIND_BYTES, data, len, deadline);
        return e ? e : nudge_if_refused(c, deadline);
    }
    /* A reader that gave the ring up (REFUSED, which is for good) takes
     * every later message from the descriptor, where a DIVERT only says
     * "the next one is there". Its descriptor may have gone to a process
     * that never maps the ring, so a DIVERT that finds the ring full is
     * left out instead of waiting for room nobody will make: the reader
     * that does look at the ring takes what its DIVERTs announce from the
     * descriptor, then the rest once the ring is empty, in order either
     * way, since after the refusal every message goes to the descriptor. */
    int refused = state == REFUSED;
    e = ring_put(c, CONC__KIND_DIVERT, NULL, 0,
                 refused ? CONC__POLL : deadline);
    if (e && !(refused && e == CONC_ETIMEDOUT))
        return e;
    e = conc__conn_send_frame(c, kind, data, len, fd, deadline);
    if (e == CONC_ETIMEDOUT)
        c->wshut = 1; /* the DIVERT announces a message that never came */
    return e;
}

/* ---- receiving ------------------------------------------------------- */

/* Marks this end as reading its ring (see "Switching"), and remembers
 * which process did: only that process's close detaches, not the close of
 * a copy that a fork left in another process. */
static void
attach(conc_conn *c)
{
    _Atomic uint32_t *a = &c->rx->attach;
    if (atomic_load_explicit(a, memory_order_relaxed) == DETACHED) {
        uint32_t want = DETACHED;
        if (atomic_compare_exchange_strong(a, &want, ATTACHED))
            c->rx_pid = getpid();
    }
}

/* Copies a message of `len` bytes at `pos` into the sink. */
static int
deliver(const struct conc__ring_side *r, uint64_t pos, size_t len,
        const struct conc__sink *s)
{
    if (!s->out) {
        ring_read(r, pos, s->buf, len);
        *s->len = len;
        return 0;
    }
    /* Grown first, so that a failure leaves the caller's content. */
    if (len > s->out->len) {
        int e = conc_buf_reserve(s->out, len - s->out->len);
        if (e)
            return e;
    }
    ring_read(r, pos, s->out->data, len);
    s->out->len = len;
    return 0;
}

/* Checks a BYTES frame of `len` against the connection and the sink, as
 * check_header does for the descriptor. Returns 0 to deliver it. */
static int
check_bytes(conc_conn *c, const struct conc__sink *s, uint64_t len)
{
    if (s->kind != CONC__KIND_BYTES)
        return CONC_EPROTO; /* the frame stays for recv_bytes */
    if (c->max_message && len > c->max_message)
        return conc__conn_shut(c, CONC_EMSGSIZE);
    if (!s->out && len > s->cap) {
        *s->len = (size_t)len; /* stays pending */
        return CONC_EMSGSIZE;
    }
    return 0;
}

/* Reads the frame at the reader's position, checking it. Returns 0 with
 * its kind, length and position, EMPTY, or CONC_EBROKEN. */
static int
ring_peek(conc_conn *c, unsigned *kind, uint64_t *len, uint64_t *head)
{
    struct conc__ring_side *r = c->rx;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = c->rx_tail;
    if (t == h || t < h || t - h > RING_CAP) {
        t = atomic_load_explicit(&r->tail, memory_order_acquire);
        c->rx_tail = t;
    }
    if (t < h || t - h > RING_CAP || (t - h) % 8 || h % 8)
        return conc__conn_shut(c, CONC_EBROKEN);
    if (t == h)
        return EMPTY;
    uint8_t hdr[CONC__FRAME_HDR];
    ring_read(r, h, hdr, sizeof hdr);
    conc__frame_get(hdr, kind, len);
    int ok = (*kind == CONC__KIND_DIVERT && *len == 0) ||
             (*kind == CONC__KIND_BYTES && *len <= RING_MSG_MAX);
    if (!ok || frame_size(*len) > t - h)
        return conc__conn_shut(c, CONC_EBROKEN);
    *head = h;
    return 0;
}

/* Moves the reader's position past a frame and wakes a waiting writer. */
static void
ring_consume(struct conc__ring_side *r, uint64_t head, uint64_t len)
{
    atomic_store(&r->head, head + frame_size(len));
    wake(&r->tx_waiting, &r->tx_seq);
}

/* Takes the next ring frame: 0 when a message was delivered, MARKER after a
 * DIVERT, EMPTY, or an error. */
static int
ring_take(conc_conn *c, const struct conc__sink *s)
{
    unsigned kind;
    uint64_t len, head;
    int e = ring_peek(c, &kind, &len, &head);
    if (e)
        return e;
    if (kind == CONC__KIND_DIVERT) {
        ring_consume(c->rx, head, 0);
        c->diverts++;
        return MARKER;
    }
    e = check_bytes(c, s, len);
    if (!e)
        e = deliver(c->rx, head + CONC__FRAME_HDR, (size_t)len, s);
    if (!e)
        ring_consume(c->rx, head, len);
    return e;
}

/* Whether the descriptor shows something (bytes or the hang-up). */
static int
fd_readable(const conc_conn *c)
{
    return conc__poll_fd(c->fd, POLLIN, CONC__POLL) > 0;
}

/* The ring is empty at `head`. Waits until it may not be, or the
 * descriptor shows something (*sock set), or the deadline. Returns 0 to
 * look again or CONC_ETIMEDOUT. */
static int
rx_wait(conc_conn *c, int64_t deadline, int *sock)
{
    struct conc__ring_side *r = c->rx;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    int refused =
        atomic_load_explicit(&r->attach, memory_order_relaxed) == REFUSED;
    if (deadline == CONC__POLL) {
        int look = refused ||
                   atomic_load_explicit(&r->hup, memory_order_relaxed) ||
                   ++c->rx_idle >= IDLE_CHECK;
        if (look) {
            atomic_store(&r->hup, 0);
            c->rx_idle = 0;
        }
        *sock = look && fd_readable(c);
        return *sock ? 0 : CONC_ETIMEDOUT;
    }
    /* The writer may share this CPU (more runnable processes than CPUs):
     * yielding while spinning often lets it answer without a futex sleep
     * and wake. */
    if (spin_change(&r->tail, head, deadline, CONC__SPIN_YIELD))
        return 0;
    if (refused) { /* every message now shows on the descriptor */
        int e = conc__conn_wait_fd(c->fd, POLLIN, deadline);
        *sock = e == 0;
        return e;
    }
    if (atomic_load_explicit(&r->hup, memory_order_relaxed) ||
        c->rx_idle >= IDLE_CHECK) {
        atomic_store(&r->hup, 0);
        c->rx_idle = 0;
        if (fd_readable(c)) {
            *sock = 1;
            return 0;
        }
    }
    if (deadline != CONC__FOREVER && conc__now_ns() >= deadline)
        return CONC_ETIMEDOUT;
    if (sleep_change(&r->rx_waiting, &r->rx_seq, &r->tail, head, deadline))
        c->rx_idle = IDLE_CHECK; /* look at the descriptor next time */
    return 0;
}

/* Takes a message from the descriptor that no DIVERT announced (a peer
 * without a ring). Waits for the rest of a message begun, not for a new
 * one: that may come through the ring. Once such a message came, the
 * ring is refused: the peer that writes the descriptor never wakes the
 * futex, so from now on the reader waits on the descriptor. */
static int
recv_unannounced(conc_conn *c, const struct conc__sink *s, int64_t deadline)
{
    while (conc__conn_take_marker(c) == 1)
        ;
    int begun = c->in_tail > c->in_head || c->big;
    int r = conc__conn_recv_sock(c, s, begun ? deadline : CONC__POLL);
    if (r == CONC_ETIMEDOUT && !begun)
        return EMPTY;
    if (r != CONC_ECLOSED)
        conc__ring_refuse(c);
    return r;
}

int
conc__ring_recv(conc_conn *c, const struct conc__sink *s, int64_t deadline)
{
    int sock = 0;
    for (;;) {
        attach(c);
        int r;
        if (!c->rx_ring || c->diverts) {
            r = conc__conn_recv_sock(c, s, deadline);
            if (r == CONC__RING_SWITCH)
                continue;
            if (r == 0 && c->diverts)
                c->diverts--;
            return r;
        }
        r = ring_take(c, s);
        if (r == MARKER)
            continue;
        if (r != EMPTY)
            return r;
        if (sock || c->in_tail > c->in_head || c->big) {
            sock = 0;
            r = recv_unannounced(c, s, deadline);
            if (r != EMPTY)
                return r;
        }
        r = rx_wait(c, deadline, &sock);
        if (r)
            return r;
    }
}

/* Whether a receive can go on at once with what the ring holds: 1, or 0
 * when the ring is empty or starts with a DIVERT (taken: the caller then
 * looks at the descriptor). */
static int
ring_ready(conc_conn *c)
{
    unsigned kind;
    uint64_t len, head;
    int e = ring_peek(c, &kind, &len, &head);
    if (e == EMPTY)
        return 0;
    if (e || kind != CONC__KIND_DIVERT)
        return 1; /* a message, or an error the receive reports at once */
    ring_consume(c->rx, head, 0);
    c->diverts++;
    return 0;
}

int
conc__ring_poll(conc_conn *c, int64_t deadline)
{
    int sock = 0;
    for (;;) {
        attach(c);
        int r;
        if (!c->rx_ring || c->diverts) {
            r = conc__conn_poll_sock(c, deadline);
            if (r == CONC__RING_SWITCH)
                continue;
            return r;
        }
        if (c->rshut || ring_ready(c))
            return 1;
        if (c->diverts)
            continue;
        if (sock || c->in_tail > c->in_head || c->big) {
            while (conc__conn_take_marker(c) == 1)
                ;
            r = conc__conn_poll_sock(c, CONC__POLL);
            if (r)
                return r;
            sock = 0;
        }
        r = rx_wait(c, deadline, &sock);
        if (r)
            return r == CONC_ETIMEDOUT ? 0 : r;
    }
}
