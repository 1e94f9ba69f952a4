/* Fuzzes a manager server's handling of a request (src/manager/serve.c
 * and the built-in types) with bytes as a client would send them: the
 * bytes are unpickled as the server reads them and dispatched on a
 * server's table, with no network. Every input must be answered with a
 * reply that pickles, or refused, never crash, leak or hang.
 *
 * A fresh manager (not started) per input holds a dict, a list and a
 * stopped Queue (so that no get waits); a request whose ident is "d",
 * "l" or "q" is sent to them, since the fuzzer cannot guess their real
 * idents. Objects the input creates go with the manager. */
#include <unistd.h>

#include "fuzz.h"
#include "manager/manager_internal.h"

static const char *const short_ids[] = {"d", "l", "q"};
static const char *const typeids[] = {"dict", "list", "Queue"};
#define N_OBJS 3

/* The request with a short ident replaced by the real one, a new
 * reference (req itself, when there is nothing to replace). */
static conc_obj *
retarget(conc_obj *req, struct conc__mgr_obj *objs[N_OBJS])
{
    const char *id = conc_obj_str_value(conc_obj_seq_get(req, 0));
    if (conc_obj_typeof(req) != CONC_OBJ_TUPLE || !id)
        return conc_obj_incref(req);
    for (size_t i = 0; i < N_OBJS; i++) {
        if (strcmp(id, short_ids[i]))
            continue;
        size_t n = conc_obj_len(req);
        conc_obj *t = conc_obj_tuple(n);
        conc_obj *real = conc_obj_str(objs[i]->ident);
        FUZZ_CHECK(t && real);
        conc_obj_tuple_set_new(t, 0, real);
        for (size_t j = 1; j < n; j++)
            conc_obj_tuple_set_new(t, j,
                                   conc_obj_incref(conc_obj_seq_get(req, j)));
        return t;
    }
    return conc_obj_incref(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conc_obj *req;
    if (conc_obj_loads(data, size, NULL, &req, NULL) < 0)
        return 0;
    char address[64];
    snprintf(address, sizeof address, "@conc-fuzz-mgr-%d", (int)getpid());
    conc_manager *m;
    FUZZ_CHECK(conc_manager_new(address, NULL, &m) == 0);
    struct conc__mgr_obj *objs[N_OBJS];
    for (size_t i = 0; i < N_OBJS; i++) {
        conc_obj *none = conc_obj_tuple(0), *kw = conc_obj_dict();
        FUZZ_CHECK(conc__mgr_obj_create(m, typeids[i], none, kw, &objs[i]) ==
                   0);
        conc_obj_decref(none);
        conc_obj_decref(kw);
    }
    conc_manager_queue_type()->stop(objs[2]->self);
    conc_obj *target = retarget(req, objs);
    conc_obj *rep = conc__mgr_handle(m, target);
    if (rep) {
        conc_buf b = CONC_BUF_INIT;
        int rc = conc_obj_dumps(rep, &b);
        FUZZ_CHECK(rc == 0 || rc == CONC_ENOMEM || rc == CONC_EOVERFLOW);
        conc_buf_free(&b);
    }
    conc_obj_decref(rep);
    conc_obj_decref(target);
    conc_obj_decref(req);
    conc_manager_free(m);
    return 0;
}
