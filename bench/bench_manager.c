/* Managers: conc's manager server (in a child process, as Manager())
 * with conc's proxies, beside CPython's managers (bench_manager.py), and
 * an unmodified CPython client against conc's manager.
 *
 * Rows (pairs or operations per second):
 *   manager_dict_unix    dict proxy d[k] = v then d[k], AF_UNIX
 *   manager_dict_tcp     the same over TCP loopback; the other column is
 *                        CPython's DictProxy against conc's manager
 *   manager_queue_unix   Queue proxy put then get, AF_UNIX
 *   manager_connect_tcp  connect (handshake and the dummy request), create
 *                        a dict and drop its proxy, over TCP; the other
 *                        column is CPython's client against conc's
 *                        manager
 *
 * The dict rows also measure what "a raw socket round trip" means, on a
 * socket of the row's kind with an echo child (a raw fork), in the same
 * unit (two round trips of RAW_MSG bytes count as one pair, as a set and
 * a get are two calls):
 *   rawsock   both sides wait in the system (a blocking recv);
 *   rawspin   both sides first spin on recv(MSG_DONTWAIT) for up to
 *             RAW_SPIN_NS, yielding the CPU between looks (the other side
 *             may share it), then block: the best a spin-then-block
 *             exchange over the socket can do, which is what conc's
 *             connections do between a manager and its proxies.
 *
 * Every server (conc's manager, the echo child) runs on one CPU and its
 * client on another (bench_place), as in bench_manager.py: left to the
 * scheduler, the rows moved threefold from run to run.
 *
 * The CPython client rows run bench_manager.py --against ADDRESS KEY,
 * whose RESULT lines this program passes on. CPython's own connect costs
 * about 44 ms per connection (Nagle's algorithm and delayed
 * acknowledgements: notes/manager-protocol.md); a conc server's
 * TCP_QUICKACK brings an unmodified CPython client under a millisecond. */
#include "bench_common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/manager.h"

#define KEY "bench-key"

/* A raw message: about the size of a pickled dict request (a set's is 70
 * bytes, its reply 30). */
#define RAW_MSG 64

/* How long a raw side spins before it blocks: the cap of conc's own
 * adaptive spin (src/ipc/recv_spin.c). */
#define RAW_SPIN_NS 60000

/* The first byte of a raw request: whether the echo spins for the next. */
#define RAW_BLOCK 'b'
#define RAW_SPIN  's'

struct ctx {
    conc_manager *m; /* the server's handle, a client of its child */
    conc_proxy *p;
    char address[128];
};

static void
start(struct ctx *c, const char *address, const char *typeid)
{
    BENCH_CHECK(conc_manager_new(address, KEY, &c->m));
    bench_place(BENCH_SERVER_CPU); /* the server's process inherits it */
    BENCH_CHECK(conc_manager_start_process(c->m));
    bench_place(BENCH_CLIENT_CPU);
    conc_buf b = CONC_BUF_INIT;
    BENCH_CHECK(conc_manager_address(c->m, &b));
    BENCH_ASSERT(b.len < sizeof c->address);
    memcpy(c->address, b.data, b.len + 1);
    conc_buf_free(&b);
    BENCH_CHECK(conc_manager_create(c->m, typeid, NULL, &c->p));
}

static void
stop(struct ctx *c)
{
    conc_proxy_free(c->p);
    BENCH_CHECK(conc_manager_shutdown(c->m));
    conc_manager_free(c->m);
}

static double
dict_pairs(void *arg, long n, long *ops)
{
    struct ctx *c = arg;
    conc_obj *k = conc_obj_str("key"), *v = conc_obj_int(12345);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_obj *got = NULL;
        BENCH_CHECK(conc_dictproxy_set(c->p, k, v));
        BENCH_CHECK(conc_dictproxy_get(c->p, k, &got));
        conc_obj_decref(got);
    }
    double secs = bench_seconds_since(t0);
    conc_obj_decref(k);
    conc_obj_decref(v);
    (void)ops;
    return secs;
}

static double
queue_pairs(void *arg, long n, long *ops)
{
    struct ctx *c = arg;
    conc_obj *v = conc_obj_int(12345);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_obj *got = NULL;
        BENCH_CHECK(conc_queueproxy_put(c->p, v, CONC_FOREVER));
        BENCH_CHECK(conc_queueproxy_get(c->p, CONC_FOREVER, &got));
        conc_obj_decref(got);
    }
    double secs = bench_seconds_since(t0);
    conc_obj_decref(v);
    (void)ops;
    return secs;
}

static double
connects(void *arg, long n, long *ops)
{
    struct ctx *c = arg;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_manager *m;
        conc_proxy *d;
        BENCH_CHECK(conc_manager_connect(c->address, KEY, &m));
        BENCH_CHECK(conc_manager_create(m, "dict", NULL, &d));
        conc_proxy_free(d);
        conc_manager_free(m);
    }
    (void)ops;
    return bench_seconds_since(t0);
}

/* A raw echo: a socket to a forked child that sends every message back. */
struct raw {
    int fd;
    pid_t pid;
    int spin; /* the mode measured: RAW_BLOCK or RAW_SPIN */
};

/* Receives a whole RAW_MSG message; with `spin`, first with MSG_DONTWAIT
 * for up to RAW_SPIN_NS. Returns 0, or -1 at end of stream. */
static int
raw_recv(int fd, char *msg, int spin)
{
    size_t got = 0;
    long long end = spin ? bench_now_ns() + RAW_SPIN_NS : 0;
    while (got < RAW_MSG) {
        int fl = spin && bench_now_ns() < end ? MSG_DONTWAIT : 0;
        ssize_t n = recv(fd, msg + got, RAW_MSG - got, fl);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            return -1;
        else if (errno == EAGAIN)
            sched_yield(); /* for a peer that shares this CPU */
        else
            BENCH_ASSERT(errno == EINTR);
    }
    return 0;
}

static void
raw_send(int fd, const char *msg)
{
    BENCH_ASSERT(send(fd, msg, RAW_MSG, MSG_NOSIGNAL) == RAW_MSG);
}

/* The child's side: echoes until end of stream, spinning for the next
 * request when the last one asked for it. */
static void
raw_echo(int fd)
{
    char msg[RAW_MSG];
    int spin = 0;
    while (raw_recv(fd, msg, spin) == 0) {
        raw_send(fd, msg);
        spin = msg[0] == RAW_SPIN;
    }
    _exit(0);
}

static void
raw_nodelay(int fd)
{
    int one = 1;
    BENCH_ASSERT(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ==
                 0);
}

/* A TCP loopback connection: fds[0] the parent's end, fds[1] the child's. */
static void
raw_tcp_pair(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_ASSERT(l >= 0 && bind(l, (struct sockaddr *)&a, len) == 0);
    BENCH_ASSERT(listen(l, 1) == 0);
    BENCH_ASSERT(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_ASSERT(fds[0] >= 0);
    BENCH_ASSERT(connect(fds[0], (struct sockaddr *)&a, len) == 0);
    fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    BENCH_ASSERT(fds[1] >= 0);
    close(l);
    raw_nodelay(fds[0]);
    raw_nodelay(fds[1]);
}

/* Starts an echo child on a Unix socket pair, or on TCP loopback. */
static void
raw_start(struct raw *r, int tcp)
{
    int fds[2];
    if (tcp)
        raw_tcp_pair(fds);
    else
        BENCH_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) ==
                     0);
    fflush(stdout);
    r->pid = fork();
    BENCH_ASSERT(r->pid >= 0);
    if (r->pid == 0) {
        close(fds[0]);
        bench_place(BENCH_SERVER_CPU);
        raw_echo(fds[1]);
    }
    close(fds[1]);
    r->fd = fds[0];
}

static void
raw_stop(struct raw *r)
{
    int status;
    close(r->fd);
    BENCH_ASSERT(waitpid(r->pid, &status, 0) == r->pid);
    BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* n pairs of raw round trips, in the mode of r->spin. */
static double
raw_pairs(void *arg, long n, long *ops)
{
    struct raw *r = arg;
    char msg[RAW_MSG] = {0}, back[RAW_MSG];
    msg[0] = (char)r->spin;
    int spin = r->spin == RAW_SPIN;
    long long t0 = bench_now_ns();
    for (long i = 0; i < 2 * n; i++) {
        memcpy(msg + 1, &i, sizeof i);
        raw_send(r->fd, msg);
        BENCH_ASSERT(raw_recv(r->fd, back, spin) == 0);
        BENCH_ASSERT(memcmp(msg, back, RAW_MSG) == 0);
    }
    (void)ops;
    return bench_seconds_since(t0);
}

/* The dict row of one transport: conc's pairs beside raw round trips on
 * the same kind of socket, interleaved. */
static void
dict_row(const bench_opts *o, const char *row, struct ctx *c, int tcp)
{
    struct raw block = {.spin = RAW_BLOCK}, spin = {.spin = RAW_SPIN};
    raw_start(&block, tcp);
    raw_start(&spin, tcp);
    bench_impl im[] = {{"conc", dict_pairs, c},
                       {"rawsock", raw_pairs, &block},
                       {"rawspin", raw_pairs, &spin}};
    bench_row(o, row, im, 3, 1, 20);
    /* The second child holds a copy of the first one's socket: it ends
     * first, so that the first sees its end of stream. */
    raw_stop(&spin);
    raw_stop(&block);
}

/* Runs bench_manager.py against conc's manager at `address` and passes
 * its RESULT lines on. */
static void
python_client(const bench_opts *o, const char *address)
{
    char cmd[512];
    char extra[64] = "";
    if (o->smoke)
        snprintf(extra, sizeof extra, " --smoke");
    else
        snprintf(extra, sizeof extra, " --time %g", o->time_s);
    snprintf(cmd, sizeof cmd, "%s %s/bench_manager.py --against %s %s%s",
             BENCH_PYTHON, BENCH_DIR, address, KEY, extra);
    if (access(BENCH_PYTHON, X_OK) != 0) {
        printf("INFO manager_connect_tcp pyclient no %s\n", BENCH_PYTHON);
        return;
    }
    FILE *f = popen(cmd, "r");
    BENCH_ASSERT(f != NULL);
    char line[256];
    while (fgets(line, sizeof line, f))
        fputs(line, stdout);
    BENCH_ASSERT(pclose(f) == 0);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench-manager-%d.sock", (int)getpid());
    struct ctx unix_dict, tcp_dict, unix_queue, tcp;
    start(&unix_dict, path, "dict");
    dict_row(&o, "manager_dict_unix", &unix_dict, 0);
    stop(&unix_dict);

    start(&unix_queue, path, "Queue");
    bench_impl uq[] = {{"conc", queue_pairs, &unix_queue}};
    bench_row(&o, "manager_queue_unix", uq, 1, 1, 20);
    stop(&unix_queue);

    start(&tcp_dict, "127.0.0.1:0", "dict");
    dict_row(&o, "manager_dict_tcp", &tcp_dict, 1);
    bench_impl tc[] = {{"conc", connects, &tcp_dict}};
    bench_row(&o, "manager_connect_tcp", tc, 1, 1, 5);
    python_client(&o, tcp_dict.address);
    stop(&tcp_dict);
    (void)tcp;
    return 0;
}
