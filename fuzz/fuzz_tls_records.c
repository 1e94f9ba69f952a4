/* Fuzzes a TLS server session (src/tls/session.c over OpenSSL): whatever
 * a client sends before and after the handshake. The first input byte is
 * the size of the pieces the rest is fed in (0: as much as fits). Every
 * verdict is checked: a call returns 0, CONC_EAGAIN or CONC_ETLS and
 * nothing else; feed never takes more than it was given; the output
 * waiting for the peer stays within the session's fixed buffer; once the
 * input ends, the session ends or fails, and never asks for more. The
 * server's certificate is made once, by tests/support/tls_certs.c. */
#include "conc/error.h"
#include "conc/tls.h"
#include "fuzz.h"
#include "tls/tls_internal.h"
#include "tls_certs.h"

#define OUT_MAX  (2 * CONC__TLS_RECORD_MAX) /* session.c's OUT_BUF */
#define READ_CAP 4096

static conc_tls_context *ctx;

static void
setup(void)
{
    struct tls_certs certs;
    FUZZ_CHECK(tls_certs_make(&certs) == 0);
    conc_tls_opts o = {.server = 1,
                       .cert_file = certs.server,
                       .key_file = certs.server_key,
                       .alpn = "h2,http/1.1"};
    FUZZ_CHECK(conc_tls_context_new(&o, &ctx) == 0);
    tls_certs_remove(&certs);
}

static int
verdict_ok(int r)
{
    return r == 0 || r == CONC_EAGAIN || r == CONC_ETLS;
}

/* Runs the session one step: the handshake, or a read once it is done;
 * drops the output. Returns the call's result. */
static int
step(conc_tls_session *s)
{
    static uint8_t buf[READ_CAP];
    size_t n = 0, pending = 0;
    int r = conc_tls_session_is_ready(s) ? CONC_EAGAIN
                                         : conc_tls_session_handshake(s);
    if (r == CONC_EAGAIN && conc_tls_session_is_ready(s)) {
        r = conc_tls_session_read(s, buf, sizeof buf, &n);
        FUZZ_CHECK(n <= sizeof buf);
    }
    FUZZ_CHECK(verdict_ok(r));
    FUZZ_CHECK(conc_tls_session_pending(s, &pending) == 0);
    FUZZ_CHECK(pending <= OUT_MAX);
    while (pending) {
        FUZZ_CHECK(conc_tls_session_take(s, buf, sizeof buf, &n) == 0);
        FUZZ_CHECK(n > 0 && n <= pending);
        pending -= n;
    }
    return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        setup();
    if (!size)
        return 0;
    size_t piece = data[0] ? data[0] : SIZE_MAX;
    data++, size--;
    conc_tls_session *s;
    FUZZ_CHECK(conc_tls_session_new(ctx, NULL, &s) == 0);
    int r = CONC_EAGAIN;
    while (size && r != CONC_ETLS) {
        size_t n = size < piece ? size : piece, taken = 0;
        FUZZ_CHECK(conc_tls_session_feed(s, data, n, &taken) == 0);
        FUZZ_CHECK(taken <= n);
        data += taken, size -= taken;
        r = step(s);
        if (!taken && r == CONC_EAGAIN)
            r = step(s); /* a full input buffer drains as it is read */
        if (!taken && r == CONC_EAGAIN)
            break;
    }
    FUZZ_CHECK(conc_tls_session_feed_eof(s) == 0);
    for (int i = 0; i < 4 && r == CONC_EAGAIN; i++)
        r = step(s);
    FUZZ_CHECK(r != CONC_EAGAIN);
    conc_tls_session_free(s);
    conc_clear_failure();
    return 0;
}
