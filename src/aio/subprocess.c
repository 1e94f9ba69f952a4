/* Async subprocesses: starting a program with streams for its pipes,
 * waiting for it on its pidfd, signals, and freeing.
 *
 * Starting reuses the subprocess module's spawning (conc_popen_new). The
 * pipes are made here as Unix socketpairs, since a conc_aio_stream speaks
 * to sockets (recv, send, shutdown); the child's ends go to conc_popen_new
 * as CONC_STDIO_FD descriptors and are closed in the parent once it runs.
 * Each parent end is shut down in the direction the child does not use,
 * so that, as with a pipe, the child reading its stdout gets an end of
 * file instead of waiting forever.
 *
 * Waiting: conc_popen's wait, on the pidfd opened at the start; in a task
 * the descriptor wait registers it on the loop and suspends the task. */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio/subprocess.h"
#include "core/internal.h"
#include "subprocess/subprocess_internal.h"
#include "unix/coro.h"

/* The shell of create_subprocess_shell, as Python's. */
#define SHELL "/bin/sh"

/* The parent's and the child's end of the pipes being made. */
struct ends {
    int parent[3], child[3];
};

static void
ends_close(struct ends *e, int parents_too)
{
    for (int i = 0; i < 3; i++) {
        if (e->child[i] >= 0)
            close(e->child[i]);
        if (parents_too && e->parent[i] >= 0)
            close(e->parent[i]);
        e->child[i] = -1;
    }
}

static conc_stdio
mode_of(const conc_popen_opts *o, int i)
{
    return i == 0 ? o->stdin_mode : i == 1 ? o->stdout_mode : o->stderr_mode;
}

/* Makes a socketpair for each stream in PIPE mode. */
static int
ends_make(struct ends *e, const conc_popen_opts *o)
{
    for (int i = 0; i < 3; i++)
        e->parent[i] = e->child[i] = -1;
    for (int i = 0; i < 3; i++) {
        if (mode_of(o, i) != CONC_STDIO_PIPE)
            continue;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            int r = -errno;
            ends_close(e, 1);
            return r;
        }
        e->parent[i] = sv[0];
        e->child[i] = sv[1];
        shutdown(sv[0], i == 0 ? SHUT_RD : SHUT_WR);
    }
    return 0;
}

/* The options given to conc_popen_new: the pipes become descriptors. */
static conc_popen_opts
spawn_opts(const conc_popen_opts *o, const struct ends *e)
{
    conc_popen_opts s = *o;
    if (e->child[0] >= 0) {
        s.stdin_mode = CONC_STDIO_FD;
        s.stdin_fd = e->child[0];
    }
    if (e->child[1] >= 0) {
        s.stdout_mode = CONC_STDIO_FD;
        s.stdout_fd = e->child[1];
    }
    if (e->child[2] >= 0) {
        s.stderr_mode = CONC_STDIO_FD;
        s.stderr_fd = e->child[2];
    }
    return s;
}

/* Wraps each parent end into a stream; the streams own them from then on
 * (e->parent[i] is cleared). */
static int
make_streams(conc_aio_subprocess *p, struct ends *e,
             const conc_aio_stream_opts *so)
{
    for (int i = 0; i < 3; i++) {
        if (e->parent[i] < 0)
            continue;
        int r = conc_aio_stream_from_fd(e->parent[i], so, &p->stream[i]);
        if (r < 0)
            return r;
        e->parent[i] = -1;
    }
    return 0;
}

static void
free_streams(conc_aio_subprocess *p)
{
    for (int i = 0; i < 3; i++) {
        conc_aio_stream_free(p->stream[i]);
        p->stream[i] = NULL;
    }
}

static int
start(conc_aio_subprocess *p, char *const argv[],
      const conc_aio_subprocess_opts *o)
{
    struct ends e;
    int r = ends_make(&e, &o->popen);
    if (r < 0)
        return r;
    if ((r = make_streams(p, &e, o->stream)) < 0)
        goto fail;
    conc_popen_opts so = spawn_opts(&o->popen, &e);
    if ((r = conc_popen_new(argv, &so, &p->popen)) < 0)
        goto fail;
    ends_close(&e, 0);
    conc__popen_watch(p->popen);
    p->kill_on_timeout = o->popen.kill_on_timeout;
    return 0;
fail:
    ends_close(&e, 1);
    free_streams(p);
    return r;
}

int
conc_aio_create_subprocess_exec(char *const argv[],
                                const conc_aio_subprocess_opts *opts,
                                conc_aio_subprocess **out)
{
    static const conc_aio_subprocess_opts defaults;
    if (!argv || !argv[0] || !out)
        return CONC_EINVAL;
    conc_aio_subprocess *p = conc__calloc(1, sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    int r = start(p, argv, opts ? opts : &defaults);
    if (r < 0) {
        conc__free(p);
        return r;
    }
    *out = p;
    return 0;
}

int
conc_aio_create_subprocess_shell(const char *cmd,
                                 const conc_aio_subprocess_opts *opts,
                                 conc_aio_subprocess **out)
{
    if (!cmd || !out)
        return CONC_EINVAL;
    char *const argv[] = {(char *)SHELL, (char *)"-c", (char *)cmd, NULL};
    return conc_aio_create_subprocess_exec(argv, opts, out);
}

void
conc_aio_subprocess_free(conc_aio_subprocess *p)
{
    if (!p)
        return;
    free_streams(p);
    /* Nobody will read the pipes or wait any more: as asyncio's transport
     * does on close, the child is killed; the popen then reaps it, now or
     * (adopted by the reaper) once it has died. */
    if (conc_popen_poll(p->popen, NULL) == 0)
        conc_popen_kill(p->popen);
    conc_popen_free(p->popen);
    conc_buf_free(&p->pending);
    conc_buf_free(&p->got[0]);
    conc_buf_free(&p->got[1]);
    conc__free(p);
}

pid_t
conc_aio_subprocess_pid(const conc_aio_subprocess *p)
{
    return p ? conc_popen_pid(p->popen) : 0;
}

static int
stream_of(conc_aio_subprocess *p, int i, conc_aio_stream **out)
{
    if (!p || !out)
        return CONC_EINVAL;
    if (!p->stream[i])
        return conc_fail(CONC_ESTATE, "the child's %s is not a pipe",
                         i == 0   ? "stdin"
                         : i == 1 ? "stdout"
                                  : "stderr");
    *out = p->stream[i];
    return 0;
}

int
conc_aio_subprocess_stdin(conc_aio_subprocess *p, conc_aio_stream **out)
{
    return stream_of(p, 0, out);
}

int
conc_aio_subprocess_stdout(conc_aio_subprocess *p, conc_aio_stream **out)
{
    return stream_of(p, 1, out);
}

int
conc_aio_subprocess_stderr(conc_aio_subprocess *p, conc_aio_stream **out)
{
    return stream_of(p, 2, out);
}

/* ---- Waiting --------------------------------------------------------------
 */

int
conc__aio_subprocess_wait_until(conc_aio_subprocess *p, int64_t deadline,
                                int *returncode)
{
    int r = conc__popen_wait_until(p->popen, deadline, returncode);
    if (r == CONC_ETIMEDOUT && p->kill_on_timeout) {
        /* Killed and reaped (a wait that a cancellation cuts short leaves
         * the reaping to a later look, the child being dead anyway). */
        conc__popen_kill_reap(p->popen);
    }
    return r;
}

static int
wait_uncancelled(conc_aio_subprocess *p, double timeout, int *returncode)
{
    int64_t deadline;
    if (!p || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    return conc__aio_subprocess_wait_until(p, deadline, returncode);
}

int
conc_aio_subprocess_wait(conc_aio_subprocess *p, double timeout,
                         int *returncode)
{
    CONC__CANCEL_POINT(wait_uncancelled(p, timeout, returncode));
}

int
conc_aio_subprocess_returncode(conc_aio_subprocess *p, int *returncode)
{
    return p ? conc_popen_poll(p->popen, returncode) : CONC_EINVAL;
}

/* ---- Signals --------------------------------------------------------------
 */

int
conc_aio_subprocess_send_signal(conc_aio_subprocess *p, int sig)
{
    return p ? conc_popen_send_signal(p->popen, sig) : CONC_EINVAL;
}

int
conc_aio_subprocess_terminate(conc_aio_subprocess *p)
{
    return conc_aio_subprocess_send_signal(p, SIGTERM);
}

int
conc_aio_subprocess_kill(conc_aio_subprocess *p)
{
    return conc_aio_subprocess_send_signal(p, SIGKILL);
}

int
conc_aio_subprocess_kill_group(conc_aio_subprocess *p, int sig)
{
    return p ? conc_popen_kill_group(p->popen, sig) : CONC_EINVAL;
}
