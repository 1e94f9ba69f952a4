/* The popen object: creation, waiting, signals, and the children of freed
 * popens.
 *
 * Waiting goes through the child reaper (unix/platform.h). A child is
 * reaped only under the popen's lock, and the state is recorded there;
 * signals are sent under the same lock and only while the child is
 * unreaped. Since an unreaped child (even a zombie) keeps its pid, no
 * signal can reach a recycled pid. Blocking happens outside the lock, in
 * conc__child_await, which waits for the child's exit without reaping it
 * (on a pidfd when there is a deadline and the platform has pidfds, else
 * with naps that grow to 20 ms, as Python's wait does). Whoever wakes
 * first reaps; the others find the state recorded.
 *
 * Freed children. conc_popen_free does not wait. A child still running is
 * adopted by the reaper (its popen struct holds the node, so this needs no
 * memory), which reaps it and frees the struct at a later collection. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

#include "core/internal.h"
#include "subprocess/subprocess_internal.h"
#include "unix/platform.h"
#include "unix/coro.h"

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

/* Reaps the child if it has exited. Lock held. Returns 1 when the state
 * is final (exited or lost), 0 while it runs. */
static int
try_reap(conc_popen *p)
{
    if (p->state != CONC__CHILD_RUNNING)
        return 1;
    int r = conc__child_reap(p->pid, &p->returncode);
    if (r == 1) {
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

int
conc__popen_wait_until(conc_popen *p, int64_t deadline, int *returncode)
{
    int64_t nap = 0;
    for (;;) {
        lock(p);
        int done = try_reap(p);
        if (!done && p->pidfd == -1 && deadline != CONC__POLL &&
            deadline != CONC__FOREVER) {
            int fd = conc__pidfd_of(p->pid); /* the child is unreaped */
            p->pidfd = fd >= 0 ? fd : CONC__POPEN_NO_PIDFD;
        }
        int pidfd = p->pidfd;
        unlock(p);
        if (done)
            return final_status(p, returncode);
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        /* Any failure ends the wait, a cancellation above all: in a
         * cancelled coroutine every further descriptor wait fails at
         * once, and looking again would spin until the deadline. */
        int r = conc__child_await(p->pid, pidfd, deadline, &nap);
        if (r < 0)
            return r;
    }
}

void
conc__popen_watch(conc_popen *p)
{
    lock(p);
    if (p->pidfd == -1 && p->state == CONC__CHILD_RUNNING) {
        int fd = conc__pidfd_of(p->pid);
        p->pidfd = fd >= 0 ? fd : CONC__POPEN_NO_PIDFD;
    }
    unlock(p);
}

static int
popen_wait_uncancelled(conc_popen *p, double timeout, int *returncode)
{
    int64_t deadline;
    if (!p || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    return conc__popen_wait_until(p, deadline, returncode);
}

int
conc_popen_wait(conc_popen *p, double timeout, int *returncode)
{
    CONC__CANCEL_POINT(popen_wait_uncancelled(p, timeout, returncode));
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
    if (p->state == CONC__CHILD_RUNNING)
        r = conc__child_signal(p->pid, sig);
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

/* The reaper's release of an adopted popen: the child is reaped. */
static void
release_orphan(struct conc__orphan *o)
{
    conc__free((char *)o - offsetof(conc_popen, orphan));
}

int
conc_subprocess_reap(size_t *running)
{
    int n = conc__reaper_collect();
    if (running)
        *running = (size_t)n;
    return 0;
}

/* ---- Life --------------------------------------------------------------- */

int
conc_popen_new(char *const argv[], const conc_popen_opts *opts,
               conc_popen **out)
{
    static const conc_popen_opts defaults;
    if (!argv || !argv[0] || !out)
        return CONC_EINVAL;
    conc__reaper_collect();
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
    if (p->pidfd >= 0)
        close(p->pidfd);
    conc_buf_free(&p->pending);
    conc_buf_free(&p->got_out);
    conc_buf_free(&p->got_err);
    if (try_reap(p)) {
        conc__free(p);
    } else {
        p->orphan.pid = p->pid;
        p->orphan.release = release_orphan;
        conc__reaper_adopt(&p->orphan);
    }
}

pid_t
conc_popen_pid(const conc_popen *p)
{
    return p ? p->pid : 0;
}

/* The parent's end of stream `which` (0, 1, 2), whose descriptor is `fd`. */
static int
stream_fd(const conc_popen *p, int which, int *fd)
{
    if (!p || !fd)
        return CONC_EINVAL;
    if (!(p->piped & 1u << which))
        return CONC_ESTATE;
    int f = which == 0 ? p->in_fd : which == 1 ? p->out_fd : p->err_fd;
    if (f < 0)
        return CONC_ECLOSED;
    *fd = f;
    return 0;
}

int
conc_popen_stdin_fd(const conc_popen *p, int *fd)
{
    return stream_fd(p, 0, fd);
}

int
conc_popen_stdout_fd(const conc_popen *p, int *fd)
{
    return stream_fd(p, 1, fd);
}

int
conc_popen_stderr_fd(const conc_popen *p, int *fd)
{
    return stream_fd(p, 2, fd);
}

int
conc_popen_close_stdin(conc_popen *p)
{
    if (!p)
        return CONC_EINVAL;
    conc__popen_close_fd(&p->in_fd);
    return 0;
}
