/* s003_pipe: seed 003, Pipe: two processes talking both ways.
 *
 * The Python makes `parent_conn, child_conn = Pipe()` and gives child_conn
 * to a child that sends [42, None, 'hello from child'] and
 * [42, None, 'hello from child2'], then prints "from parent:" and what it
 * receives, and closes its end; the parent prints the two messages, sends
 * "可好" and joins the child. conc_pipe's duplex ends carry bytes both
 * ways, so the lists travel as their text. child_conn goes to the child as
 * Python's args do: as a conc_conn_ref, from which the child opens a
 * handle of its own, so `f` runs the same under the fork server (the
 * parent keeps its copy until the child has answered, i.e. opened it).
 * Each side frees the ends it does not use. The output is the seed's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define MESSAGE_WAIT 10.0 /* seconds; the messages come at once */

static conc_conn *parent_conn, *child_conn; /* a forked child's copies */

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

static void
send_text(conc_conn *conn, const char *text)
{
    check(conc_conn_send_bytes(conn, text, strlen(text), CONC_FOREVER),
          "conc_conn_send_bytes");
}

/* Receives one message into *msg, which the caller frees. */
static void
recv_text(conc_conn *conn, conc_buf *msg)
{
    check(conc_conn_recv_bytes(conn, MESSAGE_WAIT, msg),
          "conc_conn_recv_bytes");
}

static int
f(const void *arg, size_t len)
{
    if (len != sizeof(conc_conn_ref))
        return CONC_EINVAL;
    conc_conn *conn;
    check(conc_conn_open(arg, &conn), "conc_conn_open");
    conc_conn_free(parent_conn); /* NULL under the fork server */
    conc_conn_free(child_conn);
    send_text(conn, "[42, None, 'hello from child']");
    send_text(conn, "[42, None, 'hello from child2']");
    conc_buf msg;
    conc_buf_init(&msg);
    recv_text(conn, &msg);
    printf("from parent: %.*s\n", (int)msg.len, (const char *)msg.data);
    conc_buf_free(&msg);
    check(conc_conn_close(conn), "conc_conn_close");
    conc_conn_free(conn);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    check(conc_pipe(NULL, &parent_conn, &child_conn), "conc_pipe");
    conc_conn_ref ref; /* Process(target=f, args=(child_conn,)) */
    check(conc_conn_share(child_conn, &ref), "conc_conn_share");
    conc_process *p = start(f, &ref, sizeof ref, NULL);
    conc_buf msg;
    conc_buf_init(&msg);
    for (int i = 0; i < 2; i++) {
        recv_text(parent_conn, &msg);
        printf("%.*s\n", (int)msg.len, (const char *)msg.data);
    }
    conc_conn_free(child_conn); /* the child has answered: it has its own */
    conc_buf_free(&msg);
    send_text(parent_conn, "可好");
    join(p);
    conc_conn_free(parent_conn);
    return 0;
}
