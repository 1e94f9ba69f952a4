/* What clients hold in the server, given back when a client leaves: a
 * Lock, RLock or Semaphore held by a client whose connection closed (its
 * process died) would otherwise stay held for good, as it does with
 * CPython's managers.
 *
 * A client is the connection a serving thread serves, numbered from 1 in
 * a thread-local variable that conc__mgr_client_leave clears. Objects that
 * can be held are listed in one registry; a client that held something
 * walks it when it leaves, and each object gives back what that client
 * still holds.
 *
 * Lock order: the registry's lock, then an object's monitor (in
 * give_back). Objects add and remove themselves without their monitor. */
#include "core/lockword.h"
#include "manager/sync_types.h"

static conc__lockword registry_lock;
static struct conc__mgr_holder *registry;
static _Atomic uint64_t last_client;

static _Thread_local uint64_t current_client;
static _Thread_local int current_holds;

uint64_t
conc__mgr_client(void)
{
    if (!current_client)
        current_client = ++last_client;
    return current_client;
}

void
conc__mgr_client_holds(void)
{
    current_holds = 1;
}

void
conc__mgr_holder_add(struct conc__mgr_holder *h)
{
    conc__lockword_acquire(&registry_lock, CONC__FOREVER, 0);
    h->prev = NULL;
    h->next = registry;
    if (registry)
        registry->prev = h;
    registry = h;
    conc__lockword_release(&registry_lock, 0);
}

void
conc__mgr_holder_remove(struct conc__mgr_holder *h)
{
    conc__lockword_acquire(&registry_lock, CONC__FOREVER, 0);
    if (h->prev)
        h->prev->next = h->next;
    else
        registry = h->next;
    if (h->next)
        h->next->prev = h->prev;
    conc__lockword_release(&registry_lock, 0);
}

void
conc__mgr_client_leave(void)
{
    uint64_t client = current_client;
    if (client && current_holds) {
        conc__lockword_acquire(&registry_lock, CONC__FOREVER, 0);
        for (struct conc__mgr_holder *h = registry; h; h = h->next)
            h->give_back(h, client);
        conc__lockword_release(&registry_lock, 0);
    }
    current_client = 0;
    current_holds = 0;
}
