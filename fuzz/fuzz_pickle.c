/* Fuzzes the pickle reader (src/obj/pickle_read.c) with bytes as a peer
 * would send them. Every input must be read or refused with a code and a
 * message, never crash, leak or hang. What is read must survive the trip
 * back: conc's own pickle of it (conc_obj_dumps) reads again into a value
 * with the same repr. Odd-sized inputs are read with any_global set, so
 * that names off the allowlist become foreign records too.
 *
 * Values may share parts through the memo, so a short pickle can stand
 * for a tree too large to print (each level holding the one below twice);
 * the round trip runs only for values of at most MAX_TREE nodes. */
#include "conc/obj.h"
#include "fuzz.h"

#define MAX_TREE 20000

/* Nodes of o as a tree (shared parts counted each time), stopping past
 * MAX_TREE. */
static size_t
tree_size(const conc_obj *o, size_t acc)
{
    if (acc > MAX_TREE)
        return acc;
    acc++;
    conc_obj_type t = conc_obj_typeof(o);
    if (t == CONC_OBJ_TUPLE || t == CONC_OBJ_LIST) {
        for (size_t i = 0; i < conc_obj_len(o) && acc <= MAX_TREE; i++)
            acc = tree_size(conc_obj_seq_get(o, i), acc);
    } else if (t == CONC_OBJ_DICT || t == CONC_OBJ_SET ||
               t == CONC_OBJ_FROZENSET) {
        size_t pos = 0;
        conc_obj *k, *v = NULL;
        while (acc <= MAX_TREE && conc_obj_next(o, &pos, &k, &v) == 1) {
            acc = tree_size(k, acc);
            if (v)
                acc = tree_size(v, acc);
        }
    } else if (t == CONC_OBJ_FOREIGN) {
        if (conc_obj_foreign_args(o))
            acc = tree_size(conc_obj_foreign_args(o), acc);
        if (conc_obj_foreign_state(o))
            acc = tree_size(conc_obj_foreign_state(o), acc);
    }
    return acc;
}

static void
round_trip(const conc_obj *o)
{
    conc_buf r1 = CONC_BUF_INIT, r2 = CONC_BUF_INIT, p = CONC_BUF_INIT;
    FUZZ_CHECK(conc_obj_repr(o, &r1) == 0);
    FUZZ_CHECK(conc_obj_dumps(o, &p) == 0);
    conc_obj *back = NULL;
    conc_obj_load_error err;
    conc_obj_load_opts opts = {.any_global = 1, .max_int_bytes = 1 << 16};
    int rc = conc_obj_loads(p.data, p.len, &opts, &back, &err);
    if (rc)
        fprintf(stderr, "conc's own pickle refused: %s\n", err.message);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(conc_obj_repr(back, &r2) == 0);
    FUZZ_CHECK(r1.len == r2.len && memcmp(r1.data, r2.data, r1.len) == 0);
    conc_obj_decref(back);
    conc_buf_free(&r1);
    conc_buf_free(&r2);
    conc_buf_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conc_obj_load_opts opts = {
        .max_depth = 64,
        .max_items = 200000,
        .max_int_bytes = 512,
        .any_global = (int)(size & 1),
    };
    conc_obj *o = NULL;
    conc_obj_load_error err = {0};
    int rc = conc_obj_loads(data, size, &opts, &o, &err);
    if (rc) {
        FUZZ_CHECK(rc < 0 && o == NULL);
        FUZZ_CHECK(strncmp(err.message, "pickle: ", 8) == 0);
        FUZZ_CHECK(err.offset <= size);
        return 0;
    }
    FUZZ_CHECK(o != NULL);
    if (tree_size(o, 0) <= MAX_TREE)
        round_trip(o);
    conc_obj_decref(o);
    return 0;
}
