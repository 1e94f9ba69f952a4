/* Starting a program with posix_spawn.
 *
 * Design. glibc's posix_spawn runs the child with clone(CLONE_VM |
 * CLONE_VFORK) on a stack of its own: no page tables are copied, no
 * atfork handler runs, and the parent resumes only once the exec has
 * succeeded or failed, with the exec's errno as the result. So a missing
 * program is an error of conc_popen_new itself (Python's
 * FileNotFoundError), and the child never runs any code of ours, which is
 * what makes starting programs safe in a program with threads.
 *
 * Everything the child must do is written down beforehand as a plan:
 * file actions run in order (chdir, the three standard streams, then the
 * closing of every other descriptor) and attributes (process group,
 * session, signal mask and defaults).
 *
 * Descriptor numbers need care. A source descriptor below 3 may be
 * overwritten by an earlier dup2 of the plan (stderr sent to "our fd 1"
 * while stdout becomes a pipe), so such sources are first copied to a
 * number >= 3. Pipe ends for the child are likewise kept >= 3, which only
 * matters when the caller runs with a standard descriptor closed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "subprocess/subprocess_internal.h"

extern char **environ;

/* posix_spawn_file_actions_addclosefrom_np arrived in glibc 2.34. Without
 * it the child still gets no descriptor that conc or a careful caller
 * opened (all are close-on-exec), only those the caller left inheritable.
 * The check is on the C library's version macros, which is exactly the
 * question asked: does this libc offer the call. */
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define CONC__SPAWN_CLOSEFROM 1
#endif

/* The default search path when `env` has no PATH, as os.defpath. */
#define CONC__DEFPATH "/bin:/usr/bin"

struct plan {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int child[3];  /* the descriptor the child's stream i comes from, or -1 */
    int parent[3]; /* the parent's pipe end for stream i, or -1 */
    int tmp[3];    /* descriptors opened for the plan, closed after it */
};

static int
check_mode(conc_stdio mode, int fd, int stream)
{
    switch (mode) {
    case CONC_STDIO_INHERIT:
    case CONC_STDIO_PIPE:
    case CONC_STDIO_DEVNULL:
        return 0;
    case CONC_STDIO_FD:
        return fd >= 0 ? 0 : CONC_EINVAL;
    case CONC_STDIO_STDOUT:
        return stream == 2 ? 0 : CONC_EINVAL;
    }
    return CONC_EINVAL;
}

static int
check_opts(const conc_popen_opts *o)
{
    if (check_mode(o->stdin_mode, o->stdin_fd, 0) ||
        check_mode(o->stdout_mode, o->stdout_fd, 1) ||
        check_mode(o->stderr_mode, o->stderr_fd, 2))
        return CONC_EINVAL;
    if (o->pass_fds_count && !o->pass_fds)
        return CONC_EINVAL;
    for (size_t i = 0; i < o->pass_fds_count; i++)
        if (o->pass_fds[i] < 0)
            return CONC_EINVAL;
    return 0;
}

/* Moves *fd to a close-on-exec number >= 3, closing the old one when
 * `owned`. */
static int
raise_fd(int *fd, int owned)
{
    int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        return -errno;
    if (owned)
        close(*fd);
    *fd = nfd;
    return 0;
}

/* Prepares the source of stream i: a new pipe, or a safe copy of a low
 * descriptor. */
static int
prepare_stream(struct plan *pl, int i, conc_stdio mode, int fd)
{
    if (mode == CONC_STDIO_PIPE) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            return -errno;
        pl->child[i] = i == 0 ? fds[0] : fds[1];
        pl->parent[i] = i == 0 ? fds[1] : fds[0];
        return pl->child[i] < 3 ? raise_fd(&pl->child[i], 1) : 0;
    }
    if (mode != CONC_STDIO_FD)
        return 0;
    pl->child[i] = fd;
    if (fd >= 3 || fd == i)
        return 0;
    int r = raise_fd(&pl->child[i], 0);
    if (r == 0)
        pl->tmp[i] = pl->child[i];
    return r;
}

/* The file action that sets up stream i in the child. */
static int
add_stream_action(struct plan *pl, int i, conc_stdio mode)
{
    switch (mode) {
    case CONC_STDIO_PIPE:
    case CONC_STDIO_FD:
        /* dup2 onto itself clears close-on-exec (glibc >= 2.29). */
        return posix_spawn_file_actions_adddup2(&pl->fa, pl->child[i], i);
    case CONC_STDIO_DEVNULL:
        return posix_spawn_file_actions_addopen(
            &pl->fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    case CONC_STDIO_STDOUT:
        return posix_spawn_file_actions_adddup2(&pl->fa, 1, 2);
    default:
        return 0;
    }
}

static int
is_passed(const conc_popen_opts *o, int fd)
{
    for (size_t i = 0; i < o->pass_fds_count; i++)
        if (o->pass_fds[i] == fd)
            return 1;
    return 0;
}

/* Keeps pass_fds open across the exec and, unless inherit_fds, closes
 * every other descriptor >= 3 in the child (close_fds=True). */
static int
add_fd_actions(struct plan *pl, const conc_popen_opts *o)
{
    int top = 2;
    for (size_t i = 0; i < o->pass_fds_count; i++) {
        int fd = o->pass_fds[i];
        if (fd < 3)
            continue;
        int r = posix_spawn_file_actions_adddup2(&pl->fa, fd, fd);
        if (r)
            return r;
        if (fd > top)
            top = fd;
    }
    if (o->inherit_fds)
        return 0;
#ifdef CONC__SPAWN_CLOSEFROM
    /* Closing a descriptor that is not open is ignored by glibc. */
    for (int fd = 3; fd < top; fd++)
        if (!is_passed(o, fd)) {
            int r = posix_spawn_file_actions_addclose(&pl->fa, fd);
            if (r)
                return r;
        }
    return posix_spawn_file_actions_addclosefrom_np(&pl->fa, top + 1);
#else
    (void)is_passed;
    return 0;
#endif
}

static int
add_file_actions(struct plan *pl, const conc_popen_opts *o)
{
    int r = 0;
    if (o->cwd)
        r = posix_spawn_file_actions_addchdir_np(&pl->fa, o->cwd);
    if (!r)
        r = add_stream_action(pl, 0, o->stdin_mode);
    if (!r)
        r = add_stream_action(pl, 1, o->stdout_mode);
    if (!r)
        r = add_stream_action(pl, 2, o->stderr_mode);
    if (!r)
        r = add_fd_actions(pl, o);
    return -r;
}

static int
set_attrs(struct plan *pl, const conc_popen_opts *o)
{
    short flags = 0;
    sigset_t set;
    if (!o->keep_signals) {
        /* The caller's thread may block or ignore signals for its own
         * reasons; a program expects to start without that, and a child
         * with SIGTERM blocked could not be terminated. */
        flags |= POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        sigemptyset(&set);
        posix_spawnattr_setsigmask(&pl->attr, &set);
        sigaddset(&set, SIGPIPE);
        sigaddset(&set, SIGXFSZ);
        posix_spawnattr_setsigdefault(&pl->attr, &set);
    }
    if (o->new_session) {
        flags |= POSIX_SPAWN_SETSID; /* a session leader leads a group */
    } else if (o->new_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&pl->attr, 0);
    }
    return -posix_spawnattr_setflags(&pl->attr, flags);
}

static const char *
env_path(char *const env[])
{
    for (; *env; env++)
        if (strncmp(*env, "PATH=", 5) == 0)
            return *env + 5;
    return CONC__DEFPATH;
}

/* Searches `file` in the PATH of `env` (Python looks there, posix_spawnp
 * in our own environment). Returns a negated errno as execvp would. */
static int
spawn_search(pid_t *pid, const char *file, struct plan *pl, char *const argv[],
             char *const env[])
{
    const char *dir = env_path(env);
    size_t flen = strlen(file);
    int err = ENOENT;
    for (;;) {
        const char *end = strchrnul(dir, ':');
        size_t dlen = (size_t)(end - dir);
        char path[PATH_MAX];
        if (dlen + flen + 2 <= sizeof path) {
            memcpy(path, dir, dlen);
            path[dlen] = '/';
            memcpy(path + dlen + 1, file, flen + 1);
            /* An empty entry is the working directory, as for execvp. */
            const char *p = dlen ? path : file;
            int r = posix_spawn(pid, p, &pl->fa, &pl->attr, argv, env);
            if (r == 0)
                return 0;
            if (r == EACCES)
                err = EACCES;
            else if (r != ENOENT && r != ENOTDIR && r != ELOOP &&
                     r != ENAMETOOLONG)
                return -r;
        }
        if (!*end)
            return -err;
        dir = end + 1;
    }
}

static int
spawn_program(pid_t *pid, const char *prog, struct plan *pl, char *const argv[],
              char *const env[])
{
    if (!*prog)
        return CONC_ENOENT;
    if (strchr(prog, '/'))
        return -posix_spawn(pid, prog, &pl->fa, &pl->attr, argv,
                            env ? env : environ);
    if (!env)
        return -posix_spawnp(pid, prog, &pl->fa, &pl->attr, argv, environ);
    return spawn_search(pid, prog, pl, argv, env);
}

/* Closes what the plan opened: always the child's ends and copies, and on
 * failure the parent's ends too. */
static void
plan_close(struct plan *pl, int failed)
{
    for (int i = 0; i < 3; i++) {
        if (pl->tmp[i] >= 0)
            close(pl->tmp[i]);
        else if (pl->parent[i] >= 0 && pl->child[i] >= 0)
            close(pl->child[i]); /* a pipe's child end */
        if (failed && pl->parent[i] >= 0)
            close(pl->parent[i]);
    }
}

static int
spawn_fail(int err, char *const argv[], const conc_popen_opts *o)
{
    const char *prog = o->executable ? o->executable : argv[0];
    if (o->cwd)
        return conc_fail(err, "cannot run '%s' in '%s': %s", prog, o->cwd,
                         conc_strerror(err));
    return conc_fail(err, "cannot run '%s': %s", prog, conc_strerror(err));
}

static int
plan_prepare(struct plan *pl, const conc_popen_opts *o)
{
    int r = prepare_stream(pl, 0, o->stdin_mode, o->stdin_fd);
    if (!r)
        r = prepare_stream(pl, 1, o->stdout_mode, o->stdout_fd);
    if (!r)
        r = prepare_stream(pl, 2, o->stderr_mode, o->stderr_fd);
    if (!r)
        r = add_file_actions(pl, o);
    if (!r)
        r = set_attrs(pl, o);
    return r;
}

int
conc__popen_spawn(conc_popen *p, char *const argv[], const conc_popen_opts *o)
{
    int r = check_opts(o);
    if (r)
        return r;
    struct plan pl;
    for (int i = 0; i < 3; i++)
        pl.child[i] = pl.parent[i] = pl.tmp[i] = -1;
    if ((r = -posix_spawn_file_actions_init(&pl.fa)) != 0)
        return r;
    if ((r = -posix_spawnattr_init(&pl.attr)) != 0)
        goto fail_attr;
    r = plan_prepare(&pl, o);
    if (!r)
        r = spawn_program(&p->pid, o->executable ? o->executable : argv[0], &pl,
                          argv, o->env);
    plan_close(&pl, r != 0);
    posix_spawnattr_destroy(&pl.attr);
fail_attr:
    posix_spawn_file_actions_destroy(&pl.fa);
    if (r)
        return spawn_fail(r, argv, o);
    p->leader = o->new_group || o->new_session;
    p->in_fd = pl.parent[0];
    p->out_fd = pl.parent[1];
    p->err_fd = pl.parent[2];
    for (int i = 0; i < 3; i++)
        if (pl.parent[i] >= 0)
            p->piped |= 1u << i;
    return 0;
}
