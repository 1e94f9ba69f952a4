/* The server's side of the authkey handshake, and the bound on how many
 * connections are in it at once.
 *
 * Each accepted connection's thread runs its client's handshake, giving
 * it CONC__MGR_HANDSHAKE_S: a client that stalls holds up no other (the
 * accepting thread only accepts). A peer that opens connections and says
 * nothing would then cost a thread each for that long, with no limit; so
 * at most m->max_greetings connections are in the handshake at once
 * (conc_manager_set_max_handshakes). A connection counts from its accept
 * until its handshake succeeds or its thread is done, so the bound is on
 * threads, not only on handshakes.
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
 *   accepted --(handshake ok)--> served (counts no more)
 *      |  \--(fails, times out, closed for room or by the stop)--> done
 *      counted against max_greetings until one of those
 *
 * Without an authkey there is no handshake: every connection is served
 * at once, and none counts.
 *
 * Lock order: the manager's lock only. */
#include <sys/socket.h>

#include "ipc/listener_internal.h"
#include "manager/manager_internal.h"
#include "unix/platform.h"

/* The digest of the server's challenge: CPython 3.12's default. */
#define CHALLENGE_DIGEST "sha256"

#define NS_PER_S 1000000000.0

void
conc__mgr_greet_enter(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (!m->authkey)
        return;
    ctx->greet_since = conc__now_ns();
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->greeting = ctx->counted = 1;
    m->n_greeting++;
    conc_cond_release(m->cond);
}

int
conc__mgr_greet_leave_locked(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (!ctx->counted)
        return 0;
    ctx->counted = 0;
    /* The accepting thread waits for room only with every slot taken. */
    return m->n_greeting-- >= m->max_greetings;
}

/* Runs the handshake, within CONC__MGR_HANDSHAKE_S; the stop and the
 * accepting thread cut it short by shutting the socket down. */
int
conc__mgr_greet(struct conc__mgr_conn *ctx)
{
    conc_manager *m = ctx->m;
    if (!ctx->greeting)
        return 0;
    int rc = CONC_ECLOSED;
    if (!m->stopping) {
        int64_t deadline;
        conc__deadline(CONC__MGR_HANDSHAKE_S, &deadline);
        struct conc__auth_key key = {(const uint8_t *)m->authkey,
                                     strlen(m->authkey)};
        rc = conc__auth_server(ctx->c, key, CHALLENGE_DIGEST, m->tcp, deadline);
    }
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->greeting = 0;
    /* A failed handshake counts until its thread is done. */
    int wake = rc == 0 && conc__mgr_greet_leave_locked(m, ctx);
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

/* The oldest connection still in its handshake and not cut short, or
 * NULL. The list runs from the newest. O(connections): it runs only with
 * every slot taken. */
static struct conc__mgr_conn *
oldest_greeting_locked(conc_manager *m)
{
    struct conc__mgr_conn *old = NULL;
    for (struct conc__mgr_conn *ctx = m->conns; ctx; ctx = ctx->next)
        if (ctx->greeting && !ctx->evicted)
            old = ctx;
    return old;
}

int
conc__mgr_greet_room(conc_manager *m, int64_t *until)
{
    int room = 1;
    conc_cond_acquire(m->cond, CONC_FOREVER);
    if (m->n_greeting >= m->max_greetings) {
        struct conc__mgr_conn *old = oldest_greeting_locked(m);
        room = 0;
        *until = CONC__FOREVER; /* a thread's end signals the reap fd */
        if (old) {
            int64_t due = old->greet_since +
                          (int64_t)(CONC__MGR_GREET_GRACE_S * NS_PER_S);
            if (due <= conc__now_ns())
                cut_short_locked(old);
            else
                *until = due;
        }
    }
    conc_cond_release(m->cond);
    return room;
}
