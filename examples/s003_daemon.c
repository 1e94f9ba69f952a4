/* s003_daemon: seed 003, Daemon (守护线程).
 *
 * The Python starts 50 threads on run("t-i") with setDaemon(True) (print
 * "task  t-i", sleep 2 s, print "task done t-i ..."), does not join them,
 * prints "----------all threads has finished...", the main thread and
 * threading.active_count() (51), and the time taken, then ends at once:
 * daemon threads are not waited for, so no "task done" line ever appears.
 * conc's daemon flag (CONC_DAEMON_YES) means the same at exit(): returning
 * from main joins every non-daemon thread conc started and none of the
 * daemons, which die with the process. The daemons keep the seed's full
 * 2 s sleep; since nobody waits for them, it costs nothing.
 *
 * To show the other half of the rule, main then starts one non-daemon
 * thread that sleeps 40 ms and prints its own line; exit() waits for it, so
 * that line is the last of the output.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define N_THREADS 50

/* Prints a thread as Python's repr() does: <Thread(Thread-1, stopped 42)>. */
static void
print_thread(const conc_thread *t)
{
    printf("<%s(%s, %s%s %lu)>",
           t == conc_thread_main() ? "_MainThread" : "Thread",
           conc_thread_name(t), conc_thread_is_alive(t) ? "started" : "stopped",
           conc_thread_daemon(t) ? " daemon" : "", conc_thread_ident(t));
}

static int
run(void *n)
{
    printf("task  %s\n", (const char *)n);
    check(conc_sleep(2.0), "conc_sleep");
    /* Never printed: the process ends before any daemon wakes. */
    printf("task done %s ", (const char *)n);
    print_thread(conc_thread_current());
    printf("\n");
    return 0;
}

static int
non_daemon(void *arg)
{
    (void)arg;
    check(conc_sleep(0.04), "conc_sleep");
    printf("non-daemon thread done: exit() waited for it, not for the "
           "daemons\n");
    return 0;
}

int
main(void)
{
    static char names[N_THREADS][8];
    conc_thread_opts daemon = {.daemon = CONC_DAEMON_YES};
    double start_time = conc_monotonic();
    for (int i = 0; i < N_THREADS; i++) {
        snprintf(names[i], sizeof names[i], "t-%d", i);
        check(conc_thread_start(run, names[i], &daemon, NULL),
              "conc_thread_start");
    }
    conc_thread *self = conc_thread_current();
    if (!self)
        check(CONC_ENOMEM, "conc_thread_current");
    printf("----------all threads has finished... ");
    print_thread(self);
    printf(" %zu\n", conc_active_count());
    printf("cost: %f\n", conc_monotonic() - start_time);

    conc_thread_opts waited = {.name = "waited-for", .daemon = CONC_DAEMON_NO};
    check(conc_thread_start(non_daemon, NULL, &waited, NULL),
          "conc_thread_start");
    return 0; /* exit() joins "waited-for", not the 50 daemons */
}
