/* s003_thread_join50: seed 003, threading模块, the third program.
 *
 * The Python starts 50 threads on run("t-i") (print "task  t-i", sleep 2 s,
 * print "task done t-i"), keeping them in a list instead of joining each at
 * once so that all start without waiting, then joins them all, prints the
 * list, "----------all threads has finished..." and the time taken, about
 * 2 s rather than 100 s. Each thread prints as Python's repr(thread) does,
 * with conc's default names Thread-1 to Thread-50 (Python 3.10 and later
 * add the target's name: "Thread-1 (run)"). The seed's seconds are 20 ms
 * here, so the cost is about 0.04 s.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND    0.02 /* one second of the seed, scaled down */
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
    check(conc_sleep(2 * SECOND), "conc_sleep");
    printf("task done %s\n", (const char *)n);
    return 0;
}

int
main(void)
{
    static char names[N_THREADS][8];
    conc_thread *t_objs[N_THREADS];
    double start_time = conc_monotonic();
    for (int i = 0; i < N_THREADS; i++) {
        snprintf(names[i], sizeof names[i], "t-%d", i);
        check(conc_thread_start(run, names[i], NULL, &t_objs[i]),
              "conc_thread_start");
    }
    for (int i = 0; i < N_THREADS; i++) {
        int status;
        check(conc_thread_join(t_objs[i], CONC_FOREVER, &status),
              "conc_thread_join");
        check(status, names[i]);
    }
    printf("[");
    for (int i = 0; i < N_THREADS; i++) {
        fputs(i ? ", " : "", stdout);
        print_thread(t_objs[i]);
    }
    printf("]\n");
    printf("----------all threads has finished...\n");
    printf("cost: %f\n", conc_monotonic() - start_time);
    for (int i = 0; i < N_THREADS; i++)
        conc_thread_free(t_objs[i]);
    return 0;
}
