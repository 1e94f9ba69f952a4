/* The server's table of objects: create, incref and decref as CPython's
 * Server does, an object's ident being its address in hex. The table is a
 * plain array searched in order, enough for the objects of a few clients.
 * An object a proxy inside a stored value refers to is pinned: it keeps
 * one reference more until the manager is freed.
 *
 * Lock order: the manager's lock (m->cond), then nothing: types' create,
 * release and methods run without it. */
#include <stdio.h>

#include "manager/manager_internal.h"

#define FIRST_CAP 16

static struct conc__mgr_obj *
find_locked(conc_manager *m, const char *ident)
{
    for (size_t i = 0; i < m->n_objs; i++)
        if (!strcmp(m->objs[i]->ident, ident))
            return m->objs[i];
    return NULL;
}

struct conc__mgr_obj *
conc__mgr_obj_get(conc_manager *m, const char *ident)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    struct conc__mgr_obj *o = find_locked(m, ident);
    if (o)
        o->refs++;
    conc_cond_release(m->cond);
    return o;
}

static void
remove_locked(conc_manager *m, struct conc__mgr_obj *o)
{
    for (size_t i = 0; i < m->n_objs; i++) {
        if (m->objs[i] == o) {
            m->objs[i] = m->objs[--m->n_objs];
            return;
        }
    }
}

void
conc__mgr_obj_put(conc_manager *m, struct conc__mgr_obj *o)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    int last = --o->refs == 0;
    if (last)
        remove_locked(m, o);
    conc_cond_release(m->cond);
    if (!last)
        return;
    if (!o->shared && o->type->release)
        o->type->release(o->self);
    conc__free(o);
}

static const struct conc__mgr_typeid *
find_type_locked(conc_manager *m, const char *typeid)
{
    for (size_t i = 0; i < m->n_types; i++)
        if (!strcmp(m->types[i].name, typeid))
            return &m->types[i];
    return NULL;
}

/* Enters a new object in the table, or counts one more reference to a
 * shared object already there. */
static int
enter(conc_manager *m, const struct conc__mgr_typeid *t, void *self,
      struct conc__mgr_obj **out)
{
    char ident[24];
    snprintf(ident, sizeof ident, "%lx", (unsigned long)(uintptr_t)self);
    struct conc__mgr_obj *o = find_locked(m, ident);
    if (o) {
        o->refs++;
        *out = o;
        return 0;
    }
    if (m->n_objs == m->cap_objs) {
        size_t cap = m->cap_objs ? 2 * m->cap_objs : FIRST_CAP;
        void *grown = conc__realloc(m->objs, cap * sizeof *m->objs);
        if (!grown)
            return CONC_ENOMEM;
        m->objs = grown;
        m->cap_objs = cap;
    }
    o = conc__calloc(1, sizeof *o);
    if (!o)
        return CONC_ENOMEM;
    memcpy(o->ident, ident, sizeof ident);
    o->type = t->type;
    o->self = self;
    o->refs = 1;
    o->shared = t->shared;
    m->objs[m->n_objs++] = o;
    *out = o;
    return 0;
}

int
conc__mgr_type_find(conc_manager *m, const char *typeid,
                    struct conc__mgr_typeid *out)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    const struct conc__mgr_typeid *found = find_type_locked(m, typeid);
    if (found)
        *out = *found;
    conc_cond_release(m->cond);
    return found ? 0 : conc_fail(CONC_EKEY, "%s", typeid);
}

int
conc__mgr_obj_adopt(conc_manager *m, const struct conc__mgr_typeid *t,
                    void *self, struct conc__mgr_obj **out)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    int rc = enter(m, t, self, out);
    conc_cond_release(m->cond);
    if (rc < 0 && !t->shared && t->type->release)
        t->type->release(self);
    return rc;
}

int
conc__mgr_obj_create(conc_manager *m, const char *typeid, conc_obj *args,
                     conc_obj *kwds, struct conc__mgr_obj **out)
{
    struct conc__mgr_typeid t;
    int rc = conc__mgr_type_find(m, typeid, &t);
    if (rc < 0)
        return rc;
    void *self = t.arg;
    if (!t.shared && (rc = t.type->create(t.arg, args, kwds, &self)) < 0)
        return rc;
    return conc__mgr_obj_adopt(m, &t, self, out);
}

void
conc__mgr_obj_pin(conc_manager *m, const char *ident)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    struct conc__mgr_obj *o = find_locked(m, ident);
    if (o && !o->pinned) {
        o->pinned = 1;
        o->refs++;
    }
    conc_cond_release(m->cond);
}

size_t
conc__mgr_obj_count(conc_manager *m)
{
    conc_cond_acquire(m->cond, CONC_FOREVER);
    size_t n = m->n_objs;
    conc_cond_release(m->cond);
    return n;
}
