/* The popen object: creation, waiting, signals, and the children of freed
 * popens.
 *
 * Waiting. A child is reaped only with waitpid on its own pid, under the
 * popen's lock, and the state is recorded there; signals are sent under
 * the same lock and only while the child is unreaped. Since an unreaped
 * child (even a zombie) keeps its pid, no signal can reach a recycled pid.
 * Blocking happens outside the lock, on a call that waits for the child's
 * exit without reaping it: waitid(WNOWAIT) when there is no deadline, and
 * poll on a pidfd when there is one (kernels without pidfd_open fall back
 * to short sleeps that grow to 20 ms, as Python's wait does). Whoever
 * wakes first reaps; the others find the state recorded.
 *
 * Freed children. conc_popen_free does not wait. A child still running is
 * kept on a lock-free list (its popen struct is the node, so parking needs
 * no memory): pushes use a CAS on the head, and a reaping pass takes the
 * whole list with one exchange, reaps what it can, and pushes back the
 * rest. Both operations are safe from ABA because no node is ever popped
 * alone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "subprocess/subprocess_internal.h"
#include "unix/fdwait.h"

_Atomic int conc__popen_use_pidfd = 1;

static _Atomic(conc_popen *) parked;
static atomic_int parked_count;

void
conc__popen_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* never retried: Linux frees the descriptor anyway */
        *fd = -1;
    }
}

static void
lock(conc_popen *p)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
}

static void
unlock(conc_popen *p)
{
    conc__lockword_release(&p->lock, 0);
}

static int
status_code(int st)
{
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* Reaps the child if it has exited. Lock held. Returns 1 when the state
 * is final (exited or lost), 0 while it runs. */
static int
try_reap(conc_popen *p)
{
    if (p->state != CONC__CHILD_RUNNING)
        return 1;
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid) {
        p->returncode = status_code(st);
        p->state = CONC__CHILD_EXITED;
        return 1;
    }
    if (r < 0) { /* ECHILD: someone else reaped it */
        p->state = CONC__CHILD_LOST;
        return 1;
    }
    return 0;
}

static int
final_status(const conc_popen *p, int *returncode)
{
    if (p->state == CONC__CHILD_LOST)
        return CONC_ECHILD;
    if (returncode)
        *returncode = p->returncode;
    return 0;
}

static int
open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    if (atomic_load_explicit(&conc__popen_use_pidfd, memory_order_relaxed)) {
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0)
            return fd; /* pidfds are always close-on-exec */
        if (errno == ENOSYS || errno == EPERM)
            atomic_store_explicit(&conc__popen_use_pidfd, 0,
                                  memory_order_relaxed);
    }
#endif
    (void)pid;
    return -1;
}

static struct timespec
ns_to_ts(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

/* Blocks until the child may have exited or the deadline passed, without
 * reaping. Returns 0 (look again) or CONC_ETIMEDOUT. */
static int
block_for_exit(conc_popen *p, int pidfd, int64_t deadline, int64_t *nap)
{
    if (deadline == CONC__FOREVER) {
        siginfo_t si;
        /* ECHILD means another thread reaped it: looking again tells. */
        while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0 &&
               errno == EINTR)
            ;
        return 0;
    }
    int64_t left = deadline - conc__now_ns();
    if (left <= 0)
        return CONC_ETIMEDOUT;
    if (pidfd >= 0)
        return conc__poll_fd(pidfd, POLLIN, deadline) == 0 ? CONC_ETIMEDOUT : 0;
    struct timespec ts = ns_to_ts(*nap < left ? *nap : left);
    nanosleep(&ts, NULL);
    if (*nap < 20000000)
        *nap *= 2;
    return 0;
}

int
conc__popen_wait_until(conc_popen *p, int64_t deadline, int *returncode)
{
    int64_t nap = 100000; /* the first sleep without a pidfd: 0.1 ms */
    for (;;) {
        lock(p);
        int done = try_reap(p);
        if (!done && p->pidfd < 0 && deadline != CONC__POLL &&
            deadline != CONC__FOREVER)
            p->pidfd = open_pidfd(p->pid);
        int pidfd = p->pidfd;
        unlock(p);
        if (done)
            return final_status(p, returncode);
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        if (block_for_exit(p, pidfd, deadline, &nap) == CONC_ETIMEDOUT)
            return CONC_ETIMEDOUT;
    }
}

int
conc_popen_wait(conc_popen *p, double timeout, int *returncode)
{
    int64_t deadline;
    if (!p || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    return conc__popen_wait_until(p, deadline, returncode);
}

int
conc_popen_poll(conc_popen *p, int *returncode)
{
    if (!p)
        return CONC_EINVAL;
    int r = conc__popen_wait_until(p, CONC__POLL, returncode);
    if (r == CONC_ETIMEDOUT)
        return 0;
    return r == 0 ? 1 : r;
}

int
conc_popen_returncode(conc_popen *p, int *returncode)
{
    if (!p)
        return CONC_EINVAL;
    lock(p);
    int known = p->state == CONC__CHILD_EXITED;
    if (known && returncode)
        *returncode = p->returncode;
    unlock(p);
    return known;
}

/* ---- Signals ------------------------------------------------------------ */

static int
check_signal(int sig)
{
    return sig >= 0 && sig < NSIG ? 0 : CONC_EINVAL;
}

int
conc_popen_send_signal(conc_popen *p, int sig)
{
    if (!p || check_signal(sig))
        return CONC_EINVAL;
    int r = 0;
    lock(p);
    if (p->state == CONC__CHILD_RUNNING && kill(p->pid, sig) != 0)
        r = errno == ESRCH ? 0 : -errno;
    unlock(p);
    return r;
}

int
conc_popen_terminate(conc_popen *p)
{
    return conc_popen_send_signal(p, SIGTERM);
}

int
conc_popen_kill(conc_popen *p)
{
    return conc_popen_send_signal(p, SIGKILL);
}

int
conc_popen_kill_group(conc_popen *p, int sig)
{
    if (!p || check_signal(sig))
        return CONC_EINVAL;
    if (!p->leader)
        return CONC_ESTATE;
    if (killpg(p->pid, sig) != 0 && errno != ESRCH)
        return -errno;
    return 0;
}

int
conc__popen_kill_reap(conc_popen *p)
{
    /* The group first, while its leader is unreaped and so its id is
     * certainly still ours. */
    if (p->leader)
        conc_popen_kill_group(p, SIGKILL);
    conc_popen_kill(p);
    return conc__popen_wait_until(p, CONC__FOREVER, NULL);
}

/* ---- Freed children ----------------------------------------------------- */

/* Pushes p on the list of freed children. */
static void
push_parked(conc_popen *p)
{
    conc_popen *head = atomic_load(&parked);
    do
        p->next_parked = head;
    while (!atomic_compare_exchange_weak(&parked, &head, p));
}

int
conc_subprocess_reap(void)
{
    if (!atomic_load_explicit(&parked, memory_order_relaxed))
        return atomic_load(&parked_count);
    conc_popen *p = atomic_exchange(&parked, NULL);
    while (p) {
        conc_popen *next = p->next_parked;
        if (try_reap(p)) { /* no lock: no one else can see p any more */
            atomic_fetch_sub(&parked_count, 1);
            conc__free(p);
        } else {
            push_parked(p);
        }
        p = next;
    }
    return atomic_load(&parked_count);
}

/* ---- Life --------------------------------------------------------------- */

int
conc_popen_new(char *const argv[], const conc_popen_opts *opts,
               conc_popen **out)
{
    static const conc_popen_opts defaults;
    if (!argv || !argv[0] || !out)
        return CONC_EINVAL;
    conc_subprocess_reap();
    conc_popen *p = conc__calloc(1, sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    p->in_fd = p->out_fd = p->err_fd = p->pidfd = -1;
    p->kill_on_timeout = opts && opts->kill_on_timeout;
    int r = conc__popen_spawn(p, argv, opts ? opts : &defaults);
    if (r) {
        conc__free(p);
        return r;
    }
    *out = p;
    return 0;
}

void
conc_popen_free(conc_popen *p)
{
    if (!p)
        return;
    conc__popen_close_fd(&p->in_fd);
    conc__popen_close_fd(&p->out_fd);
    conc__popen_close_fd(&p->err_fd);
    conc__popen_close_fd(&p->pidfd);
    conc_buf_free(&p->pending);
    if (try_reap(p)) {
        conc__free(p);
    } else {
        atomic_fetch_add(&parked_count, 1);
        push_parked(p);
    }
}

pid_t
conc_popen_pid(const conc_popen *p)
{
    return p ? p->pid : -1;
}

int
conc_popen_stdin_fd(const conc_popen *p)
{
    return p ? p->in_fd : -1;
}

int
conc_popen_stdout_fd(const conc_popen *p)
{
    return p ? p->out_fd : -1;
}

int
conc_popen_stderr_fd(const conc_popen *p)
{
    return p ? p->err_fd : -1;
}

int
conc_popen_close_stdin(conc_popen *p)
{
    if (!p)
        return CONC_EINVAL;
    conc__popen_close_fd(&p->in_fd);
    return 0;
}
