/* s001_daemon: seed 001, 六 mulitprocess模块, 主进程创建守护进程.
 *
 * The seed describes daemon processes in words only: p.daemon = True must
 * be set before p.start(); a daemon ends as soon as the main process's code
 * finishes, and may not start processes of its own ("AssertionError:
 * daemonic processes are not allowed to have children"). This program shows
 * all three. The daemon tries to start a child and gets CONC_EPERM, then
 * prints a line every 10 ms for ever. A second process, not a daemon,
 * sleeps 60 ms and says goodbye. main prints "主" once the daemon has
 * printed three lines and returns: at exit conc terminates the daemon (its
 * loop would otherwise keep the demo waiting for ever) and waits for the
 * other child, whose line is the last. Python behaves the same way.
 */
#include <stdio.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define TICK 0.01 /* seconds between the daemon's lines */

static conc_sem *ticked; /* released by the daemon after each line */

/* Process(target=fn, args=...) followed by start(). */
static conc_process *
start(conc_process_fn fn, const void *arg, size_t len,
      const conc_process_opts *opts)
{
    conc_process *p;
    check(conc_process_new(fn, arg, len, opts, &p), "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

static int
nothing(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static int
daemon_main(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_process *child;
    check(conc_process_new(nothing, NULL, 0, NULL, &child), "conc_process_new");
    int rc = conc_process_start(child);
    printf("daemon %d: start() gives %s: daemonic processes are not allowed "
           "to have children\n",
           (int)getpid(), conc_err_name(rc));
    check(rc == CONC_EPERM ? 0 : CONC_EPROCESS, "conc_process_start");
    conc_process_free(child);
    for (unsigned n = 1; n != 0; n++) { /* for ever, in practice */
        printf("daemon %d: still running (%u)\n", (int)getpid(), n);
        check(conc_sem_release(ticked, 1), "conc_sem_release");
        check(conc_sleep(TICK), "conc_sleep");
    }
    return 0;
}

static int
worker(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    check(conc_sleep(6 * TICK), "conc_sleep");
    printf("worker %d (not a daemon): done, main waited for me\n",
           (int)getpid());
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    check(conc_sem_new(0, &shared, &ticked), "conc_sem_new");

    conc_process *d;
    check(conc_process_new(daemon_main, NULL, 0, NULL, &d), "conc_process_new");
    check(conc_process_set_daemon(d, 1), "conc_process_set_daemon");
    check(conc_process_start(d), "conc_process_start");
    conc_process *w = start(worker, NULL, 0, NULL);
    for (int i = 0; i < 3; i++)
        check(conc_sem_acquire(ticked, 10.0), "conc_sem_acquire");
    printf("主\n");
    /* Handles may go: conc still ends the daemon and waits for the worker
     * when main returns. */
    conc_process_free(d);
    conc_process_free(w);
    return 0;
}
