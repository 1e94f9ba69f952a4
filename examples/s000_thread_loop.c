/* s000_thread_loop: seed 000, section 5 (多线程).
 *
 * The Python starts one thread named "LoopThread" that counts to 5, a step a
 * second, and joins it; both threads print their own name, taken from
 * threading.current_thread().name. conc_thread_current() and
 * conc_thread_name() give the same names ("MainThread" for the first
 * thread), so the output is the seed's, line for line. The seed's one-second
 * steps take 20 ms here to keep the demo quick.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

/* threading.current_thread().name */
static const char *
current_name(void)
{
    conc_thread *self = conc_thread_current();
    if (!self)
        check(CONC_ENOMEM, "conc_thread_current");
    return conc_thread_name(self);
}

static int
loop(void *arg)
{
    (void)arg;
    printf("Thread %s is running...\n", current_name());
    for (int n = 1; n <= 5; n++) {
        printf("Thread %s >>> %d\n", current_name(), n);
        check(conc_sleep(SECOND), "conc_sleep");
    }
    printf("Thread %s ended.\n", current_name());
    return 0;
}

int
main(void)
{
    printf("Thread %s is running...\n", current_name());
    conc_thread *thread1;
    conc_thread_opts opts = {.name = "LoopThread"};
    check(conc_thread_start(loop, NULL, &opts, &thread1), "conc_thread_start");
    int status;
    check(conc_thread_join(thread1, CONC_FOREVER, &status), "conc_thread_join");
    check(status, "LoopThread");
    conc_thread_free(thread1);
    printf("Thread %s ended.\n", current_name());
    return 0;
}
