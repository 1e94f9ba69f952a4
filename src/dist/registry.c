/* The task registry: names to conc_task_fns, for this process's workers.
 * A short list under one lock: registrations are few and happen at start;
 * a lookup per task walks it (O(n) in the number of task names). */
#include <string.h>

#include "core/internal.h"
#include "core/lockword.h"
#include "dist/worker_internal.h"

struct reg_entry {
    char *name;
    conc_task_fn fn;
    struct reg_entry *next;
};

static conc__lockword reg_lock; /* guards reg_head */
static struct reg_entry *reg_head;

int
conc_dist_register(const char *name, conc_task_fn fn)
{
    if (!name || !fn || !conc__dist_name_ok(name, strlen(name)))
        return CONC_EINVAL;
    struct reg_entry *e = conc__calloc(1, sizeof *e);
    if (!e || !(e->name = conc__strdup(name))) {
        conc__free(e);
        return CONC_ENOMEM;
    }
    e->fn = fn;
    conc__lockword_acquire(&reg_lock, CONC__FOREVER, 0);
    for (struct reg_entry *o = reg_head; o; o = o->next)
        if (strcmp(o->name, name) == 0) {
            o->fn = fn;
            conc__lockword_release(&reg_lock, 0);
            conc__free(e->name);
            conc__free(e);
            return 0;
        }
    e->next = reg_head;
    reg_head = e;
    conc__lockword_release(&reg_lock, 0);
    return 0;
}

conc_task_fn
conc__dist_lookup(const char *name, size_t len)
{
    conc_task_fn fn = NULL;
    conc__lockword_acquire(&reg_lock, CONC__FOREVER, 0);
    for (struct reg_entry *e = reg_head; e && !fn; e = e->next)
        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            fn = e->fn;
    conc__lockword_release(&reg_lock, 0);
    return fn;
}
