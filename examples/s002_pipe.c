/* s002_pipe: seed 002, 6.7.2 使用 Pipe.
 *
 * A Pipe links exactly two processes and is faster than a Queue: the
 * Python makes `recevie_pipe, send_pipe = Pipe()`, a producer process sends
 * "bobby" on one end and a consumer process prints what it receives on the
 * other. conc_pipe makes the two connected conc_conn ends; the children
 * inherit them through fork (the default start method), and messages are
 * bytes. The parent uses neither end, so it frees its copies once the
 * children have started.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define MESSAGE_WAIT 10.0 /* seconds; the message comes at once */

static conc_conn *recevie_pipe, *send_pipe; /* inherited by the children */

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
    check(
        conc_conn_send_bytes(send_pipe, "bobby", strlen("bobby"), CONC_FOREVER),
        "conc_conn_send_bytes");
    return 0;
}

static int
consumer(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_buf msg;
    conc_buf_init(&msg);
    check(conc_conn_recv_bytes(recevie_pipe, MESSAGE_WAIT, &msg),
          "conc_conn_recv_bytes");
    printf("%.*s\n", (int)msg.len, (const char *)msg.data);
    conc_buf_free(&msg);
    return 0;
}

int
main(void)
{
    check(conc_pipe(NULL, &recevie_pipe, &send_pipe), "conc_pipe");
    conc_process *my_producer = start(producer, NULL, 0, NULL);
    conc_process *my_consumer = start(consumer, NULL, 0, NULL);
    conc_conn_free(recevie_pipe);
    conc_conn_free(send_pipe);
    join(my_producer);
    join(my_consumer);
    return 0;
}
