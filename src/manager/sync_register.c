/* The typeids of SyncManager beyond dict, list and the queues, registered
 * by conc_manager_new under CPython's names ("Iterator" for what a dict's
 * __iter__ answers, which a client does not create). */
#include "manager/sync_types.h"

int
conc__mgr_register_sync_types(conc_manager *m)
{
    static const struct {
        const char *name;
        const conc_manager_type *(*type)(void);
    } types[] = {
        {"Lock", conc_manager_lock_type},
        {"RLock", conc_manager_rlock_type},
        {"Semaphore", conc_manager_semaphore_type},
        {"BoundedSemaphore", conc_manager_bounded_semaphore_type},
        {"Condition", conc_manager_condition_type},
        {"Event", conc_manager_event_type},
        {"Barrier", conc_manager_barrier_type},
        {"Value", conc_manager_value_type},
        {"Array", conc_manager_array_type},
        {"Namespace", conc_manager_namespace_type},
        {"set", conc_manager_set_type},
        {"Iterator", conc__mgr_iterator_type},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof types / sizeof types[0]; i++) {
        /* Condition(lock) finds the lock among the manager's objects. */
        const conc_manager_type *t = types[i].type();
        void *arg = t == conc_manager_condition_type() ? (void *)m : NULL;
        rc = conc_manager_register(m, types[i].name, t, arg);
    }
    return rc;
}
