/* Internals of the subprocess module: the popen object, shared by
 * spawn.c (starting a program), popen.c (waiting, signals, the list of
 * freed children), communicate.c (the poll loop) and run.c (run and its
 * relatives). */
#ifndef CONC_SUBPROCESS_INTERNAL_H
#define CONC_SUBPROCESS_INTERNAL_H

#include <sys/types.h>

#include "conc/buf.h"
#include "conc/subprocess.h"
#include "core/lockword.h"
#include "unix/platform.h"

/* The child's life as this process knows it. */
enum {
    CONC__CHILD_RUNNING = 0, /* not reaped yet (it may be a zombie) */
    CONC__CHILD_EXITED,      /* reaped; returncode holds its status */
    CONC__CHILD_LOST,        /* other code reaped it: the status is gone */
};

struct conc_popen {
    pid_t pid;
    int leader;          /* the child leads its own process group */
    int kill_on_timeout; /* the option of that name */

    /* The parent's pipe ends, -1 when absent or closed, and the state of
     * communicate. Used by one thread at a time, the one that communicates
     * (the caller's rule); never touched by poll, wait or signals. */
    int in_fd, out_fd, err_fd;
    unsigned piped;     /* bit i: stream i was made a pipe to the parent */
    int comm_started;   /* input may no longer be given */
    int in_nonblock;    /* in_fd was switched to O_NONBLOCK */
    conc_buf pending;   /* input left unwritten by a timed-out call */
    size_t pending_off; /* bytes of pending already written */
    conc_buf got_out;   /* output read so far by a public communicate, */
    conc_buf got_err;   /* handed to the caller when it succeeds */

    /* The child's status. state and returncode are guarded by lock; the
     * lock is held while reaping and while signalling, so a signal can
     * never reach a recycled pid. pidfd is opened under the lock, while
     * the child is known unreaped, and closed only by conc_popen_free. */
    conc__lockword lock;
    int state;
    int returncode;
    /* -1 until a timed wait needs it; CONC__POPEN_NO_PIDFD without one. */
    int pidfd;

    /* The reaper's node once freed while its child still ran. */
    struct conc__orphan orphan;
};

/* spawn.c: starts the program of `argv` per `o` into the zeroed `p`,
 * filling pid, leader and the pipe ends. Returns 0 or a negative code (the
 * failure message names the program); on failure nothing is left open. */
int conc__popen_spawn(conc_popen *p, char *const argv[],
                      const conc_popen_opts *o);

/* popen.c: waits for the child until the absolute `deadline`. Returns 0
 * with *returncode (may be NULL), CONC_ETIMEDOUT or CONC_ECHILD. */
int conc__popen_wait_until(conc_popen *p, int64_t deadline, int *returncode);

/* popen.c: kills the child with SIGKILL (its group first if it leads one)
 * and reaps it. Returns 0, or CONC_ECHILD when its status was lost. */
int conc__popen_kill_reap(conc_popen *p);

/* popen.c: opens the child's pidfd now, while it is surely unreaped, so
 * that every later wait, also one without a deadline made in a coroutine,
 * waits on it (the async subprocesses register it on their loop). Without
 * pidfds the waits nap as before. */
void conc__popen_watch(conc_popen *p);

/* communicate.c: conc_popen_communicate with an absolute deadline. */
int conc__popen_communicate_until(conc_popen *p, const void *input, size_t len,
                                  int64_t deadline, conc_buf *out,
                                  conc_buf *err);

/* Closes *fd if open and sets it to -1. */
void conc__popen_close_fd(int *fd);

/* `pidfd` once the platform said it has none: not looked for again. */
#define CONC__POPEN_NO_PIDFD (-2)

#endif
