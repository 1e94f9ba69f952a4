/* Pipe round trip between two processes: the parent sends a 16-byte
 * message, a child process sends it back, with a conc_pipe (duplex, the
 * default, as multiprocessing.Pipe()) and with a raw pair of pipes. The
 * twin is bench_pipe.py.
 *
 * Rows:
 *   pipe_roundtrip        both sides wait in the system (blocking receive)
 *   pipe_roundtrip_spin   both sides spin: a receive with timeout 0 (raw:
 *                         a non-blocking read) retried until it succeeds
 *
 * Each measurement forks its own echo child (a raw fork, so that only the
 * connection under test is conc's) and warms the path with one round trip
 * before the clock starts; the child exits at end of stream and is reaped
 * before the measurement returns, so no spinning child lingers while the
 * other implementation runs. Every echoed message carries its sequence
 * number, which the parent checks.
 *
 * In the spinning row the parent and the child are pinned to two different
 * CPUs for the measurement: right after a fork both sit on one CPU, and two
 * spinners sharing a CPU pass the message once per scheduler time slice
 * (about 300 round trips per second here) until the scheduler moves one,
 * which made short measurements meaningless. */
#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/ipc.h"

#define MSG_LEN 16

typedef struct pipe_mode {
    int spin;
} pipe_mode;

/* The CPUs that the two sides of a spinning measurement run on, and the
 * parent's affinity to restore afterwards; pinned is 0 when fewer than two
 * CPUs are allowed (the sides then run wherever the system puts them). */
static struct {
    int pinned;
    cpu_set_t saved, parent, child;
} cpus;

static void
cpus_init(void)
{
    int found = 0;
    BENCH_ASSERT(sched_getaffinity(0, sizeof cpus.saved, &cpus.saved) == 0);
    CPU_ZERO(&cpus.parent);
    CPU_ZERO(&cpus.child);
    for (int i = 0; i < CPU_SETSIZE && found < 2; i++) {
        if (CPU_ISSET(i, &cpus.saved))
            CPU_SET(i, found++ == 0 ? &cpus.parent : &cpus.child);
    }
    cpus.pinned = found == 2;
}

/* Pins the calling side (child or parent) when `spin` is set, or restores
 * the parent's affinity with `side` -1. */
static void
pin(int spin, int side)
{
    if (!spin || !cpus.pinned)
        return;
    const cpu_set_t *set = side < 0    ? &cpus.saved
                           : side == 0 ? &cpus.parent
                                       : &cpus.child;
    BENCH_ASSERT(sched_setaffinity(0, sizeof *set, set) == 0);
}

static void
reap(pid_t pid)
{
    int status;
    BENCH_ASSERT(waitpid(pid, &status, 0) == pid);
    BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Receives one message on a conc connection, spinning with timeout 0 when
 * `spin` is set. Returns what the last receive returned. */
static int
conc_recv(conc_conn *c, conc_buf *buf, int spin)
{
    if (!spin)
        return conc_conn_recv_bytes(c, CONC_FOREVER, buf);
    int r;
    while ((r = conc_conn_recv_bytes(c, 0, buf)) == CONC_ETIMEDOUT)
        bench_clobber();
    return r;
}

static void
conc_echo(conc_conn *c, int spin)
{
    conc_buf buf = CONC_BUF_INIT;
    int r;
    while ((r = conc_recv(c, &buf, spin)) == 0)
        BENCH_CHECK(conc_conn_send_bytes(c, buf.data, buf.len, CONC_FOREVER));
    BENCH_ASSERT(r == CONC_ECLOSED);
    conc_buf_free(&buf);
}

static double
conc_roundtrip(void *ctx, long n, long *ops)
{
    const pipe_mode *m = ctx;
    conc_conn *a, *b;
    conc_buf buf = CONC_BUF_INIT;
    unsigned char msg[MSG_LEN] = {0};
    BENCH_CHECK(conc_pipe(NULL, &a, &b));
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid == 0) {
        pin(m->spin, 1);
        conc_conn_free(a);
        conc_echo(b, m->spin);
        _exit(0);
    }
    pin(m->spin, 0);
    conc_conn_free(b);
    long long t0 = 0;
    for (long i = -1; i < n; i++) {
        if (i == 0)
            t0 = bench_now_ns();
        memcpy(msg, &i, sizeof i);
        BENCH_CHECK(conc_conn_send_bytes(a, msg, sizeof msg, CONC_FOREVER));
        BENCH_CHECK(conc_recv(a, &buf, m->spin));
        BENCH_ASSERT(buf.len == MSG_LEN && memcmp(buf.data, &i, sizeof i) == 0);
    }
    double s = bench_seconds_since(t0);
    conc_conn_free(a);
    reap(pid);
    pin(m->spin, -1);
    conc_buf_free(&buf);
    return s;
}

/* Reads one 16-byte message; a write of at most PIPE_BUF bytes is atomic,
 * so a read gets all of it or nothing. Returns 0 at end of stream. */
static int
raw_recv(int fd, unsigned char *msg, int spin)
{
    for (;;) {
        ssize_t r = read(fd, msg, MSG_LEN);
        if (r == MSG_LEN)
            return 1;
        if (r == 0)
            return 0;
        BENCH_ASSERT(r < 0 && (errno == EAGAIN || errno == EINTR) && spin);
    }
}

static void
raw_echo(int in, int out, int spin)
{
    unsigned char msg[MSG_LEN];
    while (raw_recv(in, msg, spin))
        BENCH_ASSERT(write(out, msg, MSG_LEN) == MSG_LEN);
}

static double
raw_roundtrip(void *ctx, long n, long *ops)
{
    const pipe_mode *m = ctx;
    int flags = O_CLOEXEC | (m->spin ? O_NONBLOCK : 0);
    int to_child[2], to_parent[2];
    unsigned char msg[MSG_LEN] = {0}, back[MSG_LEN];
    BENCH_ASSERT(pipe2(to_child, flags) == 0 && pipe2(to_parent, flags) == 0);
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid == 0) {
        pin(m->spin, 1);
        close(to_child[1]);
        close(to_parent[0]);
        raw_echo(to_child[0], to_parent[1], m->spin);
        _exit(0);
    }
    pin(m->spin, 0);
    close(to_child[0]);
    close(to_parent[1]);
    long long t0 = 0;
    for (long i = -1; i < n; i++) {
        if (i == 0)
            t0 = bench_now_ns();
        memcpy(msg, &i, sizeof i);
        BENCH_ASSERT(write(to_child[1], msg, MSG_LEN) == MSG_LEN);
        BENCH_ASSERT(raw_recv(to_parent[0], back, m->spin) == 1);
        BENCH_ASSERT(memcmp(back, &i, sizeof i) == 0);
    }
    double s = bench_seconds_since(t0);
    close(to_child[1]);
    close(to_parent[0]);
    reap(pid);
    pin(m->spin, -1);
    return s;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    cpus_init();
    pipe_mode block = {.spin = 0}, spin = {.spin = 1};
    bench_impl blocking[] = {
        {"pthread", raw_roundtrip, &block},
        {"conc", conc_roundtrip, &block},
    };
    bench_impl spinning[] = {
        {"pthread", raw_roundtrip, &spin},
        {"conc", conc_roundtrip, &spin},
    };
    bench_row(&o, "pipe_roundtrip", blocking, 2, 1, 100);
    bench_row(&o, "pipe_roundtrip_spin", spinning, 2, 1, 100);
    return 0;
}
