/* Managers (conc/manager.h) against too many clients and hostile peers:
 * past the bound on clients a conc and a CPython client are refused with
 * a message naming it while the others are served on, and room comes
 * back when a client leaves; a flood of silent connections from one
 * address keeps no real client waiting and is closed in time; a server
 * out of descriptors at accept survives and serves again once some are
 * free. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"
#include "manager/manager_internal.h"

#define PEER   CONC_PEERS_DIR "/manager_peer.py"
#define PYTHON "/usr/bin/python3"
#define KEY    "Willard"
#define WAIT   30.0 /* bound on any wait that should end at once */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static conc_manager *
server(size_t max_clients, size_t max_handshakes, conc_buf *addr)
{
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_set_max_clients(m, max_clients));
    assert_conc_ok(conc_manager_set_max_handshakes(m, max_handshakes));
    assert_conc_ok(conc_manager_start(m));
    assert_conc_ok(conc_manager_address(m, addr));
    return m;
}

/* One round trip on a dict proxy. */
static void
use_dict(conc_proxy *d)
{
    conc_obj *k = conc_obj_str("k"), *v = conc_obj_int(1), *got = NULL;
    assert_conc_ok(conc_dictproxy_set(d, k, v));
    assert_conc_ok(conc_dictproxy_get(d, k, &got));
    assert_true(conc_obj_equal(got, v) == 1);
    conc_obj_decref(got);
    conc_obj_decref(k);
    conc_obj_decref(v);
}

/* ---- The bound on clients ---------------------------------------------- */

#define MAX_CLIENTS 2
/* A refusal is one round trip: far below any timeout. */
#define PROMPT_S 5.0

static int
room_back(void *arg)
{
    return conc__mgr_conn_count(arg) < MAX_CLIENTS;
}

/* A CPython client past the bound gets ConnectionRefusedError. */
static void
python_refused(const char *address)
{
    if (access(PYTHON, X_OK) != 0)
        return;
    char *argv[] = {PYTHON, PEER, "refused", (char *)address, KEY, NULL};
    conc_popen *p = conc_test_peer_start(argv);
    conc_buf out = CONC_BUF_INIT;
    conc_test_peer_finish_last(p, WAIT, "refused", &out);
    assert_non_null(strstr((const char *)out.data, "limit of 2 clients"));
    conc_buf_free(&out);
}

static void
test_client_bound(void **state)
{
    (void)state;
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc(conc_manager_set_max_clients(NULL, 1), CONC_EINVAL);
    assert_conc(conc_manager_set_max_clients(m, 0), CONC_EINVAL);
    conc_manager_free(m);
    conc_buf addr = CONC_BUF_INIT;
    m = server(MAX_CLIENTS, CONC_MANAGER_MAX_HANDSHAKES, &addr);
    assert_conc(conc_manager_set_max_clients(m, 1), CONC_ESTATE);
    const char *address = (const char *)addr.data;
    /* Two clients: a's kept connection and its proxy's. */
    conc_manager *a, *b;
    conc_proxy *d;
    assert_conc_ok(conc_manager_connect(address, KEY, &a));
    assert_conc(conc_manager_set_max_clients(a, 1), CONC_EINVAL);
    assert_conc_ok(conc_manager_create(a, "dict", NULL, &d));
    use_dict(d);

    double t0 = now_s();
    assert_conc(conc_manager_connect(address, KEY, &b), CONC_EBUSY);
    assert_true(now_s() - t0 < PROMPT_S);
    printf("# refused: %s\n", conc_failure_message());
    assert_non_null(strstr(conc_failure_message(), "limit of 2 clients"));
    assert_non_null(
        strstr(conc_failure_message(), "conc_manager_set_max_clients"));
    python_refused(address);
    use_dict(d); /* the others are served on */

    /* The proxy's connection closes: room for one more. */
    conc_proxy_free(d);
    assert_true(conc_test_wait_until(room_back, m, WAIT));
    assert_conc_ok(conc_manager_connect(address, KEY, &b));
    conc_manager_free(b); /* its kept connection: room for a proxy's */
    assert_true(conc_test_wait_until(room_back, m, WAIT));
    assert_conc_ok(conc_manager_create(a, "dict", NULL, &d));
    use_dict(d);
    conc_proxy_free(d);
    conc_manager_free(a);
    conc_buf_free(&addr);
    conc_manager_free(m);
}

#define NOKEY_SLOTS  2 /* the bound on handshakes */
#define NOKEY_SILENT 6 /* silent connections past the bound on clients */

struct accepted {
    conc_manager *m;
    uint64_t want;
};

static int
accepted_enough(void *arg)
{
    struct accepted *a = arg;
    return atomic_load(&a->m->accepted) >= a->want;
}

/* Without an authkey every connection is a client, and the bound holds;
 * connections refused for it count against the bound on handshakes, so
 * silent ones cost no more threads than that. */
static void
test_client_bound_without_key(void **state)
{
    (void)state;
    conc_manager *m, *a, *b;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", NULL, &m));
    assert_conc_ok(conc_manager_set_max_clients(m, 1));
    assert_conc_ok(conc_manager_set_max_handshakes(m, NOKEY_SLOTS));
    assert_conc_ok(conc_manager_start(m));
    conc_buf addr = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &addr));
    const char *address = (const char *)addr.data;
    assert_conc_ok(conc_manager_connect(address, NULL, &a));
    assert_conc(conc_manager_connect(address, NULL, &b), CONC_EBUSY);
    assert_non_null(strstr(conc_failure_message(), "limit of 1 clients"));

    struct accepted acc = {m, atomic_load(&m->accepted) + NOKEY_SLOTS + 2};
    conc_conn *silent[NOKEY_SILENT];
    for (int i = 0; i < NOKEY_SILENT; i++)
        assert_conc_ok(conc_client_connect(address, NULL, WAIT, &silent[i]));
    /* Two of them closed for room, after the grace, before the next. */
    assert_true(conc_test_wait_until(accepted_enough, &acc, WAIT));
    size_t served = conc__mgr_conn_count(m);
    printf("# %d silent connections past the bound: %zu served\n", NOKEY_SILENT,
           served);
    assert_true(served <= 1 + NOKEY_SLOTS);
    for (int i = 0; i < NOKEY_SILENT; i++)
        conc_conn_free(silent[i]);
    conc_manager_free(a);
    conc_buf_free(&addr);
    conc_manager_free(m);
}

/* ---- A flood of silent connections from one address -------------------- */

#define SLOTS 16 /* the server's bound on handshakes */
/* Silent connections: SLOTS in the handshake and the rest in the
 * backlog (128) ahead of the real client, who would wait a second for
 * every SLOTS of them with only the plain grace: over 6 s. */
#define FLOOD 120
/* The real client's bound: the flood drains at SLOTS per
 * CONC__MGR_GREET_CROWD_S, about 0.7 s. */
#define FLOOD_WAIT_S 4.0
/* After the real client, all but the youngest CONC__MGR_GREET_PER_ADDR
 * are closed after the plain grace, the others at the handshake's
 * timeout. */
#define SETTLE_S (CONC__MGR_GREET_GRACE_S + 2.0)

/* A silent connection from 127.0.0.2 (a loopback address, and another
 * peer address than the real client's 127.0.0.1). */
static int
silent_conn(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof dst), 0);
    return fd;
}

struct flood {
    int fd[FLOOD];
    int closed[FLOOD];
    int n_closed;
};

/* Reads what the server sent each silent connection (its challenge)
 * and notes those it closed; 1 once at least `*want` are. */
static int
closed_at_least(struct flood *f, int want)
{
    for (int i = 0; i < FLOOD; i++) {
        struct pollfd p = {.fd = f->fd[i], .events = POLLIN};
        char buf[256];
        while (!f->closed[i] && poll(&p, 1, 0) == 1) {
            ssize_t n = read(f->fd[i], buf, sizeof buf);
            if (n <= 0) {
                f->closed[i] = 1;
                f->n_closed++;
            }
        }
    }
    return f->n_closed >= want;
}

static struct flood *flood_now;
static int flood_want;

static int
flood_closed(void *arg)
{
    (void)arg;
    return closed_at_least(flood_now, flood_want);
}

static void
test_address_flood(void **state)
{
    (void)state;
    conc_buf addr = CONC_BUF_INIT;
    conc_manager *m = server(CONC_MANAGER_MAX_CLIENTS, SLOTS, &addr);
    int port;
    assert_conc_ok(conc_listener_port(m->listener, &port));
    struct flood *f = calloc(1, sizeof *f);
    assert_non_null(f);
    for (int i = 0; i < FLOOD; i++)
        f->fd[i] = silent_conn(port);

    double t0 = now_s();
    conc_manager *c;
    conc_proxy *d;
    assert_conc_ok(conc_manager_connect((const char *)addr.data, KEY, &c));
    double waited = now_s() - t0;
    printf("# a real client behind %d silent connections: %.3f s\n", FLOOD,
           waited);
    assert_true(waited < FLOOD_WAIT_S);
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    use_dict(d);

    /* The address keeps no more than its bound for long, and none past
     * the handshake's timeout. */
    flood_now = f;
    flood_want = FLOOD - CONC__MGR_GREET_PER_ADDR;
    t0 = now_s();
    assert_true(conc_test_wait_until(flood_closed, NULL, SETTLE_S));
    double most = now_s() - t0;
    flood_want = FLOOD;
    assert_true(conc_test_wait_until(flood_closed, NULL,
                                     CONC__MGR_HANDSHAKE_S + SETTLE_S));
    printf("# then all but %d closed in %.3f s, all in %.3f s\n",
           CONC__MGR_GREET_PER_ADDR, most, now_s() - t0);
    use_dict(d);
    for (int i = 0; i < FLOOD; i++)
        close(f->fd[i]);
    free(f);
    conc_proxy_free(d);
    conc_manager_free(c);
    conc_buf_free(&addr);
    conc_manager_free(m);
}

/* ---- Out of descriptors at accept -------------------------------------- */

/* The descriptors the server's process gets beyond those it has open
 * once serving: a few connections' worth. */
#define SPARE_FDS 8
/* How long a connection attempt waits for the handshake while the
 * server cannot accept. */
#define TRY_S 1.0
/* The most of that wait the server may spend on the CPU: its accepting
 * thread retries every CONC__MGR_POLL_S, and spinning would take it all. */
#define MAX_CPU_SHARE 0.3

struct emfile {
    int port_w, stop_r; /* the child's ends of its two pipes */
    int port_r, stop_w; /* the parent's, which the child closes */
};

/* The server's process: serves with SPARE_FDS descriptors to spare, until
 * the parent closes its stop pipe. */
static int
emfile_server(void *arg)
{
    struct emfile *e = arg;
    conc_manager *m;
    int port;
    close(e->port_r);
    close(e->stop_w);
    if (conc_manager_new("127.0.0.1:0", KEY, &m) < 0 ||
        conc_manager_start(m) < 0 || conc_listener_port(m->listener, &port))
        return __LINE__;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)conc_test_count_fds() + SPARE_FDS;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 ||
        write(e->port_w, &port, sizeof port) != sizeof port)
        return __LINE__;
    char byte;
    while (read(e->stop_r, &byte, 1) > 0) {
    }
    conc_manager_free(m);
    return 0;
}

/* The CPU time of process pid so far, in seconds. */
static double
cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    unsigned long ut, st;
    const char *p = strrchr(buf, ')'); /* after the command's name */
    assert_non_null(p);
    assert_int_equal(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st),
        2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int
try_conn(const char *address, double timeout, conc_conn **c)
{
    conc_client_opts o = {.authkey = KEY, .authkey_len = strlen(KEY)};
    return conc_client_connect(address, &o, timeout, c);
}

static void
test_accept_emfile(void **state)
{
    (void)state;
    int port_pipe[2], stop_pipe[2];
    assert_int_equal(pipe(port_pipe), 0);
    assert_int_equal(pipe(stop_pipe), 0);
    struct emfile e = {port_pipe[1], stop_pipe[0], port_pipe[0], stop_pipe[1]};
    pid_t pid = fork_child(emfile_server, &e);
    close(port_pipe[1]);
    close(stop_pipe[0]);
    int port;
    struct pollfd p = {.fd = port_pipe[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, (int)(WAIT * 1000)), 1);
    assert_int_equal(read(port_pipe[0], &port, sizeof port), sizeof port);
    close(port_pipe[0]);
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", port);

    /* Connections until the server runs out of descriptors: each served
     * one answers a request. */
    conc_conn *conns[4 * SPARE_FDS];
    int n = 0, rc = 0;
    while (n < 4 * SPARE_FDS &&
           (rc = try_conn(address, TRY_S, &conns[n])) == 0) {
        conc_obj *r = NULL;
        assert_conc_ok(conc__mgr_request(conns[n++], NULL, "number_of_objects",
                                         NULL, NULL, &r));
        conc_obj_decref(r);
    }
    printf("# %d connections served before the server ran out\n", n);
    assert_true(n > 0 && n < 4 * SPARE_FDS);
    assert_conc(rc, CONC_ETIMEDOUT);
    /* While it cannot accept, the server waits rather than spins. */
    double c0 = cpu_s(pid), t0 = now_s();
    conc_conn *late;
    assert_conc(try_conn(address, TRY_S, &late), CONC_ETIMEDOUT);
    double share = (cpu_s(pid) - c0) / (now_s() - t0);
    printf("# the server's CPU while out of descriptors: %.0f%%\n",
           share * 100);
    assert_true(share < MAX_CPU_SHARE);
    /* The others are served on; once two leave, a new client gets in. */
    conc_obj *r = NULL;
    assert_conc_ok(
        conc__mgr_request(conns[0], NULL, "number_of_objects", NULL, NULL, &r));
    conc_obj_decref(r);
    conc_conn_free(conns[--n]);
    conc_conn_free(conns[--n]);
    conc_manager *c;
    conc_proxy *d;
    assert_conc_ok(conc_manager_connect(address, KEY, &c));
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    use_dict(d);
    conc_proxy_free(d);
    conc_manager_free(c);
    while (n > 0)
        conc_conn_free(conns[--n]);
    close(stop_pipe[1]);
    reap(pid);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_client_bound),
        conc_unit_test(test_client_bound_without_key),
        conc_unit_test(test_address_flood),
        conc_unit_test(test_accept_emfile),
    };
    return conc_run_tests(tests);
}
