/* The pickle codec against the real CPython (tests/peers/obj_peer.py, run
 * by /usr/bin/python3, or python3 from PATH):
 *
 *   1. CPython pickles a battery of values at protocols 2, 3, 4 and 5;
 *      conc reads each, and its repr must equal CPython's, byte for byte;
 *   2. conc writes each value back (protocol 4), and values built in C;
 *      CPython reads them, and its repr must equal conc's; and where
 *      CPython's own pickle of the value does not use its memo, conc's
 *      pickle must be the same bytes but for FRAME and MEMOIZE.
 *
 * Big ints, floats (inf, nan, -0.0, 1e-310, 0.1), str beyond the BMP,
 * nested and shared values (the memo), exceptions, a Token, protocol 2's
 * spellings of bytes and sets all travel both ways. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc_test.h"

#ifndef CONC_PEERS_DIR
#error "CONC_PEERS_DIR must name tests/peers"
#endif

#define PEER        CONC_PEERS_DIR "/obj_peer.py"
#define PEER_WAIT_S 60.0

static const char *
python(void)
{
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                 : "python3";
}

/* Runs the peer in `mode` with `input` on its stdin; its stdout replaces
 * *out. */
static void
run_peer(const char *mode, const conc_buf *input, conc_buf *out)
{
    char *argv[] = {(char *)python(), PEER, (char *)mode, NULL};
    conc_run_opts opts = {.capture_output = 1, .check = 1};
    if (input) {
        opts.input = input->data ? (void *)input->data : (void *)"";
        opts.input_len = input->len;
    }
    conc_completed_process res;
    int r = conc_subprocess_run(argv, &opts, PEER_WAIT_S, &res);
    if (r) {
        fprintf(stderr, "peer: %.*s\n", (int)res.err.len,
                res.err.data ? (char *)res.err.data : "");
        conc_completed_process_free(&res);
        fail_msg("%s %s failed: %s", PEER, mode, conc_err_name(r));
    }
    conc_buf_free(out);
    *out = res.out;
    conc_buf_init(&res.out);
    conc_completed_process_free(&res);
}

static size_t
unhex(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v = 0;
        sscanf(hex + i, "%2x", &v);
        out[i / 2] = (uint8_t)v;
    }
    return n / 2;
}

static void
append_hex(conc_buf *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_conc_ok(conc_buf_appendf(b, "%02x", p[i]));
}

/* What conc made of one value: its repr and its pickle, to send back. */
struct sent {
    conc_buf repr;
    char what[64];
};

/* Checks one "<proto> <pickle hex> <repr hex>" line; appends conc's
 * pickle of the value, in hex, to *back and its repr to *sent. */
static void
check_line(char *line, conc_buf *back, struct sent *sent)
{
    char *proto = strtok(line, " "), *phex = strtok(NULL, " ");
    char *rhex = strtok(NULL, " ");
    assert_non_null(rhex);
    size_t plen = strlen(phex), rlen = strlen(rhex);
    uint8_t *pk = malloc(plen / 2 + 1), *want = malloc(rlen / 2 + 1);
    assert_non_null(pk);
    assert_non_null(want);
    plen = unhex(phex, plen, pk);
    rlen = unhex(rhex, rlen, want);
    want[rlen] = '\0';
    conc_obj *o = NULL;
    conc_obj_load_error err;
    if (conc_obj_loads(pk, plen, NULL, &o, &err))
        fail_msg("protocol %s, %s: %s", proto, (char *)want, err.message);
    conc_buf got = CONC_BUF_INIT, p = CONC_BUF_INIT;
    assert_conc_ok(conc_obj_repr(o, &got));
    if (got.len != rlen || memcmp(got.data, want, rlen) != 0)
        fail_msg("protocol %s: CPython %s, conc %s", proto, (char *)want,
                 (char *)got.data);
    assert_conc_ok(conc_obj_dumps(o, &p));
    append_hex(back, p.data, p.len);
    assert_conc_ok(conc_buf_append(back, "\n", 1));
    sent->repr = got;
    snprintf(sent->what, sizeof sent->what, "protocol %s", proto);
    conc_buf_free(&p);
    conc_obj_decref(o);
    free(pk);
    free(want);
}

/* Compares the peer's reprs of what conc sent with conc's own. */
static void
check_replies(conc_buf *replies, struct sent *sent, size_t n)
{
    assert_conc_ok(conc_buf_append(replies, "", 1));
    char *save = NULL, *line = strtok_r((char *)replies->data, "\n", &save);
    for (size_t i = 0; i < n; i++, line = strtok_r(NULL, "\n", &save)) {
        assert_non_null(line);
        if (!strncmp(line, "ERR", 3))
            fail_msg("CPython refused conc's pickle of %.*s (%s): %s",
                     (int)sent[i].repr.len, (char *)sent[i].repr.data,
                     sent[i].what, line);
        char *same = strchr(line, ' ');
        assert_non_null(same);
        *same++ = '\0';
        size_t len = strlen(line);
        uint8_t *got = malloc(len / 2 + 1);
        assert_non_null(got);
        len = unhex(line, len, got);
        got[len] = '\0';
        if (len != sent[i].repr.len || memcmp(got, sent[i].repr.data, len))
            fail_msg("%s: conc %.*s, CPython read back %s", sent[i].what,
                     (int)sent[i].repr.len, (char *)sent[i].repr.data,
                     (char *)got);
        /* Byte for byte CPython's own pickle, but for FRAME and MEMOIZE. */
        if (!strcmp(same, "0"))
            fail_msg("%s: conc's pickle of %.*s is not CPython's", sent[i].what,
                     (int)sent[i].repr.len, (char *)sent[i].repr.data);
        free(got);
    }
    assert_null(line);
}

/* Values built in C, sent to CPython. */
static size_t
build_values(conc_obj **v)
{
    size_t n = 0;
    conc_obj *big = NULL;
    assert_conc_ok(conc_obj_int_parse("-123456789012345678901234567890", &big));
    v[n++] = big;
    v[n++] = conc_obj_float(1e-310);
    v[n++] = conc_obj_float(0.0 / 0.0);
    v[n++] = conc_obj_float(-0.0);
    v[n++] = conc_obj_float(0.1);
    v[n++] = conc_obj_str("\xf0\x9f\x98\x80 \xc3\xa9 '\"");
    conc_obj *args = conc_obj_tuple(1);
    assert_conc_ok(conc_obj_tuple_set_new(args, 0, conc_obj_str("x")));
    v[n++] = conc_obj_foreign("builtins", "KeyError", args, NULL, 0);
    conc_obj_decref(args);
    conc_obj *st = conc_obj_tuple(3), *addr = conc_obj_tuple(2);
    assert_conc_ok(conc_obj_tuple_set_new(addr, 0, conc_obj_str("127.0.0.1")));
    assert_conc_ok(conc_obj_tuple_set_new(addr, 1, conc_obj_int(5000)));
    assert_conc_ok(conc_obj_tuple_set_new(st, 0, conc_obj_str("Queue")));
    assert_conc_ok(conc_obj_tuple_set_new(st, 1, addr));
    assert_conc_ok(conc_obj_tuple_set_new(st, 2, conc_obj_str("7fada356a250")));
    conc_obj *none = conc_obj_tuple(0);
    v[n++] = conc_obj_foreign("multiprocessing.managers", "Token", none, st, 1);
    conc_obj_decref(none);
    conc_obj_decref(st);
    conc_obj *d = conc_obj_dict();
    for (int i = 0; i < 3; i++)
        assert_conc_ok(
            conc_obj_dict_set_new(d, conc_obj_int(i), conc_obj_list()));
    v[n++] = d;
    return n;
}

static void
test_cpython_both_ways(void **state)
{
    (void)state;
    conc_buf lines = CONC_BUF_INIT, back = CONC_BUF_INIT;
    conc_buf replies = CONC_BUF_INIT;
    run_peer("dump", NULL, &lines);
    assert_conc_ok(conc_buf_append(&lines, "", 1));
    enum { MAX_SENT = 512 };
    struct sent *sent = calloc(MAX_SENT, sizeof *sent);
    assert_non_null(sent);
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)lines.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        assert_true(n < MAX_SENT);
        check_line(line, &back, &sent[n++]);
    }
    assert_true(n >= 300); /* the whole battery came */

    conc_obj *built[16];
    size_t nb = build_values(built);
    for (size_t i = 0; i < nb; i++) {
        conc_buf p = CONC_BUF_INIT;
        assert_conc_ok(conc_obj_dumps(built[i], &p));
        append_hex(&back, p.data, p.len);
        assert_conc_ok(conc_buf_append(&back, "\n", 1));
        assert_conc_ok(conc_obj_repr(built[i], &sent[n].repr));
        snprintf(sent[n++].what, sizeof sent->what, "built in C");
        conc_buf_free(&p);
        conc_obj_decref(built[i]);
    }
    run_peer("load", &back, &replies);
    check_replies(&replies, sent, n);
    for (size_t i = 0; i < n; i++)
        conc_buf_free(&sent[i].repr);
    free(sent);
    conc_buf_free(&lines);
    conc_buf_free(&back);
    conc_buf_free(&replies);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_cpython_both_ways),
    };
    return conc_run_tests(tests);
}
