/* The fork server: a fresh image of the program that forks children on
 * request (the client is fsclient.c).
 *
 * Entry. The client starts /proc/self/exe with CONC_FORKSERVER=<fd>,<pid>
 * in the environment. A constructor of the library sees it while the
 * program loads and never returns, so main never runs in the server. Before
 * it serves, it runs the constructors that follow it in its own module's
 * initialization array, which the loader would have run next: conc's other
 * constructors (and, when conc is linked into the program, the program's),
 * so children start from the state a program has just before main.
 * Modules initialized after conc's (the program, when conc is a shared
 * library) have not run their constructors in the server.
 *
 * The server has one thread. It waits in poll on the socket (requests, or
 * end of file when the client's process is gone or stops it) and on a
 * signalfd for SIGCHLD. For each request it reads the whole message, finds
 * the function (its module's base in this image plus the offset), makes
 * the status pipe, forks, and replies with the child's pid, the pipe's read
 * end and a pidfd (none when the platform has no pidfds). When a child ends it
 * writes the exit code, as a negative signal number or the exit status, into
 * the pipe and closes it. At end of file it kills its daemon children, reports
 * their end, and exits; other children live on.
 *
 * Children run with no descriptor but the standard three and a pidfd of
 * the client (which conc_process_parent watches), and with the signal mask
 * and the SIGPIPE and SIGCHLD handling the server inherited. A daemon child
 * asks to be killed when the server dies. */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/process_internal.h"
#include "unix/platform.h"

/* Referenced by the client, so that a static link that has the client has
 * the server's constructor too: without it the spawned image would run
 * main. */
const int conc__fs_server_present = 1;

struct kid {
    int pid;
    int status_w; /* the pipe's write end, or -1 */
    int daemon;
};

static struct {
    int sock, sigfd;
    int client_pid; /* the process that started the server */
    int client_fd;  /* a pidfd of it, or -1 */
    int pid;
    sigset_t child_mask;         /* the mask the server inherited */
    struct sigaction child_pipe; /* SIGPIPE as inherited */
    struct sigaction child_chld; /* SIGCHLD as inherited */
    struct kid *kids;
    size_t n, cap;
} srv;

/* ---- Children ----------------------------------------------------------- */

static void
report(int pid, int wstatus)
{
    int32_t code =
        WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -WTERMSIG(wstatus);
    for (size_t i = 0; i < srv.n; i++) {
        if (srv.kids[i].pid != pid)
            continue;
        if (srv.kids[i].status_w >= 0) {
            /* A client that went away makes this fail with EPIPE. */
            ssize_t r = write(srv.kids[i].status_w, &code, sizeof code);
            (void)r;
            close(srv.kids[i].status_w);
        }
        srv.kids[i] = srv.kids[--srv.n];
        return;
    }
}

/* Every child of the server is a kid it reports on, so it reaps with
 * waitpid(-1), one call per ended child, instead of asking after each kid
 * in turn as a program's children are reaped (unix/platform.h). */
static void
reap_kids(void)
{
    conc__signalfd_drain(srv.sigfd);
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        report(pid, st);
}

static _Noreturn void
shutdown_server(void)
{
    reap_kids();
    for (size_t i = 0; i < srv.n; i++)
        if (srv.kids[i].daemon)
            kill(srv.kids[i].pid, SIGKILL);
    size_t i = 0;
    while (i < srv.n) {
        int st;
        if (!srv.kids[i].daemon) {
            i++;
        } else if (waitpid(srv.kids[i].pid, &st, 0) == srv.kids[i].pid) {
            report(srv.kids[i].pid, st);
        } else if (errno != EINTR) {
            i++;
        }
    }
    _exit(0);
}

/* Closes every descriptor from 3 up except `keep` (which may be -1). */
static void
close_from_3(int keep)
{
    if (keep < 3) {
        conc__close_range(3, ~0u);
        return;
    }
    if (keep > 3)
        conc__close_range(3, (unsigned)keep - 1);
    conc__close_range((unsigned)keep + 1, ~0u);
}

static _Noreturn void
run_kid(const struct conc__fs_req *k, conc_process_fn fn)
{
    close_from_3(srv.client_fd);
    sigaction(SIGPIPE, &srv.child_pipe, NULL);
    sigaction(SIGCHLD, &srv.child_chld, NULL);
    sigprocmask(SIG_SETMASK, &srv.child_mask, NULL);
    if (k->daemon)
        conc__child_tie_to_parent(srv.pid);
    conc_process *self =
        conc__process_alloc(CONC__PROC_SELF, k->name, k->ident, NULL);
    if (!self) {
        fprintf(stderr, "Process %s: %s: %s\n", k->name,
                conc_err_name(CONC_ENOMEM), conc_strerror(CONC_ENOMEM));
        _exit(1);
    }
    self->daemon = (uint8_t)k->daemon;
    conc__process_become_child(self, srv.client_pid, k->parent_name,
                               srv.client_fd);
    conc_process_parent()->method = CONC_START_FORKSERVER;
    conc__child_exit(fn(k->len ? k->arg : NULL, k->len));
}

/* ---- Functions ----------------------------------------------------------- */

struct lookup {
    const char *module;
    uintptr_t off;
    void *fn; /* the result, or NULL */
};

/* Finds the module by name; the offset must fall in an executable segment
 * of it. */
static int
lookup_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct lookup *l = arg;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (strcmp(name, l->module) != 0)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
            l->off >= ph->p_vaddr && l->off - ph->p_vaddr < ph->p_memsz)
            l->fn = (void *)(info->dlpi_addr + l->off);
    }
    return 1;
}

static conc_process_fn
lookup(const char *module, uintptr_t off)
{
    struct lookup l = {.module = module, .off = off};
    dl_iterate_phdr(lookup_cb, &l);
    conc_process_fn fn = NULL;
    if (l.fn)
        memcpy(&fn, &l.fn, sizeof fn);
    return fn;
}

/* ---- Requests ------------------------------------------------------------ */

/* Sends the reply header with `nfds` descriptors (the status pipe, then
 * the child's pidfd when there is one). */
static int
reply(int err, int pid, const int *fds, size_t nfds)
{
    struct conc__fs_reply r = {.err = err, .pid = pid};
    struct iovec iov = {.iov_base = &r, .iov_len = sizeof r};
    ssize_t n = conc__fd_send(srv.sock, &iov, 1, fds, nfds, 0);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof r)
        return conc__fs_write_full(srv.sock, (char *)&r + n,
                                   sizeof r - (size_t)n);
    return 0;
}

/* Makes room for one more child, before the fork: afterwards, recording
 * it cannot fail. */
static int
reserve_kid(void)
{
    if (srv.n < srv.cap)
        return 0;
    size_t cap = srv.cap ? 2 * srv.cap : 16;
    struct kid *k = conc__realloc(srv.kids, cap * sizeof *k);
    if (!k)
        return CONC_ENOMEM;
    srv.kids = k;
    srv.cap = cap;
    return 0;
}

/* Forks the child and replies. Returns 0 or an error; *replied tells
 * whether the reply went out already. */
static int
start_kid(const struct conc__fs_req *k, conc_process_fn fn, int *replied)
{
    int rc = reserve_kid();
    if (rc)
        return rc;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0)
        run_kid(k, fn);
    if (pid < 0) {
        rc = -errno;
        close(pfd[0]);
        close(pfd[1]);
        return rc;
    }
    int fds[2] = {pfd[0], conc__pidfd_of(pid)};
    if (fds[1] < 0 && fds[1] != CONC__NO_PIDFD) {
        rc = fds[1];
        kill(pid, SIGKILL); /* the client could not watch it */
        srv.kids[srv.n++] = (struct kid){pid, -1, k->daemon};
        close(pfd[0]);
        close(pfd[1]);
        return rc;
    }
    srv.kids[srv.n++] = (struct kid){pid, pfd[1], k->daemon};
    *replied = 1;
    rc = reply(0, pid, fds, fds[1] >= 0 ? 2 : 1);
    close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc;
}

/* Serves one request. Returns 0, or non-zero when the server must stop. */
static int
serve_one(void)
{
    struct conc__fs_req k;
    int rc = conc__fs_read_request(srv.sock, &k);
    if (rc == CONC_ENOMEM)
        return reply(rc, 0, NULL, 0) != 0;
    if (rc)
        return 1;
    int replied = 0;
    conc_process_fn fn = lookup(k.module, (uintptr_t)k.fn_off);
    rc = fn ? start_kid(&k, fn, &replied) : CONC_EINVAL;
    conc__free(k.block);
    if (replied)
        return rc != 0;
    return reply(rc, 0, NULL, 0) != 0;
}

/* ---- Set-up and the loop ------------------------------------------------- */

/* Moves `fd` to 3 or above, so that the standard descriptors stay free. */
static int
lift(int fd)
{
    if (fd >= 3)
        return fd;
    int up = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return up;
}

static int
set_up(int sock, int client_pid)
{
    srv.sock = lift(sock);
    close_from_3(srv.sock);
    for (int i = 0; i < 3; i++) /* the children's standard descriptors */
        if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
            return -1;
    srv.pid = (int)getpid();
    srv.client_pid = client_pid;
    srv.client_fd = conc__pidfd_of(client_pid);
    if (srv.client_fd < 0) /* gone (seen below), or no pidfd */
        srv.client_fd = -1;
    if (getppid() != client_pid) /* the client died before we opened it */
        return -1;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &srv.child_mask);
    struct sigaction ign = {.sa_handler = SIG_IGN},
                     dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &ign, &srv.child_pipe);
    sigaction(SIGCHLD, &dfl, &srv.child_chld); /* SIG_IGN would auto-reap */
    srv.sigfd = conc__signalfd_new(&chld);
    if (srv.sigfd < 0)
        return -1;
    struct conc__fs_hello hello = {.magic = CONC__FS_MAGIC, .pid = srv.pid};
    return conc__fs_write_full(srv.sock, &hello, sizeof hello);
}

static _Noreturn void
serve(int sock, int client_pid)
{
    if (set_up(sock, client_pid) != 0)
        _exit(1);
    for (;;) {
        struct pollfd pf[2] = {{.fd = srv.sock, .events = POLLIN},
                               {.fd = srv.sigfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0)
            continue; /* EINTR */
        if (pf[1].revents)
            reap_kids();
        if (pf[0].revents && serve_one() != 0)
            break;
    }
    shutdown_server();
}

/* ---- Entry --------------------------------------------------------------- */

typedef void (*init_fn)(int, char **, char **);

/* In a program linked statically, without a dynamic section. */
extern init_fn __init_array_start[] __attribute__((weak, visibility("hidden")));
extern init_fn __init_array_end[] __attribute__((weak, visibility("hidden")));

struct init_array {
    uintptr_t addr; /* an address inside the module */
    init_fn *fns;
    size_t n;
};

static int
init_array_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct init_array *a = arg;
    const ElfW(Dyn) *dyn = NULL;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a->addr - start < ph->p_memsz)
            mine = 1;
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)start;
    }
    if (!mine)
        return 0;
    uintptr_t fns = 0;
    size_t bytes = 0;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_INIT_ARRAY)
            fns = dyn->d_un.d_ptr; /* not relocated by the loader */
        else if (dyn->d_tag == DT_INIT_ARRAYSZ)
            bytes = dyn->d_un.d_val;
    }
    if (fns) {
        a->fns = (init_fn *)(info->dlpi_addr + fns);
        a->n = bytes / sizeof(init_fn);
    }
    return 1;
}

/* Runs the entries of this module's initialization array after `self`. */
static void
run_later_constructors(init_fn self, int argc, char **argv, char **envp)
{
    struct init_array a = {.addr = (uintptr_t)self};
    dl_iterate_phdr(init_array_cb, &a);
    if (!a.fns && __init_array_start) {
        a.fns = __init_array_start;
        a.n = (size_t)(__init_array_end - __init_array_start);
    }
    size_t i = 0;
    while (i < a.n && a.fns[i] != self)
        i++;
    for (i++; i < a.n; i++)
        if ((uintptr_t)a.fns[i] + 1 > 1) /* 0 and -1 are placeholders */
            a.fns[i](argc, argv, envp);
}

__attribute__((constructor)) static void
fs_entry(int argc, char **argv, char **envp)
{
    const char *v = getenv(CONC__FS_ENV);
    int fd, client_pid;
    struct stat st;
    if (!v || sscanf(v, "%d,%d", &fd, &client_pid) != 2 || fstat(fd, &st) ||
        !S_ISSOCK(st.st_mode))
        return; /* not started as a fork server */
    unsetenv(CONC__FS_ENV);
    run_later_constructors(fs_entry, argc, argv, envp);
    serve(fd, client_pid);
}
