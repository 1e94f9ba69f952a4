/* s003_thread_class: seed 003, threading模块, the second program (类写法).
 *
 * The Python subclasses threading.Thread as MyThread(n, sleep_time), whose
 * run() prints "task n", sleeps and prints "task done"; it starts t1 (2 s)
 * and t2 (4 s) and does not join them. The subclass becomes a struct with
 * the thread's fields, passed to conc_thread_start as the argument. The
 * handles are dropped at once with conc_thread_free, which leaves the
 * threads running, and exit() waits for them as Python's interpreter does.
 * The seed's seconds are 20 ms here.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

typedef struct my_thread {
    const char *n;
    double sleep_time;
} my_thread;

static int
my_thread_run(void *arg)
{
    const my_thread *self = arg;
    printf("task %s\n", self->n);
    check(conc_sleep(self->sleep_time), "conc_sleep");
    printf("task done\n");
    return 0;
}

/* Starts the thread and drops the handle; the thread keeps running. */
static void
my_thread_start(my_thread *self)
{
    conc_thread *t;
    check(conc_thread_start(my_thread_run, self, NULL, &t),
          "conc_thread_start");
    conc_thread_free(t);
}

int
main(void)
{
    /* Static, so they outlive main: the threads still use them while
     * exit() waits. */
    static my_thread t1 = {"t1", 2 * SECOND};
    static my_thread t2 = {"t2", 4 * SECOND};
    my_thread_start(&t1);
    my_thread_start(&t2);
    return 0;
}
