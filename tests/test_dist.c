/* Scale-out over Redis Streams: the wire format (pure), then the executor
 * and its workers against a real redis-server that the program starts on
 * a loopback port (tests/peers/redis_fixture.c), with workers in processes
 * of their own (tests/peers/dist_peer.c) so that they can be killed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "conc_test.h"
#include "dist_fixture.h"
#include "core/internal.h"
#include "dist/dist_internal.h"
#include "dist/worker_internal.h"

#define LONG_WAIT 60.0

/* ---- Wire format --------------------------------------------------------- */

static void
test_wire_result_round_trip(void **state)
{
    (void)state;
    conc_buf b = CONC_BUF_INIT;
    struct conc__dist_result r;
    assert_conc_ok(conc__dist_result_encode(&b, 0, "abc", 3));
    assert_conc_ok(conc__dist_result_decode(b.data, b.len, &r));
    assert_int_equal(r.code, 0);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.data, "abc", 3);
    assert_conc_ok(conc__dist_result_encode(&b, CONC_EVALUE, "bad", 3));
    assert_conc_ok(conc__dist_result_decode(b.data, b.len, &r));
    assert_int_equal(r.code, CONC_EVALUE);
    assert_memory_equal(r.data, "bad", 3);
    assert_conc_ok(conc__dist_result_encode(&b, CONC_ECANCELED, NULL, 0));
    assert_conc_ok(conc__dist_result_decode(b.data, b.len, &r));
    assert_int_equal(r.code, CONC_ECANCELED);
    conc_buf_free(&b);
    const char *bad[] = {"",     "x",      "e",    "e-",
                         "e0 m", "e12 m",  "e-1x", "e-99999999999 m",
                         "cc",   "e-01 m", "e-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_conc(conc__dist_result_decode(bad[i], strlen(bad[i]), &r),
                    CONC_EPROTO);
}

static void
test_wire_task_decode(void **state)
{
    (void)state;
    const char *v[] = {"id",   "s1:7", "fn", "square", "sub", "s1",  "ttl",
                       "1000", "lim",  "0",  "arg",    "xy",  "new", "?"};
    size_t lens[14];
    for (size_t i = 0; i < 14; i++)
        lens[i] = strlen(v[i]);
    struct conc__dist_task t;
    const char *why;
    assert_conc_ok(conc__dist_task_decode(14, v, lens, &t, &why));
    assert_int_equal(t.ttl_ms, 1000);
    assert_int_equal(t.arg_len, 2);
    assert_memory_equal(t.fn, "square", 6);
    assert_conc(conc__dist_task_decode(13, v, lens, &t, &why), CONC_EPROTO);
    v[7] = "10x"; /* a bad ttl */
    lens[7] = 3;
    assert_conc(conc__dist_task_decode(14, v, lens, &t, &why), CONC_EPROTO);
    v[7] = "1000";
    lens[7] = 4;
    v[3] = "sq uare"; /* a bad task name */
    lens[3] = 7;
    assert_conc(conc__dist_task_decode(14, v, lens, &t, &why), CONC_EPROTO);
    assert_non_null(why);
}

struct notice_seen {
    uint64_t seqs[8];
    char vals[8][8];
    size_t n;
};

static void
on_notice(void *arg, uint64_t seq, const char *v, size_t len)
{
    struct notice_seen *ns = arg;
    assert_true(ns->n < 8 && len < 8);
    ns->seqs[ns->n] = seq;
    memcpy(ns->vals[ns->n], v, len);
    ns->vals[ns->n++][len] = '\0';
}

/* A notice carrying several results: each "r" goes to the "id" before
 * it; others' results, ids spelt another way (leading zeros, which the
 * fuzzer found taken for this submitter's task), fields that are not
 * strings and unknown fields are skipped. */
static void
test_wire_notice_decode(void **state)
{
    (void)state;
    const char *v[] = {"id", "s1:7",
                       "r",  "o7",
                       "id", "s2:8",
                       "r",  "o8",
                       "id", "s1:07",
                       "r",  "o9",
                       "id", "s1:0",
                       "x",  "y",
                       "r",  "o0",
                       "r",  "stray",
                       "id", NULL,
                       "r",  "oN",
                       "id", "s1:18446744073709551616",
                       "r",  "big",
                       "id", "s1:3",
                       "r",  "c",
                       "id"};
    size_t n = sizeof v / sizeof *v, lens[sizeof v / sizeof *v];
    for (size_t i = 0; i < n; i++)
        lens[i] = v[i] ? strlen(v[i]) : 0;
    struct notice_seen ns = {.n = 0};
    assert_int_equal(conc__dist_notice_decode("s1", n, v, lens, on_notice, &ns),
                     3);
    assert_int_equal(ns.n, 3);
    assert_int_equal(ns.seqs[0], 7);
    assert_string_equal(ns.vals[0], "o7");
    assert_int_equal(ns.seqs[1], 0);
    assert_string_equal(ns.vals[1], "o0");
    assert_int_equal(ns.seqs[2], 3);
    assert_string_equal(ns.vals[2], "c");
    uint64_t seq = 99;
    assert_conc(conc__dist_notice_seq("s1", "s1:007", 6, &seq), CONC_EPROTO);
    assert_conc(conc__dist_notice_seq("s1", "s1:", 3, &seq), CONC_EPROTO);
    assert_conc(conc__dist_notice_seq("s1", "s10:1", 5, &seq), CONC_EPROTO);
    assert_int_equal(seq, 99);
    assert_conc_ok(conc__dist_notice_seq("s1", "s1:10", 5, &seq));
    assert_int_equal(seq, 10);
}

static void
test_wire_address(void **state)
{
    (void)state;
    char *host, *pw;
    int port;
    assert_conc_ok(
        conc__dist_parse_address("redis://:s3@h:7000/0", &host, &port, &pw));
    assert_string_equal(host, "h");
    assert_int_equal(port, 7000);
    assert_string_equal(pw, "s3");
    conc__free(host);
    conc__free(pw);
    assert_conc_ok(conc__dist_parse_address("localhost", &host, &port, &pw));
    assert_int_equal(port, 6379);
    assert_null(pw);
    conc__free(host);
    assert_conc(conc__dist_parse_address("h:0", &host, &port, &pw),
                CONC_EINVAL);
    assert_conc(conc__dist_parse_address("redis://", &host, &port, &pw),
                CONC_EINVAL);
    assert_conc(conc__dist_parse_address("h:12x", &host, &port, &pw),
                CONC_EINVAL);
}

/* A check's answer that is not what the script returns (bytes from
 * another process) gives no verdict rather than a wrong one. */
static void
test_check_apply_malformed(void **state)
{
    (void)state;
    redisReply id[3], one = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply zero = {.type = REDIS_REPLY_INTEGER, .integer = 0};
    redisReply fields = {.type = REDIS_REPLY_ARRAY}, entry[3];
    redisReply *entry_el[3][2], *entries_el[3];
    char *names[3] = {"1-1", "2-1", "3-1"};
    for (int i = 0; i < 3; i++) {
        id[i] = (redisReply){.type = REDIS_REPLY_STRING,
                             .str = names[i],
                             .len = strlen(names[i])};
        entry_el[i][0] = &id[i];
        entry_el[i][1] = &fields;
        entry[i] = (redisReply){
            .type = REDIS_REPLY_ARRAY, .elements = 2, .element = entry_el[i]};
        entries_el[i] = &entry[i];
    }
    redisReply entries = {
        .type = REDIS_REPLY_ARRAY, .elements = 3, .element = entries_el};
    signed char v[3];
    /* The answer for 1-1 and 3-1, in order: 2-1 has no verdict. */
    redisReply *good_el[] = {&id[0], &zero, &id[2], &one};
    redisReply good = {
        .type = REDIS_REPLY_ARRAY, .elements = 4, .element = good_el};
    conc__dist_check_apply(&good, &entries, 3, v);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], -1);
    assert_int_equal(v[2], 1);
    /* An odd count, a verdict that is not an integer, an error. */
    redisReply *odd_el[] = {&id[0], &zero, &id[1]};
    redisReply odd = {
        .type = REDIS_REPLY_ARRAY, .elements = 3, .element = odd_el};
    conc__dist_check_apply(&odd, &entries, 3, v);
    assert_true(v[0] == -1 && v[1] == -1 && v[2] == -1);
    redisReply *str_el[] = {&id[0], &id[1]};
    redisReply strs = {
        .type = REDIS_REPLY_ARRAY, .elements = 2, .element = str_el};
    conc__dist_check_apply(&strs, &entries, 3, v);
    assert_true(v[0] == -1 && v[1] == -1 && v[2] == -1);
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT", .len = 8};
    conc__dist_check_apply(&err, &entries, 3, v);
    assert_true(v[0] == -1 && v[1] == -1 && v[2] == -1);
    conc__dist_check_apply(NULL, &entries, 3, v);
    assert_true(v[0] == -1 && v[1] == -1 && v[2] == -1);
}

static int
local_echo(const void *arg, size_t len, conc_buf *result)
{
    return conc_buf_append(result, arg, len);
}

/* ---- Against the server ---------------------------------------------------
 */

/* ---- The connection --------------------------------------------------------
 */

/* Sends to a server that closed the connection, until a send fails. */
static int
send_after_close_child(void *arg)
{
    const char *url = arg;
    struct conc__rconn c;
    if (conc__rconn_init(&c, url, NULL, 5) < 0)
        return 1;
    if (conc__rconn_ensure(&c, conc__now_ns() + (int64_t)5e9) < 0)
        return 2;
    /* The handshake's reply read, the socket turns readable at the
     * server's close (end of file). */
    struct pollfd p = {.fd = c.ctx->fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return 4;
    /* The server has closed: a send goes out, the server's reset comes
     * back, and a send after it must fail with an error, not kill the
     * process with SIGPIPE. */
    const char *a[] = {"PING"};
    size_t l[] = {4};
    for (int i = 0; i < 1000; i++) {
        if (conc__rconn_append(&c, 1, a, l) < 0 ||
            conc__rconn_send(&c, conc__now_ns() + (int64_t)5e9) < 0) {
            conc__rconn_fini(&c);
            return 0;
        }
    }
    conc__rconn_fini(&c);
    return 3;
}

/* A connection whose server went away reports it and does not raise
 * SIGPIPE (whose default action kills the process: a worker's pipelined
 * finishes wrote twice into a reset socket when redis-server was killed). */
static void
test_conn_send_after_close(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    pid_t child = fork_child(send_after_close_child, url);
    struct pollfd p = {.fd = ls, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    int s = accept(ls, NULL, NULL);
    assert_true(s >= 0);
    char buf[64];
    p.fd = s;
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(read(s, buf, sizeof buf) > 0); /* the PING of the handshake */
    assert_int_equal(write(s, "+PONG\r\n", 7), 7);
    close(s);
    close(ls);
    int st = reap_status(child);
    assert_int_equal(WIFSIGNALED(st) ? WTERMSIG(st) : 0, 0); /* not SIGPIPE */
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- Against a real server ---------------------------------------------- */

/* Runs one command on `c` and returns its integer reply. */
static long long
cmd_int(struct conc__rconn *c, const char *fmt, const char *a, const char *b)
{
    redisReply *rep = NULL;
    assert_conc_ok(
        conc__rconn_cmdf(c, conc__now_ns() + (int64_t)5e9, 0, &rep, fmt, a, b));
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* Adds n task entries (ids t:first...) at once (MULTI: a blocked read gets
 * them all) on connection `c`. */
static void
add_entries(struct conc__rconn *c, const char *tasks, int first, int n)
{
    redisReply *reps[2 + CONC__DIST_WORKER_BATCH];
    assert_conc_ok(conc__rconn_appendf(c, "MULTI"));
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "t:%d", first + i);
        assert_conc_ok(
            conc__rconn_appendf(c, "XADD %s * id %s fn f", tasks, id));
    }
    assert_conc_ok(conc__rconn_appendf(c, "EXEC"));
    assert_conc_ok(conc__rconn_pipeline(c, conc__now_ns() + (int64_t)5e9,
                                        (size_t)n + 2, reps));
    for (int i = 0; i < n + 2; i++)
        freeReplyObject(reps[i]);
}

/* The result-key check a serving thread sends right behind its blocking
 * XREADGROUP (check.c) runs once the read is served and answers for the
 * entries it delivered, in the same round trip, without counting a
 * delivery; a batch larger than it looks at gets no verdicts (the worker
 * then checks with an MGET). */
static void
test_check_with_read(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_worker *w = NULL;
    assert_conc_ok(
        conc_dist_worker_new(dist_server.url, DIST_PASSWORD, q, NULL, &w));
    struct conc__rconn rd, wr;
    assert_conc_ok(conc__rconn_init(&rd, dist_server.url, DIST_PASSWORD, 5));
    assert_conc_ok(conc__rconn_init(&wr, dist_server.url, DIST_PASSWORD, 5));
    assert_conc_ok(conc__rconn_ensure(&rd, conc__now_ns() + (int64_t)5e9));
    assert_conc_ok(conc__rconn_ensure(&wr, conc__now_ns() + (int64_t)5e9));
    char res[128], tasks[128], last[CONC__DIST_ENTRY_MAX] = "0-0";
    conc__dist_keyf(res, sizeof res, q, "res:t:2");
    conc__dist_keyf(tasks, sizeof tasks, q, "tasks");
    redisReply *rep = NULL;
    assert_conc_ok(conc__rconn_cmdf(&wr, conc__now_ns() + (int64_t)5e9, 0, &rep,
                                    "SET %s c", res));
    freeReplyObject(rep);
    for (int round = 0; round < 2; round++) {
        int n = round == 0 ? 3 : 9; /* the second: more than it looks at */
        /* The read blocks: nothing is there yet when it is sent. */
        assert_conc_ok(conc__rconn_appendf(
            &rd, "XREADGROUP GROUP %s %s COUNT %d BLOCK 10000 STREAMS %s >",
            CONC__DIST_GROUP, w->slots[0].consumer, CONC__DIST_WORKER_BATCH,
            tasks));
        assert_conc_ok(conc__dist_check_append(w, 0, &rd, last));
        assert_conc_ok(conc__rconn_send(&rd, conc__now_ns() + (int64_t)5e9));
        add_entries(&wr, tasks, 1 + 3 * round, n);
        redisReply *reps[2];
        assert_conc_ok(
            conc__rconn_pipeline(&rd, conc__now_ns() + (int64_t)10e9, 2, reps));
        assert_int_equal(reps[0]->type, REDIS_REPLY_ARRAY);
        const redisReply *entries = reps[0]->element[0]->element[1];
        assert_int_equal(entries->elements, n);
        signed char verdict[CONC__DIST_WORKER_BATCH];
        conc__dist_check_apply(reps[1], entries, (size_t)n, verdict);
        for (int i = 0; i < n; i++)
            assert_int_equal(verdict[i], round ? -1 : i == 1);
        snprintf(last, sizeof last, "%s",
                 entries->element[n - 1]->element[0]->str);
        freeReplyObject(reps[0]);
        freeReplyObject(reps[1]);
    }
    /* Each entry counted as delivered once, by the read alone. */
    assert_int_equal(cmd_int(&wr, "XACK %s workers %s", tasks, last), 1);
    redisReply *pend = NULL;
    assert_conc_ok(conc__rconn_cmdf(&wr, conc__now_ns() + (int64_t)5e9, 0,
                                    &pend, "XPENDING %s workers - + 100",
                                    tasks));
    assert_int_equal(pend->elements, 11);
    for (size_t i = 0; i < pend->elements; i++)
        assert_int_equal(pend->element[i]->element[3]->integer, 1);
    freeReplyObject(pend);
    conc__rconn_fini(&rd);
    conc__rconn_fini(&wr);
    conc_dist_worker_free(w);
}

static void
test_round_trip(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 50 };
    conc_future *fs[N];
    for (long i = 0; i < N; i++)
        fs[i] = dist_submit_long(dx, "square", i, LONG_WAIT);
    assert_conc_ok(conc_wait(fs, N, CONC_ALL_COMPLETED, LONG_WAIT, NULL));
    dist_check_squares(fs, N, LONG_WAIT);
    assert_conc_ok(conc_dist_shutdown(dx, 1, 0, LONG_WAIT));
    assert_conc(conc_dist_submit(dx, "square", NULL, 0, 0, &fs[0]),
                CONC_ECLOSED);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* Pipelined submits: many tasks in batches, with a bound on those in
 * flight smaller than a batch. */
static void
test_submit_many(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    conc_dist_opts o = {.max_in_flight = 100};
    conc_dist_executor *dx = dist_new_executor(q, &o);
    enum { N = 1000 };
    static long in[N];
    static conc_future *fs[N];
    for (long i = 0; i < N; i++)
        in[i] = i;
    size_t n = 0;
    conc_items items = CONC_ITEMS(in, N);
    assert_conc_ok(
        conc_dist_submit_many(dx, "square", &items, LONG_WAIT, fs, &n));
    assert_int_equal(n, N);
    assert_conc_ok(conc_wait(fs, N, CONC_ALL_COMPLETED, LONG_WAIT, NULL));
    dist_check_squares(fs, N, LONG_WAIT);
    /* Refused before anything is sent: a generator, a closed executor. */
    conc_items gen = {.next = (conc_next_fn)1};
    assert_conc(conc_dist_submit_many(dx, "square", &gen, 0, fs, &n),
                CONC_EINVAL);
    assert_conc_ok(conc_dist_shutdown(dx, 1, 0, LONG_WAIT));
    assert_conc(conc_dist_submit_many(dx, "square", &items, 0, fs, &n),
                CONC_ECLOSED);
    assert_int_equal(n, 0);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* A task's failure travels with its message; an unknown name fails too;
 * a remote future mixes with a thread executor's in as_completed. */
static void
test_failures_and_mixing(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *fs[3];
    assert_conc_ok(conc_dist_submit(dx, "fail", "abcd", 4, LONG_WAIT, &fs[0]));
    assert_conc_ok(conc_dist_submit(dx, "no_such", NULL, 0, LONG_WAIT, &fs[1]));
    conc_executor *tx;
    assert_conc_ok(conc_thread_executor_new(NULL, &tx));
    assert_conc_ok(conc_executor_submit(tx, local_echo, "x", 1, &fs[2]));
    conc_as_completed_iter *it;
    assert_conc_ok(conc_as_completed(fs, 3, LONG_WAIT, &it));
    conc_future *f;
    int n = 0;
    while (conc_as_completed_next(it, &f) == 0)
        n++;
    assert_int_equal(n, 3);
    conc_as_completed_free(it);
    assert_conc(conc_future_result(fs[0], 0, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_future_message(fs[0]), "bad input of 4 bytes");
    assert_conc(conc_future_result(fs[1], 0, NULL, NULL), CONC_ENOENT);
    assert_non_null(strstr(conc_future_message(fs[1]), "no task named"));
    assert_conc_ok(conc_future_result(fs[2], 0, NULL, NULL));
    for (int i = 0; i < 3; i++)
        conc_future_free(fs[i]);
    conc_executor_free(tx);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

static void
test_wrong_password(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
    conc_dist_executor *dx = NULL;
    assert_conc(
        conc_dist_executor_new(dist_server.url, "wrong", "q", NULL, &dx),
        CONC_EAUTH);
    assert_conc(conc_dist_executor_new(dist_server.url, NULL, "q", NULL, &dx),
                CONC_EAUTH);
    conc_dist_opts o = {.retry_on_startup = 1};
    assert_conc(conc_dist_executor_new(dist_server.url, "wrong", "q", &o, &dx),
                CONC_EAUTH);
    conc_dist_worker *w = NULL;
    assert_conc(conc_dist_worker_new(dist_server.url, "wrong", "q", NULL, &w),
                CONC_EAUTH);
    assert_null(dx);
    assert_null(w);
    /* A worker process with a wrong password exits with CONC_EAUTH. */
    char *argv[] = {DIST_PEER, dist_server.url, "wrong", "q", "1", "5", "5",
                    NULL};
    pid_t pid = redis_fixture_spawn(argv);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), -CONC_EAUTH & 255);
}

/* max_in_flight bounds submits; shutdown with cancel_futures cancels. */
static void
test_backpressure_and_cancel_on_shutdown(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_opts o = {.max_in_flight = 2};
    conc_dist_executor *dx = dist_new_executor(q, &o);
    conc_future *f1 = dist_submit_long(dx, "square", 1, LONG_WAIT);
    conc_future *f2 = dist_submit_long(dx, "square", 2, LONG_WAIT), *f3 = NULL;
    double t0 = conc_monotonic();
    long v = 3;
    assert_conc(conc_dist_submit(dx, "square", &v, sizeof v, 0.2, &f3),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.2);
    assert_null(f3);
    assert_conc_ok(conc_dist_shutdown(dx, 1, 1, LONG_WAIT));
    assert_true(conc_future_cancelled(f1));
    assert_true(conc_future_cancelled(f2));
    conc_future_free(f1);
    conc_future_free(f2);
    conc_dist_executor_free(dx);
}

/* A cancelled pending task never runs: cancel a task that would kill its
 * worker, then see a later task done by the one worker there is. */
static void
test_cancel_pending_never_runs(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *bomb = NULL;
    assert_conc_ok(conc_dist_submit(dx, "crash", NULL, 0, LONG_WAIT, &bomb));
    assert_int_equal(conc_future_cancel(bomb), 1);
    assert_true(conc_future_cancelled(bomb));
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    conc_future *f = dist_submit_long(dx, "square", 9, LONG_WAIT);
    assert_int_equal(dist_long_result(f, LONG_WAIT), 81);
    conc_future_free(f);
    conc_future_free(bomb);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

static int
in_flight_is_one(void *arg)
{
    conc_dist_status st;
    return conc_dist_status_get(dist_server.url, DIST_PASSWORD, arg, 1, &st) ==
               0 &&
           st.in_flight == 1;
}

/* A running task sees conc_task_cancelled once its future is cancelled. */
static void
test_cancel_running(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    double s = 30;
    conc_future *napper = NULL;
    assert_conc_ok(
        conc_dist_submit(dx, "nap", &s, sizeof s, LONG_WAIT, &napper));
    assert_true(conc_test_wait_until(in_flight_is_one, q, LONG_WAIT));
    double t0 = conc_monotonic();
    assert_int_equal(conc_future_cancel(napper), 1);
    /* The one worker thread is free again long before the nap's end. */
    conc_future *f = dist_submit_long(dx, "square", 5, LONG_WAIT);
    assert_int_equal(dist_long_result(f, LONG_WAIT), 25);
    assert_true(conc_monotonic() - t0 < s);
    conc_future_free(f);
    conc_future_free(napper);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

static void
test_time_limit(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    conc_dist_opts o = {.time_limit = 0.3};
    conc_dist_executor *dx = dist_new_executor(q, &o);
    double s = 30;
    conc_future *f = NULL;
    double t0 = conc_monotonic();
    assert_conc_ok(conc_dist_submit(dx, "nap", &s, sizeof s, LONG_WAIT, &f));
    assert_conc(conc_future_result(f, LONG_WAIT, NULL, NULL), CONC_ETIMEDOUT);
    double took = conc_monotonic() - t0;
    assert_true(took >= 0.3);
    assert_true(took < s);
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* ---- Faults ---------------------------------------------------------------
 */

/* Workers killed with SIGKILL mid-task under load: their tasks are taken
 * over after reclaim_idle and every future completes with its result. */
static void
test_worker_killed_mid_task(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t a = dist_start_peer(q, 2, "0.5", 5, 0),
          b = dist_start_peer(q, 2, "0.5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 200 };
    conc_future *fs[N];
    for (long i = 0; i < N; i++)
        fs[i] = dist_submit_long(dx, "slow_square", i, LONG_WAIT);
    /* Kill a worker once work is under way, then another; one survives. */
    assert_conc_ok(conc_wait(fs, N, CONC_FIRST_COMPLETED, LONG_WAIT, NULL));
    kill_and_reap(a);
    pid_t c = dist_start_peer(q, 2, "0.5", 5, 0);
    assert_conc_ok(conc_future_result(fs[N / 2], LONG_WAIT, NULL, NULL));
    kill_and_reap(b);
    assert_conc_ok(conc_wait(fs, N, CONC_ALL_COMPLETED, LONG_WAIT, NULL));
    dist_check_squares(fs, N, LONG_WAIT);
    conc_dist_executor_free(dx);
    dist_stop_peer(c);
}

/* A task that kills its worker every time goes to the dead-letter stream
 * after max_deliveries, and its future fails with the count. */
static void
test_crash_every_time_dead_letter(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, "crash", NULL, 0, LONG_WAIT, &f));
    /* Each worker dies of the task; start another until it is given up. */
    int starts = 0;
    while (!conc_future_done(f) && starts < 10) {
        pid_t p = dist_start_peer(q, 1, "0.2", 2, 0);
        starts++;
        int st;
        while (waitpid(p, &st, WNOHANG) == 0 && !conc_future_done(f))
            conc_future_result(f, 0.05, NULL, NULL);
        if (conc_future_done(f))
            dist_stop_peer_any(p);
    }
    assert_conc(conc_future_result(f, LONG_WAIT, NULL, NULL), CONC_EBROKEN);
    assert_non_null(strstr(conc_future_message(f), "delivered 3 times"));
    conc_dist_status st;
    assert_conc_ok(
        conc_dist_status_get(dist_server.url, DIST_PASSWORD, q, 5, &st));
    assert_int_equal(st.dead_letters, 1);
    assert_int_equal(st.in_flight, 0);
    conc_future_free(f);
    conc_dist_executor_free(dx);
}

/* redis-server killed and restarted under load: clients and workers
 * reconnect, and with appendfsync always no acknowledged submit is lost. */
static void
test_server_restarted_under_load(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "1", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 300 };
    conc_future *fs[N];
    for (long i = 0; i < N; i++) {
        if (i == N / 2) {
            redis_fixture_kill(&dist_server);
            assert_int_equal(redis_fixture_restart(&dist_server), 0);
        }
        fs[i] = dist_submit_long(dx, "square", i, LONG_WAIT);
    }
    assert_conc_ok(conc_wait(fs, N, CONC_ALL_COMPLETED, LONG_WAIT, NULL));
    dist_check_squares(fs, N, LONG_WAIT);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* Freeing an executor whose server is gone cancels its futures in
 * bounded time, not a timeout per future. */
static void
test_free_with_server_gone(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = DIST_ZEROS_MAX };
    static conc_future *fs[N];
    dist_submit_zeros(dx, N, LONG_WAIT, fs);
    redis_fixture_kill(&dist_server);
    dist_free_cancels(dx, 10, fs, N);
    assert_int_equal(redis_fixture_restart(&dist_server), 0);
}

static int
submitter_child(void *arg)
{
    const char *q = arg;
    conc_dist_executor *dx = NULL;
    if (conc_dist_executor_new(dist_server.url, DIST_PASSWORD, q, NULL, &dx) <
        0)
        return 1;
    for (long i = 0; i < 10; i++) {
        conc_future *f = NULL;
        if (conc_dist_submit(dx, "square", &i, sizeof i, LONG_WAIT, &f) < 0)
            return 2;
    }
    return 0; /* dies with its tasks in flight */
}

/* A submitter that dies: its tasks still run and the queue drains. */
static void
test_submitter_dies(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t child = fork_child(submitter_child, q);
    reap(child);
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    /* The one worker runs tasks in order: once a later submitter's task is
     * done, the dead one's ten are too. */
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *f = dist_submit_long(dx, "square", 12, LONG_WAIT);
    assert_int_equal(dist_long_result(f, LONG_WAIT), 144);
    conc_dist_status st;
    assert_conc_ok(
        conc_dist_status_get(dist_server.url, DIST_PASSWORD, q, 5, &st));
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.workers_seen >= 1);
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* Deletes every entry of the queue's task stream, as a careless
 * operator's XDEL or XTRIM would. Returns how many there were. */
static long
delete_task_entries(const char *queue)
{
    struct conc__rconn c;
    assert_conc_ok(conc__rconn_init(&c, dist_server.url, DIST_PASSWORD, 5));
    int64_t deadline = conc__now_ns() + (int64_t)5e9;
    redisReply *rep = NULL;
    assert_conc_ok(conc__rconn_cmdf(&c, deadline, 0, &rep,
                                    "XRANGE {conc:%s}:tasks - +", queue));
    long n = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *d = NULL;
        assert_conc_ok(conc__rconn_cmdf(&c, deadline, 0, &d,
                                        "XDEL {conc:%s}:tasks %s", queue,
                                        rep->element[i]->element[0]->str));
        n += d->integer;
        freeReplyObject(d);
    }
    freeReplyObject(rep);
    conc__rconn_fini(&c);
    return n;
}

/* A task whose entry is deleted under a live worker fails its future (the
 * worker's heartbeat finds it gone) instead of vanishing. */
static void
test_entry_deleted_under_live_worker(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 1, "0.3", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    double s = 30;
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, "nap", &s, sizeof s, LONG_WAIT, &f));
    assert_true(conc_test_wait_until(in_flight_is_one, q, LONG_WAIT));
    assert_int_equal(delete_task_entries(q), 1);
    assert_conc(conc_future_result(f, LONG_WAIT, NULL, NULL), CONC_EBROKEN);
    assert_non_null(strstr(conc_future_message(f), "deleted"));
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* A task whose entry is deleted while its worker is frozen: the worker
 * that would take it over finds it deleted (XAUTOCLAIM's third element)
 * and its future fails. */
static void
test_entry_deleted_under_frozen_worker(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t frozen = dist_start_peer(q, 1, "0.3", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    double s = 30;
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, "nap", &s, sizeof s, LONG_WAIT, &f));
    assert_true(conc_test_wait_until(in_flight_is_one, q, LONG_WAIT));
    kill(frozen, SIGSTOP);
    assert_int_equal(delete_task_entries(q), 1);
    pid_t other = dist_start_peer(q, 1, "0.3", 5, 0);
    assert_conc(conc_future_result(f, LONG_WAIT, NULL, NULL), CONC_EBROKEN);
    assert_non_null(strstr(conc_future_message(f), "deleted"));
    conc_future_free(f);
    conc_dist_executor_free(dx);
    kill_and_reap(frozen);
    dist_stop_peer(other);
}

static int
python_has_redis(void)
{
    char *argv[] = {"/usr/bin/python3", "-c", "import redis", NULL};
    if (access(argv[0], X_OK) != 0)
        return 0;
    pid_t pid = redis_fixture_spawn(argv);
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
}

/* A worker in Python (examples/dist_worker.py) serves a C executor. */
static void
test_python_worker(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
    if (!python_has_redis())
        skip();
    setenv("REDIS_URL", dist_server.url, 1);
    setenv("REDIS_PASSWORD", DIST_PASSWORD, 1);
    char *argv[] = {"/usr/bin/python3", PY_WORKER, NULL};
    pid_t py = redis_fixture_spawn(argv);
    assert_true(py > 0);
    conc_dist_executor *dx = dist_new_executor("seed000", NULL);
    conc_future *fs[2];
    assert_conc_ok(
        conc_dist_submit(dx, "square_text", "12", 2, LONG_WAIT, &fs[0]));
    assert_conc_ok(conc_dist_submit(dx, "nope", NULL, 0, LONG_WAIT, &fs[1]));
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(fs[0], LONG_WAIT, &data, &len));
    assert_int_equal(len, strlen("12 * 12 = 144"));
    assert_memory_equal(data, "12 * 12 = 144", len);
    assert_conc(conc_future_result(fs[1], LONG_WAIT, NULL, NULL), CONC_ENOENT);
    assert_non_null(strstr(conc_future_message(fs[1]), "no task named nope"));
    conc_future_free(fs[0]);
    conc_future_free(fs[1]);
    conc_dist_executor_free(dx);
    kill(py, SIGINT); /* KeyboardInterrupt: "Worker Exit." */
    int st;
    assert_int_equal(waitpid(py, &st, 0), py);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* examples/dist_master.c gets its ten results from two
 * examples/dist_worker.c processes, and exits 0. */
static void
test_examples(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
#ifdef EX_MASTER
    setenv("REDIS_URL", dist_server.url, 1);
    setenv("REDIS_PASSWORD", DIST_PASSWORD, 1);
    char *wargv[] = {EX_WORKER, NULL}, *margv[] = {EX_MASTER, NULL};
    pid_t w1 = redis_fixture_spawn(wargv), w2 = redis_fixture_spawn(wargv);
    pid_t m = redis_fixture_spawn(margv);
    assert_true(w1 > 0 && w2 > 0 && m > 0);
    int st;
    assert_int_equal(waitpid(m, &st, 0), m);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    dist_stop_peer(w1);
    dist_stop_peer(w2);
#else
    skip();
#endif
}

static int
run_status(const char *queue)
{
    char *argv[] = {CONC_WORKER, "--status",    "--url", dist_server.url,
                    "--queue",   (char *)queue, NULL};
    pid_t pid = redis_fixture_spawn(argv);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* conc-worker serves tasks from a shared library, and reports status. */
static void
test_conc_worker_program(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    setenv("REDIS_PASSWORD", DIST_PASSWORD, 1);
    char *argv[] = {CONC_WORKER,
                    "--url",
                    dist_server.url,
                    "--queue",
                    q,
                    "--threads",
                    "2",
                    "--batch",
                    "8",
                    DIST_TASKS,
                    "lib_square",
                    "square=lib_square",
                    NULL};
    pid_t w = redis_fixture_spawn(argv);
    assert_true(w > 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *f1 = dist_submit_long(dx, "square", 7, LONG_WAIT);
    conc_future *f2 = dist_submit_long(dx, "lib_square", 8, LONG_WAIT);
    assert_int_equal(dist_long_result(f1, LONG_WAIT), 49);
    assert_int_equal(dist_long_result(f2, LONG_WAIT), 64);
    assert_int_equal(run_status(q), 0);
    unsetenv("REDIS_PASSWORD");
    assert_int_equal(run_status(q), 1); /* CONC_EAUTH, printed */
    conc_future_free(f1);
    conc_future_free(f2);
    conc_dist_executor_free(dx);
    dist_stop_peer(w);
    /* A count that is not one is bad usage. */
    char *bad_batch[] = {CONC_WORKER, "--url",    dist_server.url, "--batch",
                         "many",      DIST_TASKS, "lib_square",    NULL};
    pid_t bb = redis_fixture_spawn(bad_batch);
    int bst;
    assert_int_equal(waitpid(bb, &bst, 0), bb);
    assert_true(WIFEXITED(bst) && WEXITSTATUS(bst) == 2);
    /* A symbol the library lacks is refused before serving. */
    char *bad[] = {CONC_WORKER, "--url", dist_server.url,
                   DIST_TASKS,  "nope",  NULL};
    pid_t b = redis_fixture_spawn(bad);
    int st;
    assert_int_equal(waitpid(b, &st, 0), b);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_wire_result_round_trip),
        conc_unit_test(test_wire_task_decode),
        conc_unit_test(test_wire_notice_decode),
        conc_unit_test(test_wire_address),
        conc_unit_test(test_conn_send_after_close),
        conc_unit_test(test_check_apply_malformed),
        conc_unit_test(test_check_with_read),
        conc_unit_test(test_round_trip),
        conc_unit_test(test_submit_many),
        conc_unit_test(test_failures_and_mixing),
        conc_unit_test(test_wrong_password),
        conc_unit_test(test_backpressure_and_cancel_on_shutdown),
        conc_unit_test(test_cancel_pending_never_runs),
        conc_unit_test(test_cancel_running),
        conc_unit_test(test_time_limit),
        conc_unit_test(test_worker_killed_mid_task),
        conc_unit_test(test_crash_every_time_dead_letter),
        conc_unit_test(test_server_restarted_under_load),
        conc_unit_test(test_submitter_dies),
        conc_unit_test(test_free_with_server_gone),
        conc_unit_test(test_entry_deleted_under_live_worker),
        conc_unit_test(test_entry_deleted_under_frozen_worker),
        conc_unit_test(test_python_worker),
        conc_unit_test(test_examples),
        conc_unit_test(test_conc_worker_program),
    };
    return dist_fixture_run("test_dist", "t", tests,
                            sizeof tests / sizeof *tests);
}
