/* Fuzzes the messages of the authkey handshake (src/ipc/auth.c): a
 * challenge and a reply as any peer may send them. The input gives a key,
 * a challenge message and a reply. Invariants: nothing reads past a
 * message; a challenge this side can answer gives a reply that its own
 * verifier accepts under the same key and refuses under another; a reply
 * the verifier accepts for a challenge conc built must be what conc would
 * answer (or the legacy MD5 of it); and every challenge conc builds, for
 * each digest, round-trips. */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "ipc/auth.h"

static const char *const digests[] = {"",       "md5",      "sha256",
                                      "sha384", "sha3_256", "sha3_384"};

/* Copies n input bytes into an exact allocation, so overreads hit a
 * redzone. */
static uint8_t *
take_bytes(struct fuzz_in *in, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    FUZZ_CHECK(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)fuzz_take(in, 1);
    return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t kn = (size_t)fuzz_take(&in, 1) % 64;
    size_t mn = (size_t)fuzz_take(&in, 2) % (CONC__AUTH_MSG_MAX + 1);
    size_t rn = (size_t)fuzz_take(&in, 2) % (CONC__AUTH_MSG_MAX + 1);
    unsigned which = (unsigned)fuzz_take(&in, 1);
    uint8_t *k = take_bytes(&in, kn), *msg = take_bytes(&in, mn);
    uint8_t *resp = take_bytes(&in, rn);
    struct conc__auth_key key = {k, kn};
    uint8_t other_k[] = {0x5a};
    struct conc__auth_key other = {other_k, kn == 1 && k[0] == 0x5a ? 0 : 1};

    /* The peer's challenge, answered by conc. */
    uint8_t out[CONC__AUTH_MSG_MAX];
    size_t on = 0;
    int r = conc__auth_respond(key, msg, mn, out, &on);
    FUZZ_CHECK(r == 0 || r == CONC_EAUTH);
    if (r == 0) {
        FUZZ_CHECK(on <= CONC__AUTH_MSG_MAX);
        FUZZ_CHECK(conc__auth_verify(key, msg, mn, out, on) == 0);
        FUZZ_CHECK(conc__auth_verify(other, msg, mn, out, on) == CONC_EAUTH);
    }
    /* The peer's reply to a challenge conc built. */
    uint8_t nonce[CONC__AUTH_NONCE] = {0}, ch[CONC__AUTH_MSG_MAX];
    size_t cn;
    for (size_t i = 0; i < sizeof nonce && i < mn; i++)
        nonce[i] = msg[i];
    const char *d = digests[which % 6];
    FUZZ_CHECK(conc__auth_challenge(d, nonce, ch, &cn) == 0);
    r = conc__auth_verify(key, ch, cn, resp, rn);
    FUZZ_CHECK(r == 0 || r == CONC_EAUTH);
    FUZZ_CHECK(conc__auth_respond(key, ch, cn, out, &on) == 0);
    FUZZ_CHECK(conc__auth_verify(key, ch, cn, out, on) == 0);
    if (r == 0) { /* only the right answer, in some allowed digest */
        int same = rn == on && memcmp(resp, out, on) == 0;
        FUZZ_CHECK(same || resp[0] == '{' || rn == 16);
    }
    free(k);
    free(msg);
    free(resp);
    return 0;
}
