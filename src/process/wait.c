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
 * pidfd, which never refers to another process. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/process_internal.h"

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
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) == 0) {
            if (si.si_pid != 0)
                finish_locked(p, si.si_code == CLD_EXITED ? si.si_status
                                                          : -si.si_status);
            return;
        }
        int err = errno;
        if (err == ECHILD) /* reaped by someone else: status lost */
            finish_locked(p, CONC__STATUS_LOST);
        if (err != EINTR)
            return;
    }
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
    if (conc__poll_fd(p->pidfd, POLLIN, CONC__POLL) != 0)
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

/* Blocks until the forked child is a zombie, without reaping it. */
static int
block_forked(conc_process *p)
{
    siginfo_t si;
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) == 0 ||
        errno == EINTR || errno == ECHILD)
        return 0;
    return -errno;
}

/* Takes the descriptor to poll, counting the caller in `waiters`. Returns
 * it, -1 when the process is DONE, or a negated errno. */
static int
acquire_wait_fd(conc_process *p)
{
    int fd = -1;
    lock(p);
    if (state_of(p) != CONC__PROC_DONE) {
        if (p->method == CONC_START_FORK && p->wait_fd < 0)
            p->wait_fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
        fd = p->lost ? p->pidfd : p->wait_fd;
        if (fd < 0)
            fd = -errno;
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
    for (;;) {
        if (conc__process_poll(p))
            return 0;
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline)
            return CONC_ETIMEDOUT;
        int rc;
        if (p->method == CONC_START_FORK && deadline == CONC__FOREVER) {
            rc = block_forked(p);
        } else {
            int fd = acquire_wait_fd(p);
            if (fd == -1)
                continue;
            if (fd < 0)
                return fd;
            rc = conc__poll_fd(fd, POLLIN, deadline);
            release_wait_fd(p);
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
        long r = p->method == CONC_START_FORK
                     ? kill(p->pid, sig)
                     : syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
        if (r != 0 && errno != ESRCH)
            rc = -errno;
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
    lock(p);
    int fd = p->wait_fd;
    if (fd < 0 && !p->lost) {
        if (getppid() == p->pid) {
            fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
            if (fd < 0 && errno != ESRCH) {
                fd = -errno;
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

static int
parent_wait(conc_process *p, int64_t deadline)
{
    int fd = parent_fd(p);
    if (fd == -1)
        return 0;
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
        return CONC_EVALUE;
    if (conc__process_kind(p) != CONC__PROC_CHILD ||
        p->owner != conc__process_self_pid() || state_of(p) == CONC__PROC_NEW)
        return CONC_ESTATE;
    return 0;
}

int
conc_process_join(conc_process *p, double timeout)
{
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
conc_process_is_alive(conc_process *p)
{
    if (p->closed)
        return 0;
    if (conc__process_kind(p) == CONC__PROC_SELF)
        return 1;
    if (conc__process_kind(p) == CONC__PROC_PARENT) {
        int fd = parent_fd(p);
        if (fd < -1) /* no pidfd to be had: ask the kernel who our parent is */
            return getppid() == p->pid;
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
    if (!code)
        return CONC_EINVAL;
    if (p->closed)
        return CONC_EVALUE;
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
    return send_signal(p, SIGTERM);
}

int
conc_process_kill(conc_process *p)
{
    return send_signal(p, SIGKILL);
}
