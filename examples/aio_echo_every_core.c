/* aio_echo_every_core: an echo server run by one loop per core
 * (conc_aio_server_group), something asyncio cannot do in one process:
 * its GIL lets only one loop run Python at a time, so asyncio servers
 * scale by starting a process per core.
 *
 * The group starts one loop per online CPU, each in a thread of its own,
 * all listening on the same free port of 127.0.0.1 with SO_REUSEPORT; the
 * kernel spreads the connections over them. A client loop in the main
 * thread opens 100 connections at once, each sending one line and
 * reading it back. Each loop counts the connections it served; how they
 * spread varies from run to run. Then the group stops as one.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define N_CONNS   100
#define MAX_LOOPS 64
#define WAIT      10.0 /* seconds: a bound on any wait */

/* Connections served per loop, found by the loop's address; handlers of
 * every loop update it at once, hence the atomics. */
struct tally {
    _Atomic(conc_aio_loop *) loops[MAX_LOOPS];
    atomic_int served[MAX_LOOPS];
};

static void
count(struct tally *t, conc_aio_loop *loop)
{
    for (int i = 0; i < MAX_LOOPS; i++) {
        conc_aio_loop *none = NULL;
        if (atomic_load(&t->loops[i]) == loop ||
            atomic_compare_exchange_strong(&t->loops[i], &none, loop)) {
            atomic_fetch_add(&t->served[i], 1);
            return;
        }
    }
}

/* The handler, run by whichever loop accepted the connection. */
static int
echo(void *arg, conc_aio_stream *s)
{
    conc_aio_loop *loop;
    check(conc_aio_get_running_loop(&loop), "get_running_loop");
    count(arg, loop);
    conc_buf line = CONC_BUF_INIT;
    int rc = conc_aio_stream_readline(s, WAIT, &line);
    if (rc == 0)
        rc = conc_aio_stream_write(s, line.data, line.len);
    if (rc == 0)
        rc = conc_aio_stream_drain(s, WAIT);
    conc_buf_free(&line);
    return rc;
}

static int
client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s;
    check(conc_aio_open_connection("127.0.0.1", *(const int *)arg, NULL, WAIT,
                                   &s),
          "open_connection");
    conc_buf line = CONC_BUF_INIT;
    check(conc_aio_stream_write(s, "ping\n", 5), "write");
    check(conc_aio_stream_readline(s, WAIT, &line), "readline");
    check(line.len == 5 && memcmp(line.data, "ping\n", 5) == 0 ? 0
                                                               : CONC_EVALUE,
          "echo");
    conc_buf_free(&line);
    conc_aio_stream_free(s);
    return 0;
}

static int
clients(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *fs[N_CONNS];
    for (int i = 0; i < N_CONNS; i++)
        check(conc_aio_create_task(client, arg, sizeof(int), NULL, &fs[i]),
              "create_task");
    check(conc_aio_gather(fs, N_CONNS, 0), "gather");
    for (int i = 0; i < N_CONNS; i++)
        conc_future_free(fs[i]);
    return 0;
}

int
main(void)
{
    static struct tally t;
    conc_aio_server_group *g;
    check(conc_aio_server_group_start("127.0.0.1", 0, 0, echo, &t, NULL, &g),
          "server_group_start");
    int port = conc_aio_server_group_port(g);
    printf("%d loops, one per core, listen on one port\n",
           conc_aio_server_group_loops(g));
    check(conc_aio_run(clients, &port, sizeof port, NULL), "clients");
    check(conc_aio_server_group_stop(g, WAIT), "server_group_stop");
    int total = 0;
    for (int i = 0; i < MAX_LOOPS && atomic_load(&t.loops[i]); i++) {
        printf("loop %d served %d connections\n", i + 1,
               atomic_load(&t.served[i]));
        total += atomic_load(&t.served[i]);
    }
    printf("%d connections echoed\n", total);
    conc_aio_server_group_free(g);
    return total == N_CONNS ? 0 : 1;
}
