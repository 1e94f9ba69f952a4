/* Certificates made by the tests themselves (OpenSSL's API, EC P-256
 * keys): a CA, leaves it signs, expired ones, and a second CA nobody
 * trusts, written as PEM files into a fresh temporary directory that
 * tls_certs_remove deletes. Also compiled into the fuzz target that needs
 * a server certificate. */
#ifndef CONC_TEST_TLS_CERTS_H
#define CONC_TEST_TLS_CERTS_H

#define TLS_PATH_MAX 256

struct tls_certs {
    char dir[TLS_PATH_MAX / 2];
    char ca[TLS_PATH_MAX];         /* the trusted CA's certificate */
    char server[TLS_PATH_MAX];     /* CN=localhost, SAN localhost and */
    char server_key[TLS_PATH_MAX]; /*   127.0.0.1, signed by the CA */
    char expired[TLS_PATH_MAX];    /* as server, expired a day ago */
    char expired_key[TLS_PATH_MAX];
    char untrusted[TLS_PATH_MAX]; /* as server, signed by another CA */
    char untrusted_key[TLS_PATH_MAX];
    char client[TLS_PATH_MAX]; /* CN=conc client, signed by the CA */
    char client_key[TLS_PATH_MAX];
};

/* Makes every file in a new temporary directory. Returns 0 or -1. */
int tls_certs_make(struct tls_certs *c);
/* Removes the files and the directory. */
void tls_certs_remove(struct tls_certs *c);

#endif
