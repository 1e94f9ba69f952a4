/* A manager proxy handed to another process as bytes, as Python pickles a
 * proxy into a Process's or a Pool task's arguments: the manager's
 * address and the proxy's RebuildProxy record (conc_proxy_to_obj,
 * pickled). The process that receives it connects to the manager and
 * makes a proxy of its own (conc_proxy_from_obj). Header-only: the
 * manager examples (s00*_manager_*.c) include it. */
#ifndef PROXY_REF_H
#define PROXY_REF_H

#include <string.h>

#include "conc.h"
#include "example_util.h"

#define PROXY_REF_ADDRESS 128
#define PROXY_REF_PICKLE  512

/* Plain bytes: no pointer crosses the process boundary. */
struct proxy_ref {
    char address[PROXY_REF_ADDRESS];
    size_t len;
    unsigned char pickle[PROXY_REF_PICKLE];
};

/* Fills *ref with `p`, a proxy of the manager `m`. */
static inline void
proxy_ref_pack(conc_manager *m, conc_proxy *p, struct proxy_ref *ref)
{
    conc_buf b = CONC_BUF_INIT;
    check(conc_manager_address(m, &b), "conc_manager_address");
    check(b.len < sizeof ref->address ? 0 : CONC_EOVERFLOW, "address");
    memcpy(ref->address, b.data, b.len + 1);
    conc_obj *rec;
    check(conc_proxy_to_obj(p, &rec), "conc_proxy_to_obj");
    check(conc_obj_dumps(rec, &b), "conc_obj_dumps");
    check(b.len <= sizeof ref->pickle ? 0 : CONC_EOVERFLOW, "pickle");
    memcpy(ref->pickle, b.data, b.len);
    ref->len = b.len;
    conc_obj_decref(rec);
    conc_buf_free(&b);
}

/* Connects to the manager of `ref` with `authkey` and makes a proxy of
 * its own in *p; the caller frees *p, then *m. */
static inline void
proxy_ref_open(const void *arg, size_t len, const char *authkey,
               conc_manager **m, conc_proxy **p)
{
    const struct proxy_ref *ref = arg;
    check(len == sizeof *ref ? 0 : CONC_EINVAL, "proxy_ref");
    check(conc_manager_connect(ref->address, authkey, m),
          "conc_manager_connect");
    conc_obj *rec;
    check(conc_obj_loads(ref->pickle, ref->len, NULL, &rec, NULL),
          "conc_obj_loads");
    check(conc_proxy_from_obj(*m, rec, p), "conc_proxy_from_obj");
    conc_obj_decref(rec);
}

#endif
