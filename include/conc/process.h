/* conc/process.h: processes that run a C function (multiprocessing.Process).
 *
 * A conc_process runs `fn(arg, len)` in a new process. `arg` is a byte
 * string copied when the process is created; the child receives its own
 * copy, so pass a struct without pointers (processes share bytes, not
 * memory). The child's exit status is the function's return value, as
 * Python's is its sys.exit code:
 *   - 0..255: the exit status itself (larger values are reduced modulo 256
 *     by the system, as exit() does);
 *   - a negative conc code: the child prints
 *     "Process NAME: CONC_EXXX: message" to stderr (the message left by
 *     conc_fail, or the code's description) and exits with status 1, as a
 *     Python child prints its traceback and exits with 1.
 * A process ended by a signal has the exit code minus the signal number.
 *
 * When the function returns, the child first terminates its own daemon
 * children and joins its other children, then joins the non-daemon threads
 * conc started in it, flushes stdout and stderr and leaves with _exit: the
 * parent's atexit handlers never run in a child.
 *
 * Start methods (multiprocessing.set_start_method):
 *   - CONC_START_FORK (the default): fork() the calling process. Fastest;
 *     the child has a copy of everything, including locks that other
 *     threads held at the moment of the fork, which stay held forever in
 *     the child. Use it while the program runs a single thread, or when the
 *     child touches nothing those threads might lock.
 *   - CONC_START_FORKSERVER: a single-threaded server process, started on
 *     first use from a fresh image of the program (before main runs),
 *     forks the children. A program that already runs threads gets
 *     children with no inherited lock held. The function must lie in the
 *     program or in a library loaded at program start (not one opened later
 *     with dlopen), and conc must be linked into the program, not dlopen'ed.
 *     The child starts from the program's state before main: globals have
 *     their initial values, and only the arg bytes carry data.
 *
 * Daemon processes (Process.daemon): a daemon process is terminated (SIGTERM,
 * then joined) when its parent exits normally, is killed by the system when
 * its parent dies in any other way (also SIGKILL), and may not start
 * processes of its own (CONC_EPERM). With the fork method the kernel ties
 * "parent dies" to the thread that started the child: a daemon started
 * from a thread other than the main thread is also killed when that thread
 * ends. Fork server children depend on the server, which ends with the
 * program.
 *
 * Reaping: conc waits for every child it starts; no zombie remains. A
 * handle freed while its process runs is reaped by a later
 * conc_process_start or conc_active_children, or at exit. Do not reap conc's
 * children yourself (waitpid(-1), SIGCHLD set to SIG_IGN): their exit
 * status is then lost (CONC_ECHILD). At normal exit (exit(), returning from
 * main), conc terminates and joins the daemon children still running and
 * joins the others, as Python does.
 *
 * Every descriptor conc opens is close-on-exec. */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <sys/types.h>

#include "common.h"
#include "thread.h"

CONC_BEGIN_DECLS

typedef struct conc_process conc_process;

/* The function a process runs: `arg` is the child's copy of the bytes given
 * to conc_process_new (NULL when `len` is 0), aligned as malloc aligns. Its
 * return value becomes the exit status, as described above. */
typedef int (*conc_process_fn)(const void *arg, size_t len);

/* CONC_START_DEFAULT stands for the process-wide default, set with
 * conc_set_start_method. */
typedef enum conc_start_method {
    CONC_START_DEFAULT = 0,
    CONC_START_FORK,
    CONC_START_FORKSERVER,
} conc_start_method;

typedef struct conc_process_opts {
    const char *name;         /* NULL: "Process-N" (copied) */
    conc_daemon_mode daemon;  /* default: the current process's flag */
    conc_start_method method; /* default: the process-wide default */
} conc_process_opts;

/* ---- Creating and starting ---------------------------------------------- */

/* Creates a process that has not started yet. `len` bytes at `arg` are
 * copied (`arg` may be NULL when `len` is 0); `opts` may be NULL. Default
 * names are "Process-N", N counting from 1 in each process, prefixed by the
 * creator's own number in a child ("Process-2:1"), as in Python. On success
 * returns 0 and a new handle in *out, freed with conc_process_free. Returns
 * CONC_EINVAL (NULL fn or out, NULL arg with a non-zero len, an empty name,
 * an unknown method or daemon mode, or, with the fork server, a function
 * outside any loaded module: see conc_failure_message), CONC_ENOMEM. Any
 * thread. */
CONC_EXTERN int conc_process_new(conc_process_fn fn, const void *arg,
                                 size_t len, const conc_process_opts *opts,
                                 conc_process **out);

/* Starts the process. The argument bytes are released from the parent's
 * handle once the child has them. Returns 0, CONC_ESTATE (already started),
 * CONC_ECLOSED (closed), CONC_EPERM (the calling process is a daemon:
 * "daemonic processes are not allowed to have children"), CONC_EAGAIN or
 * CONC_ENOMEM (the system refused a process), CONC_EBROKEN (the fork server
 * died during the request), CONC_EINVAL (the fork server could not find the
 * function), or another negated errno. Call it while no other thread uses
 * `p`. */
CONC_EXTERN int conc_process_start(conc_process *p);

/* ---- Waiting and state -------------------------------------------------- */

/* Waits up to `timeout` seconds for the process to end, and reaps it.
 * Returns 0 once it has ended (see conc_process_exitcode for its status),
 * CONC_ETIMEDOUT while it still runs, CONC_ESTATE (not started, or not a
 * child of the calling process), CONC_EDEADLK (the current process),
 * CONC_ECLOSED (closed), CONC_EINVAL (NaN timeout), CONC_ECHILD (it ended
 * but its status was lost: it was reaped outside conc, or the fork server
 * died). On the handle of conc_process_parent, waits for the parent to end.
 * Any number of threads may join one process. */
CONC_EXTERN int conc_process_join(conc_process *p, double timeout);

/* Whether the process runs (1 or 0); reaps it if it has ended. 0 before
 * start, after close, and for a handle that is not the calling process's
 * child; 1 for the current process.
 * Any thread.
 * CONC_EINVAL for a NULL p. */
CONC_EXTERN int conc_process_is_alive(conc_process *p);

/* Python's exitcode. Returns 1 and stores the exit code in *code once the
 * process has ended: the function's status, or minus the signal number that
 * ended it. Returns 0 while it runs or before it starts (Python's None),
 * also for the current and parent processes. Errors: CONC_ECLOSED (closed),
 * CONC_ESTATE (not a child of the calling process), CONC_ECHILD (status
 * lost, see conc_process_join), CONC_EINVAL (NULL code). Reaps the process
 * if it has ended. Any thread. */
CONC_EXTERN int conc_process_exitcode(conc_process *p, int *code);

/* Sends SIGTERM (terminate) or SIGKILL (kill). Does nothing and returns 0
 * once the process has ended. Returns CONC_ESTATE (not started, or not a
 * child of the calling process, or the current or parent process),
 * CONC_ECLOSED (closed). Any thread. */
CONC_EXTERN int conc_process_terminate(conc_process *p);
CONC_EXTERN int conc_process_kill(conc_process *p);

/* Releases the resources of a process that has ended or never started;
 * afterwards every call but conc_process_name, conc_process_daemon,
 * conc_process_is_alive (0), conc_process_close (0 again) and
 * conc_process_free returns CONC_ECLOSED (Python's ValueError: "process
 * object is closed"). Returns 0, CONC_ESTATE while the process runs or for
 * the current and parent processes. Call it while no other thread uses `p`. */
CONC_EXTERN int conc_process_close(conc_process *p);

/* Drops the handle. A process still running continues; conc reaps it when
 * it ends (see the top of this file). The handles of conc_process_current
 * and conc_process_parent are borrowed: freeing them does nothing, as does
 * NULL. No other thread may use `p` during or after the call. */
CONC_EXTERN void conc_process_free(conc_process *p);

/* ---- Attributes --------------------------------------------------------- */

/* Python's pid: stores the process id in *pid (0 before start) and returns
 * 0; CONC_ECLOSED after close, CONC_EINVAL for a NULL pointer. Any thread. */
CONC_EXTERN int conc_process_pid(const conc_process *p, pid_t *pid);

/* The name, valid until the handle is freed or renamed. Any thread, while no
 * thread renames it. */
CONC_EXTERN const char *conc_process_name(const conc_process *p);

/* Renames the process (copied; Python lets a name change at any time; the
 * child keeps the name it started with). Returns 0, CONC_EINVAL (NULL or
 * empty name), CONC_ENOMEM. Call it while no other thread reads the name. */
CONC_EXTERN int conc_process_set_name(conc_process *p, const char *name);

/* The daemon flag (1 or 0). Any thread.
 * CONC_EINVAL for a NULL p. */
CONC_EXTERN int conc_process_daemon(const conc_process *p);

/* Sets the daemon flag before start. Returns 0, CONC_ESTATE (started, or
 * the current or parent process), CONC_ECLOSED (closed). Call it while no
 * other thread uses `p`. */
CONC_EXTERN int conc_process_set_daemon(conc_process *p, int daemon);

/* ---- The current process and its relatives ------------------------------ */

/* The calling process's handle, borrowed and never freed: "MainProcess" in
 * the program's first process; in a child started by conc, the handle of
 * that child (its name, pid and daemon flag). Never NULL.
 * Any thread. */
CONC_EXTERN conc_process *conc_process_current(void);

/* The parent's handle in a child started by conc (borrowed; its name and
 * pid; is_alive and join watch the parent), NULL in the main process.
 * Any thread. */
CONC_EXTERN conc_process *conc_process_parent(void);

/* Lists the calling process's children that are still running, reaping
 * those that have ended (multiprocessing.active_children). On success
 * returns 0 and a new array in *out of `*count` new handles (NULL when
 * there are none), freed with conc_process_list_free. Returns CONC_ENOMEM,
 * CONC_EINVAL (NULL pointer). Any thread. */
CONC_EXTERN int conc_active_children(conc_process ***out, size_t *count);
CONC_EXTERN void conc_process_list_free(conc_process **list, size_t count);

/* ---- Start methods and the fork server ---------------------------------- */

/* Sets the method used when conc_process_opts.method is CONC_START_DEFAULT
 * (multiprocessing.set_start_method; initially CONC_START_FORK). Returns 0
 * or CONC_EINVAL. Any thread; processes created meanwhile use either. */
CONC_EXTERN int conc_set_start_method(conc_start_method method);

/* The method CONC_START_DEFAULT stands for. Any thread. */
CONC_EXTERN conc_start_method conc_get_start_method(void);

/* Starts the fork server now if it is not running (it otherwise starts on
 * first use), so that its cost is paid early, before any thread runs, or
 * so that a test sees it as already there. Returns 0, CONC_EPERM (called
 * in a daemon process), CONC_ENOMEM, CONC_EAGAIN, CONC_ETIMEDOUT (the
 * server did not answer within 30 s), CONC_EPROTO (it did not start) or
 * another negated errno. Any
 * thread. */
CONC_EXTERN int conc_forkserver_start(void);

/* Stops the fork server and waits up to `timeout` for it to end; it kills
 * its daemon children first. A server still running at the timeout is
 * killed (its daemon children then die with it, as daemons do when their
 * parent dies) and reaped. Children that are not daemons keep running,
 * but their exit status will be lost (CONC_ECHILD). The next fork-server
 * start starts a new server. conc stops it at exit. Returns 0, also when
 * it is not running; CONC_ETIMEDOUT when it had to be killed; CONC_EINVAL
 * for a NaN timeout. Any thread. */
CONC_EXTERN int conc_forkserver_stop(double timeout);

CONC_END_DECLS

#endif
