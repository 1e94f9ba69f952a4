/* The authkey handshake of multiprocessing.connection (auth.c holds the
 * messages, handshake.c the conversation over a connection).
 *
 * Both sides prove they know the key: the challenger sends
 * "#CHALLENGE#" and a random message, the responder sends an HMAC of the
 * message under the key, and the challenger answers "#WELCOME#" or
 * "#FAILURE#". Then they swap roles. CPython 3.11 and older send a bare
 * 20-byte message and answer with a raw 16-byte HMAC-MD5; 3.12 and newer
 * prefix the message with "{sha256}" (or another allowed digest's name)
 * and answer with "{name}" and the HMAC under that digest. Each side of
 * either version accepts the other's form: a 20-byte message is answered
 * with raw MD5, and a 16-byte answer is checked as MD5 over the whole
 * message, prefix included (notes on the protocol: conc's design notes,
 * manager-protocol.md section 2). */
#ifndef CONC_IPC_AUTH_H
#define CONC_IPC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc_internal.h"

#define CONC__AUTH_CHALLENGE "#CHALLENGE#"
#define CONC__AUTH_WELCOME   "#WELCOME#"
#define CONC__AUTH_FAILURE   "#FAILURE#"
/* CPython reads every handshake message with recv_bytes(256). */
#define CONC__AUTH_MSG_MAX 256
/* Random bytes in a challenge: 3.11's bare message, 3.12's after the
 * prefix (connection.py's MESSAGE_LENGTH). */
#define CONC__AUTH_LEGACY_NONCE 20
#define CONC__AUTH_NONCE        40

/* A key: `len` bytes at `data` (data may be NULL when len is 0). */
struct conc__auth_key {
    const uint8_t *data;
    size_t len;
};

/* Whether `digest` names a digest the handshake allows ("md5", "sha256",
 * "sha384", "sha3_256", "sha3_384"), or is "" for 3.11's bare form. */
int conc__auth_digest_ok(const char *digest);

/* Writes the challenge message for `digest` ("" for 3.11's form) around
 * `nonce` (CONC__AUTH_NONCE bytes, of which the legacy form takes the
 * first CONC__AUTH_LEGACY_NONCE) into out (CONC__AUTH_MSG_MAX bytes) and
 * its length into *len. Returns 0 or CONC_EINVAL for another digest. */
int conc__auth_challenge(const char *digest, const uint8_t *nonce, uint8_t *out,
                         size_t *len);

/* The responder's reply to the challenge message `msg` of `n` bytes (as
 * received, "#CHALLENGE#" included), into out (CONC__AUTH_MSG_MAX bytes)
 * with its length in *len. Returns 0, or CONC_EAUTH with a failure
 * message when `msg` is not a challenge this side can answer. */
int conc__auth_respond(struct conc__auth_key key, const uint8_t *msg, size_t n,
                       uint8_t *out, size_t *len);

/* Checks the reply `resp` of `rn` bytes to the challenge message `msg` of
 * `n` bytes (as sent). Returns 0 if it proves the key, CONC_EAUTH with a
 * failure message otherwise. Compares in constant time. */
int conc__auth_verify(struct conc__auth_key key, const uint8_t *msg, size_t n,
                      const uint8_t *resp, size_t rn);

/* handshake.c: the two halves over a connection in CPython's framing,
 * with every wait bounded by `deadline`. `quickack` makes each read ask
 * TCP to acknowledge at once (a server's reads, see handshake.c).
 * conc__auth_deliver is deliver_challenge (send a challenge, check the
 * reply, answer WELCOME or FAILURE); conc__auth_answer is
 * answer_challenge. Both return 0, CONC_EAUTH (with a failure message) if
 * the key does not match or the peer's messages are not the handshake,
 * or the connection's errors (CONC_ETIMEDOUT, CONC_ECLOSED when the peer
 * closed, ...). `digest` as in conc__auth_challenge. */
int conc__auth_deliver(conc_conn *c, struct conc__auth_key key,
                       const char *digest, int quickack, int64_t deadline);
int conc__auth_answer(conc_conn *c, struct conc__auth_key key, int quickack,
                      int64_t deadline);

#endif
