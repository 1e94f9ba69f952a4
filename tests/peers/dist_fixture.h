/* What the scale-out test programs (test_dist, test_dist_scale,
 * test_dist_timeouts) share: one password-protected redis-server per
 * program (redis_fixture.h), a fresh queue per test, worker processes
 * (peers/dist_peer.c) and executors on it, and the long results of the
 * peers' square tasks. Every helper asserts what it needs: a test that
 * calls it fails at the first broken step. */
#ifndef CONC_TEST_DIST_FIXTURE_H
#define CONC_TEST_DIST_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#include "conc_test.h"

#include "conc.h"
#include "redis_fixture.h"

/* The server's password: every executor and worker gives it. */
#define DIST_PASSWORD "conc-test-pw"

/* The program's server, valid while dist_have_server. */
extern struct redis_fixture dist_server;
extern int dist_have_server;

/* Runs the program's n tests as one cmocka group named `name` (only
 * those matching CONC_TEST_FILTER if set) with the test allocator
 * installed, around one server: started first (without one, the tests
 * that need it are skipped, and the reason goes to stderr), woken if a
 * test left it stopped (SIGSTOP), stopped last and its files removed.
 * Queue names start with `queue_prefix`. Returns cmocka's result. */
int dist_fixture_run(const char *name, const char *queue_prefix,
                     const struct CMUnitTest *tests, size_t n);

/* Skips the test (cmocka's skip) without a server. */
#define DIST_NEED_SERVER()                                                     \
    do {                                                                       \
        if (!dist_have_server)                                                 \
            skip();                                                            \
    } while (0)

/* The opening of a test against the server: skips the test without one;
 * otherwise writes a fresh queue name into buf (size bytes), so tests
 * never see each other's tasks, and returns buf. */
const char *dist_fixture_queue(char *buf, size_t size);

/* Starts a worker process on `queue` (peers/dist_peer.c) with `threads`
 * serving threads, reclaim_idle `idle` seconds (a decimal string),
 * max_deliveries `max_del`, and `procs` processes to run its tasks (0:
 * its threads run them). Returns its pid. */
pid_t dist_start_peer(const char *queue, int threads, const char *idle,
                      int max_del, int procs);

/* Stops a worker process with SIGTERM and checks that it exited 0. */
void dist_stop_peer(pid_t pid);

/* Stops a worker process that may have died already. */
void dist_stop_peer_any(pid_t pid);

/* A new executor on `queue` (options `o`, NULL for the defaults); freed
 * with conc_dist_executor_free. */
conc_dist_executor *dist_new_executor(const char *queue,
                                      const conc_dist_opts *o);

/* Submits task `name` with the argument `v` (a long) within `timeout`;
 * returns its future (conc_future_free). */
conc_future *dist_submit_long(conc_dist_executor *dx, const char *name, long v,
                              double timeout);

/* The most tasks dist_submit_zeros sends. */
#define DIST_ZEROS_MAX 300

/* Submits `n` (at most DIST_ZEROS_MAX) tasks "square" of 0 in one batch
 * within `timeout` (asserted to succeed), their futures into fs. */
void dist_submit_zeros(conc_dist_executor *dx, size_t n, double timeout,
                       conc_future **fs);

/* Frees dx, asserting it took less than `bound` seconds and that each of
 * the n futures in fs was cancelled by it; frees the futures. */
void dist_free_cancels(conc_dist_executor *dx, double bound, conc_future **fs,
                       size_t n);

/* The long in a result of len bytes at data. */
long dist_long_of(const void *data, size_t len);

/* The long result of future f, waited for up to `timeout`. */
long dist_long_result(conc_future *f, double timeout);

/* Checks that fs[i] (i < n) are the squares of i, each waited for up to
 * `timeout`, and frees them. */
void dist_check_squares(conc_future **fs, size_t n, double timeout);

#endif
