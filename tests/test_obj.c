/* conc_obj: values, Python's equality, hashing and repr, and the pickle
 * codec on its own (test_obj_python runs it against CPython). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "conc_test.h"

/* ---- Helpers ------------------------------------------------------------- */

/* Asserts that repr(o) is `want`, then drops o. */
static void
assert_repr_drop(conc_obj *o, const char *want)
{
    assert_non_null(o);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_obj_repr(o, &b));
    assert_string_equal((const char *)b.data, want);
    conc_buf_free(&b);
    conc_obj_decref(o);
}

static size_t
unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* Loads a pickle given in hex; returns the result code. */
static int
loads_hex(const char *hex, const conc_obj_load_opts *opts, conc_obj **out,
          conc_obj_load_error *err)
{
    uint8_t buf[1024];
    size_t n = unhex(hex, buf);
    return conc_obj_loads(buf, n, opts, out, err);
}

static conc_obj *
parse_int(const char *text)
{
    conc_obj *o = NULL;
    assert_conc_ok(conc_obj_int_parse(text, &o));
    return o;
}

/* ---- Scalars ------------------------------------------------------------- */

static void
test_scalars(void **state)
{
    (void)state;
    assert_ptr_equal(conc_obj_none(), conc_obj_none());
    assert_ptr_equal(conc_obj_bool(7), conc_obj_true());
    assert_int_equal(conc_obj_typeof(conc_obj_false()), CONC_OBJ_BOOL);
    assert_int_equal(conc_obj_typeof(NULL), 0);
    conc_obj_decref(conc_obj_none()); /* harmless on a singleton */

    conc_obj *i = conc_obj_int(-42);
    int64_t v = 0;
    assert_conc_ok(conc_obj_int_value(i, &v));
    assert_int_equal(v, -42);
    double d = 0;
    assert_conc_ok(conc_obj_float_value(i, &d));
    assert_true(d == -42.0);
    assert_int_equal(conc_obj_truth(i), 1);
    assert_conc(conc_obj_int_value(conc_obj_none(), &v), CONC_ETYPE);
    assert_conc_ok(conc_obj_int_value(conc_obj_true(), &v));
    assert_int_equal(v, 1);
    conc_obj_decref(i);

    conc_obj *s = conc_obj_strn("a\0b", 3);
    assert_int_equal(conc_obj_len(s), 3);
    assert_memory_equal(conc_obj_str_value(s), "a\0b", 4);
    conc_obj_decref(s);
    /* Not UTF-8: an overlong form, a surrogate, a cut sequence. */
    assert_null(conc_obj_str("\xc0\xaf"));
    assert_null(conc_obj_str("\xed\xa0\x80"));
    assert_null(conc_obj_str("\xe2\x82"));
    conc_obj *b = conc_obj_bytes("\x00\xff", 2);
    assert_memory_equal(conc_obj_bytes_value(b), "\x00\xff", 2);
    assert_null(conc_obj_str_value(b));
    assert_int_equal(conc_obj_truth(b), 1);
    conc_obj_decref(b);
}

static void
test_big_ints(void **state)
{
    (void)state;
    const char *texts[] = {"0",
                           "-9223372036854775808",
                           "9223372036854775807",
                           "9223372036854775808",
                           "-9223372036854775809",
                           "1180591620717411303424",
                           "-1208925819614629174706176",
                           "1393796574908163946345982392040522594123776"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        assert_repr_drop(parse_int(texts[i]), texts[i]);
    assert_repr_drop(parse_int(" +1_000_000 "), "1000000");
    conc_obj *o = NULL;
    assert_conc(conc_obj_int_parse("1__0", &o), CONC_EVALUE);
    assert_conc(conc_obj_int_parse("_1", &o), CONC_EVALUE);
    assert_conc(conc_obj_int_parse("12a", &o), CONC_EVALUE);
    assert_conc(conc_obj_int_parse("-", &o), CONC_EVALUE);

    conc_obj *big = parse_int("18446744073709551616"); /* 2**64 */
    int64_t v, h;
    assert_conc(conc_obj_int_value(big, &v), CONC_EOVERFLOW);
    assert_conc_ok(conc_obj_hash(big, &h));
    assert_int_equal(h, 8); /* Python: hash(2**64) == 8 */
    conc_obj *f = conc_obj_float(18446744073709551616.0);
    assert_int_equal(conc_obj_equal(big, f), 1);
    int64_t hf;
    assert_conc_ok(conc_obj_hash(f, &hf));
    assert_int_equal(hf, h);
    conc_obj *next = parse_int("18446744073709551617");
    assert_int_equal(conc_obj_equal(next, f), 0);
    conc_obj_decref(next);
    conc_obj_decref(f);
    conc_obj_decref(big);
    /* float(int) rounds correctly, half to even; 2**1024 overflows. */
    static const struct {
        const char *text;
        double want;
    } floats[] = {
        {"9007199254740993", 9007199254740992.0},           /* 2**53 + 1 */
        {"9007199254740995", 9007199254740996.0},           /* 2**53 + 3 */
        {"18446744073709553665", 18446744073709555712.0},   /* 2**64+2**11+1 */
        {"-18446744073709553664", -18446744073709551616.0}, /* a tie */
        {"1180591620717411303424", 1180591620717411303424.0},
    };
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        conc_obj *n = parse_int(floats[i].text);
        double d = 0;
        assert_conc_ok(conc_obj_float_value(n, &d));
        if (d != floats[i].want)
            fail_msg("float(%s) = %.17g", floats[i].text, d);
        conc_obj_decref(n);
    }
    conc_obj *huge =
        parse_int(/* 2**1024 */
                  "179769313486231590772930519078902473361797697894230657273430"
                  "081157732675805500963132708477322407536021120113879871393357"
                  "658789768814416622492847430639474124377767893424865485276302"
                  "219601246094119453082952085005768838150682342462881473913110"
                  "540827237163350510684586298239947245938479716304835356329624"
                  "224137216");
    double dh;
    assert_conc(conc_obj_float_value(huge, &dh), CONC_EOVERFLOW);
    conc_obj_decref(huge);
    /* hash(-1) is -2 in Python, and hash(2**61 - 1) is 0. */
    conc_obj *m1 = conc_obj_int(-1), *mod = parse_int("2305843009213693951");
    assert_conc_ok(conc_obj_hash(m1, &h));
    assert_int_equal(h, -2);
    assert_conc_ok(conc_obj_hash(mod, &h));
    assert_int_equal(h, 0);
    conc_obj_decref(m1);
    conc_obj_decref(mod);
}

/* ---- Equality and hashing ------------------------------------------------ */

static void
test_numeric_keys(void **state)
{
    (void)state;
    conc_obj *one = conc_obj_int(1), *onef = conc_obj_float(1.0);
    conc_obj *t = conc_obj_true();
    int64_t h1, h2, h3;
    assert_int_equal(conc_obj_equal(one, onef), 1);
    assert_int_equal(conc_obj_equal(onef, t), 1);
    assert_conc_ok(conc_obj_hash(one, &h1));
    assert_conc_ok(conc_obj_hash(onef, &h2));
    assert_conc_ok(conc_obj_hash(t, &h3));
    assert_true(h1 == h2 && h2 == h3);
    /* Python: {1: 'a', 1.0: 'b', True: 'c'} == {1: 'c'}. */
    conc_obj *d = conc_obj_dict();
    assert_conc_ok(conc_obj_dict_set_new(d, one, conc_obj_str("a")));
    assert_conc_ok(conc_obj_dict_set_new(d, onef, conc_obj_str("b")));
    assert_conc_ok(conc_obj_dict_set(d, t, conc_obj_none()));
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_float(0.5), conc_obj_str("c")));
    assert_int_equal(conc_obj_len(d), 2);
    assert_repr_drop(conc_obj_incref(d), "{1: None, 0.5: 'c'}");
    /* -0.0 == 0.0; 0.5 has CPython's hash of 2**60. */
    conc_obj *z = conc_obj_float(-0.0), *zi = conc_obj_int(0);
    conc_obj *half = conc_obj_float(0.5);
    assert_int_equal(conc_obj_equal(z, zi), 1);
    assert_conc_ok(conc_obj_dict_get(d, half, &t));
    assert_string_equal(conc_obj_str_value(t), "c");
    assert_conc_ok(conc_obj_hash(half, &h1));
    assert_int_equal(h1, (int64_t)1 << 60);
    conc_obj_decref(half);
    conc_obj_decref(z);
    conc_obj_decref(zi);
    conc_obj_decref(d);
}

static void
test_nan_and_identity(void **state)
{
    (void)state;
    conc_obj *n1 = conc_obj_float(NAN), *n2 = conc_obj_float(NAN);
    assert_int_equal(conc_obj_equal(n1, n1), 1);
    assert_int_equal(conc_obj_equal(n1, n2), 0);
    conc_obj *s = conc_obj_set();
    assert_conc_ok(conc_obj_set_add(s, n1));
    assert_conc_ok(conc_obj_set_add(s, n1));
    assert_conc_ok(conc_obj_set_add(s, n2));
    assert_int_equal(conc_obj_len(s), 2);
    assert_int_equal(conc_obj_contains(s, n1), 1);
    conc_obj_decref(n1);
    conc_obj_decref(n2);
    conc_obj_decref(s);
    /* Foreign records are equal to themselves only. */
    conc_obj *a = conc_obj_foreign("builtins", "KeyError", NULL, NULL, 0);
    conc_obj *b = conc_obj_foreign("builtins", "KeyError", NULL, NULL, 0);
    assert_int_equal(conc_obj_equal(a, a), 1);
    assert_int_equal(conc_obj_equal(a, b), 0);
    conc_obj_decref(a);
    conc_obj_decref(b);
}

static void
test_unhashable(void **state)
{
    (void)state;
    conc_obj *d = conc_obj_dict(), *l = conc_obj_list(), *t = conc_obj_tuple(1);
    int64_t h;
    assert_conc(conc_obj_dict_set(d, l, l), CONC_ETYPE);
    assert_conc(conc_obj_dict_set(d, d, l), CONC_ETYPE);
    assert_conc(conc_obj_hash(l, &h), CONC_ETYPE);
    assert_conc_ok(conc_obj_tuple_set_new(t, 0, conc_obj_incref(l)));
    assert_conc(conc_obj_dict_set(d, t, l), CONC_ETYPE); /* ([],) */
    assert_conc(conc_obj_contains(d, l), CONC_ETYPE);
    assert_conc(conc_obj_contains(l, t), 0);
    conc_obj *fs = NULL, *s = conc_obj_set();
    assert_conc_ok(conc_obj_set_add_new(s, conc_obj_int(3)));
    assert_conc_ok(conc_obj_frozenset(s, &fs));
    assert_conc_ok(conc_obj_dict_set(d, fs, fs)); /* frozenset is hashable */
    assert_conc(conc_obj_dict_set(d, s, fs), CONC_ETYPE);
    assert_int_equal(conc_obj_equal(s, fs), 1);
    assert_int_equal(conc_obj_contains(d, s), CONC_ETYPE);
    assert_conc(conc_obj_frozenset(d, &fs), CONC_ETYPE);
    conc_obj_decref(fs);
    conc_obj_decref(s);
    conc_obj_decref(t);
    conc_obj_decref(l);
    conc_obj_decref(d);
}

/* A stack of nested tuples deeper than CONC_OBJ_MAX_DEPTH. */
static void
test_depth_limit(void **state)
{
    (void)state;
    conc_obj *o = conc_obj_none();
    for (int i = 0; i < CONC_OBJ_MAX_DEPTH + 5; i++) {
        conc_obj *t = conc_obj_tuple(1);
        assert_conc_ok(conc_obj_tuple_set_new(t, 0, o));
        o = t;
    }
    int64_t h;
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_obj_hash(o, &h), CONC_EOVERFLOW);
    assert_conc(conc_obj_repr(o, &b), CONC_EOVERFLOW);
    assert_conc(conc_obj_dumps(o, &b), CONC_EOVERFLOW);
    assert_int_equal(b.len, 0);
    conc_obj *copy = conc_obj_list();
    assert_conc(conc_obj_equal(o, o), 1);
    conc_obj_decref(copy);
    conc_obj_decref(o);
}

/* ---- Containers ---------------------------------------------------------- */

static void
test_dict_order_and_delete(void **state)
{
    (void)state;
    conc_obj *d = conc_obj_dict();
    enum { N = 5000 };
    for (int i = 0; i < N; i++)
        assert_conc_ok(
            conc_obj_dict_set_new(d, conc_obj_int(i), conc_obj_int(i * 2)));
    for (int i = 0; i < N; i += 2) {
        conc_obj *k = conc_obj_int(i);
        assert_conc_ok(conc_obj_dict_del(d, k));
        assert_conc(conc_obj_dict_del(d, k), CONC_EKEY);
        conc_obj_decref(k);
    }
    assert_int_equal(conc_obj_len(d), N / 2);
    conc_obj *k0 = conc_obj_int(0);
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_incref(k0), conc_obj_none()));
    size_t pos = 0, n = 0;
    conc_obj *k, *v;
    int64_t prev = -1, x;
    while (conc_obj_next(d, &pos, &k, &v) == 1) {
        assert_conc_ok(conc_obj_int_value(k, &x));
        if (n++ < N / 2) {
            assert_true(x > prev && x % 2 == 1); /* insertion order kept */
            prev = x;
        } else {
            assert_int_equal(x, 0); /* re-added: goes last */
        }
    }
    assert_int_equal(n, N / 2 + 1);
    assert_conc(conc_obj_dict_get(d, conc_obj_none(), &v), CONC_EKEY);
    assert_conc_ok(conc_obj_dict_get(d, k0, &v));
    assert_ptr_equal(v, conc_obj_none());
    conc_obj_decref(k0);
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_str("key"), conc_obj_int(9)));
    assert_non_null(conc_obj_dict_get_str(d, "key"));
    assert_null(conc_obj_dict_get_str(d, "nokey"));
    conc_obj_decref(d);
}

static void
test_lists(void **state)
{
    (void)state;
    conc_obj *l = conc_obj_list();
    for (int i = 0; i < 10; i++)
        assert_conc_ok(conc_obj_list_append_new(l, conc_obj_int(i)));
    assert_conc_ok(conc_obj_list_del(l, 0));
    assert_conc(conc_obj_list_del(l, 9), CONC_EINDEX);
    assert_conc_ok(conc_obj_list_set_new(l, 0, conc_obj_str("x")));
    assert_conc(conc_obj_list_set_new(l, 99, conc_obj_none()), CONC_EINDEX);
    assert_conc(conc_obj_tuple_set_new(l, 0, conc_obj_none()), CONC_ETYPE);
    assert_conc(conc_obj_list_append_new(conc_obj_none(), conc_obj_int(1)),
                CONC_ETYPE);
    assert_int_equal(conc_obj_contains(l, conc_obj_true()), 0);
    assert_null(conc_obj_seq_get(l, 9));
    assert_repr_drop(l, "['x', 2, 3, 4, 5, 6, 7, 8, 9]");
}

/* ---- repr ---------------------------------------------------------------- */

static void
test_float_repr(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.1, "0.1"},
        {1.5, "1.5"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {1e-4, "0.0001"},
        {1e-5, "1e-05"},
        {1e-310, "1e-310"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {0.30000000000000004, "0.30000000000000004"},
        {2.0, "2.0"},
        {1e22, "1e+22"},
        {9007199254740993.0, "9007199254740992.0"},
        {0.000123, "0.000123"},
        {1e100, "1e+100"},
        {-2.5e-7, "-2.5e-07"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
        /* A power of two: the gap below it is half the gap above. */
        {9007199254740992.0, "9007199254740992.0"},
        {5.960464477539063e-08, "5.960464477539063e-08"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_repr_drop(conc_obj_float(cases[i].v), cases[i].want);
}

static void
test_text_repr(void **state)
{
    (void)state;
    assert_repr_drop(conc_obj_str("it's"), "\"it's\"");
    assert_repr_drop(conc_obj_str("a'b\"c"), "'a\\'b\"c'");
    assert_repr_drop(conc_obj_str("tab\tnl\ncr\r\\"), "'tab\\tnl\\ncr\\r\\\\'");
    assert_repr_drop(conc_obj_strn("\x00\x7f", 2), "'\\x00\\x7f'");
    /* é is printable; U+00A0, U+00AD, U+200B and U+E000 are not; U+1F600
     * (outside the BMP) is. */
    assert_repr_drop(conc_obj_str("\xc3\xa9\xc2\xa0\xc2\xad"),
                     "'\xc3\xa9\\xa0\\xad'");
    assert_repr_drop(conc_obj_str("\xe2\x80\x8b\xee\x80\x80"),
                     "'\\u200b\\ue000'");
    assert_repr_drop(conc_obj_str("\xf0\x9f\x98\x80\xf3\xa0\x80\x81"),
                     "'\xf0\x9f\x98\x80\\U000e0001'");
    assert_repr_drop(conc_obj_bytes("it's\x00\xff\\", 7),
                     "b\"it's\\x00\\xff\\\\\"");
    assert_repr_drop(conc_obj_bytes("", 0), "b''");
}

static void
test_container_repr(void **state)
{
    (void)state;
    assert_repr_drop(conc_obj_tuple(0), "()");
    assert_repr_drop(conc_obj_tuple(1), "(None,)");
    assert_repr_drop(conc_obj_tuple(2), "(None, None)");
    assert_repr_drop(conc_obj_dict(), "{}");
    assert_repr_drop(conc_obj_set(), "set()");
    conc_obj *fs = NULL, *l = conc_obj_list();
    assert_conc_ok(conc_obj_frozenset(l, &fs));
    assert_repr_drop(fs, "frozenset()");
    assert_conc_ok(conc_obj_list_append_new(l, conc_obj_int(1)));
    assert_conc_ok(conc_obj_list_append_new(l, conc_obj_int(2)));
    assert_conc_ok(conc_obj_frozenset(l, &fs));
    assert_repr_drop(fs, "frozenset({1, 2})");
    conc_obj *d = conc_obj_dict();
    assert_conc_ok(conc_obj_dict_set_new(d, conc_obj_str("l"), l));
    assert_conc_ok(conc_obj_dict_set_new(d, conc_obj_tuple(0), conc_obj_set()));
    assert_repr_drop(d, "{'l': [1, 2], (): set()}");
    conc_obj *args = conc_obj_tuple(1);
    assert_conc_ok(conc_obj_tuple_set_new(args, 0, conc_obj_str("x")));
    assert_repr_drop(conc_obj_foreign("builtins", "KeyError", args, NULL, 0),
                     "KeyError('x')");
    conc_obj_decref(args);
    assert_repr_drop(conc_obj_foreign("_queue", "Empty", NULL, NULL, 0),
                     "<class '_queue.Empty'>");
}

/* ---- Pickle -------------------------------------------------------------- */

/* Pickles CPython wrote (manager-transcripts), and their repr in Python. */
static const struct {
    const char *hex, *repr;
} transcripts[] = {
    /* A proxy inside a value, memo references included. */
    {"800495b200000000000000288c0c376632393434356434346330948c0b5f5f736574"
     "6974656d5f5f948c05696e6e6572948c186d756c746970726f63657373696e672e6d"
     "616e6167657273948c0c52656275696c6450726f78799493942868038c094c697374"
     "50726f787994939468038c05546f6b656e9493942981948c046c697374948c093132"
     "372e302e302e31944d8b1386948c0c376632393434363435643030948794628c0670"
     "69636b6c65947d947494529486947d9474942e",
     "('7f29445d44c0', '__setitem__', ('inner', RebuildProxy(<class "
     "'multiprocessing.managers.ListProxy'>, Token(typeid='list', "
     "address=('127.0.0.1', 5003), id='7f2944645d00'), 'pickle', {})), "
     "{})"},
    /* An empty tuple first, with nothing on the stack yet. */
    {"8004292e", "()"},
    {"8004951000000000000000284e8c0564756d6d7994297d9474942e",
     "(None, 'dummy', (), {})"},
    {"8004952900000000000000288c0c376661646133353661323530948c03676574942"
     "97d948c0774696d656f7574944b017374942e",
     "('7fada356a250', 'get', (), {'timeout': 1})"},
    {"80049518000000000000008c072352455455524e948a090000000000000000408694"
     "2e",
     "('#RETURN', 1180591620717411303424)"},
    {"80049522000000000000008c06234552524f52948c065f7175657565948c05456d70"
     "747994939429529486942e",
     "('#ERROR', Empty())"},
    {"80049532000000000000008c06234552524f52948c086275696c74696e73948c084b"
     "65794572726f729493948c076d697373696e67948594529486942e",
     "('#ERROR', KeyError('missing'))"},
    {"8004952c000000000000008c072352455455524e948c086275696c74696e73948c04"
     "6c6973749493945d948c016194618594529486942e",
     "('#RETURN', ['a'])"},
    {"80049589000000000000008c062350524f585994288c085f5f6e6578745f5f948c04"
     "73656e64948c057468726f77948c05636c6f73659474948c186d756c746970726f63"
     "657373696e672e6d616e6167657273948c05546f6b656e9493942981948c08497465"
     "7261746f72948c093132372e302e302e31944d8a1386948c0c37663239343435626562"
     "313094879462869486942e",
     "('#PROXY', (('__next__', 'send', 'throw', 'close'), "
     "Token(typeid='Iterator', address=('127.0.0.1', 5002), "
     "id='7f29445beb10')))"},
};

static void
test_loads_transcripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof transcripts / sizeof *transcripts; i++) {
        char hex[1024];
        size_t n = 0;
        for (const char *p = transcripts[i].hex; *p; p++)
            if (*p != ' ')
                hex[n++] = *p;
        hex[n] = '\0';
        conc_obj *o = NULL;
        conc_obj_load_error err;
        int r = loads_hex(hex, NULL, &o, &err);
        if (r)
            fail_msg("transcript %zu: %s", i, err.message);
        assert_repr_drop(o, transcripts[i].repr);
    }
}

/* A refusal names the opcode and its offset. */
static void
assert_refused(const char *hex, const conc_obj_load_opts *opts, int want,
               int op, size_t offset)
{
    conc_obj *o = conc_obj_none();
    conc_obj_load_error err = {0};
    assert_conc(loads_hex(hex, opts, &o, &err), want);
    assert_ptr_equal(o, conc_obj_none()); /* *out unchanged */
    assert_int_equal(err.opcode, op);
    assert_int_equal(err.offset, offset);
    assert_string_equal(err.message, conc_failure_message());
    assert_non_null(strstr(err.message, "pickle: "));
}

static void
test_loads_refusals(void **state)
{
    (void)state;
    /* os.system('x'): a global off the allowlist. */
    assert_refused("80048c026f73948c0673797374656d9493948c0178948594522e", NULL,
                   CONC_EPROTO, 0x93, 16);
    assert_non_null(strstr(conc_failure_message(), "os.system"));
    /* l = []; l.append(l) as CPython pickles it: recursive. */
    assert_refused("80045d94680061"
                   "2e",
                   NULL, CONC_EPROTO, 0x61, 6);
    assert_non_null(strstr(conc_failure_message(), "recursive"));
    /* Truncated, no STOP, a persistent id, protocol 1, an unknown op. */
    assert_refused("80048c05616263", NULL, CONC_EPROTO, 0x8c, 2);
    assert_refused("80044e", NULL, CONC_EPROTO, -1, 3);
    assert_refused("80044e512e", NULL, CONC_EPROTO, 0x51, 3);
    assert_refused("80014e2e", NULL, CONC_EPROTO, 0x80, 0);
    assert_refused("8004ff2e", NULL, CONC_EPROTO, 0xff, 2);
    /* Invalid UTF-8, an unhashable key ({[]: 1} by hand), a missing memo
     * entry, two values at STOP. */
    assert_refused("80048c01ff2e", NULL, CONC_EPROTO, 0x8c, 2);
    assert_refused("80047d5d4b01732e", NULL, CONC_ETYPE, 0x73, 6);
    assert_refused("800468052e", NULL, CONC_EPROTO, 0x68, 2);
    assert_refused("80044e4e2e", NULL, CONC_EPROTO, 0x2e, 4);
    /* A cycle made by hand: X = [], popped; Y = [X], popped; then X is
     * fetched and Y appended to it. */
    assert_refused("80045d94305d946800613068006801612e", NULL, CONC_EPROTO,
                   0x61, 15);
    /* Limits: depth ([[[]]] with max_depth 2), size, memo, int bytes. */
    assert_refused("80045d5d5d6161"
                   "2e",
                   &(conc_obj_load_opts){.max_depth = 1}, CONC_EOVERFLOW, 0x61,
                   6);
    assert_refused("80044e2e", &(conc_obj_load_opts){.max_size = 3},
                   CONC_EMSGSIZE, -1, 0);
    assert_refused("80044e72ffff00002e", &(conc_obj_load_opts){.max_memo = 100},
                   CONC_EOVERFLOW, 0x72, 3);
    assert_refused("80048b01100000", NULL, CONC_EOVERFLOW, 0x8b, 2);
    assert_refused("80044e4e4e852e", &(conc_obj_load_opts){.max_items = 2},
                   CONC_EOVERFLOW, 0x4e, 4);
}

static void
test_loads_any_global(void **state)
{
    (void)state;
    const char *hex = "80048c026f73948c0673797374656d9493948c0178948594522e";
    conc_obj *o = NULL;
    assert_conc_ok(
        loads_hex(hex, &(conc_obj_load_opts){.any_global = 1}, &o, NULL));
    assert_string_equal(conc_obj_foreign_module(o), "os");
    assert_string_equal(conc_obj_foreign_name(o), "system");
    assert_repr_drop(o, "system('x')"); /* inert: nothing ran */
}

/* Protocol 2 spells bytes, sets and exceptions through calls. */
static void
test_loads_protocol2(void **state)
{
    (void)state;
    static const struct {
        const char *hex, *repr;
    } cases[] = {
        /* pickle.dumps(b'\x00\xff', 2) */
        {"8002635f636f646563730a656e636f64650a7100580300000000c3bf710158060000"
         "006c6174696e3171028671035271042e",
         "b'\\x00\\xff'"},
        /* pickle.dumps(b'', 2) */
        {"8002635f5f6275696c74696e5f5f0a62797465730a7100295271012e", "b''"},
        /* pickle.dumps({1, 2}, 2) */
        {"8002635f5f6275696c74696e5f5f0a7365740a71005d7101284b014b0265857102"
         "5271032e",
         "{1, 2}"},
        /* pickle.dumps(KeyError('x'), 2) */
        {"800263657863657074696f6e730a4b65794572726f720a7100580100000078710185"
         "71025271032e",
         "KeyError('x')"},
        /* pickle.dumps(bytearray(b'ab'), 2), and at protocols 3 and 5 */
        {"8002635f5f6275696c74696e5f5f0a6279746561727261790a7100635f636f646563"
         "730a656e636f64650a710158020000006162710258060000006c6174696e31710386"
         "71045271058571065271072e",
         "bytearray(b'ab')"},
        {"8003636275696c74696e730a6279746561727261790a710043026162710185710252"
         "71032e",
         "bytearray(b'ab')"},
        {"8005950d000000000000009602000000000000006162942e",
         "bytearray(b'ab')"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char hex[512];
        size_t n = 0;
        for (const char *p = cases[i].hex; *p; p++)
            if (*p != ' ')
                hex[n++] = *p;
        hex[n] = '\0';
        conc_obj *o = NULL;
        conc_obj_load_error err;
        if (loads_hex(hex, NULL, &o, &err))
            fail_msg("case %zu: %s", i, err.message);
        assert_repr_drop(o, cases[i].repr);
    }
}

/* dumps then loads gives the same repr; a few pickles match CPython's
 * bytes (CPython adds FRAME and MEMOIZE, which conc leaves out). */
static void
test_dumps_roundtrip(void **state)
{
    (void)state;
    conc_obj *d = conc_obj_dict();
    assert_conc_ok(conc_obj_dict_set_new(
        d, conc_obj_str("big"), parse_int("-1208925819614629174706176")));
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_str("f"), conc_obj_float(1.5)));
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_int(-70000), conc_obj_int(70000)));
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_int(65535), conc_obj_int(-1)));
    conc_obj *l = conc_obj_list(), *s = conc_obj_set(), *fs = NULL;
    for (int i = 0; i < 2500; i++)
        assert_conc_ok(conc_obj_list_append_new(l, conc_obj_int(i)));
    assert_conc_ok(conc_obj_set_add_new(s, conc_obj_bytes("b", 1)));
    assert_conc_ok(conc_obj_frozenset(s, &fs));
    assert_conc_ok(conc_obj_dict_set_new(d, conc_obj_str("l"), l));
    assert_conc_ok(conc_obj_dict_set_new(d, fs, s));
    conc_obj *args = conc_obj_tuple(1), *state3 = conc_obj_tuple(3);
    assert_conc_ok(conc_obj_tuple_set_new(args, 0, conc_obj_str("k")));
    assert_conc_ok(conc_obj_tuple_set_new(state3, 0, conc_obj_str("list")));
    assert_conc_ok(conc_obj_tuple_set_new(state3, 2, conc_obj_str("ab12")));
    assert_conc_ok(conc_obj_dict_set_new(
        d, conc_obj_str("e"),
        conc_obj_foreign("builtins", "KeyError", args, NULL, 0)));
    conc_obj *empty = conc_obj_tuple(0);
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_str("t"),
                              conc_obj_foreign("multiprocessing.managers",
                                               "Token", empty, state3, 1)));
    conc_obj_decref(empty);
    conc_obj_decref(args);
    conc_obj_decref(state3);

    conc_buf p = CONC_BUF_INIT, r1 = CONC_BUF_INIT, r2 = CONC_BUF_INIT;
    conc_obj *back = NULL;
    assert_conc_ok(conc_obj_dumps(d, &p));
    assert_conc_ok(conc_obj_loads(p.data, p.len, NULL, &back, NULL));
    assert_conc_ok(conc_obj_repr(d, &r1));
    assert_conc_ok(conc_obj_repr(back, &r2));
    assert_string_equal((char *)r1.data, (char *)r2.data);
    assert_non_null(strstr(
        (char *)r1.data, "'t': Token(typeid='list', address=None, id='ab12')"));
    conc_obj_decref(back);

    conc_obj *t = conc_obj_tuple(2);
    assert_conc_ok(conc_obj_tuple_set_new(t, 0, conc_obj_int(1)));
    assert_conc_ok(conc_obj_tuple_set_new(t, 1, conc_obj_str("a")));
    assert_conc_ok(conc_obj_dumps(t, &p));
    assert_int_equal(p.len, 9);
    assert_memory_equal(p.data,
                        "\x80\x04K\x01\x8c\x01"
                        "a\x86.",
                        9);
    conc_obj_decref(t);
    conc_buf_free(&p);
    conc_buf_free(&r1);
    conc_buf_free(&r2);
    conc_obj_decref(d);
}

/* Every allocation of a load may fail: the load then reports
 * CONC_ENOMEM and leaks nothing (the leak guard checks). */
static void
test_loads_out_of_memory(void **state)
{
    (void)state;
    const char *hex = transcripts[8].hex;
    char clean[1024];
    size_t n = 0;
    for (const char *p = hex; *p; p++)
        if (*p != ' ')
            clean[n++] = *p;
    clean[n] = '\0';
    for (long k = 1;; k++) {
        conc_obj *o = NULL;
        conc_test_fail_alloc_after(k);
        int r = loads_hex(clean, NULL, &o, NULL);
        conc_test_fail_alloc_after(0);
        if (r == 0) {
            conc_obj_decref(o);
            break;
        }
        if (r != CONC_ENOMEM)
            fail_msg("failing allocation %ld: %s", k, conc_failure_message());
        assert_true(k < 1000);
    }
}

/* ---- Threads ------------------------------------------------------------ */

enum { READERS = 4, ROUNDS = 2000 };

/* Reads a shared value as a manager's threads would: references taken and
 * dropped, lookups (hashing its str keys), repr. Returns 0 or the line
 * that failed. */
static int
reader(void *arg)
{
    conc_obj *d = arg;
    conc_buf b = CONC_BUF_INIT;
    int bad = 0;
    for (int i = 0; i < ROUNDS && !bad; i++) {
        conc_obj *mine = conc_obj_incref(d);
        conc_obj *v = conc_obj_dict_get_str(mine, "k");
        if (!v || conc_obj_repr(mine, &b) != 0)
            bad = __LINE__;
        conc_obj_incref(v);
        conc_obj_decref(mine);
        conc_obj_decref(v);
    }
    conc_buf_free(&b);
    return bad;
}

/* Reference counts are atomic and reading changes nothing, so threads
 * share a value that nobody changes (ThreadSanitizer checks). */
static void
test_shared_between_threads(void **state)
{
    (void)state;
    conc_obj *d = conc_obj_dict();
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_str("k"), conc_obj_list()));
    assert_conc_ok(
        conc_obj_dict_set_new(d, conc_obj_int(1), conc_obj_str("v")));
    conc_thread *t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_conc_ok(conc_thread_start(reader, d, NULL, &t[i]));
    for (int i = 0; i < READERS; i++) {
        int status = -1;
        assert_conc_ok(conc_thread_join(t[i], CONC_FOREVER, &status));
        assert_int_equal(status, 0);
        conc_thread_free(t[i]);
    }
    conc_obj_decref(d);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_scalars),
        conc_unit_test(test_big_ints),
        conc_unit_test(test_numeric_keys),
        conc_unit_test(test_nan_and_identity),
        conc_unit_test(test_unhashable),
        conc_unit_test(test_depth_limit),
        conc_unit_test(test_dict_order_and_delete),
        conc_unit_test(test_lists),
        conc_unit_test(test_float_repr),
        conc_unit_test(test_text_repr),
        conc_unit_test(test_container_repr),
        conc_unit_test(test_loads_transcripts),
        conc_unit_test(test_loads_refusals),
        conc_unit_test(test_loads_any_global),
        conc_unit_test(test_loads_protocol2),
        conc_unit_test(test_dumps_roundtrip),
        conc_unit_test(test_loads_out_of_memory),
        conc_unit_test(test_shared_between_threads),
    };
    return conc_run_tests(tests);
}
