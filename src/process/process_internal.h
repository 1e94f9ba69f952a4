/* Internal to the process module: the handle, and the calls between the
 * module's files.
 *
 * Files: process.c creates, starts, closes and frees handles and answers the
 * attribute queries; wait.c reaps, waits and signals; family.c keeps the
 * current and parent handles, the list of children (active_children,
 * handles freed while running, the exit handler, the fork handlers);
 * child.c starts a child with fork and runs a child's function and exit;
 * fsclient.c is the parent's side of the fork server and fsserver.c the
 * server itself.
 *
 * Lock order: the children list's lock, then a handle's lock. The fork
 * server client's lock is taken alone. No lock is held while user code
 * runs, nor across a fork. */
#ifndef CONC_PROCESS_INTERNAL_H
#define CONC_PROCESS_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conc/process.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "unix/fdwait.h"

/* What a handle stands for. Only CHILD handles are started and reaped. */
enum conc__proc_kind {
    CONC__PROC_CHILD,  /* made by conc_process_new */
    CONC__PROC_SELF,   /* the calling process (conc_process_current) */
    CONC__PROC_PARENT, /* its parent (conc_process_parent) */
};

/* The `state` word. */
#define CONC__PROC_NEW     0u
#define CONC__PROC_RUNNING 1u
#define CONC__PROC_DONE    2u

/* `status` when the process ended but its exit status is unknown. */
#define CONC__STATUS_LOST INT_MIN

struct conc_process {
    _Atomic uint32_t refs; /* one per handle given out, plus the list's */
    /* NEW until started, then RUNNING, then DONE once reaped. DONE is
     * stored under `lock`, with release order, after `status`. */
    _Atomic uint32_t state;
    /* Guards status, lost, wait_fd, pidfd and waiters, and makes reaping
     * and signalling exclusive: a pid is signalled only under the lock
     * and before it is reaped, so the signal never reaches a recycled pid. */
    conc__lockword lock;
    uint8_t kind;      /* enum conc__proc_kind; fixed */
    uint8_t method;    /* CONC_START_FORK or _FORKSERVER; fixed */
    uint8_t daemon;    /* fixed once started */
    uint8_t closed;    /* set by conc_process_close, which runs alone */
    uint8_t name_heap; /* `name` was allocated by conc_process_set_name */
    uint8_t listed;    /* on the children list; guarded by its lock */
    uint8_t orphan;    /* freed while running; guarded by the list lock */
    uint8_t lost;      /* fork server's status pipe ended empty; `lock` */
    int pid;           /* 0 before start; fixed after */
    int owner;         /* the pid of the process that made the handle */
    int status;        /* the exit code, or CONC__STATUS_LOST; once DONE */
    /* The descriptor timed waits poll: for a forked child a pidfd opened
     * on the first timed wait; for a fork server child the pipe on which
     * the server writes the exit code. -1 when none. */
    int wait_fd;
    int pidfd; /* fork server child: for signals and liveness; -1 when the
                * platform has no pidfd */
    uint32_t waiters; /* threads polling wait_fd or pidfd outside lock */
    conc_process_fn fn;
    uintptr_t fn_off;   /* fork server: fn's offset in its module */
    const char *module; /* fork server: the module's name, in buf */
    void *arg;          /* the argument bytes until start */
    size_t len;
    char *name;                /* in buf, or on the heap if name_heap */
    const char *ident;         /* "2", "2:1": Python's _identity, in buf */
    conc_process *prev, *next; /* the children list; its lock */
    char buf[];
};

/* ---- process.c ---------------------------------------------------------- */

/* Allocates a handle of `kind` with copies of the strings (module may be
 * NULL). refs is 1; the descriptors are -1. NULL when out of memory. */
conc_process *conc__process_alloc(enum conc__proc_kind kind, const char *name,
                                  const char *ident, const char *module);

/* Drops one reference; the last one closes the descriptors and frees. */
void conc__process_release(conc_process *p);

/* ---- wait.c ------------------------------------------------------------- */

/* Reaps `p` if it has ended, without blocking. Returns 1 if it is DONE. */
int conc__process_poll(conc_process *p);

/* Waits for `p` to end by the absolute deadline and reaps it. Returns 0,
 * CONC_ETIMEDOUT, or a negated errno from a failed system call. */
int conc__process_wait(conc_process *p, int64_t deadline);

/* Sends `sig` to a running child. Returns 0 or a negated errno. */
int conc__process_signal(conc_process *p, int sig);

/* Closes the descriptors (no other thread may be using `p`). */
void conc__process_close_fds(conc_process *p);

/* ---- family.c ----------------------------------------------------------- */

/* The calling process's pid. */
int conc__process_self_pid(void);

/* The calling process's handle. */
conc_process *conc__process_self(void);

/* What `p` stands for here: in a forked child, the handle its parent
 * started is the current process, though its `kind` still says CHILD (the
 * child does not write to it, so that its page stays shared). */
enum conc__proc_kind conc__process_kind(const conc_process *p);

/* Writes the identity of the next child ("N" or "P:N") into buf and
 * returns its length. Formatted by hand: printf's deep stack would touch
 * a page that the last fork made copy-on-write. */
size_t conc__process_next_ident(char *buf, size_t size);

/* Registers, once, the exit handler that joins the children and the fork
 * handlers. Until then a fork has nothing of the module's to reset. */
void conc__process_register_exit(void);

/* Puts a started child on the list (the list takes a reference), and
 * makes sure the exit handler is registered. */
void conc__children_add(conc_process *p);

/* Takes a reaped child off the list, dropping the list's reference. */
void conc__children_forget(conc_process *p);

/* The owner dropped the handle of a running child: it stays on the list
 * until it ends and a later reap takes it off. */
void conc__children_orphan(conc_process *p);

/* Reaps orphans that have ended (cheap when there are none). */
void conc__children_reap_orphans(void);

/* Terminates and joins the daemon children, joins the others, and stops
 * the fork server: what exit does, and what a child does when its function
 * returns. */
void conc__children_exit(void);

/* Whether exit has begun: no new child should start. */
int conc__children_exiting(void);

/* In a new child: `self` becomes the current process (kept forever, and
 * not written to), and the parent handle names `parent_name` (borrowed: the
 * parent's name, which stays in the child's memory) and `parent_pid`;
 * `parent_fd` is a pidfd of the parent or -1 to open one when needed. */
void conc__process_become_child(conc_process *self, int parent_pid,
                                const char *parent_name, int parent_fd);

/* ---- child.c ------------------------------------------------------------ */

/* Forks a child that runs p's function. Returns 0 (p->pid set) or a
 * negated errno. */
int conc__fork_start(conc_process *p);

/* In a child with the PR_SET_PDEATHSIG parent `parent_pid`: dies at once
 * if that parent has already gone. */
void conc__child_tie_to_parent(int parent_pid);

/* Ends a child whose function returned `r` (see process.h). */
_Noreturn void conc__child_exit(int r);

/* ---- fsclient.c --------------------------------------------------------- */

/* Finds the module holding `fn`: its offset and name (borrowed from the
 * dynamic linker). Returns 0 or CONC_EINVAL with a failure message. */
int conc__fs_locate(conc_process_fn fn, uintptr_t *off, const char **module);

/* Asks the fork server to start `p`. Returns 0 (pid and descriptors set)
 * or an error code. */
int conc__fs_start(conc_process *p);

/* In a forked child: forgets the parent's server without stopping it. */
void conc__fs_atfork_child(void);

/* Reads or writes exactly `n` bytes, resuming after signals and short
 * transfers. Return 0, CONC_ECLOSED at end of file, or a negated errno.
 * Writes never raise SIGPIPE on a socket. */
int conc__fs_read_full(int fd, void *buf, size_t n);
int conc__fs_write_full(int fd, const void *buf, size_t n);

/* Defined next to the server's entry (see fsserver.c). */
extern const int conc__fs_server_present;

/* The environment variable that makes a program image a fork server. */
#define CONC__FS_ENV "CONC_FORKSERVER"

/* The wire format between client and server, native byte order: a request
 * header, then the module name, the child's name, its identity, the
 * parent's name and the argument bytes; a reply header, with the status
 * pipe and, when the platform has pidfds, a pidfd of the child passed as
 * descriptors when err is 0. */
#define CONC__FS_MAGIC   0x636f6e63u /* "conc" */
#define CONC__FS_MAX_STR (1u << 16)

struct conc__fs_hello {
    uint32_t magic;
    int32_t pid;
};

struct conc__fs_request {
    uint32_t magic;
    uint32_t daemon;
    uint64_t fn_off;
    uint64_t arg_len;
    uint32_t module_len, name_len, ident_len, parent_name_len;
};

struct conc__fs_reply {
    int32_t err;
    int32_t pid;
};

/* ---- fsrequest.c -------------------------------------------------------- */

/* A request as the fork server read it: the strings and the argument lie
 * in `block`, which the reader allocated (freed with conc__free). */
struct conc__fs_req {
    uint64_t fn_off; /* the function's offset in `module` */
    int daemon;
    const char *module, *name, *ident, *parent_name; /* NUL-ended */
    void *arg; /* `len` bytes, aligned as malloc aligns */
    size_t len;
    char *block;
};

/* Reads one request from `fd`. Returns 0 (the caller owns r->block),
 * CONC_ENOMEM when the request was read to its end but could not be held
 * (the stream is still in step: the server refuses it and goes on), or,
 * when the stream cannot be followed, CONC_EPROTO for a bad header,
 * CONC_ECLOSED at end of file, or a negated errno. */
int conc__fs_read_request(int fd, struct conc__fs_req *r);

#endif
