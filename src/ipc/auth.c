/* The messages of the authkey handshake (auth.h): pure functions over
 * bytes, so the fuzzer can drive them (fuzz/fuzz_auth.c). OpenSSL
 * computes the HMACs; CRYPTO_memcmp compares them in constant time.
 *
 * Which digest a message uses follows CPython 3.12's
 * _get_digest_name_and_payload: a message of 16 or 20 bytes is the legacy
 * form (bare, MD5); any other must start with "{name}" where name is one
 * of the allowed digests, whose name is at most 8 characters. The HMAC
 * covers the whole message after "#CHALLENGE#", prefix included, so a
 * peer cannot downgrade a prefixed challenge to a weaker digest. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ipc/auth.h"

#define CHALLENGE_LEN   (sizeof CONC__AUTH_CHALLENGE - 1)
#define LEGACY_REPLY    16 /* a raw HMAC-MD5 */
#define MAX_DIGEST_NAME 8  /* "sha3_256" */

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
} digests[] = {
    {"md5", EVP_md5},           {"sha256", EVP_sha256},
    {"sha384", EVP_sha384},     {"sha3_256", EVP_sha3_256},
    {"sha3_384", EVP_sha3_384},
};
#define NDIGESTS (sizeof digests / sizeof digests[0])

/* The digest called `name` (`n` bytes, not NUL-terminated), or NULL. */
static const EVP_MD *
find_digest(const char *name, size_t n)
{
    for (size_t i = 0; i < NDIGESTS; i++)
        if (strlen(digests[i].name) == n &&
            memcmp(digests[i].name, name, n) == 0)
            return digests[i].md();
    return NULL;
}

int
conc__auth_digest_ok(const char *digest)
{
    return digest[0] == '\0' || find_digest(digest, strlen(digest)) != NULL;
}

/* Splits a message into its digest (MD5 for the legacy form) and the
 * length of its "{name}" prefix. Returns 0 or CONC_EAUTH. */
static int
message_digest(const uint8_t *msg, size_t n, const EVP_MD **md, size_t *pre)
{
    if (n == CONC__AUTH_LEGACY_NONCE || n == LEGACY_REPLY) {
        *md = EVP_md5();
        *pre = 0;
        return 0;
    }
    /* The '}' must come within the longest name, as CPython's find(b'}',
     * 1, _MAX_DIGEST_LEN + 2) looks for it. */
    size_t end = 1;
    while (end < n && end <= MAX_DIGEST_NAME + 1 && msg[end] != '}')
        end++;
    int found = n > 0 && msg[0] == '{' && end < n &&
                end <= MAX_DIGEST_NAME + 1 && msg[end] == '}';
    if (!found || !(*md = find_digest((const char *)msg + 1, end - 1)))
        return conc_fail(CONC_EAUTH, "handshake: unsupported message length, "
                                     "missing digest prefix, or unsupported "
                                     "digest");
    *pre = end + 1;
    return 0;
}

/* HMAC of msg under key with md into out; returns its length. */
static size_t
hmac(const EVP_MD *md, struct conc__auth_key key, const uint8_t *msg, size_t n,
     uint8_t *out)
{
    static const uint8_t empty[1];
    unsigned len = 0;
    /* OpenSSL reads a NULL key as "keep the previous one": pass an empty
     * key by address. */
    if (!HMAC(md, key.len ? key.data : empty, (int)key.len, msg, n, out, &len))
        return 0;
    return len;
}

int
conc__auth_challenge(const char *digest, const uint8_t *nonce, uint8_t *out,
                     size_t *len)
{
    if (!conc__auth_digest_ok(digest))
        return CONC_EINVAL;
    size_t n = CHALLENGE_LEN;
    memcpy(out, CONC__AUTH_CHALLENGE, n);
    if (digest[0] == '\0') {
        memcpy(out + n, nonce, CONC__AUTH_LEGACY_NONCE);
        *len = n + CONC__AUTH_LEGACY_NONCE;
        return 0;
    }
    size_t dn = strlen(digest);
    out[n++] = '{';
    memcpy(out + n, digest, dn);
    n += dn;
    out[n++] = '}';
    memcpy(out + n, nonce, CONC__AUTH_NONCE);
    *len = n + CONC__AUTH_NONCE;
    return 0;
}

int
conc__auth_respond(struct conc__auth_key key, const uint8_t *msg, size_t n,
                   uint8_t *out, size_t *len)
{
    if (n < CHALLENGE_LEN || memcmp(msg, CONC__AUTH_CHALLENGE, CHALLENGE_LEN))
        return conc_fail(CONC_EAUTH, "handshake: protocol error, expected a "
                                     "challenge");
    msg += CHALLENGE_LEN;
    n -= CHALLENGE_LEN;
    if (n < CONC__AUTH_LEGACY_NONCE)
        return conc_fail(CONC_EAUTH,
                         "handshake: challenge too short: %zu "
                         "bytes",
                         n);
    const EVP_MD *md;
    size_t pre;
    int r = message_digest(msg, n, &md, &pre);
    if (r)
        return r;
    memcpy(out, msg, pre); /* "{name}", or nothing for the legacy form */
    size_t h = hmac(md, key, msg, n, out + pre);
    if (h == 0)
        return conc_fail(CONC_EAUTH, "handshake: the digest is unavailable");
    *len = pre + h;
    return 0;
}

int
conc__auth_verify(struct conc__auth_key key, const uint8_t *msg, size_t n,
                  const uint8_t *resp, size_t rn)
{
    if (n < CHALLENGE_LEN || memcmp(msg, CONC__AUTH_CHALLENGE, CHALLENGE_LEN))
        return CONC_EINVAL; /* not a message this side sent */
    msg += CHALLENGE_LEN;
    n -= CHALLENGE_LEN;
    const EVP_MD *md;
    size_t pre;
    int r = message_digest(resp, rn, &md, &pre);
    if (r)
        return r;
    uint8_t want[EVP_MAX_MD_SIZE];
    size_t h = hmac(md, key, msg, n, want);
    if (h == 0)
        return conc_fail(CONC_EAUTH, "handshake: the digest is unavailable");
    if (rn - pre != h)
        return conc_fail(CONC_EAUTH, "handshake: the digest received has the "
                                     "wrong length");
    if (CRYPTO_memcmp(want, resp + pre, h) != 0)
        return conc_fail(CONC_EAUTH, "handshake: digest received was wrong");
    return 0;
}
