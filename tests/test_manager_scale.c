/* Managers (conc/manager.h) at scale: a manager process serves 1,000 idle
 * client connections at once, refuses none, answers each, and spends at
 * most MAX_PER_CONN bytes of resident memory on each; connections that
 * never authenticate cost a bounded number of threads and keep no real
 * client out; a queue get that waits blocks only its caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include "conc_test.h"
#include "manager/manager_internal.h"

#define KEY   "Willard"
#define WAIT  30.0
#define CONNS 1000

/* The bound on resident memory per idle connection: a thread's touched
 * stack pages, its socket's buffers and the server's bookkeeping. A
 * thread that touched an 8 MiB stack, or a connection that kept a 64 KiB
 * read buffer for good, would break it. */
#define MAX_PER_CONN (64 * 1024)

/* The bound on mapped memory per idle connection: its thread's stack
 * (CONC__MGR_STACK) and a little besides. The system's default stack,
 * 8 MiB, would break it. */
#define MAX_MAPPED_PER_CONN (CONC__MGR_STACK + 256 * 1024)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* shadow memory makes resident sizes meaningless */
#else
#define SANITIZED 0
#endif

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A size of process `pid` in bytes from /proc/<pid>/status: `field` is
 * "VmRSS" (resident) or "VmSize" (virtual). */
static long
status_bytes(pid_t pid, const char *field)
{
    char path[64], line[256], name[32];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kib = -1;
    while (kib < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "%31[^:]: %ld kB", name, &kib) != 2 ||
            strcmp(name, field))
            kib = -1;
    fclose(f);
    assert_true(kib > 0);
    return kib * 1024;
}

/* The bytes process `pid` maps with some access (stacks, heaps), from
 * /proc/<pid>/maps: not the address space reserved with no access (the
 * guard pages, and the 64 MiB reserved for each of malloc's per-thread
 * arenas, of which there are at most 8 per core whatever the number of
 * threads), which VmSize counts and which costs no memory. */
static long
mapped_bytes(pid_t pid)
{
    char path[64], line[512], perms[8];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long total = 0;
    unsigned long lo, hi;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
            strcmp(perms, "---p"))
            total += (long)(hi - lo);
    fclose(f);
    return total;
}

/* Room for both ends of every connection: the server's child inherits
 * the limit. Returns 0 when the system's hard limit is too low. */
static int
raise_fd_limit(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t want = CONNS + 256;
    if (rl.rlim_cur >= want)
        return 1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        return 0;
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* A connection for method calls, as a proxy opens it, left idle. */
static conc_conn *
idle_conn(conc_manager *m)
{
    conc_conn *c;
    assert_conc_ok(conc__mgr_open_conn(m, &c));
    conc_obj *args = conc_obj_tuple(1), *r = NULL;
    assert_non_null(args);
    conc_obj_tuple_set_new(args, 0, conc_obj_str("idle"));
    assert_conc_ok(
        conc__mgr_request(c, NULL, "accept_connection", args, NULL, &r));
    conc_obj_decref(args);
    conc_obj_decref(r);
    return c;
}

static void
test_idle_connections(void **state)
{
    (void)state;
    if (!raise_fd_limit())
        skip();
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_start_process(m));
    pid_t pid;
    assert_conc_ok(conc_manager_pid(m, &pid));
    conc_conn **conns = calloc(CONNS, sizeof *conns);
    assert_non_null(conns);
    conns[0] = idle_conn(m); /* the server's first thread and buffers */
    long rss = status_bytes(pid, "VmRSS"), virt = status_bytes(pid, "VmSize");
    long mapped = mapped_bytes(pid);
    for (int i = 1; i < CONNS; i++)
        conns[i] = idle_conn(m);
    long per_conn = (status_bytes(pid, "VmRSS") - rss) / (CONNS - 1);
    long virt_per_conn = (status_bytes(pid, "VmSize") - virt) / (CONNS - 1);
    long mapped_per_conn = (mapped_bytes(pid) - mapped) / (CONNS - 1);
    printf("# %d idle connections, each: %ld bytes resident, %ld mapped, "
           "%ld of address space\n",
           CONNS, per_conn, mapped_per_conn, virt_per_conn);
    if (!SANITIZED) {
        assert_true(per_conn <= MAX_PER_CONN);
        assert_true(mapped_per_conn <= MAX_MAPPED_PER_CONN);
    }
    /* Every connection is still served. */
    for (int i = 0; i < CONNS; i++) {
        conc_obj *r = NULL;
        assert_conc_ok(conc__mgr_request(conns[i], NULL, "number_of_objects",
                                         NULL, NULL, &r));
        conc_obj_decref(r);
        conc_conn_free(conns[i]);
    }
    free(conns);
    assert_conc_ok(conc_manager_shutdown(m));
    conc_manager_free(m);
}

/* ---- Connections that never authenticate ------------------------------- */

#define CAP    4  /* the server's bound on handshakes in progress */
#define SILENT 12 /* silent connections: three times the bound */
/* Threads beyond the acceptor and CAP handshakes: a connection's thread
 * that is done and not joined yet. */
#define LEAVING 2

static int
all_accepted(void *arg)
{
    conc_manager *m = arg;
    return atomic_load(&m->accepted) >= SILENT;
}

/* A peer that opens connections and says nothing holds at most CAP
 * threads, and a real client still connects and works, long before a
 * silent connection's handshake would time out. */
static void
test_silent_connections(void **state)
{
    (void)state;
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc(conc_manager_set_max_handshakes(m, 0), CONC_EINVAL);
    assert_conc(conc_manager_set_max_handshakes(NULL, CAP), CONC_EINVAL);
    assert_conc_ok(conc_manager_set_max_handshakes(m, CAP));
    int base = conc_test_count_threads();
    assert_conc_ok(conc_manager_start(m));
    assert_conc(conc_manager_set_max_handshakes(m, CAP), CONC_ESTATE);
    conc_buf addr = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &addr));
    const char *address = (const char *)addr.data;
    conc_conn *silent[SILENT];
    for (int i = 0; i < SILENT; i++)
        assert_conc_ok(conc_client_connect(address, NULL, WAIT, &silent[i]));
    /* Beyond CAP, each accept closed the oldest silent handshake. */
    assert_true(conc_test_wait_until(all_accepted, m, WAIT));
    int threads = conc_test_count_threads() - base;
    printf("# %d silent connections: %d server threads\n", SILENT, threads);
    assert_true(threads <= 1 + CAP + LEAVING);

    double t0 = now_s();
    conc_manager *c;
    conc_proxy *d;
    conc_obj *k = conc_obj_str("k"), *v = conc_obj_int(1), *got = NULL;
    assert_conc_ok(conc_manager_connect(address, KEY, &c));
    assert_conc_ok(conc_manager_create(c, "dict", NULL, &d));
    assert_conc_ok(conc_dictproxy_set(d, k, v));
    assert_conc_ok(conc_dictproxy_get(d, k, &got));
    assert_true(conc_obj_equal(got, v) == 1);
    /* It did not wait for a silent handshake's timeout. */
    assert_true(now_s() - t0 < CONC__MGR_HANDSHAKE_S);

    conc_obj_decref(got);
    conc_obj_decref(k);
    conc_obj_decref(v);
    conc_proxy_free(d);
    conc_manager_free(c);
    for (int i = 0; i < SILENT; i++)
        conc_conn_free(silent[i]);
    conc_buf_free(&addr);
    conc_manager_free(m);
}

#define BURST 16 /* real clients connecting at once, against a bound of 2 */

struct burst {
    const char *address;
    conc_event *go;
    int rc;
};

static int
connect_in_burst(void *arg)
{
    struct burst *b = arg;
    conc_manager *c = NULL;
    b->rc = conc_event_wait(b->go, WAIT);
    if (b->rc == 0)
        b->rc = conc_manager_connect(b->address, KEY, &c);
    conc_manager_free(c);
    return 0;
}

/* Real clients beyond the bound wait in the backlog for their turn: a
 * burst of them all connect, none refused. */
static void
test_handshake_burst(void **state)
{
    (void)state;
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_set_max_handshakes(m, 2));
    assert_conc_ok(conc_manager_start(m));
    conc_buf addr = CONC_BUF_INIT;
    assert_conc_ok(conc_manager_address(m, &addr));
    conc_event *go;
    assert_conc_ok(conc_event_new(NULL, &go));
    struct burst b[BURST];
    conc_thread *t[BURST];
    for (int i = 0; i < BURST; i++) {
        b[i] = (struct burst){(const char *)addr.data, go, -1};
        assert_conc_ok(conc_thread_start(connect_in_burst, &b[i], NULL, &t[i]));
    }
    conc_event_set(go);
    for (int i = 0; i < BURST; i++) {
        assert_conc_ok(conc_thread_join(t[i], WAIT, NULL));
        conc_thread_free(t[i]);
        assert_conc_ok(b[i].rc);
    }
    /* A client manager has no handshakes to bound. */
    conc_manager *c;
    assert_conc_ok(conc_manager_connect((const char *)addr.data, KEY, &c));
    assert_conc(conc_manager_set_max_handshakes(c, 2), CONC_EINVAL);
    conc_manager_free(c);
    conc_event_free(go);
    conc_buf_free(&addr);
    conc_manager_free(m);
}

#define GET_TIMEOUT 3.0

struct getter {
    conc_proxy *q;
    conc_event *calling;
    int rc;
    double took, ended;
};

static int
get_with_timeout(void *arg)
{
    struct getter *g = arg;
    conc_obj *item = NULL;
    double t0 = now_s();
    conc_event_set(g->calling);
    g->rc = conc_queueproxy_get(g->q, GET_TIMEOUT, &item);
    g->ended = now_s();
    g->took = g->ended - t0;
    conc_obj_decref(item);
    return 0;
}

/* While a client waits in a queue's get with a timeout, other clients'
 * calls go on: 100 dict round trips end before the get times out. */
static void
test_get_blocks_only_caller(void **state)
{
    (void)state;
    conc_manager *m;
    assert_conc_ok(conc_manager_new("127.0.0.1:0", KEY, &m));
    assert_conc_ok(conc_manager_start_process(m));
    conc_proxy *q, *d;
    assert_conc_ok(conc_manager_create(m, "Queue", NULL, &q));
    assert_conc_ok(conc_manager_create(m, "dict", NULL, &d));
    struct getter g = {.q = q};
    assert_conc_ok(conc_event_new(NULL, &g.calling));
    conc_thread *t;
    assert_conc_ok(conc_thread_start(get_with_timeout, &g, NULL, &t));
    assert_conc_ok(conc_event_wait(g.calling, WAIT));
    conc_obj *k = conc_obj_str("k"), *v = conc_obj_int(1);
    for (int i = 0; i < 100; i++) {
        conc_obj *got = NULL;
        assert_conc_ok(conc_dictproxy_set(d, k, v));
        assert_conc_ok(conc_dictproxy_get(d, k, &got));
        conc_obj_decref(got);
    }
    double loop_end = now_s();
    assert_conc_ok(conc_thread_join(t, WAIT, NULL));
    conc_thread_free(t);
    conc_event_free(g.calling);
    assert_conc(g.rc, CONC_EEMPTY);
    assert_true(g.took >= GET_TIMEOUT);
    /* The dict's calls did not wait for the get to time out. */
    assert_true(loop_end < g.ended);
    conc_obj_decref(k);
    conc_obj_decref(v);
    conc_proxy_free(q);
    conc_proxy_free(d);
    conc_manager_free(m);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_idle_connections),
        conc_unit_test(test_silent_connections),
        conc_unit_test(test_handshake_burst),
        conc_unit_test(test_get_blocks_only_caller),
    };
    return conc_run_tests(tests);
}
