/* The child reaper: reaping, waiting for and signalling children of this
 * process, and the children whose owner let go of them (platform.h).
 *
 * Adopted children are kept on a lock-free list whose nodes their owners
 * embed, so adopting needs no memory: pushes use a CAS on the head, and a
 * collecting pass takes the whole list with one exchange, reaps what it
 * can, and pushes back the rest. Both are safe from ABA because no node is
 * ever popped alone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "core/internal.h"
#include "unix/coro.h"
#include "unix/platform.h"

/* The first nap of a timed wait without a pidfd: 0.1 ms. */
#define NAP_MIN_NS ((int64_t)100000)

static _Atomic(struct conc__orphan *) adopted;
static atomic_int adopted_count;

int
conc__child_reap(int pid, int *status)
{
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) == 0) {
            if (si.si_pid == 0)
                return 0;
            *status = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
            return 1;
        }
        if (errno != EINTR)
            return -errno; /* ECHILD: CONC__CHILD_GONE */
    }
}

int
conc__child_ended(int pid)
{
    siginfo_t si;
    si.si_pid = 0;
    int r;
    do
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 || si.si_pid != 0;
}

int
conc__child_signal(int pid, int sig)
{
    if (kill(pid, sig) == 0 || errno == ESRCH)
        return 0;
    return -errno;
}

int
conc__child_await(int pid, int pidfd, int64_t deadline, int64_t *nap)
{
    if (deadline == CONC__FOREVER && !conc__coro_self) {
        siginfo_t si; /* (a coroutine polls the pidfd or naps instead) */
        /* ECHILD means another thread reaped it: looking again tells. */
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0 ||
            errno == EINTR || errno == ECHILD)
            return 0;
        return -errno;
    }
    if (conc__now_ns() >= deadline)
        return CONC_ETIMEDOUT;
    if (pidfd >= 0) {
        int r = conc__poll_fd(pidfd, POLLIN, deadline);
        return r > 0 ? 0 : r == 0 ? CONC_ETIMEDOUT : r;
    }
    /* No pidfd: nap, growing, and let the caller look again. */
    if (*nap < NAP_MIN_NS)
        *nap = NAP_MIN_NS;
    int64_t now = conc__now_ns(), until = now + *nap;
    int r = conc__poll_until(NULL, 0, until < deadline ? until : deadline);
    if (*nap < CONC__CHILD_NAP_MAX_NS)
        *nap = *nap * 2 < CONC__CHILD_NAP_MAX_NS ? *nap * 2
                                                 : CONC__CHILD_NAP_MAX_NS;
    return r < 0 ? r : 0;
}

/* ---- Adopted children --------------------------------------------------- */

static void
push(struct conc__orphan *o)
{
    struct conc__orphan *head = atomic_load(&adopted);
    do
        o->next = head;
    while (!atomic_compare_exchange_weak(&adopted, &head, o));
}

void
conc__reaper_adopt(struct conc__orphan *o)
{
    atomic_fetch_add(&adopted_count, 1);
    push(o);
}

int
conc__reaper_collect(void)
{
    if (!atomic_load_explicit(&adopted, memory_order_relaxed))
        return atomic_load(&adopted_count);
    struct conc__orphan *o = atomic_exchange(&adopted, NULL);
    while (o) {
        struct conc__orphan *next = o->next;
        int status;
        if (conc__child_reap(o->pid, &status) != 0) { /* ended, or lost */
            atomic_fetch_sub(&adopted_count, 1);
            o->release(o);
        } else {
            push(o);
        }
        o = next;
    }
    return atomic_load(&adopted_count);
}
