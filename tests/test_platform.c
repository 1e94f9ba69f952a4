/* The platform layer (src/unix/platform.h): descriptor passing refuses bad
 * descriptors and never leaks surplus ones, close_range, eventfd,
 * signalfd, a thread's start time, pidfds (or their absence, when CTest
 * runs this program again with CONC_NO_PIDFD=1), and the child reaper.
 *
 * Every test runs under the leak guard, which counts descriptors and
 * children (zombies included): a descriptor a receive failed to close, or
 * a child the reaper left, fails the test. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc_test.h"
#include "core/internal.h"
#include "unix/platform.h"

#define WAIT_NS ((int64_t)20 * 1000000000)

static void
unix_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int
readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* ---- Descriptor passing -------------------------------------------------- */

static void
test_fdpass_round_trip(void **state)
{
    (void)state;
    int sv[2], pp[2];
    unix_pair(sv);
    assert_int_equal(pipe(pp), 0);
    char out[3] = "abc", in[3];
    struct iovec oi = {out, sizeof out}, ii = {in, sizeof in};
    assert_int_equal(conc__fd_send(sv[0], &oi, 1, pp, 2, 0), 3);
    int fds[2] = {-1, -1};
    size_t n = 9;
    assert_int_equal(conc__fd_recv(sv[1], &ii, 1, fds, 2, &n, 0), 3);
    assert_int_equal(n, 2);
    assert_memory_equal(in, "abc", 3);
    for (int i = 0; i < 2; i++) {
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
        close(fds[i]);
        close(pp[i]);
    }
    /* Bytes alone. */
    assert_int_equal(conc__fd_send(sv[0], &oi, 1, NULL, 0, 0), 3);
    assert_int_equal(conc__fd_recv(sv[1], &ii, 1, fds, 2, &n, 0), 3);
    assert_int_equal(n, 0);
    close(sv[0]);
    close(sv[1]);
}

/* A bad descriptor is refused before anything is sent: the reader finds
 * nothing, rather than a message without the descriptor it expects. */
static void
test_fdpass_refuses_bad_fd(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    char b = 'x';
    struct iovec iov = {&b, 1};
    int bad[2] = {sv[0], -1};
    assert_int_equal(conc__fd_send(sv[0], &iov, 1, bad, 2, 0), -EBADF);
    int closed = dup(sv[0]);
    close(closed);
    assert_int_equal(conc__fd_send(sv[0], &iov, 1, &closed, 1, 0), -EBADF);
    assert_int_equal(
        conc__fd_send(sv[0], &iov, 1, bad, CONC__FDPASS_MAX + 1, 0), -EINVAL);
    assert_false(readable(sv[1]));
    close(sv[0]);
    close(sv[1]);
}

/* More descriptors than the receiver has room for: all of them are
 * closed, the receive fails, and the next message is read normally. */
static void
test_fdpass_surplus_closed(void **state)
{
    (void)state;
    int sv[2], pp[2];
    unix_pair(sv);
    assert_int_equal(pipe(pp), 0);
    char b = 'x';
    struct iovec iov = {&b, 1};
    assert_int_equal(conc__fd_send(sv[0], &iov, 1, pp, 2, 0), 1);
    assert_int_equal(conc__fd_send(sv[0], &iov, 1, pp, 1, 0), 1);
    close(pp[0]);
    close(pp[1]);
    int fd = -1;
    size_t n = 7;
    assert_int_equal(conc__fd_recv(sv[1], &iov, 1, &fd, 1, &n, 0), -EPROTO);
    assert_int_equal(n, 0);
    assert_int_equal(fd, -1);
    assert_int_equal(conc__fd_recv(sv[1], &iov, 1, &fd, 1, &n, 0), 1);
    assert_int_equal(n, 1);
    close(fd);
    /* A receiver that wants none: a descriptor is an error too. */
    assert_int_equal(conc__fd_send(sv[0], &iov, 1, &sv[0], 1, 0), 1);
    assert_int_equal(conc__fd_recv(sv[1], &iov, 1, NULL, 0, &n, 0), -EPROTO);
    close(sv[0]);
    assert_int_equal(conc__fd_recv(sv[1], &iov, 1, &fd, 1, &n, 0), 0);
    close(sv[1]);
}

/* ---- close_range, eventfd, signalfd -------------------------------------- */

static void
test_close_range(void **state)
{
    (void)state;
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    int lo = pp[0] < pp[1] ? pp[0] : pp[1];
    int hi = pp[0] < pp[1] ? pp[1] : pp[0];
    int keep = fcntl(pp[0], F_DUPFD_CLOEXEC, hi + 1);
    assert_true(keep > hi);
    conc__close_range((unsigned)lo, (unsigned)hi);
    assert_int_equal(fcntl(lo, F_GETFD), -1);
    assert_int_equal(fcntl(hi, F_GETFD), -1);
    assert_true(fcntl(keep, F_GETFD) >= 0);
    conc__close_range(5, 4); /* empty */
    close(keep);
}

static void
test_eventfd(void **state)
{
    (void)state;
    int fd = conc__eventfd_new();
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_false(readable(fd));
    conc__eventfd_signal(fd);
    conc__eventfd_signal(fd);
    assert_true(readable(fd));
    conc__eventfd_drain(fd);
    assert_false(readable(fd));
    conc__eventfd_drain(fd); /* empty: does not block */
    close(fd);
}

static void
test_signalfd(void **state)
{
    (void)state;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    int fd = conc__signalfd_new(&set);
    assert_true(fd >= 0);
    assert_int_equal(conc__signalfd_drain(fd), 0);
    assert_int_equal(pthread_kill(pthread_self(), SIGUSR2), 0);
    assert_int_equal(conc__signalfd_drain(fd), 1);
    assert_int_equal(conc__signalfd_drain(fd), 0);
    close(fd);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* ---- Thread identity ----------------------------------------------------- */

struct thread_id {
    uint32_t tid;
    uint64_t start;
    int r;
};

static void *
record_id(void *arg)
{
    struct thread_id *id = arg;
    char st;
    id->tid = conc__tid();
    id->r = conc__thread_stat(0, &st, &id->start);
    return NULL;
}

static void
test_thread_stat(void **state)
{
    (void)state;
    char st = 0;
    uint64_t start = 0, again = 0;
    assert_int_equal(conc__thread_stat(0, &st, &start), 0);
    assert_int_equal(st, 'R');
    assert_int_equal(conc__thread_stat(conc__tid(), &st, &again), 0);
    assert_true(again == start);
    /* A thread that has ended and been joined is gone, or its id names
     * another thread, with another start time. */
    pthread_t t;
    struct thread_id id = {0};
    assert_int_equal(pthread_create(&t, NULL, record_id, &id), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(id.r, 0);
    assert_true(id.tid != 0 && id.tid != conc__tid());
    int r = conc__thread_stat(id.tid, &st, &again);
    assert_true(r == -ENOENT || r == -ESRCH || (r == 0 && again != id.start));
}

/* ---- pidfds -------------------------------------------------------------- */

static void
test_pidfd(void **state)
{
    (void)state;
    const char *v = getenv("CONC_NO_PIDFD");
    int knob = v && strcmp(v, "1") == 0;
    int have = conc__pidfd_available();
    assert_int_equal(have, conc__pidfd_available()); /* decided once */
    if (knob)
        assert_int_equal(have, 0);
    int fd = conc__pidfd_of((int)getpid());
    if (!have) {
        assert_int_equal(fd, CONC__NO_PIDFD);
        assert_int_equal(conc__pidfd_send_signal(0, 0), CONC__NO_PIDFD);
        return;
    }
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(conc__pidfd_send_signal(fd, 0), 0);
    close(fd);
    /* A pid that no process has. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    int status;
    int64_t nap = 0;
    assert_int_equal(conc__child_await(pid, -1, CONC__FOREVER, &nap), 0);
    assert_int_equal(conc__child_reap(pid, &status), 1);
    assert_int_equal(conc__pidfd_of(pid), -ESRCH);
}

/* ---- The child reaper ---------------------------------------------------- */

/* Forks a child that exits with `code`, after reading end of file from
 * the pipe `hold` when given (so that it runs until the test closes the
 * pipe's write end). */
static pid_t
fork_exit(int code, const int *hold)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        if (hold) {
            close(hold[1]);
            while (read(hold[0], &c, 1) < 0 && errno == EINTR)
                ;
        }
        _exit(code);
    }
    return pid;
}

static void
test_reap_statuses(void **state)
{
    (void)state;
    int status = 0;
    int64_t nap = 0;
    pid_t pid = fork_exit(3, NULL);
    assert_int_equal(conc__child_await(pid, -1, CONC__FOREVER, &nap), 0);
    assert_int_equal(conc__child_ended(pid), 1);
    assert_int_equal(conc__child_reap(pid, &status), 1);
    assert_int_equal(status, 3);
    assert_int_equal(conc__child_reap(pid, &status), CONC__CHILD_GONE);
    /* A signal sent while it is unreaped. */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid = fork_exit(0, pp);
    assert_int_equal(conc__child_ended(pid), 0);
    assert_int_equal(conc__child_reap(pid, &status), 0);
    assert_int_equal(conc__child_signal(pid, SIGKILL), 0);
    assert_int_equal(conc__child_await(pid, -1, CONC__FOREVER, &nap), 0);
    assert_int_equal(conc__child_signal(pid, SIGKILL), 0); /* a zombie */
    assert_int_equal(conc__child_reap(pid, &status), 1);
    assert_int_equal(status, -SIGKILL);
    close(pp[0]);
    close(pp[1]);
}

/* A timed wait runs out on a running child, with a pidfd or by naps, and
 * returns once it ends. */
static void
test_await_deadline(void **state)
{
    (void)state;
    int pp[2], status;
    assert_int_equal(pipe(pp), 0);
    pid_t pid = fork_exit(7, pp);
    int fd = conc__pidfd_of(pid);
    assert_true(fd >= 0 || fd == CONC__NO_PIDFD);
    int64_t nap = 0, t0 = conc__now_ns(), d = t0 + 30 * 1000000;
    int r;
    while ((r = conc__child_await(pid, fd, d, &nap)) == 0)
        assert_int_equal(conc__child_reap(pid, &status), 0);
    assert_int_equal(r, CONC_ETIMEDOUT);
    assert_true(conc__now_ns() >= d);
    assert_true(nap == 0 || nap <= CONC__CHILD_NAP_MAX_NS);
    close(pp[1]); /* it reads end of file and exits */
    d = conc__now_ns() + WAIT_NS;
    while ((r = conc__child_reap(pid, &status)) == 0)
        assert_int_equal(conc__child_await(pid, fd, d, &nap), 0);
    assert_int_equal(r, 1);
    assert_int_equal(status, 7);
    if (fd >= 0)
        close(fd);
    close(pp[0]);
}

static struct conc__orphan orphans[2];
static int released[2];

static void
release(struct conc__orphan *o)
{
    released[o - orphans] = 1;
}

static int
both_released(void *arg)
{
    (void)arg;
    return conc__reaper_collect() == 0 && released[0] && released[1];
}

/* Adopted children are reaped and released once they end, not before. */
static void
test_orphans(void **state)
{
    (void)state;
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    for (int i = 0; i < 2; i++) {
        released[i] = 0;
        orphans[i] =
            (struct conc__orphan){.pid = fork_exit(0, pp), .release = release};
        conc__reaper_adopt(&orphans[i]);
    }
    assert_int_equal(conc__reaper_collect(), 2);
    assert_false(released[0] || released[1]);
    close(pp[1]);
    assert_true(conc_test_wait_until(both_released, NULL, 20.0));
    close(pp[0]);
}

int
main(void)
{
    /* Before the leak baselines: TSan starts a thread of its own when the
     * program first creates one. */
    pthread_t warm;
    struct thread_id id;
    if (pthread_create(&warm, NULL, record_id, &id) == 0)
        pthread_join(warm, NULL);
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_fdpass_round_trip),
        conc_unit_test(test_fdpass_refuses_bad_fd),
        conc_unit_test(test_fdpass_surplus_closed),
        conc_unit_test(test_close_range),
        conc_unit_test(test_eventfd),
        conc_unit_test(test_signalfd),
        conc_unit_test(test_thread_stat),
        conc_unit_test(test_pidfd),
        conc_unit_test(test_reap_statuses),
        conc_unit_test(test_await_deadline),
        conc_unit_test(test_orphans),
    };
    return conc_run_tests(tests);
}
