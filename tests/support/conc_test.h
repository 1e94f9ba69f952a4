/* Shared helpers for conc's cmocka test programs.
 *
 * Assertions print both operands and the error's name. The leak guard
 * (conc_test_setup/conc_test_teardown, used as every test's setup and
 * teardown) checks that a test leaves no descriptor, thread, child process
 * (zombies count) or heap block of conc's behind. The counting allocator also
 * injects allocation failures on request. */
#ifndef CONC_TEST_H
#define CONC_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "conc.h"

/* Asserts that `expr` returns `want` (a conc code or 0), printing names. */
#define assert_conc(expr, want)                                                \
    conc_test_assert_code((expr), (want), #expr, __FILE__, __LINE__)
#define assert_conc_ok(expr) assert_conc(expr, 0)

void conc_test_assert_code(int got, int want, const char *expr,
                           const char *file, int line);

/* Setup and teardown for every test: snapshot, then compare, the number of
 * open descriptors, threads of this process, and live conc allocations.
 * Threads that end asynchronously get a bounded grace period to vanish. */
int conc_test_setup(void **state);
int conc_test_teardown(void **state);

#define conc_unit_test(f)                                                      \
    cmocka_unit_test_setup_teardown(f, conc_test_setup, conc_test_teardown)

/* Runs the group with the counting allocator installed. Use instead of
 * cmocka_run_group_tests. */
#define conc_run_tests(tests)                                                  \
    (conc_test_install_allocator(), cmocka_run_group_tests(tests, NULL, NULL))

void conc_test_install_allocator(void);

/* Live blocks allocated through conc's allocator. */
long conc_test_live_allocations(void);

/* Makes the allocation `n` calls from now fail (1 = the next one), or turns
 * injection off with 0. Applies to the calling thread only, so library
 * threads are unaffected. */
void conc_test_fail_alloc_after(long n);

/* The calls left before the injected failure (0: it happened, or none is
 * set): tells whether the code under test reached the allocation. */
long conc_test_fail_alloc_left(void);

/* Polls `cond(arg)` every millisecond until it is true or `timeout` seconds
 * pass; returns the final value. Only for states no event announces. */
int conc_test_wait_until(int (*cond)(void *), void *arg, double timeout);

/* ---- Children made with a raw fork() -------------------------------------
 *
 * A child never returns into cmocka: it runs a function and _exits with
 * its return value (0, or the line of the check that failed). */

/* Forks a child that runs fn(arg) and _exits with what it returns.
 * Returns the child's pid (asserts the fork worked). */
pid_t fork_child(int (*fn)(void *arg), void *arg);

/* Reaps the child `pid` and returns its wait status. */
int reap_status(pid_t pid);

/* Reaps the child `pid` and asserts it exited with status 0. */
void reap(pid_t pid);

/* Kills the child `pid` with SIGKILL and reaps it. */
void kill_and_reap(pid_t pid);

/* Starts and joins one thread, first thing in main, before the leak
 * baselines: TSan starts a helper thread of its own when the program first
 * creates one, which the leak guard would count against the first test. */
void warm_up_threads(void);

/* ---- A peer process's output ---------------------------------------------
 *
 * Both read one line (without its newline) of fd, a peer's stdout, into
 * buf, at most cap - 1 bytes, and assert that it came in time. */

/* Each byte must come within `timeout` seconds of the last. */
void conc_test_read_line(int fd, double timeout, char *buf, size_t cap);

/* The whole line must come within `timeout` seconds. */
void conc_test_read_line_within(int fd, double timeout, char *buf, size_t cap);

/* Starts argv (NULL-terminated) with its stdout a pipe. Returns the new
 * process, freed with conc_popen_free (asserts it started). */
conc_popen *conc_test_peer_start(char *const argv[]);

/* Reads the peer's first line, a port, each byte within `timeout`;
 * asserts it is a port and returns it; the peer's stdout descriptor goes
 * into *fd unless fd is NULL. */
int conc_test_peer_port(conc_popen *p, double timeout, int *fd);

/* Both wait up to `timeout` seconds for the peer p to end
 * (conc_popen_communicate), assert that it exited with status 0 and check
 * its output, then free p. */

/* The output must contain `want`. */
void conc_test_peer_finish_has(conc_popen *p, double timeout, const char *want);

/* The output's last line must be `want` (the output is printed when it
 * is not). The output, less its trailing newlines and with a NUL after
 * it, is left in *out (unless NULL; given empty), which the caller frees. */
void conc_test_peer_finish_last(conc_popen *p, double timeout, const char *want,
                                conc_buf *out);

/* Counts for leak checks. */
int conc_test_count_fds(void);
int conc_test_count_threads(void);
int conc_test_count_children(void); /* zombies included */

#endif
