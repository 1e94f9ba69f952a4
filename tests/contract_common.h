/* Helpers shared by test_contract_new.c and test_contract_oom.c. */
#ifndef CONC_TEST_CONTRACT_COMMON_H
#define CONC_TEST_CONTRACT_COMMON_H

#include "conc_test.h"

#define BOUND 10.0 /* seconds: a wait that must end well before this */

static inline int
ws_none(void *arg, conc_aio_stream *s)
{
    (void)arg, (void)s;
    return 0;
}

static inline int
ws_echo(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    int r = conc_ws_recv(ws, BOUND, &kind, &m);
    if (r == 0)
        r = conc_ws_send(ws, kind, m.data, m.len, BOUND);
    conc_buf_free(&m);
    return r;
}

static inline int
dummy_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return 0;
}

#endif
