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
 * The CPython client rows run bench_manager.py --against ADDRESS KEY,
 * whose RESULT lines this program passes on. CPython's own connect costs
 * about 44 ms per connection (Nagle's algorithm and delayed
 * acknowledgements: notes/manager-protocol.md); a conc server's
 * TCP_QUICKACK brings an unmodified CPython client under a millisecond. */
#include "bench_common.h"

#include <unistd.h>

#include "conc/manager.h"

#define KEY "bench-key"

struct ctx {
    conc_manager *m; /* the server's handle, a client of its child */
    conc_proxy *p;
    char address[128];
};

static void
start(struct ctx *c, const char *address, const char *typeid)
{
    BENCH_CHECK(conc_manager_new(address, KEY, &c->m));
    BENCH_CHECK(conc_manager_start_process(c->m));
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
    bench_impl ud[] = {{"conc", dict_pairs, &unix_dict}};
    bench_row(&o, "manager_dict_unix", ud, 1, 1, 20);
    stop(&unix_dict);

    start(&unix_queue, path, "Queue");
    bench_impl uq[] = {{"conc", queue_pairs, &unix_queue}};
    bench_row(&o, "manager_queue_unix", uq, 1, 1, 20);
    stop(&unix_queue);

    start(&tcp_dict, "127.0.0.1:0", "dict");
    bench_impl td[] = {{"conc", dict_pairs, &tcp_dict}};
    bench_row(&o, "manager_dict_tcp", td, 1, 1, 20);
    bench_impl tc[] = {{"conc", connects, &tcp_dict}};
    bench_row(&o, "manager_connect_tcp", tc, 1, 1, 5);
    python_client(&o, tcp_dict.address);
    stop(&tcp_dict);
    (void)tcp;
    return 0;
}
