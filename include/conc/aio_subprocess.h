/* conc/aio_subprocess.h: programs run from coroutines (asyncio's
 * create_subprocess_exec, create_subprocess_shell and Process).
 *
 * A child is started the way conc_popen_new starts one (posix_spawn: a
 * missing program is an error of the creating call, CONC_ENOENT), with the
 * same options (conc_popen_opts: cwd, env, executable, new group or
 * session, pass_fds). Each standard stream given CONC_STDIO_PIPE becomes a
 * conc_aio_stream of the caller's loop (Process.stdin, .stdout, .stderr),
 * read and written with the calls of aio_stream.h. Those pipes are Unix
 * stream sockets (a socketpair, as asyncio uses on some platforms), since
 * the streams speak to sockets: the child reads and writes them as it
 * would pipes, but a program that reopens /dev/stdin by name cannot.
 *
 * The child is watched through a pidfd registered on the loop while a
 * task waits: no SIGCHLD handler and no child watcher (asyncio deprecated
 * and removed those). A task that waits for the child suspends; the loop
 * runs its other tasks meanwhile. Without pidfds (old kernels, seccomp) a
 * wait looks again after naps of up to 20 ms, still only suspending the
 * task.
 *
 * Return codes follow Python: the exit status, or minus the signal number
 * that ended the child (-9 for SIGKILL).
 *
 * Freeing a process whose child still runs kills the child with SIGKILL
 * (asyncio's transport does so when it is closed); conc reaps it as soon
 * as it has died, at the next start of a program or conc_subprocess_reap,
 * without blocking. Nothing is left open and no zombie stays.
 *
 * Threads: the streams and communicate belong to the loop of the task that
 * uses them first; wait, returncode, pid and the signals may be called
 * from any thread. */
#ifndef CONC_AIO_SUBPROCESS_H
#define CONC_AIO_SUBPROCESS_H

#include <sys/types.h>

#include "aio.h"
#include "aio_stream.h"
#include "buf.h"
#include "common.h"
#include "subprocess.h"

CONC_BEGIN_DECLS

typedef struct conc_aio_subprocess conc_aio_subprocess;

typedef struct conc_aio_subprocess_opts {
    /* How to start the program, as for conc_popen_new. CONC_STDIO_PIPE
     * makes the stream a conc_aio_stream; every other mode means what it
     * means there (inherit, DEVNULL, FD, stderr to STDOUT).
     * popen.kill_on_timeout: a communicate or wait whose timeout runs out
     * kills the child with SIGKILL, its whole process group when it leads
     * one (new_group or new_session), and reaps it. */
    conc_popen_opts popen;
    /* The options of the pipes' streams (limit, water marks); NULL:
     * asyncio's defaults. Borrowed for the call. */
    const conc_aio_stream_opts *stream;
} conc_aio_subprocess_opts;

/* asyncio.create_subprocess_exec: starts argv's program (argv[0] searched
 * in PATH as for conc_popen_new). `opts` may be NULL (every stream
 * inherited). On success returns 0 and a new process in *out, freed with
 * conc_aio_subprocess_free; the program runs (its exec succeeded). Never
 * blocks: it may be called in a task or outside one. Returns CONC_EINVAL
 * (NULL or empty argv, NULL out, bad modes as conc_popen_new), CONC_ENOENT
 * (no such program or cwd), CONC_EACCES, CONC_ENOMEM, or another error of
 * conc_popen_new; the reason is left in conc_failure_message. Borrows
 * argv and opts. Any thread; the streams bind to the loop of the first
 * task that uses them. */
CONC_EXTERN int
conc_aio_create_subprocess_exec(char *const argv[],
                                const conc_aio_subprocess_opts *opts,
                                conc_aio_subprocess **out);

/* asyncio.create_subprocess_shell: runs `cmd` (borrowed) with /bin/sh -c.
 * A command the shell cannot find is not an error here: the shell exits
 * with 127. Returns 0 and *out (freed with conc_aio_subprocess_free),
 * CONC_EINVAL (NULL cmd or out), and the errors of
 * conc_aio_create_subprocess_exec. Borrows opts. Any thread. */
CONC_EXTERN int
conc_aio_create_subprocess_shell(const char *cmd,
                                 const conc_aio_subprocess_opts *opts,
                                 conc_aio_subprocess **out);

/* Closes the streams, kills the child with SIGKILL if it still runs (only
 * the child, not its group), and frees the process; the child is reaped
 * at once if it has ended, else by conc once it has died (see the top of
 * this header). Never blocks. No task may be waiting on the process or
 * its streams. NULL does nothing. The loop's thread, before the loop is
 * freed (any thread if no stream was used in a task). */
CONC_EXTERN void conc_aio_subprocess_free(conc_aio_subprocess *p);

/* The child's pid (Process.pid); 0 for NULL. Any thread. */
CONC_EXTERN pid_t conc_aio_subprocess_pid(const conc_aio_subprocess *p);

/* The stream of the child's stdin, stdout or stderr (Process.stdin,
 * .stdout, .stderr), borrowed: it lives until the process is freed; do not
 * free it (conc_aio_stream_close on stdin sends the child its end of
 * input). Returns 0 and *out; CONC_ESTATE when that stream is not a
 * pipe; CONC_EINVAL for NULL. Any thread; the stream's calls are made
 * from tasks of one loop. */
CONC_EXTERN int conc_aio_subprocess_stdin(conc_aio_subprocess *p,
                                          conc_aio_stream **out);
CONC_EXTERN int conc_aio_subprocess_stdout(conc_aio_subprocess *p,
                                           conc_aio_stream **out);
CONC_EXTERN int conc_aio_subprocess_stderr(conc_aio_subprocess *p,
                                           conc_aio_stream **out);

/* Process.communicate: writes the `len` bytes of `input` (borrowed; NULL
 * for none) to the child's stdin and closes it, while reading stdout and
 * stderr to their end, all at once, so that no size of input or output
 * can deadlock; then waits for the child to exit. The caller's task
 * suspends meanwhile (two helper tasks of the same loop write and read
 * beside it, and are done when the call returns). On success the whole
 * output replaces *out and *err (either may be NULL: that output is read
 * and dropped); a call that fails leaves both unchanged. A child that
 * exits without reading its input is not an error.
 *
 * `timeout` bounds the whole call. When it runs out, returns
 * CONC_ETIMEDOUT and nothing is lost: the output read so far and the
 * input not yet written are kept by conc, and a later call (with NULL
 * input) goes on and, once it succeeds, gives the whole output. With
 * opts.popen.kill_on_timeout the timeout instead kills the child (its
 * whole group if it leads one, which also ends grandchildren holding the
 * pipes open) and reaps it, then reads what the pipes still hold (up to
 * their end, for at most a second after a group was killed, else for a
 * few milliseconds) and closes the stdout and stderr streams; a later
 * call returns 0 at once with all that output.
 *
 * A cancelled caller gets CONC_ECANCELED (the helper tasks are cancelled
 * and awaited first); as at a timeout, nothing is lost. Other errors:
 * CONC_EINVAL (NULL p, input without a stdin pipe, NULL input with len >
 * 0, NaN timeout), CONC_ESTATE (not inside a task; input given again after
 * a first call; another task communicates or reads the pipes),
 * CONC_ENOMEM, a stream's error, or CONC_ECHILD (other code reaped the
 * child). The loop's thread, from a task. */
CONC_EXTERN int conc_aio_subprocess_communicate(conc_aio_subprocess *p,
                                                const void *input, size_t len,
                                                double timeout, conc_buf *out,
                                                conc_buf *err);

/* Process.wait: waits up to `timeout` for the child to exit and gives its
 * returncode in *returncode (which may be NULL). In a task only the task
 * suspends (on the child's pidfd, registered on the loop); elsewhere the
 * thread blocks. The pipes are not read: a child that fills a pipe nobody
 * reads never exits (use communicate). Returns 0; CONC_ETIMEDOUT (the
 * child keeps running, unless opts.popen.kill_on_timeout: then it was
 * killed, with its group if it leads one, and reaped); CONC_ECANCELED (the
 * task was cancelled; the child keeps running); CONC_ECHILD; CONC_EINVAL
 * (NULL p, NaN timeout). Any thread; several may wait at once. */
CONC_EXTERN int conc_aio_subprocess_wait(conc_aio_subprocess *p, double timeout,
                                         int *returncode);

/* Process.returncode: whether the child has exited, looked up now without
 * blocking: returns 1 and its returncode in *returncode (which may be
 * NULL), 0 while it runs, CONC_ECHILD if other code reaped it, CONC_EINVAL
 * for NULL p. Any thread. */
CONC_EXTERN int conc_aio_subprocess_returncode(conc_aio_subprocess *p,
                                               int *returncode);

/* Sends `sig` to the child (Process.send_signal); does nothing once the
 * child was reaped, so a recycled pid is never signalled. Returns 0,
 * CONC_EINVAL (NULL p, bad signal number), CONC_EPERM. Any thread. */
CONC_EXTERN int conc_aio_subprocess_send_signal(conc_aio_subprocess *p,
                                                int sig);

/* conc_aio_subprocess_send_signal with SIGTERM (Process.terminate) and
 * SIGKILL (Process.kill). Errors as conc_aio_subprocess_send_signal.
 * Any thread. */
CONC_EXTERN int conc_aio_subprocess_terminate(conc_aio_subprocess *p);
CONC_EXTERN int conc_aio_subprocess_kill(conc_aio_subprocess *p);

/* Sends `sig` to the child's whole process group (os.killpg); the child
 * must lead it (opts.popen.new_group or new_session), else CONC_ESTATE.
 * Returns 0 also when nobody is left; CONC_EINVAL (NULL p, bad signal
 * number), CONC_EPERM. Any thread. */
CONC_EXTERN int conc_aio_subprocess_kill_group(conc_aio_subprocess *p, int sig);

CONC_END_DECLS

#endif
