/* The parent's side of the fork server: starting it, asking it for
 * children, stopping it.
 *
 * The server is a fresh image of this program (/proc/self/exe) started with
 * posix_spawn, never a fork of this process, so it inherits no thread and
 * no held lock however many threads run here. An environment variable
 * carries the number of its end of a socket pair and our pid; a constructor
 * of the library (fsserver.c) recognizes it and serves requests before main
 * could run. The server greets us with its pid, then answers each request
 * with the child's pid, the read end of a pipe on which it will write the
 * child's exit code, and a pidfd of the child when the platform has them
 * (see process_internal.h for the wire format).
 *
 * Functions cross the exec as an offset within their module (the program or
 * a shared library), since the server's modules load at other addresses.
 *
 * One lock serializes the requests of all threads: the server handles one
 * at a time anyway. The server ends when our end of the socket closes: at
 * conc_forkserver_stop, or when this process dies; forked children close
 * their inherited copy, so that they do not keep it alive. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "process/process_internal.h"
#include "unix/platform.h"

extern char **environ;

#define HELLO_TIMEOUT_NS (30 * (int64_t)1000000000)

static struct {
    conc__lockword lock;
    int sock;       /* our end of the server's socket, or -1; lock */
    int pid;        /* the server's pid; guarded by lock */
    _Atomic int up; /* sock >= 0; written under lock, read without */
} fs = {.sock = -1};

static void
fs_lock(void)
{
    conc__lockword_acquire(&fs.lock, CONC__FOREVER, 0);
}

static void
fs_unlock(void)
{
    conc__lockword_release(&fs.lock, 0);
}

/* ---- Byte transfer ------------------------------------------------------ */

int
conc__fs_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r == 0)
            return CONC_ECLOSED;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends the whole iovec array, advancing it over partial sends. */
static int
send_iov(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        size_t left = (size_t)r;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int
conc__fs_write_full(int fd, const void *buf, size_t n)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    return send_iov(fd, &iov, 1);
}

/* ---- Locating functions ------------------------------------------------- */

int
conc__fs_locate(conc_process_fn fn, uintptr_t *off, const char **module)
{
    Dl_info info;
    struct link_map *lm = NULL;
    void *addr = (void *)(uintptr_t)fn;
    if (!dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return conc_fail(CONC_EINVAL,
                         "the fork server cannot run the function at %p: "
                         "it lies in no loaded module",
                         addr);
    *off = (uintptr_t)addr - (uintptr_t)lm->l_addr;
    *module = lm->l_name;
    return 0;
}

/* ---- Starting and stopping the server ----------------------------------- */

/* Waits until `pid` has ended and reaps it. */
static void
reap(int pid)
{
    int64_t nap = 0;
    int status;
    while (conc__child_reap(pid, &status) == 0)
        conc__child_await(pid, -1, CONC__FOREVER, &nap);
}

/* Our environment plus the server's variable (replacing any inherited
 * one), in a new array freed with conc__free. */
static char **
server_env(char *var)
{
    size_t n = 0, len = strlen(CONC__FS_ENV "=");
    while (environ && environ[n])
        n++;
    char **env = conc__malloc((n + 2) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], CONC__FS_ENV "=", len) != 0)
            env[k++] = environ[i];
    env[k++] = var;
    env[k] = NULL;
    return env;
}

/* Spawns the server with `fd` as its end of the socket. Returns 0 and its
 * pid, or a negated errno. */
static int
spawn(int fd, int *pid)
{
    char var[64];
    snprintf(var, sizeof var, "%s=%d,%d", CONC__FS_ENV, fd,
             conc__process_self_pid());
    char **env = server_env(var);
    if (!env)
        return CONC_ENOMEM;
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    /* dup2 of a descriptor onto itself clears its close-on-exec flag in the
     * child only: the socket stays close-on-exec here. */
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, fd, fd);
    char *argv[] = {program_invocation_name, NULL};
    pid_t child = 0;
    if (!rc)
        rc = posix_spawn(&child, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    conc__free(env);
    *pid = (int)child;
    return -rc;
}

/* Waits for the server's greeting. */
static int
await_hello(int sock, int pid)
{
    int r = conc__poll_fd(sock, POLLIN, conc__now_ns() + HELLO_TIMEOUT_NS);
    if (r == 0)
        return CONC_ETIMEDOUT;
    if (r < 0)
        return r;
    struct conc__fs_hello h;
    r = conc__fs_read_full(sock, &h, sizeof h);
    if (r == CONC_ECLOSED ||
        (!r && (h.magic != CONC__FS_MAGIC || h.pid != pid)))
        return conc_fail(CONC_EPROTO, "the fork server did not start");
    return r;
}

static int
start_locked(void)
{
    if (!conc__fs_server_present)
        return CONC_EINVAL;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    int pid;
    int rc = spawn(sv[1], &pid);
    close(sv[1]);
    if (!rc) {
        rc = await_hello(sv[0], pid);
        if (rc) {
            kill(pid, SIGKILL); /* ours and not reaped: the pid is safe */
            reap(pid);
        }
    }
    if (rc) {
        close(sv[0]);
        return rc;
    }
    fs.sock = sv[0];
    fs.pid = pid;
    atomic_store_explicit(&fs.up, 1, memory_order_relaxed);
    conc__process_register_exit();
    return 0;
}

/* Shuts our end, which makes the server exit, and reaps it. The server's
 * exit closes its end: until `deadline` we wait for that end of file,
 * then kill the server, so that a stop never waits longer than asked.
 * Returns 0 or CONC_ETIMEDOUT. */
static int
stop_locked(int64_t deadline)
{
    if (fs.sock < 0)
        return 0;
    int r = 0;
    if (deadline != CONC__FOREVER) {
        shutdown(fs.sock, SHUT_WR);
        if (conc__poll_fd(fs.sock, POLLIN, deadline) <= 0) {
            kill(fs.pid, SIGKILL);
            r = CONC_ETIMEDOUT;
        }
    }
    close(fs.sock);
    reap(fs.pid);
    fs.sock = -1;
    fs.pid = 0;
    atomic_store_explicit(&fs.up, 0, memory_order_relaxed);
    return r;
}

/* Starts the server if it is not running; replaces one that died. The
 * server never writes unprompted, so a readable socket means end of
 * file. */
static int
ensure_locked(void)
{
    if (fs.sock >= 0 && conc__poll_fd(fs.sock, POLLIN, CONC__POLL) != 0)
        stop_locked(CONC__FOREVER); /* it has ended already */
    return fs.sock >= 0 ? 0 : start_locked();
}

int
conc_forkserver_start(void)
{
    if (conc__process_self()->daemon)
        return conc_fail(CONC_EPERM,
                         "daemonic processes are not allowed to have children");
    fs_lock();
    int rc = ensure_locked();
    fs_unlock();
    return rc;
}

int
conc_forkserver_stop(double timeout)
{
    int64_t deadline;
    if (conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (!atomic_load_explicit(&fs.up, memory_order_relaxed))
        return 0;
    fs_lock();
    int r = stop_locked(deadline);
    fs_unlock();
    return r;
}

void
conc__fs_atfork_child(void)
{
    if (fs.sock >= 0) {
        close(fs.sock);
        fs.sock = -1;
        fs.pid = 0;
        atomic_store_explicit(&fs.up, 0, memory_order_relaxed);
    }
    if (atomic_load_explicit(&fs.lock.locked, memory_order_relaxed) ||
        atomic_load_explicit(&fs.lock.waiters, memory_order_relaxed)) {
        atomic_store_explicit(&fs.lock.locked, 0, memory_order_relaxed);
        atomic_store_explicit(&fs.lock.waiters, 0, memory_order_relaxed);
    }
}

/* ---- Requests ------------------------------------------------------------ */

static int
send_request_locked(const conc_process *p)
{
    const char *pname = conc__process_self()->name;
    struct conc__fs_request h = {
        .magic = CONC__FS_MAGIC,
        .daemon = p->daemon,
        .fn_off = p->fn_off,
        .arg_len = p->len,
        .module_len = (uint32_t)strlen(p->module),
        .name_len = (uint32_t)strlen(p->name),
        .ident_len = (uint32_t)strlen(p->ident),
        .parent_name_len = (uint32_t)strlen(pname),
    };
    struct iovec iov[] = {
        {&h, sizeof h},
        {(void *)p->module, h.module_len},
        {p->name, h.name_len},
        {(void *)p->ident, h.ident_len},
        {(void *)pname, h.parent_name_len},
        {p->arg, p->len},
    };
    return send_iov(fs.sock, iov, (int)(sizeof iov / sizeof iov[0]));
}

/* Receives the reply: the header, with the descriptors on its first byte
 * (the status pipe, and the child's pidfd unless the platform has none). */
static int
recv_reply_locked(struct conc__fs_reply *r, int fds[2])
{
    struct iovec iov = {.iov_base = r, .iov_len = sizeof *r};
    size_t nfds;
    ssize_t n = conc__fd_recv(fs.sock, &iov, 1, fds, 2, &nfds, 0);
    if (n < 0)
        return (int)n;
    if (n == 0) {
        while (nfds)
            close(fds[--nfds]);
        return CONC_ECLOSED;
    }
    if ((size_t)n < sizeof *r)
        return conc__fs_read_full(fs.sock, (char *)r + n,
                                  sizeof *r - (size_t)n);
    return 0;
}

/* One request and its reply. A failed transfer means the server died. */
static int
request_locked(conc_process *p)
{
    int fds[2] = {-1, -1};
    struct conc__fs_reply r;
    int rc = send_request_locked(p);
    if (!rc)
        rc = recv_reply_locked(&r, fds);
    if (rc) {
        stop_locked(CONC__FOREVER);
        rc = conc_fail(CONC_EBROKEN, "the fork server died: %s",
                       conc_strerror(rc));
    } else if (r.err) {
        rc = r.err == CONC_EINVAL
                 ? conc_fail(CONC_EINVAL,
                             "the fork server found no function at offset "
                             "%#lx of module \"%s\"",
                             (unsigned long)p->fn_off, p->module)
                 : r.err;
    } else if (fds[0] < 0 || r.pid <= 0) {
        rc = CONC_EPROTO;
    } else {
        p->pid = r.pid;
        p->wait_fd = fds[0];
        p->pidfd = fds[1];
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

int
conc__fs_start(conc_process *p)
{
    if (strlen(p->name) >= CONC__FS_MAX_STR ||
        strlen(conc__process_self()->name) >= CONC__FS_MAX_STR ||
        strlen(p->module) >= CONC__FS_MAX_STR)
        return conc_fail(CONC_EINVAL, "name too long for the fork server");
    fs_lock();
    int rc = ensure_locked();
    if (!rc)
        rc = request_locked(p);
    fs_unlock();
    return rc;
}
