/* s001_queue_inout: seed 001, 子进程与父进程通过队列进行通信.
 *
 * The Python makes multiprocessing.Queue(3), starts ten inputQ processes
 * that each put 'PID(put):' and the time (time.asctime()), then ten outputQ
 * processes that each get one message and print it after their own pid
 * ('PID(get):' and the message in green), and joins them all. The
 * conc_mpqueue holds at most three messages, so the writers wait for the
 * readers, as in Python. freeze_support() is for Windows and has no
 * equivalent. Which reader prints which message varies from run to run.
 */
#define _POSIX_C_SOURCE 200809L /* localtime_r */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define N_EACH       10
#define MESSAGE_WAIT 10.0 /* seconds; the messages come at once */

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
input_q(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    char now[32], info[64];
    time_t t = time(NULL);
    struct tm tm;
    check(localtime_r(&t, &tm) ? 0 : CONC_EINVAL, "localtime_r");
    strftime(now, sizeof now, "%a %b %e %H:%M:%S %Y", &tm); /* asctime */
    snprintf(info, sizeof info, "%d(put):%s", (int)getpid(), now);
    check(conc_mpqueue_put(queue, info, strlen(info), MESSAGE_WAIT),
          "conc_mpqueue_put");
    return 0;
}

static int
output_q(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_buf info;
    conc_buf_init(&info);
    check(conc_mpqueue_get(queue, MESSAGE_WAIT, &info), "conc_mpqueue_get");
    printf("%d(get):\033[32m%.*s\033[0m\n", (int)getpid(), (int)info.len,
           (const char *)info.data);
    conc_buf_free(&info);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_mpqueue_opts opts = {.maxsize = 3};
    check(conc_mpqueue_new(&opts, &queue), "conc_mpqueue_new");
    conc_process *record1[N_EACH], *record2[N_EACH];
    for (int i = 0; i < N_EACH; i++)
        record1[i] = start(input_q, NULL, 0, NULL);
    for (int i = 0; i < N_EACH; i++)
        record2[i] = start(output_q, NULL, 0, NULL);
    for (int i = 0; i < N_EACH; i++)
        join(record1[i]);
    for (int i = 0; i < N_EACH; i++)
        join(record2[i]);
    conc_mpqueue_free(queue);
    return 0;
}
