/* s002_queue: seed 002, 6.7.1 使用 multiprocessing 中的 Queue.
 *
 * Processes share no globals, so they talk through a
 * multiprocessing.Queue(10): the producer puts "a" and sleeps two seconds;
 * the consumer sleeps two seconds, gets "a" and prints it; main joins both.
 * conc_mpqueue with maxsize 10 is the queue; the two seconds are 40 ms.
 * The seed's second program, a Manager().Queue shared by a Pool, has no
 * conc twin.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define SECOND 0.02 /* one second of the seed, scaled down */

static conc_mpqueue *queue; /* made before the fork; inherited */

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

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
producer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    check(conc_mpqueue_put(queue, "a", 1, CONC_FOREVER), "conc_mpqueue_put");
    check(conc_sleep(2 * SECOND), "conc_sleep");
    return 0;
}

static int
consumer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    check(conc_sleep(2 * SECOND), "conc_sleep");
    conc_buf data;
    conc_buf_init(&data);
    check(conc_mpqueue_get(queue, CONC_FOREVER, &data), "conc_mpqueue_get");
    printf("%.*s\n", (int)data.len, (const char *)data.data);
    conc_buf_free(&data);
    return 0;
}

int
main(void)
{
    conc_mpqueue_opts opts = {.maxsize = 10};
    check(conc_mpqueue_new(&opts, &queue), "conc_mpqueue_new");
    conc_process *my_producer = start(producer, NULL, 0, NULL);
    conc_process *my_consumer = start(consumer, NULL, 0, NULL);
    join(my_producer);
    join(my_consumer);
    conc_mpqueue_free(queue);
    return 0;
}
