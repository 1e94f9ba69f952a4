/* s002_thread_subclass: seed 002, section 2.2 (通过继承Thread来实现多线程).
 *
 * The Python subclasses threading.Thread twice, GetDetailHtml (sleeps 2 s)
 * and GetDetailUrl (sleeps 4 s), each passing its name to
 * super().__init__(name=name) and overriding run(); the main thread starts
 * and joins both and prints the time taken. C has no classes: the subclass
 * becomes a struct that holds the thread's state and its run function, and
 * "start" hands the struct itself to conc_thread_start as the argument, with
 * the name in the options. The seed's seconds are 20 ms here.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

/* One "Thread subclass": its name, its run method and its handle. */
typedef struct my_thread {
    const char *name;
    conc_thread_fn run; /* receives the struct itself, as Python's self */
    conc_thread *handle;
} my_thread;

static int
get_detail_html_run(void *self)
{
    (void)self;
    printf("get detail html started\n");
    check(conc_sleep(2 * SECOND), "conc_sleep");
    printf("get detail html end\n");
    return 0;
}

static int
get_detail_url_run(void *self)
{
    (void)self;
    printf("get detail url started\n");
    check(conc_sleep(4 * SECOND), "conc_sleep");
    printf("get detail url end\n");
    return 0;
}

/* Thread.start(): the name goes in the options, the object as argument. */
static void
my_thread_start(my_thread *self)
{
    conc_thread_opts opts = {.name = self->name};
    check(conc_thread_start(self->run, self, &opts, &self->handle),
          "conc_thread_start");
}

/* Thread.join(), then the handle is no longer needed. */
static void
my_thread_join(my_thread *self)
{
    int status;
    check(conc_thread_join(self->handle, CONC_FOREVER, &status),
          "conc_thread_join");
    check(status, self->name);
    conc_thread_free(self->handle);
    self->handle = NULL;
}

int
main(void)
{
    my_thread thread1 = {"get_detail_html", get_detail_html_run, NULL};
    my_thread thread2 = {"get_detail_url", get_detail_url_run, NULL};
    double start_time = conc_monotonic();
    my_thread_start(&thread1);
    my_thread_start(&thread2);
    my_thread_join(&thread1);
    my_thread_join(&thread2);
    printf("last time: %f\n", conc_monotonic() - start_time);
    return 0;
}
