/* s003_process_run10: seed 003, 多进程, ten processes each with a thread.
 *
 * "Processes are used as threads are: replace threading.Thread with
 * multiprocessing.Process." The Python starts ten processes on
 * run("bob i"), which sleeps two seconds and prints "hellp bob i"; each
 * also starts a thread that prints its threading.get_ident(). Main never
 * joins: Python waits for non-daemon children when the main process ends,
 * and so does conc at exit (each child likewise joins its thread before it
 * ends), so main simply returns. The two seconds are 40 ms; the order of
 * the lines varies from run to run, and the thread idents differ.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND      0.02 /* one second of the seed, scaled down */
#define N_PROCESSES 10

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
thread_run(void *arg)
{
    (void)arg;
    conc_thread *self = conc_thread_current();
    check(self ? 0 : CONC_ENOMEM, "conc_thread_current");
    printf("%lu\n", conc_thread_ident(self));
    return 0;
}

static int
run(const void *arg, size_t len)
{
    (void)len;
    const char *name = arg;
    check(conc_sleep(2 * SECOND), "conc_sleep");
    printf("hellp %s\n", name);
    /* Left running: the process joins it before it ends. */
    check(conc_thread_start(thread_run, NULL, NULL, NULL), "conc_thread_start");
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    for (int i = 0; i < N_PROCESSES; i++) {
        char name[16];
        snprintf(name, sizeof name, "bob %d", i);
        conc_process_free(start(run, name, sizeof name, NULL));
    }
    return 0; /* exit waits for the ten processes */
}
