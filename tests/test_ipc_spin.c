/* The spin of a socket connection's receive before it sleeps
 * (src/ipc/recv_spin.c): its adaptive budget, that it changes only the
 * timing of receives (timeouts, messages after long gaps, calls that must
 * not block), that a coroutine's receive never spins, and the wait for a
 * message or another descriptor that a manager's server threads use. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"
#include "ipc/conn_wait.h"
#include "ipc/ipc_internal.h"

#define WAIT      30.0     /* bound on a wait that must succeed */
#define GAP_NS    2000000L /* a gap far longer than any spin: 2 ms */
#define SHORT_S   0.05     /* a timeout that must run out */
#define ROUNDS    2000     /* quick round trips */
#define LONG_MAX_ 400      /* long waits allowed to turn spinning off */
#define MAX_NS    CONC__CONN_SPIN_MAX_NS
#define MIN_NS    CONC__CONN_SPIN_MIN_NS

static double
now_s(void)
{
    return (double)conc__now_ns() / 1e9;
}

/* Whether receives here may spin at all (never on one CPU). */
static int
multicore(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

/* A connected pair of socket connections. */
static void
socket_pair(conc_conn **a, conc_conn **b)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
                     0);
    assert_conc_ok(conc_conn_from_fd(fds[0], NULL, a));
    assert_conc_ok(conc_conn_from_fd(fds[1], NULL, b));
}

/* ---- the policy ---------------------------------------------------------- */

static void
test_policy_budget(void **state)
{
    (void)state;
    struct conc__conn_spin_stats st;
    conc__conn_spin_init(&st);
    /* A new connection spins, for the cap. */
    assert_int_equal(conc__conn_spin_choose(&st), MAX_NS);
    /* A spin that caught its message keeps its budget. */
    conc__conn_spin_learn(&st, MAX_NS, 1000, 1, 1);
    assert_int_equal(st.budget, MAX_NS);
    /* Waits far longer than the cap halve it, down to none. */
    int halvings = 0;
    while (st.budget && halvings < 10) {
        conc__conn_spin_learn(&st, st.budget, 10 * MAX_NS, 0, 1);
        halvings++;
    }
    assert_int_equal(st.budget, 0);
    assert_true(halvings >= 2 && halvings <= 5);
    assert_int_equal(conc__conn_spin_choose(&st), 0);
    /* Long waits leave it off. */
    conc__conn_spin_learn(&st, 0, 10 * MAX_NS, 0, 1);
    assert_int_equal(st.budget, 0);
    /* A message that came within the cap turns it back on, long enough
     * to have caught it (and no shorter than the floor). */
    conc__conn_spin_learn(&st, 0, MAX_NS / 4, 0, 1);
    assert_int_equal(st.budget, MAX_NS / 2);
    conc__conn_spin_init(&st);
    st.budget = 0;
    conc__conn_spin_learn(&st, 0, 100, 0, 1);
    assert_int_equal(st.budget, MIN_NS);
    /* A spin that caught late grows for headroom, never past the cap. */
    conc__conn_spin_learn(&st, MIN_NS, MIN_NS, 1, 1);
    assert_int_equal(st.budget, 2 * MIN_NS);
    conc__conn_spin_learn(&st, st.budget, MAX_NS, 1, 1);
    assert_int_equal(st.budget, MAX_NS);
    /* A timeout (nothing came) counts as a long wait. */
    conc__conn_spin_learn(&st, MAX_NS, MIN_NS, 0, 0);
    assert_int_equal(st.budget, MAX_NS / 2);
}

static void
test_policy_pays(void **state)
{
    (void)state;
    struct conc__conn_spin_stats st;
    conc__conn_spin_init(&st);
    /* Waits that spun took longer than those that slept: the connection
     * sleeps, except for one probe in CONC__CONN_SPIN_PROBE. */
    conc__conn_spin_learn(&st, MAX_NS, 30000, 1, 1);
    conc__conn_spin_learn(&st, 0, 10000, 0, 1);
    assert_true(st.spun > st.slept);
    int spins = 0;
    for (int i = 0; i < 4 * CONC__CONN_SPIN_PROBE; i++)
        spins += conc__conn_spin_choose(&st) != 0;
    assert_int_equal(spins, 4);
    /* The other way round it spins, but for the probes. */
    conc__conn_spin_init(&st);
    conc__conn_spin_learn(&st, MAX_NS, 3000, 1, 1);
    conc__conn_spin_learn(&st, 0, 15000, 0, 1);
    spins = 0;
    for (int i = 0; i < 4 * CONC__CONN_SPIN_PROBE; i++)
        spins += conc__conn_spin_choose(&st) != 0;
    assert_int_equal(spins, 4 * CONC__CONN_SPIN_PROBE - 4);
    /* A wait that did not spin by choice leaves the budget. */
    int64_t b = st.budget;
    conc__conn_spin_learn(&st, 0, 10 * MAX_NS, 0, 1);
    assert_int_equal(st.budget, b);
    /* One long gap weighs no more than the clamp in the averages. */
    assert_true(st.slept < 4 * MAX_NS);
}

/* ---- receives keep their meaning ----------------------------------------- */

static void
test_timeouts(void **state)
{
    (void)state;
    conc_conn *a, *b;
    socket_pair(&a, &b);
    conc_buf buf = CONC_BUF_INIT;
    assert_int_equal(a->spin.budget, MAX_NS); /* it would spin */
    /* A call that must not block neither blocks nor spins. */
    assert_conc(conc_conn_recv_bytes(a, 0, &buf), CONC_ETIMEDOUT);
    assert_int_equal(conc_conn_poll(a, 0), 0);
    assert_int_equal(a->spin.waits, 0);
    /* A timeout still runs out, spin or not, and counts as a wait that
     * spinning did not pay for. */
    double t0 = now_s();
    assert_conc(conc_conn_recv_bytes(a, SHORT_S, &buf), CONC_ETIMEDOUT);
    assert_true(now_s() - t0 >= SHORT_S);
    assert_true(a->spin.budget < MAX_NS || !multicore());
    t0 = now_s();
    assert_int_equal(conc_conn_poll(a, SHORT_S), 0);
    assert_true(now_s() - t0 >= SHORT_S);
    /* And a message is still there after them. */
    assert_conc_ok(conc_conn_send_bytes(b, "x", 1, WAIT));
    assert_conc_ok(conc_conn_recv_bytes(a, WAIT, &buf));
    assert_int_equal(buf.len, 1);
    conc_buf_free(&buf);
    conc_conn_free(a);
    conc_conn_free(b);
}

struct echo {
    conc_conn *c;
    _Atomic int gap; /* wait GAP_NS before each answer */
};

/* Sends every message back until the end of the stream. */
static void *
echo_main(void *arg)
{
    struct echo *e = arg;
    conc_buf buf = CONC_BUF_INIT;
    while (conc_conn_recv_bytes(e->c, WAIT, &buf) == 0) {
        if (atomic_load(&e->gap)) {
            /* A gap between messages, not a synchronization. */
            struct timespec ts = {0, GAP_NS};
            nanosleep(&ts, NULL);
        }
        if (conc_conn_send_bytes(e->c, buf.data, buf.len, WAIT) != 0)
            break;
    }
    conc_buf_free(&buf);
    return NULL;
}

/* One round trip of a message of `len` bytes numbered i, checked. */
static void
round_trip(conc_conn *c, size_t len, long i)
{
    static unsigned char msg[100000], back[100000];
    assert_true(len <= sizeof msg && len >= sizeof i);
    memset(msg, (int)(i & 0x7f), len);
    memcpy(msg, &i, sizeof i);
    size_t got = 0;
    assert_conc_ok(conc_conn_send_bytes(c, msg, len, WAIT));
    assert_conc_ok(conc_conn_recv_bytes_into(c, back, sizeof back, WAIT, &got));
    assert_int_equal(got, len);
    assert_memory_equal(back, msg, len);
}

static void
test_round_trips_and_gaps(void **state)
{
    (void)state;
    conc_conn *a;
    struct echo e = {0};
    socket_pair(&a, &e.c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, echo_main, &e), 0);
    /* Quick round trips, of sizes up to a few reads' worth: whether a
     * spin or a sleep takes each, every message comes whole and in order. */
    for (long i = 0; i < ROUNDS; i++)
        round_trip(a, i % 50 == 0 ? 70000 : 8 + (size_t)(i % 200), i);
    assert_true(a->spin.waits > 0 || !multicore());
    /* Answers that come long after: the reader stops spinning, and the
     * messages still come. */
    atomic_store(&e.gap, 1);
    int n = 0;
    do
        round_trip(a, 64, n++);
    while (a->spin.budget != 0 && n < LONG_MAX_);
    assert_true(a->spin.budget == 0 || !multicore());
    /* Quick answers again: it may spin again, and messages come. */
    atomic_store(&e.gap, 0);
    for (long i = 0; i < ROUNDS / 4; i++)
        round_trip(a, 64, i);
    conc_conn_free(a); /* the echo sees the end of the stream */
    assert_int_equal(pthread_join(t, NULL), 0);
    conc_conn_free(e.c);
}

/* ---- the wait for a message or another descriptor ----------------------- */

static void
test_wait_recv(void **state)
{
    (void)state;
    conc_conn *a, *b;
    socket_pair(&a, &b);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_conc(conc__conn_wait_recv(NULL, p[0], CONC__FOREVER), CONC_EINVAL);
    /* Nothing comes: the deadline passes, after a spin or not. */
    for (int i = 0; i < 3; i++) {
        int64_t t0 = conc__now_ns();
        assert_int_equal(conc__conn_wait_recv(a, p[0], t0 + GAP_NS), 0);
        assert_true(conc__now_ns() - t0 >= GAP_NS);
    }
    assert_int_equal(conc__conn_wait_recv(a, -1, CONC__POLL), 0);
    /* The other descriptor. */
    assert_int_equal(write(p[1], "s", 1), 1);
    assert_int_equal(conc__conn_wait_recv(a, p[0], CONC__FOREVER),
                     CONC__CONN_WAIT_FD);
    /* A message, with or without the other descriptor ready. */
    assert_conc_ok(conc_conn_send_bytes(b, "hi", 2, WAIT));
    int r = conc__conn_wait_recv(a, p[0], CONC__FOREVER);
    assert_true(r == CONC__CONN_WAIT_FD || r == CONC__CONN_WAIT_MSG);
    assert_int_equal(conc__conn_wait_recv(a, -1, CONC__FOREVER),
                     CONC__CONN_WAIT_MSG);
    conc_buf buf = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(a, 0, &buf));
    assert_int_equal(buf.len, 2);
    conc_buf_free(&buf);
    /* The end of the stream is for the receive to report. */
    conc_conn_free(b);
    assert_int_equal(conc__conn_wait_recv(a, -1, CONC__FOREVER),
                     CONC__CONN_WAIT_MSG);
    assert_conc(conc_conn_recv_bytes(a, 0, &buf), CONC_ECLOSED);
    conc_conn_close(a);
    assert_conc(conc__conn_wait_recv(a, -1, CONC__FOREVER), CONC_ECLOSED);
    conc_conn_free(a);
    /* A conc_pipe end with shared rings has no single descriptor. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    if (a->rx)
        assert_conc(conc__conn_wait_recv(a, -1, CONC__POLL), CONC_EINVAL);
    conc_conn_free(a);
    conc_conn_free(b);
    close(p[0]);
    close(p[1]);
}

/* ---- coroutines ---------------------------------------------------------- */

struct coro_ctx {
    conc_conn *a, *b;
    int sender_ran; /* set by the sender while the receiver waits */
};

static int
coro_receiver(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct coro_ctx *x = *(struct coro_ctx *const *)arg;
    conc_buf buf = CONC_BUF_INIT;
    int r = conc_conn_recv_bytes(x->a, WAIT, &buf);
    if (r == 0 && (!x->sender_ran || buf.len != 3))
        r = CONC_ESTATE;
    conc_buf_free(&buf);
    return r;
}

static int
coro_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct coro_ctx *x = *(struct coro_ctx *const *)arg;
    conc_future *f;
    int r = conc_aio_create_task(coro_receiver, &x, sizeof x, NULL, &f);
    if (r)
        return r;
    /* The receiver runs until it waits; the loop then comes back here. */
    r = conc_aio_sleep(0.01);
    x->sender_ran = 1;
    if (r == 0)
        r = conc_conn_send_bytes(x->b, "abc", 3, WAIT);
    int fr = conc_future_result(f, WAIT, NULL, NULL);
    conc_future_free(f);
    return r ? r : fr;
}

static void
test_coroutine_does_not_spin(void **state)
{
    (void)state;
    struct coro_ctx x = {0};
    socket_pair(&x.a, &x.b);
    struct coro_ctx *px = &x;
    assert_conc_ok(conc_aio_run(coro_main, &px, sizeof px, NULL));
    assert_int_equal(x.sender_ran, 1);
    /* Its wait went through the loop: no spin was chosen or learnt. */
    assert_int_equal(x.a->spin.waits, 0);
    assert_int_equal(x.a->spin.budget, MAX_NS);
    conc_conn_free(x.a);
    conc_conn_free(x.b);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_policy_budget),
        conc_unit_test(test_policy_pays),
        conc_unit_test(test_timeouts),
        conc_unit_test(test_round_trips_and_gaps),
        conc_unit_test(test_wait_recv),
        conc_unit_test(test_coroutine_does_not_spin),
    };
    return conc_run_tests(tests);
}
