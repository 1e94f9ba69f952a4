/* aio_tcp_echo: seed 001, 五 进程池, the TCP server whose connections a
 * Pool(4) served (s001_pool_tcp_echo), as an asyncio server with its
 * client.
 *
 * The seed's talk() sends back each message in upper case until the
 * client leaves, one worker process per connection, so that a fifth and
 * sixth client wait for a free worker. Here the server is
 * asyncio.start_server on one loop: each connection is a coroutine task,
 * and the six clients, tasks of the same loop, are all served at once by
 * one thread. Each client sends three lines a "second" (20 ms) apart and
 * prints the replies; the order of the lines varies from run to run. The
 * server listens on a free port of 127.0.0.1 (port 0).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SECOND     0.02 /* one second of the seed, scaled down */
#define N_CLIENTS  6
#define N_MESSAGES 3
#define WAIT       10.0 /* seconds: a bound on any wait */

/* How many connections the server has open at once, at most. */
static int open_now, open_most;

/* talk(): one connection's handler, a task of the server's loop. */
static int
talk(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf line = CONC_BUF_INIT;
    int rc;
    open_most = ++open_now > open_most ? open_now : open_most;
    while ((rc = conc_aio_stream_readline(s, WAIT, &line)) == 0 && line.len) {
        for (size_t i = 0; i < line.len; i++)
            line.data[i] = (uint8_t)toupper(line.data[i]);
        if ((rc = conc_aio_stream_write(s, line.data, line.len)) < 0 ||
            (rc = conc_aio_stream_drain(s, WAIT)) < 0)
            break;
    }
    open_now--;
    conc_buf_free(&line);
    return rc;
}

/* The seed's client, with three lines instead of input(). */
static int
client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const int *a = arg; /* number, port */
    conc_aio_stream *s;
    check(conc_aio_open_connection("127.0.0.1", a[1], NULL, WAIT, &s),
          "open_connection");
    conc_buf reply = CONC_BUF_INIT;
    for (int j = 0; j < N_MESSAGES; j++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "hello from client %d, line %d\n",
                         a[0], j);
        check(conc_aio_stream_write(s, msg, (size_t)n), "write");
        check(conc_aio_stream_readline(s, WAIT, &reply), "readline");
        printf("%.*s", (int)reply.len, (const char *)reply.data);
        check(conc_aio_sleep(SECOND), "sleep");
    }
    conc_buf_free(&reply);
    check(conc_aio_stream_close(s), "close");
    check(conc_aio_stream_wait_closed(s, WAIT), "wait_closed");
    conc_aio_stream_free(s);
    return 0;
}

static int
amain(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_loop *loop;
    conc_aio_server *srv;
    check(conc_aio_get_running_loop(&loop), "get_running_loop");
    check(conc_aio_start_server(loop, "127.0.0.1", 0, talk, NULL, NULL, &srv),
          "start_server");
    conc_future *fs[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        int a[2] = {i + 1, conc_aio_server_port(srv)};
        check(conc_aio_create_task(client, a, sizeof a, NULL, &fs[i]),
              "create_task");
    }
    check(conc_aio_gather(fs, N_CLIENTS, 0), "gather");
    for (int i = 0; i < N_CLIENTS; i++)
        conc_future_free(fs[i]);
    check(conc_aio_server_close(srv), "server close");
    check(conc_aio_server_wait_closed(srv, WAIT), "server wait_closed");
    conc_aio_server_free(srv);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    check(conc_aio_run(amain, NULL, 0, NULL), "conc_aio_run");
    printf("%d clients served by one thread, %d connections at once\n",
           N_CLIENTS, open_most);
    return 0;
}
