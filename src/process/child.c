/* The child's side: starting one with fork, tying a daemon to its parent,
 * and the end of a child once its function returns.
 *
 * The fork path is kept close to raw fork+waitpid. On these machines a
 * page that either side writes after the fork costs more than a system
 * call, since fork makes every private page copy-on-write: the child
 * writes only the few process-module globals of conc__process_become_child
 * (one page), and stdio is flushed only when it holds pending output (the
 * parent does it so that the child does not print that output a second
 * time, as Python does before it forks; taking a stream's lock would
 * write its page).
 *
 * A daemon child uses PR_SET_PDEATHSIG, which fires when the thread that
 * forked it ends (for the fork method, the thread that called start; for
 * the fork server, the server's only thread). A parent that died between
 * the fork and the prctl would never send the signal, so the child then
 * compares getppid() with the parent it expects: a re-parented child kills
 * itself at once. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "process/process_internal.h"

void
conc__child_tie_to_parent(int parent_pid)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent_pid)
        raise(SIGKILL);
}

static void
flush_pending(void)
{
    if (__fpending(stdout))
        fflush(stdout);
    if (__fpending(stderr))
        fflush(stderr);
}

int
conc__fork_start(conc_process *p)
{
    int parent_pid = conc__process_self_pid();
    const char *parent_name = conc__process_self()->name;
    flush_pending();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        conc__process_become_child(p, parent_pid, parent_name, -1);
        if (p->daemon)
            conc__child_tie_to_parent(parent_pid);
        conc__child_exit(p->fn(p->arg, p->len));
    }
    p->pid = pid;
    return 0;
}

/* Prints the failure as Python prints a child's traceback, in one call so
 * that reports of children failing together do not interleave. */
static void
report_failure(int r)
{
    const char *msg = conc_failure_message();
    if (!msg[0])
        msg = conc_strerror(r);
    fprintf(stderr, "Process %s: %s: %s\n", conc__process_self()->name,
            conc_err_name(r), msg);
}

/* Joins the non-daemon threads conc started in this process, as Python's
 * threading._shutdown does before a child exits. Threads started meanwhile
 * are joined too: the loop ends when a pass finds none. */
static void
join_threads(void)
{
    conc_thread *self = conc_thread_current();
    while (conc_active_count() > 1) {
        conc_thread **list;
        size_t n;
        if (conc_thread_enumerate(&list, &n) != 0)
            return;
        int joined = 0;
        for (size_t i = 0; i < n; i++)
            if (list[i] != self && !conc_thread_daemon(list[i]) &&
                conc_thread_join(list[i], CONC_FOREVER, NULL) == 0)
                joined = 1;
        conc_thread_list_free(list, n);
        if (!joined)
            return;
    }
}

_Noreturn void
conc__child_exit(int r)
{
    int code = r & 0xff;
    if (r < 0) {
        report_failure(r);
        code = 1;
    }
    conc__children_exit();
    join_threads();
    flush_pending();
    _exit(code);
}
