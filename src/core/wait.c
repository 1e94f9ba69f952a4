/* The out-of-line parts of the waiting primitive; the policy is in
 * wait.h. */
#include <errno.h>
#include <sched.h>

#include "core/wait.h"

int
conc__spin_clock(struct conc__spin *sp)
{
    int64_t now = conc__now_ns();
    if (!sp->end)
        sp->end =
            sp->deadline - now > sp->budget ? now + sp->budget : sp->deadline;
    if (now >= sp->end)
        return 0;
    if (sp->flags & CONC__SPIN_YIELD)
        sched_yield();
    return 1;
}

void
conc__spin_step(struct conc__spin *sp)
{
    if (sp->budget == 0)
        *sp = conc__spin_start_flags(CONC__SPIN_NS, CONC__FOREVER,
                                     CONC__SPIN_EAGER);
    if (!conc__spin_more(sp))
        sched_yield(); /* the thread that began the step lost its CPU */
}

int
conc__wait_while(_Atomic uint32_t *word, uint32_t value, int64_t deadline,
                 int shared)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (atomic_load_explicit(word, memory_order_acquire) == value) {
        if (conc__spin_more(&sp))
            continue;
        if (conc__futex_wait(word, value, deadline, shared) == -ETIMEDOUT)
            return atomic_load_explicit(word, memory_order_acquire) == value
                       ? CONC_ETIMEDOUT
                       : 0;
    }
    return 0;
}
