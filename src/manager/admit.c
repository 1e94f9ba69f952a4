/* The bound on a server's clients: the connections it serves at once
 * (authenticated ones, or all of them without an authkey), each a thread
 * and its descriptors for as long as it stays open.
 *
 * A connection that proves the key with m->max_clients served is not
 * closed at once: a client, CPython's or conc's, sends its first request
 * right after the handshake and would read a bare close as the server
 * gone away. Its thread reads that request and answers it with
 * ('#ERROR', ConnectionRefusedError(text naming the bound)), which a
 * CPython client raises from connect(), a proxy's first call or create,
 * and a conc client turns into CONC_EBUSY; then it closes. Until then it
 * stays counted against the bound on handshakes (greet.c), and may be
 * closed for room as a handshake would: refusals cost no more threads
 * than handshakes do. Without an authkey a connection is admitted or
 * refused as it is accepted, and a refused one counts the same way.
 *
 *   handshake ok --(n_clients < max)--> client (counted until done)
 *        \\--(otherwise)--> refused: first request answered, closed
 *
 * Lock order: the manager's lock only. */
#include <stdio.h>

#include "manager/manager_internal.h"

int
conc_manager_set_max_clients(conc_manager *m, size_t n)
{
    if (!m || !m->server || n == 0)
        return CONC_EINVAL;
    if (m->started)
        return CONC_ESTATE;
    m->max_clients = n;
    return 0;
}

int
conc__mgr_admit_locked(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (m->n_clients >= m->max_clients)
        return CONC__MGR_EREFUSED;
    m->n_clients++;
    ctx->client = 1;
    return 0;
}

void
conc__mgr_admit_leave_locked(conc_manager *m, struct conc__mgr_conn *ctx)
{
    if (ctx->client)
        m->n_clients--;
    ctx->client = 0;
}

/* ('#ERROR', ConnectionRefusedError(text)), or NULL out of memory. */
static conc_obj *
refusal(conc_manager *m)
{
    char text[160];
    snprintf(text, sizeof text,
             "the manager at %s serves its limit of %zu clients "
             "(conc_manager_set_max_clients); try again once one leaves",
             m->address, m->max_clients);
    conc_obj *args = conc_obj_tuple(1), *s = conc_obj_str(text);
    if (!args || !s) {
        conc_obj_decref(args);
        conc_obj_decref(s);
        return NULL;
    }
    conc_obj_tuple_set_new(args, 0, s);
    conc_obj *exc =
        conc_obj_foreign("builtins", "ConnectionRefusedError", args, NULL, 0);
    conc_obj_decref(args);
    return exc ? conc__mgr_pair("#ERROR", exc) : NULL;
}

/* Reads the first request whole, then answers it: closing with the
 * request unread would reset the connection under the client's read of
 * the answer. Stopping or a close for room ends the wait (the connection
 * is shut down). */
static void
answer_first(struct conc__mgr_conn *ctx)
{
    conc_obj *req = NULL;
    int rc = conc__mgr_recv_request(ctx->c, CONC__MGR_HANDSHAKE_S, &req);
    conc_obj_decref(req);
    if (rc < 0)
        return;
    conc_obj *rep = refusal(ctx->m);
    if (rep)
        conc__mgr_send(ctx->c, rep);
    conc_obj_decref(rep);
}

void
conc__mgr_refuse(struct conc__mgr_conn *ctx)
{
    conc_manager *m = ctx->m;
    if (!m->stopping) /* else the stop may have passed it by */
        answer_first(ctx);
    /* Out of the handshake's state under the lock before the connection
     * is freed: the stop and the accepting thread shut down only the
     * sockets of connections in it. */
    conc_cond_acquire(m->cond, CONC_FOREVER);
    ctx->greeting = 0;
    conc_cond_release(m->cond);
}
