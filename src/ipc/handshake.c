/* The authkey handshake over a connection in CPython's framing:
 * deliver_challenge and answer_challenge of multiprocessing.connection
 * (the messages themselves are in auth.c).
 *
 * A server delivers first and then answers; a client answers first and
 * then delivers. Every message is read into a buffer of
 * CONC__AUTH_MSG_MAX bytes on the stack: a longer one stays unread and
 * fails the handshake, so a peer cannot make this side allocate
 * anything. On a wrong key this side sends "#FAILURE#" and nothing else
 * (CPython 3.11's manager also sends a traceback, which names its files;
 * the key itself never travels either way).
 *
 * Speed. A client writes "#WELCOME#" and then its first request without
 * reading in between, so with Nagle's algorithm on its side the request
 * waits for the server's acknowledgement, which TCP delays by up to 40 ms.
 * conc's connections turn Nagle off (TCP_NODELAY), but a Python client
 * does not; a server that asks for an immediate acknowledgement before
 * each handshake read (TCP_QUICKACK, which the kernel clears again on its
 * own) lets an unmodified Python client connect in under a millisecond
 * instead of about 44 ms. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include "ipc/listener_internal.h"

#define WELCOME_LEN (sizeof CONC__AUTH_WELCOME - 1)
#define FAILURE_LEN (sizeof CONC__AUTH_FAILURE - 1)

static int
send_msg(conc_conn *c, const void *p, size_t n, int64_t deadline)
{
    int r = conc__conn_send_frame(c, CONC__KIND_BYTES, p, n, NULL, deadline);
    if (r == CONC_EPIPE)
        return conc_fail(CONC_ECLOSED, "handshake: the peer closed the "
                                       "connection");
    return r;
}

/* Receives one handshake message into buf (CONC__AUTH_MSG_MAX bytes). */
static int
recv_msg(conc_conn *c, int quickack, uint8_t *buf, size_t *n, int64_t deadline)
{
    if (quickack) {
        int one = 1; /* best effort: a failure only costs time */
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    *n = 0;
    struct conc__sink s = {.kind = CONC__KIND_BYTES,
                           .buf = buf,
                           .cap = CONC__AUTH_MSG_MAX,
                           .len = n};
    int r = conc__conn_recv_sock(c, &s, deadline);
    if (r == CONC_EMSGSIZE)
        return conc_fail(CONC_EAUTH,
                         "handshake: a message of %zu bytes, "
                         "above the %d a handshake allows",
                         *n, CONC__AUTH_MSG_MAX);
    if (r == CONC_ECLOSED)
        return conc_fail(r, "handshake: the peer closed the connection");
    if (r == CONC_EPROTO)
        return conc_fail(r, "handshake: the stream ended inside a message, "
                            "or is not CPython's framing");
    if (r == CONC_ETIMEDOUT)
        return conc_fail(r, "handshake: the peer did not answer in time");
    return r;
}

int
conc__auth_deliver(conc_conn *c, struct conc__auth_key key, const char *digest,
                   int quickack, int64_t deadline)
{
    uint8_t nonce[CONC__AUTH_NONCE];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return conc_fail(CONC_ENOMEM, "handshake: no random bytes");
    uint8_t msg[CONC__AUTH_MSG_MAX], resp[CONC__AUTH_MSG_MAX];
    size_t n, rn;
    int r = conc__auth_challenge(digest, nonce, msg, &n);
    if (r == 0)
        r = send_msg(c, msg, n, deadline);
    if (r == 0)
        r = recv_msg(c, quickack, resp, &rn, deadline);
    if (r)
        return r;
    r = conc__auth_verify(key, msg, n, resp, rn);
    if (r) {
        /* Tell the peer, as CPython does; it may be gone already. */
        (void)send_msg(c, CONC__AUTH_FAILURE, FAILURE_LEN, deadline);
        return r;
    }
    return send_msg(c, CONC__AUTH_WELCOME, WELCOME_LEN, deadline);
}

int
conc__auth_answer(conc_conn *c, struct conc__auth_key key, int quickack,
                  int64_t deadline)
{
    uint8_t msg[CONC__AUTH_MSG_MAX], resp[CONC__AUTH_MSG_MAX];
    size_t n, rn;
    int r = recv_msg(c, quickack, msg, &n, deadline);
    if (r)
        return r;
    r = conc__auth_respond(key, msg, n, resp, &rn);
    if (r == 0)
        r = send_msg(c, resp, rn, deadline);
    if (r == 0)
        r = recv_msg(c, quickack, msg, &n, deadline);
    if (r)
        return r;
    if (n != WELCOME_LEN || memcmp(msg, CONC__AUTH_WELCOME, n) != 0)
        return conc_fail(CONC_EAUTH, "handshake: digest sent was rejected "
                                     "(is the authkey the same on both "
                                     "sides?)");
    return 0;
}

int
conc__auth_server(conc_conn *c, struct conc__auth_key key, const char *digest,
                  int quickack, int64_t deadline)
{
    int r = conc__auth_deliver(c, key, digest, quickack, deadline);
    return r ? r : conc__auth_answer(c, key, quickack, deadline);
}

int
conc__auth_client(conc_conn *c, struct conc__auth_key key, const char *digest,
                  int64_t deadline)
{
    int r = conc__auth_answer(c, key, 0, deadline);
    return r ? r : conc__auth_deliver(c, key, digest, 0, deadline);
}
