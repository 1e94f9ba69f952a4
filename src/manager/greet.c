/* The server's side of the authkey handshake, and the bound on how many
 * connections are in it at once.
 *
 * Each accepted connection's thread runs its client's handshake, giving
 * it CONC__MGR_HANDSHAKE_S: a client that stalls holds up no other (the
 * accepting thread only accepts). A peer that opens connections and says
 * nothing would then cost a thread each for that long, with no limit; so
 * at most m->max_greetings connections are in the handshake at once
 * (conc_manager_set_max_handshakes). A connection counts from its accept
 * until its handshake succeeds and it is admitted as a client (admit.c),
 * or its thread is done, so the bound is on threads, not only on
 * handshakes; one refused for the bound on clients counts until done.
 *
 * With every slot taken, the accepting thread stops accepting: new
 * connections wait in the kernel's backlog, in order, rather than being
 * closed at once, so that a burst of real clients (a pool's processes
 * connecting together) is served, a little later, and never refused.
 * Waiting alone would let silent peers hold every slot for the whole
 * timeout while real clients wait behind them (and closing new
 * connections at once would refuse real clients for as long as a peer
 * keeps the slots full); so while the slots are full, a handshake
 * pending for CONC__MGR_GREET_GRACE_S is closed to make room for the next
 * connection in the backlog. A real client thus waits about a grace
 * period for every max_greetings silent connections queued ahead of it,
 * and loses its connection only if its own handshake takes longer than
 * the grace while the slots are full.
 *
 * One peer address (TCP) holds at most CONC__MGR_GREET_PER_ADDR pending
 * handshakes for long: a handshake with that many newer ones of its
 * address pending is closed once pending CONC__MGR_GREET_GRACE_S, or
 * CONC__MGR_GREET_CROWD_S while every slot is taken, before any other.
 * So a silent peer's flood drains ten times as fast as the plain grace
 * allows, the other addresses' handshakes are left alone, and clients of
 * one address (a NAT, loopback) connecting together lose nothing as long
 * as each handshake ends within those graces: the bound cuts only the
 * oldest of an address, and only past a grace. Unix sockets have no peer
 * address, and no such bound.
 *
 *   accepted --(handshake ok, admitted)--> served (counts no more)
 *      |  \--(fails, times out, refused, closed for room or by the
 *      |       stop)--> done
 *      counted against max_greetings until one of those
 *
 * Without an authkey there is no handshake: every connection is served
 * at once, but for one refused past the bound on clients, which counts
 * until it is done.
 *
 * Lock order: the manager's lock only. */
#include <netinet/in.h>
#include <sys/socket.h>

#include "ipc/listener_internal.h"
#include "manager/manager_internal.h"
#include "unix/platform.h"

/* The digest of the server's challenge: CPython 3.12's default. */
#define CHALLENGE_DIGEST "sha256"

#define NS_PER_S 1000000000.0

/* The peer's IP address, for the bound per address; none (peer_len 0)
 * for a Unix socket or a failure. */
static void
read_peer(struct conc__mgr_conn *ctx)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;
    ctx->peer_len = 0;
    if (conc_conn_fileno(ctx->c, &fd) < 0 ||
        getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        memcpy(ctx->peer, &in->sin_addr, sizeof in->sin_addr);
        ctx->peer_len = sizeof in->sin_addr;
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        memcpy(ctx->peer, &in6->sin6_addr, sizeof in6->sin6_addr);
        ctx->peer_len = sizeof in6->sin6_addr;
    }
}

static int
same_peer(const struct conc__mgr_conn *a, const struct conc__mgr_conn *b)
{
    return a != b && a->peer_len && a->peer_len == b->peer_len &&
           !memcmp(a->peer, b->peer, a->peer_len);
}

/* Counts ctx against m->max_greetings and its address's bound. Every
 * listed connection is older than ctx: the accepting thread lists each
 * before it accepts the next. */
static void
count_locked(conc_manager *m, struct conc__mgr_conn *ctx)
{
    ctx->greeting = ctx->counted = 1;
    ctx->seq = ++m->greet_seq;
    /* O(connections), with another handshake pending only. */
    for (struct conc__mgr_conn *o = m->n_greeting ? m->conns : NULL; o;
         o = o->next)
        if (o->counted && same_peer(o, ctx))
            o->newer_same++;
    m->n_greeting++;
}

void
conc__mgr_greet_enter(conc_manager *m, struct conc__mgr_conn *ctx)
{
    ctx->greet_since = conc__now_ns();
    read_peer(ctx);
    conc_cond_acquire(m->cond, CONC_FOREVER);
    /* Without a key a connection is admitted at once; one refused for the
     * bound on clients waits for its first request as a handshake would,
     * and counts as one. */
    if (m->authkey || conc__mgr_admit_locked(m, ctx) < 0)
        count_locked(m, ctx);
    conc_cond_release(m->cond);
}

int
conc__mgr_greet_leave_locked(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (!ctx->counted)
        return 0;
    ctx->counted = 0;
    for (struct conc__mgr_conn *o = m->n_greeting > 1 ? m->conns : NULL; o;
         o = o->next)
        if (o->counted && o->seq < ctx->seq && same_peer(o, ctx))
            o->newer_same--;
    /* The accepting thread waits for room only with every slot taken. */
    return m->n_greeting-- >= m->max_greetings;
}

/* The handshake itself, within CONC__MGR_HANDSHAKE_S. */
static int
handshake(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (m->stopping)
        return CONC_ECLOSED;
    int64_t deadline;
    conc__deadline(CONC__MGR_HANDSHAKE_S, &deadline);
    struct conc__auth_key key = {(const uint8_t *)m->authkey,
                                 strlen(m->authkey)};
    return conc__auth_server(ctx->c, key, CHALLENGE_DIGEST, m->tcp, deadline);
}

/* Runs the handshake and admits the client; the stop and the accepting
 * thread cut the handshake, and a refused connection's wait for its
 * first request, short by shutting the socket down. */
int
conc__mgr_greet(struct conc__mgr_conn *ctx)
{
    conc_manager *m = ctx->m;
    if (!m->authkey) /* admitted or refused as it was accepted */
        return ctx->client ? 0 : CONC__MGR_EREFUSED;
    int rc = handshake(m, ctx), wake = 0;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    if (rc == 0)
        rc = conc__mgr_admit_locked(m, ctx);
    /* A refused connection stays open to answer its first request, and
     * can be cut short as a handshake; a failed one counts until its
     * thread is done. */
    ctx->greeting = rc == CONC__MGR_EREFUSED;
    if (rc == 0)
        wake = conc__mgr_greet_leave_locked(m, ctx);
    conc_cond_release(m->cond);
    if (wake)
        conc__eventfd_signal(m->reapfd);
    return rc;
}

/* Ends the handshake of ctx at once: its thread then leaves. */
static void
cut_short_locked(struct conc__mgr_conn *ctx)
{
    int fd;
    /* The thread frees its connection only once it left the handshake,
     * under the manager's lock: the descriptor is still its own. */
    if (conc_conn_fileno(ctx->c, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
    ctx->evicted = 1;
}

void
conc__mgr_stop_greetings(conc_manager *m)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    for (struct conc__mgr_conn *ctx = m->conns; ctx; ctx = ctx->next)
        if (ctx->greeting)
            cut_short_locked(ctx);
    conc_cond_release(m->cond);
}

/* Closes ctx's handshake if it is pending for `grace` at `now`; else
 * brings *until forward to then. Returns 1 if it closed it. */
static int
evict_due(struct conc__mgr_conn *ctx, double grace, int64_t now, int64_t *until)
{
    int64_t due = ctx->greet_since + (int64_t)(grace * NS_PER_S);
    if (due <= now) {
        cut_short_locked(ctx);
        return 1;
    }
    if (due < *until)
        *until = due;
    return 0;
}

/* The oldest handshake still pending and not cut short into *old, and
 * the oldest of those with CONC__MGR_GREET_PER_ADDR newer ones of its
 * address into *crowd (NULL: none). The list runs from the newest.
 * O(connections): it runs only with more handshakes pending than one
 * address may hold. */
static void
find_oldest_locked(conc_manager *m, struct conc__mgr_conn **old,
                   struct conc__mgr_conn **crowd)
{
    *old = *crowd = NULL;
    for (struct conc__mgr_conn *ctx = m->conns; ctx; ctx = ctx->next) {
        if (!ctx->counted || !ctx->greeting || ctx->evicted)
            continue;
        *old = ctx;
        if (ctx->newer_same >= CONC__MGR_GREET_PER_ADDR)
            *crowd = ctx;
    }
}

int
conc__mgr_greet_room(conc_manager *m, int64_t *until)
{
    *until = CONC__FOREVER; /* a thread's end signals the reap fd */
    conc_cond_acquire(m->cond, CONC_FOREVER);
    int full = m->n_greeting >= m->max_greetings;
    if (full || m->n_greeting > CONC__MGR_GREET_PER_ADDR) {
        struct conc__mgr_conn *old, *crowd;
        int64_t now = conc__now_ns();
        find_oldest_locked(m, &old, &crowd);
        double crowd_grace =
            full ? CONC__MGR_GREET_CROWD_S : CONC__MGR_GREET_GRACE_S;
        int closed = crowd && evict_due(crowd, crowd_grace, now, until);
        if (!closed && full && old)
            evict_due(old, CONC__MGR_GREET_GRACE_S, now, until);
    }
    conc_cond_release(m->cond);
    return !full;
}
