/* conc/subprocess.h: running external programs (Python's subprocess).
 *
 * conc_popen is Popen: it starts a program with posix_spawn (never a plain
 * fork, so it is cheap and safe in a program that runs threads), gives the
 * parent's ends of any pipes, and offers communicate, poll, wait and
 * signals. conc_subprocess_run, conc_call, conc_check_call and
 * conc_check_output are the convenience calls built on it.
 *
 * Programs and arguments: `argv` is a NULL-terminated array of strings, as
 * for execv; argv[0] names the program. A name without a slash is searched
 * in PATH, as Python does: the caller's PATH, or, when `env` is given, the
 * PATH in `env` (else "/bin:/usr/bin"). There is no shell: run
 * {"sh", "-c", "...", NULL} for one. A program that cannot be started is an
 * error from the call that starts it (CONC_ENOENT, CONC_EACCES, ...), as
 * Python raises FileNotFoundError or PermissionError.
 *
 * Return codes follow Python: the exit status, or minus the signal number
 * when a signal ended the program (-SIGKILL is -9).
 *
 * Children are reaped by their exact pid (never waitpid(-1), so children
 * started by other code are left alone). A program that reaps every child
 * itself (waitpid(-1), SIGCHLD set to SIG_IGN) takes the status away: conc
 * then reports CONC_ECHILD.
 *
 * Descriptors: every descriptor conc opens is close-on-exec, and by default
 * the child receives only its three standard descriptors; any other
 * descriptor the caller left inheritable is closed in the child (Python's
 * close_fds=True), except those listed in pass_fds. */
#ifndef CONC_SUBPROCESS_H
#define CONC_SUBPROCESS_H

#include <sys/types.h>

#include "buf.h"
#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_popen conc_popen;

/* Where a child's standard stream comes from or goes to. */
typedef enum conc_stdio {
    CONC_STDIO_INHERIT = 0, /* the parent's own descriptor (Python's None) */
    CONC_STDIO_PIPE,        /* a new pipe to the parent (subprocess.PIPE) */
    CONC_STDIO_DEVNULL,     /* /dev/null (subprocess.DEVNULL) */
    CONC_STDIO_FD,          /* the descriptor in the matching *_fd field */
    CONC_STDIO_STDOUT,      /* stderr only: the child's stdout
                               (subprocess.STDOUT) */
} conc_stdio;

typedef struct conc_popen_opts {
    conc_stdio stdin_mode;  /* default: inherit */
    conc_stdio stdout_mode; /* default: inherit */
    conc_stdio stderr_mode; /* default: inherit */
    int stdin_fd;           /* with CONC_STDIO_FD: borrowed, left open */
    int stdout_fd;
    int stderr_fd;
    const char *executable; /* the program to run, with argv[0] only its
                               name (Python's executable=); NULL: argv[0] */
    const char *cwd;        /* the child's working directory; NULL: ours. A
                               relative program path is found from it */
    char *const *env;       /* the child's whole environment, "KEY=value"
                               strings ending with NULL; NULL: ours */
    int new_group;          /* 1: the child leads a new process group
                               (process_group=0), so that
                               conc_popen_kill_group reaches its whole tree */
    int new_session;        /* 1: the child starts a new session, and so a
                               new group too (start_new_session=True) */
    int inherit_fds;        /* 1: the child also inherits every descriptor
                               left without close-on-exec (close_fds=False) */
    const int *pass_fds;    /* descriptors (>= 3) the child inherits even
                               with close-on-exec set (pass_fds) */
    size_t pass_fds_count;
    int keep_signals;    /* 1: the child keeps our signal mask and ignored
                            signals; by default it starts with no signal
                            blocked and SIGPIPE and SIGXFSZ at their
                            defaults (restore_signals=True, and more) */
    int kill_on_timeout; /* 1: a communicate that times out kills the
                            child (its whole group if it leads one),
                            reaps it and reads the pipes to their end;
                            see conc_popen_communicate */
} conc_popen_opts;

/* ---- Popen -------------------------------------------------------------- */

/* Starts argv's program. `opts` may be NULL (every stream inherited). On
 * success returns 0 and a new object in *out, freed with conc_popen_free;
 * the program is running (its exec succeeded). Returns CONC_EINVAL (NULL or
 * empty argv, NULL out, a mode that does not exist or does not fit the
 * stream, CONC_STDIO_FD with a negative fd, a negative pass_fds entry),
 * CONC_ENOENT (no such program, or no such cwd), CONC_EACCES (not
 * executable), CONC_ENOMEM, CONC_EBADF (a given descriptor is not open),
 * or another negated errno of the exec (CONC_EAGAIN, -ENOEXEC, ...); the
 * reason is also left in conc_failure_message. Borrows argv and opts. Any
 * thread. Also reaps children of popens freed while running (see
 * conc_subprocess_reap). */
CONC_EXTERN int conc_popen_new(char *const argv[], const conc_popen_opts *opts,
                               conc_popen **out);

/* Closes the parent's pipe ends and frees the object. The child is not
 * waited for nor killed: if it still runs, conc keeps its pid and reaps it
 * later (at the next conc_popen_new, or conc_subprocess_reap), so it never
 * stays a zombie for long. No other thread may use `p`. NULL does nothing. */
CONC_EXTERN void conc_popen_free(conc_popen *p);

/* The child's pid (Popen.pid). Any thread. */
CONC_EXTERN pid_t conc_popen_pid(const conc_popen *p);

/* The parent's end of each pipe (Popen.stdin, .stdout, .stderr): returns 0
 * and stores it in *fd; CONC_ESTATE when that stream is not a pipe,
 * CONC_ECLOSED once the parent's end was closed (conc_popen_close_stdin,
 * or communicate reached the stream's end), CONC_EINVAL for a NULL
 * pointer. The descriptor is borrowed: read or write it directly, but do
 * not close it (use conc_popen_close_stdin to send EOF). It is blocking,
 * except stdin once communicate has written to it. Any thread, while no
 * other thread communicates. */
CONC_EXTERN int conc_popen_stdin_fd(const conc_popen *p, int *fd);
CONC_EXTERN int conc_popen_stdout_fd(const conc_popen *p, int *fd);
CONC_EXTERN int conc_popen_stderr_fd(const conc_popen *p, int *fd);

/* Closes the parent's end of the stdin pipe, so the child reads EOF
 * (Popen.stdin.close()). Returns 0, also when there is none.
 * Any thread, while no thread communicates.
 * CONC_EINVAL for a NULL p. */
CONC_EXTERN int conc_popen_close_stdin(conc_popen *p);

/* Python's communicate: writes `len` bytes of `input` to the child's stdin
 * and then closes it, while reading stdout and stderr to their end, all at
 * once with poll(2), so that no size of input or output can deadlock; then
 * waits for the child to exit. On success the whole output replaces the
 * content of *out and *err (either may be NULL: that stream's output is
 * read and dropped); a call that fails leaves both unchanged.
 * With no input (NULL), stdin is closed at once. A child that exits without
 * reading all its input is not an error (the broken pipe is ignored, and
 * SIGPIPE never reaches the caller).
 *
 * Returns 0 once the pipes reached their end and the child exited; its
 * returncode is then given by conc_popen_poll or conc_popen_returncode.
 * When `timeout` runs out, returns CONC_ETIMEDOUT; what was read so far is
 * kept by conc. Then, as in Python, nothing is lost: a later call (with
 * NULL input: the input not yet written is kept by conc too) continues,
 * and once it succeeds gives all the output, from the first call on. With
 * the kill_on_timeout option the timeout
 * instead ends it all: the child is killed with SIGKILL (its whole process
 * group when it leads one, which also ends grandchildren holding the
 * pipes), reaped, and what the pipes hold is read (until their end, for at
 * most a second, after a group was killed; without a group only what
 * comes within a few milliseconds, since surviving grandchildren may keep
 * them open), then they are closed; a later call then returns 0 at once
 * with that output.
 *
 * Other errors: CONC_EINVAL (NULL p, input without a stdin pipe, NULL input
 * with a non-zero len, NaN timeout), CONC_ESTATE (input given again after a
 * first call), CONC_ENOMEM (the output could not be stored: the pipes stay
 * open and a later call goes on; or, at a timeout, the unwritten input
 * could not be kept: stdin is then closed), CONC_ECHILD (see above), or a
 * negated errno from a read or write. One thread at a time may
 * communicate; others may poll, wait and signal meanwhile. */
CONC_EXTERN int conc_popen_communicate(conc_popen *p, const void *input,
                                       size_t len, double timeout,
                                       conc_buf *out, conc_buf *err);

/* Whether the child has exited (Popen.poll), without blocking: returns 1
 * and its returncode in *returncode (which may be NULL), 0 while it runs,
 * CONC_ECHILD if its status was taken by other code, CONC_EINVAL for NULL
 * p. Any thread. */
CONC_EXTERN int conc_popen_poll(conc_popen *p, int *returncode);

/* Waits up to `timeout` for the child to exit (Popen.wait). Returns 0 and
 * its returncode in *returncode (which may be NULL), CONC_ETIMEDOUT (the
 * child keeps running), CONC_ECHILD, CONC_EINVAL (NULL p, NaN timeout). Any
 * thread; several may wait at once. The pipes are not read: a child that
 * fills a pipe nobody reads never exits, so use communicate for those. */
CONC_EXTERN int conc_popen_wait(conc_popen *p, double timeout, int *returncode);

/* The returncode as last seen, without asking the system (the
 * Popen.returncode attribute): 1 and *returncode once poll, wait or
 * communicate saw the child exit, else 0. Any thread.
 * CONC_EINVAL for a NULL p. */
CONC_EXTERN int conc_popen_returncode(conc_popen *p, int *returncode);

/* Sends `sig` to the child (Popen.send_signal). Does nothing, and returns
 * 0, once the child has been reaped, so a recycled pid is never signalled.
 * Returns CONC_EINVAL (NULL p, bad signal number) or CONC_EPERM. Any
 * thread. */
CONC_EXTERN int conc_popen_send_signal(conc_popen *p, int sig);

/* conc_popen_send_signal with SIGTERM (Popen.terminate) and SIGKILL
 * (Popen.kill).
 * Any thread.
 * Errors as conc_popen_send_signal. */
CONC_EXTERN int conc_popen_terminate(conc_popen *p);
CONC_EXTERN int conc_popen_kill(conc_popen *p);

/* Sends `sig` to the child's whole process group, grandchildren included
 * (os.killpg(p.pid, sig)). The child must lead its group (new_group or
 * new_session), else returns CONC_ESTATE. Returns 0 also when nobody is
 * left in the group; CONC_EINVAL (NULL p, bad signal number), CONC_EPERM.
 * Any thread. A group outlives its leader's reaping only while members
 * remain, so call this before, or soon after, the child is reaped. */
CONC_EXTERN int conc_popen_kill_group(conc_popen *p, int sig);

/* Reaps the children of popens that were freed while their child was
 * still running, without blocking (Python's subprocess._cleanup). Returns
 * 0 and stores in *running (which may be NULL) how many such children are
 * still running. conc_popen_new calls it too. Any thread.
 * Never fails. */
CONC_EXTERN int conc_subprocess_reap(size_t *running);

/* ---- run, call, check_call, check_output -------------------------------- */

typedef struct conc_run_opts {
    conc_popen_opts popen; /* how to start the program, as for Popen */
    const void *input;     /* non-NULL: stdin is a pipe fed with these
                              input_len bytes, then closed (input=) */
    size_t input_len;
    int capture_output; /* 1: stdout and stderr are pipes captured into
                           the result (capture_output=True) */
    int check;          /* 1: a non-zero returncode is CONC_EPROCESS
                           (check=True) */
} conc_run_opts;

/* subprocess.CompletedProcess: owned by the caller, who releases it with
 * conc_completed_process_free. */
typedef struct conc_completed_process {
    int returncode;
    conc_buf out; /* captured stdout (.stdout); empty unless piped */
    conc_buf err; /* captured stderr (.stderr); empty unless piped */
} conc_completed_process;

/* Python's subprocess.run: starts argv's program, feeds it the input,
 * collects piped output, and waits for it, all within `timeout`. Fills
 * *res on every return, including errors (empty buffers and returncode 0
 * when the program never started); free it with
 * conc_completed_process_free whatever the result.
 *
 * Returns 0; CONC_EPROCESS when `check` is set and the returncode is not 0
 * (*res holds the returncode and output; the failure message reads
 * "Command 'false' returned non-zero exit status 1."); CONC_ETIMEDOUT when
 * the timeout ran out: the child was then killed with SIGKILL (its whole
 * group if it leads one) and reaped, and *res holds the output read until
 * then; every error of conc_popen_new; CONC_EINVAL also for a NULL res, a
 * NaN timeout, input together with a stdin mode, or capture_output
 * together with a stdout or stderr mode; CONC_ENOMEM. On any other error
 * the child is killed and reaped too. Any thread. */
CONC_EXTERN int conc_subprocess_run(char *const argv[],
                                    const conc_run_opts *opts, double timeout,
                                    conc_completed_process *res);

/* Releases the buffers of *res and empties it. NULL does nothing. Any thread,
 * once no other thread uses the object. */
CONC_EXTERN void conc_completed_process_free(conc_completed_process *res);

/* subprocess.call: conc_subprocess_run, giving only the returncode in
 * *returncode (which may be NULL). Nothing is captured unless opts ask for
 * it (the output is then dropped). Errors as conc_subprocess_run.
 * Any thread. */
CONC_EXTERN int conc_call(char *const argv[], const conc_run_opts *opts,
                          double timeout, int *returncode);

/* subprocess.check_call: returns 0 when the program exits with 0, else
 * CONC_EPROCESS with the message of conc_subprocess_run. Errors as
 * conc_subprocess_run.
 * Any thread. */
CONC_EXTERN int conc_check_call(char *const argv[], const conc_run_opts *opts,
                                double timeout);

/* subprocess.check_output: runs the program with its stdout piped and,
 * when it exits with 0, replaces the content of *out with that output
 * (the caller frees it with conc_buf_free). On any failure *out is left
 * unchanged; a caller that wants the output of a failed program (Python's
 * CalledProcessError.output) uses conc_subprocess_run with `check`. opts
 * may give input and stderr's mode (CONC_STDIO_STDOUT merges it into the
 * output). Returns 0; CONC_EINVAL also for a NULL out, or opts that set
 * stdout_mode or capture_output; other errors as conc_check_call. Borrows
 * argv and opts. Any thread. */
CONC_EXTERN int conc_check_output(char *const argv[], const conc_run_opts *opts,
                                  double timeout, conc_buf *out);

CONC_END_DECLS

#endif
