/* Reaping, waiting and signalling: join, is_alive, exitcode, terminate and
 * kill.
 *
 * Design. A forked child is ours to reap with waitid on its exact pid; a
 * fork server child is the server's, and the server writes its exit code
 * into a pipe whose read end we hold (`wait_fd`), with a pidfd for signals.
 * Reaping is a non-blocking check made under the handle's lock: waitid
 * with WNOHANG, or a read of the pipe. Exactly one thread reaps, stores the
 * status and publishes DONE; everyone else sees DONE.
 *
 * Blocking is done outside the lock and never reaps, so that any number of
 * threads can wait on one process with their own deadlines:
 *   - join without a timeout on a forked child blocks in waitid with
 *     WNOWAIT, which returns once the child is a zombie but leaves it to be
 *     reaped (one system call, no descriptor);
 *   - a timed wait polls a descriptor that turns readable when the child
 *     ends: a pidfd opened on the first timed wait of a forked child, or
 *     the fork server's pipe. `waiters` counts the pollers, so the
 *     descriptors are closed only when the process is DONE and nobody
 *     polls them.
 * Then the waiter loops back to the non-blocking check.
 *
 * Signals are sent under the lock while the state is RUNNING: until we
 * reap it, the pid of a forked child cannot be recycled, so kill() cannot
 * hit another process. Fork server children are signalled through their
 * pidfd, which never refers to another process.
 *
 * No pidfd (unix/platform.h). A timed wait on a forked child naps and
 * looks again. A fork server child is signalled by pid, and only while
 * its status pipe is still empty: the server writes the code right after
 * it reaps the child, so the pid could be recycled only within that
 * moment. After the server died, such a child counts as ended once no
 * process has its pid. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/process_internal.h"
#include "unix/platform.h"
#include "unix/coro.h"

static uint32_t
state_of(const conc_process *p)
{
    return atomic_load_explicit(&((conc_process *)p)->state,
                                memory_order_acquire);
}

static void
lock(conc_process *p)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
}

static void
unlock(conc_process *p)
{
    conc__lockword_release(&p->lock, 0);
}

void
conc__process_close_fds(conc_process *p)
{
    if (p->wait_fd >= 0)
        close(p->wait_fd);
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->wait_fd = p->pidfd = -1;
}

/* Publishes the end of the process. Lock held. */
static void
finish_locked(conc_process *p, int status)
{
    p->status = status;
    atomic_store_explicit(&p->state, CONC__PROC_DONE, memory_order_release);
    if (!p->waiters)
        conc__process_close_fds(p);
}

static void
poll_forked_locked(conc_process *p)
{
    int status;
    int r = conc__child_reap(p->pid, &status);
    if (r == 1)
        finish_locked(p, status);
    else if (r == CONC__CHILD_GONE) /* reaped by someone else */
        finish_locked(p, CONC__STATUS_LOST);
}

/* Whether a fork server child whose server died has ended: its pidfd says
 * so exactly; without one, only that no process has its pid any more. */
static int
lost_child_ended(const conc_process *p)
{
    if (p->pidfd >= 0)
        return conc__poll_fd(p->pidfd, POLLIN, CONC__POLL) != 0;
    return kill(p->pid, 0) != 0 && errno == ESRCH;
}

/* The server writes the 4-byte code (atomically: less than PIPE_BUF) and
 * closes the pipe. An empty end of file means the server died: then the
 * pidfd tells when the process itself ends. */
static void
poll_served_locked(conc_process *p)
{
    if (!p->lost) {
        int32_t code;
        ssize_t n;
        do
            n = read(p->wait_fd, &code, sizeof code);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof code) {
            finish_locked(p, code);
            return;
        }
        if (n != 0)
            return; /* EAGAIN: still running */
        p->lost = 1;
    }
    if (lost_child_ended(p))
        finish_locked(p, CONC__STATUS_LOST);
}

int
conc__process_poll(conc_process *p)
{
    uint32_t s = state_of(p);
    if (s != CONC__PROC_RUNNING)
        return s == CONC__PROC_DONE;
    lock(p);
    if (state_of(p) == CONC__PROC_RUNNING) {
        if (p->method == CONC_START_FORK)
            poll_forked_locked(p);
        else
            poll_served_locked(p);
    }
    unlock(p);
    return state_of(p) == CONC__PROC_DONE;
}

/* What acquire_wait_fd answers besides a descriptor or a negated errno. */
#define WAIT_DONE INT_MIN       /* the process is DONE: nothing to wait for */
#define WAIT_NAPS (INT_MIN + 1) /* no descriptor tells its end: nap */

/* Takes the descriptor to poll, counting the caller in `waiters`. Returns
 * it, WAIT_DONE, WAIT_NAPS, or a negated errno. */
static int
acquire_wait_fd(conc_process *p)
{
    int fd = WAIT_DONE;
    lock(p);
    if (state_of(p) != CONC__PROC_DONE) {
        if (p->method == CONC_START_FORK && p->wait_fd < 0) {
            int r = conc__pidfd_of(p->pid);
            p->wait_fd = r >= 0 ? r : -1;
            if (r < 0 && r != CONC__NO_PIDFD && r != -ESRCH) {
                unlock(p);
                return r;
            }
        }
        fd = p->lost ? p->pidfd : p->wait_fd;
        if (fd < 0) /* no pidfd, or a forked child ended before the open */
            fd = WAIT_NAPS;
        else
            p->waiters++;
    }
    unlock(p);
    return fd;
}

static void
release_wait_fd(conc_process *p)
{
    lock(p);
    if (--p->waiters == 0 && state_of(p) == CONC__PROC_DONE)
        conc__process_close_fds(p);
    unlock(p);
}

int
conc__process_wait(conc_process *p, int64_t deadline)
{
    int64_t nap = 0;
    for (;;) {
        if (conc__process_poll(p))
            return 0;
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline)
            return CONC_ETIMEDOUT;
        int rc;
        if (p->method == CONC_START_FORK && deadline == CONC__FOREVER &&
            !conc__coro_self) { /* a coroutine waits on the pidfd */
            rc = conc__child_await(p->pid, -1, CONC__FOREVER, &nap);
        } else {
            int fd = acquire_wait_fd(p);
            if (fd == WAIT_DONE)
                continue;
            if (fd == WAIT_NAPS) {
                /* A nap has a deadline even when the wait has none. */
                int64_t end = conc__now_ns() + CONC__CHILD_NAP_MAX_NS;
                rc = conc__child_await(p->pid, -1,
                                       end < deadline ? end : deadline, &nap);
                rc = rc == CONC_ETIMEDOUT ? 0 : rc;
            } else if (fd < 0) {
                return fd;
            } else {
                rc = conc__poll_fd(fd, POLLIN, deadline);
                release_wait_fd(p);
            }
        }
        if (rc < 0)
            return rc;
    }
}

int
conc__process_signal(conc_process *p, int sig)
{
    int rc = 0;
    lock(p);
    if (state_of(p) == CONC__PROC_RUNNING) {
        if (p->method == CONC_START_FORK)
            rc = conc__child_signal(p->pid, sig);
        else if (p->pidfd >= 0)
            rc = conc__pidfd_send_signal(p->pidfd, sig);
        else if (conc__poll_fd(p->wait_fd, POLLIN, CONC__POLL) == 0)
            rc = conc__child_signal(p->pid, sig); /* see "no pidfd" above */
        if (rc == -ESRCH)
            rc = 0;
    }
    unlock(p);
    return rc;
}

/* ---- The parent's handle ------------------------------------------------- */

/* The parent's pidfd, opened on first use. A forked child opens it while
 * getppid() still names the parent: had the parent died before the open,
 * the child would have been re-parented first, so the second getppid()
 * would differ and a recycled pid cannot be mistaken for the parent. A
 * fork server child inherits one from the server. Returns the descriptor,
 * -1 once the parent is known to be gone, or a negated errno. */
static int
parent_fd(conc_process *p)
{
    if (!conc__pidfd_available() && p->wait_fd < 0)
        return CONC__NO_PIDFD;
    lock(p);
    int fd = p->wait_fd;
    if (fd < 0 && !p->lost) {
        if (getppid() == p->pid) {
            fd = conc__pidfd_of(p->pid);
            if (fd < 0 && fd != -ESRCH) {
                unlock(p);
                return fd;
            }
            if (fd >= 0 && getppid() != p->pid) {
                close(fd);
                fd = -1;
            }
        }
        p->wait_fd = fd;
        p->lost = fd < 0;
    }
    unlock(p);
    return fd;
}

/* Without a pidfd: whether the parent still runs. A forked child is
 * re-parented once its parent dies; a fork server child can only ask
 * whether a process of that pid exists. */
static int
parent_alive_by_pid(const conc_process *p)
{
    if (p->method == CONC_START_FORK)
        return getppid() == p->pid;
    return kill(p->pid, 0) == 0 || errno == EPERM;
}

/* Without a pidfd, a wait for the parent naps and looks again. */
static int
parent_wait_by_pid(conc_process *p, int64_t deadline)
{
    while (parent_alive_by_pid(p)) {
        int64_t end = conc__now_ns() + CONC__CHILD_NAP_MAX_NS;
        if (deadline != CONC__FOREVER && end >= deadline) {
            if (conc__now_ns() >= deadline)
                return CONC_ETIMEDOUT;
            end = deadline;
        }
        int r = conc__poll_until(NULL, 0, end);
        if (r < 0)
            return r;
    }
    return 0;
}

static int
parent_wait(conc_process *p, int64_t deadline)
{
    int fd = parent_fd(p);
    if (fd == -1)
        return 0;
    if (fd == CONC__NO_PIDFD)
        return parent_wait_by_pid(p, deadline);
    if (fd < 0)
        return fd;
    int r = conc__poll_fd(fd, POLLIN, deadline);
    return r > 0 ? 0 : r == 0 ? CONC_ETIMEDOUT : r;
}

/* ---- Public calls ------------------------------------------------------- */

/* The checks shared by calls that act on a child of the calling process. */
static int
check_child(const conc_process *p)
{
    if (p->closed)
        return CONC_ECLOSED;
    if (conc__process_kind(p) != CONC__PROC_CHILD ||
        p->owner != conc__process_self_pid() || state_of(p) == CONC__PROC_NEW)
        return CONC_ESTATE;
    return 0;
}

static int
process_join_uncancelled(conc_process *p, double timeout)
{
    if (!p)
        return CONC_EINVAL;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (!p->closed && conc__process_kind(p) == CONC__PROC_SELF)
        return CONC_EDEADLK;
    if (!p->closed && conc__process_kind(p) == CONC__PROC_PARENT)
        return parent_wait(p, deadline);
    int rc = check_child(p);
    if (rc == 0)
        rc = conc__process_wait(p, deadline);
    if (rc)
        return rc;
    conc__children_forget(p);
    return p->status == CONC__STATUS_LOST ? CONC_ECHILD : 0;
}

int
conc_process_join(conc_process *p, double timeout)
{
    CONC__CANCEL_POINT(process_join_uncancelled(p, timeout));
}

int
conc_process_is_alive(conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    if (p->closed)
        return 0;
    if (conc__process_kind(p) == CONC__PROC_SELF)
        return 1;
    if (conc__process_kind(p) == CONC__PROC_PARENT) {
        int fd = parent_fd(p);
        if (fd < -1) /* no pidfd to be had: ask by pid */
            return parent_alive_by_pid(p);
        return fd >= 0 && conc__poll_fd(fd, POLLIN, CONC__POLL) == 0;
    }
    if (check_child(p))
        return 0;
    if (!conc__process_poll(p))
        return 1;
    conc__children_forget(p);
    return 0;
}

int
conc_process_exitcode(conc_process *p, int *code)
{
    if (!p)
        return CONC_EINVAL;
    if (!code)
        return CONC_EINVAL;
    if (p->closed)
        return CONC_ECLOSED;
    if (conc__process_kind(p) != CONC__PROC_CHILD ||
        state_of(p) == CONC__PROC_NEW)
        return 0;
    int rc = check_child(p);
    if (rc)
        return rc;
    if (!conc__process_poll(p))
        return 0;
    conc__children_forget(p);
    if (p->status == CONC__STATUS_LOST)
        return CONC_ECHILD;
    *code = p->status;
    return 1;
}

static int
send_signal(conc_process *p, int sig)
{
    int rc = check_child(p);
    return rc ? rc : conc__process_signal(p, sig);
}

int
conc_process_terminate(conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    return send_signal(p, SIGTERM);
}

int
conc_process_kill(conc_process *p)
{
    if (!p)
        return CONC_EINVAL;
    return send_signal(p, SIGKILL);
}
