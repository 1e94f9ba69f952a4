/* Test certificates (tls_certs.h), made with OpenSSL's API so that no
 * test depends on the openssl program. The extensions are those Python's
 * strict verification (VERIFY_X509_STRICT) asks for: basic constraints,
 * key usage, and key identifiers on every certificate. */
#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DAY  (24L * 60 * 60)
#define YEAR (365 * DAY)

struct cert {
    EVP_PKEY *key;
    X509 *x;
};

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok == 1 ? 0 : -1;
}

/* A certificate for cn, valid from `from` to `to` seconds from now,
 * signed by issuer (NULL: self-signed CA). san NULL makes a CA. */
static int
make(struct cert *c, const char *cn, const char *san, long from, long to,
     const struct cert *issuer)
{
    static long serial = 1;
    c->key = EVP_EC_gen("P-256");
    c->x = X509_new();
    if (!c->key || !c->x)
        return -1;
    X509_set_version(c->x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c->x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c->x), from);
    X509_gmtime_adj(X509_getm_notAfter(c->x), to);
    X509_set_pubkey(c->x, c->key);
    X509_NAME *name = X509_get_subject_name(c->x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const unsigned char *)"conc", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509 *signer = issuer ? issuer->x : c->x;
    X509_set_issuer_name(c->x, X509_get_subject_name(signer));
    int r = add_ext(c->x, signer, NID_subject_key_identifier, "hash");
    r |= add_ext(c->x, signer, NID_authority_key_identifier, "keyid:always");
    if (!san) {
        r |= add_ext(c->x, signer, NID_basic_constraints, "critical,CA:TRUE");
        r |= add_ext(c->x, signer, NID_key_usage,
                     "critical,keyCertSign,cRLSign");
    } else {
        r |= add_ext(c->x, signer, NID_basic_constraints, "critical,CA:FALSE");
        r |= add_ext(c->x, signer, NID_key_usage, "critical,digitalSignature");
        r |= add_ext(c->x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
        r |= add_ext(c->x, signer, NID_subject_alt_name, san);
    }
    if (r || !X509_sign(c->x, issuer ? issuer->key : c->key, EVP_sha256()))
        return -1;
    return 0;
}

static void
drop(struct cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x);
}

/* Writes dir/name.pem and, with key, dir/name.key. */
static int
save(const struct tls_certs *t, const struct cert *c, const char *name,
     char *pem, char *key)
{
    snprintf(pem, TLS_PATH_MAX, "%s/%s.pem", t->dir, name);
    FILE *f = fopen(pem, "w");
    int ok = f && PEM_write_X509(f, c->x);
    if (f)
        fclose(f);
    if (!ok)
        return -1;
    if (!key)
        return 0;
    snprintf(key, TLS_PATH_MAX, "%s/%s.key", t->dir, name);
    f = fopen(key, "w");
    ok = f && PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL, NULL);
    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

int
tls_certs_make(struct tls_certs *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/conc_tls_XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    struct cert ca = {0}, other = {0}, leaf = {0}, old = {0}, bad = {0},
                cl = {0};
    const char *san = "DNS:localhost,IP:127.0.0.1";
    char unused[TLS_PATH_MAX];
    int r = make(&ca, "conc test CA", NULL, -DAY, YEAR, NULL);
    r |= make(&other, "conc untrusted CA", NULL, -DAY, YEAR, NULL);
    r |= make(&leaf, "localhost", san, -DAY, YEAR, &ca);
    r |= make(&old, "localhost", san, -2 * YEAR, -DAY, &ca);
    r |= make(&bad, "localhost", san, -DAY, YEAR, &other);
    r |= make(&cl, "conc client", "DNS:client", -DAY, YEAR, &ca);
    r |= save(t, &ca, "ca", t->ca, NULL);
    r |= save(t, &other, "other_ca", unused, NULL);
    r |= save(t, &leaf, "server", t->server, t->server_key);
    r |= save(t, &old, "expired", t->expired, t->expired_key);
    r |= save(t, &bad, "untrusted", t->untrusted, t->untrusted_key);
    r |= save(t, &cl, "client", t->client, t->client_key);
    drop(&ca), drop(&other), drop(&leaf), drop(&old), drop(&bad), drop(&cl);
    if (r)
        tls_certs_remove(t);
    return r ? -1 : 0;
}

void
tls_certs_remove(struct tls_certs *t)
{
    static const char *const names[] = {
        "ca.pem",      "other_ca.pem", "server.pem",    "server.key",
        "expired.pem", "expired.key",  "untrusted.pem", "untrusted.key",
        "client.pem",  "client.key"};
    char path[2 * TLS_PATH_MAX];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", t->dir, names[i]);
        unlink(path);
    }
    rmdir(t->dir);
}
