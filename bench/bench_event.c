/* Ping-pong between two threads: how long one round trip takes when each
 * side wakes the other in turn, through Events and through a Condition
 * (pthread_cond beside it). The twin is bench_event.py.
 *
 * Rows:
 *   event_pingpong  ns per round trip: A sets e1 and waits for e2, B waits
 *                   for e1 and sets e2; each clears what it waited for
 *   cond_pingpong   ns per round trip: one Condition (on its own RLock, as
 *                   Python's default) and a turn variable; each side sets
 *                   the turn, notifies, and waits until it is its turn
 *                   again */
#include "bench_common.h"

#include "conc/sync.h"

/* ---- Event ping-pong ---------------------------------------------------- */

typedef struct evrun {
    conc_event *ping, *pong;
    long n;
    bench_gate gate;
} evrun;

static void *
event_helper(void *arg)
{
    evrun *r = arg;
    bench_gate_wait(&r->gate);
    for (long i = 0; i < r->n; i++) {
        BENCH_CHECK(conc_event_wait(r->ping, CONC_FOREVER));
        conc_event_clear(r->ping);
        conc_event_set(r->pong);
    }
    return NULL;
}

static double
event_run(void *ctx, long n, long *ops)
{
    evrun r = {.n = n};
    BENCH_CHECK(conc_event_new(NULL, &r.ping));
    BENCH_CHECK(conc_event_new(NULL, &r.pong));
    pthread_t t = bench_spawn(event_helper, &r);
    bench_gate_open(&r.gate);
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        conc_event_set(r.ping);
        BENCH_CHECK(conc_event_wait(r.pong, CONC_FOREVER));
        conc_event_clear(r.pong);
    }
    double s = bench_seconds_since(t0);
    bench_join(t);
    conc_event_free(r.ping);
    conc_event_free(r.pong);
    return s;
}

/* ---- Condition ping-pong ------------------------------------------------
 * `turn` is 1 when the helper must answer, 0 when the main side may go on;
 * it is guarded by the condition's lock (or the mutex). */

typedef struct cvrun {
    conc_cond *cond;     /* conc's condition, or NULL for ... */
    pthread_mutex_t *mx; /* ... this mutex and ... */
    pthread_cond_t *cv;  /* ... this condition variable */
    int turn;            /* guarded by the lock */
    long n;
    bench_gate gate;
} cvrun;

static void
cv_lock(cvrun *r)
{
    if (r->cond)
        BENCH_CHECK(conc_cond_acquire(r->cond, CONC_FOREVER));
    else
        BENCH_ASSERT(pthread_mutex_lock(r->mx) == 0);
}

static void
cv_unlock(cvrun *r)
{
    if (r->cond)
        BENCH_CHECK(conc_cond_release(r->cond));
    else
        BENCH_ASSERT(pthread_mutex_unlock(r->mx) == 0);
}

static void
cv_wait(cvrun *r)
{
    if (r->cond)
        BENCH_CHECK(conc_cond_wait(r->cond, CONC_FOREVER));
    else
        BENCH_ASSERT(pthread_cond_wait(r->cv, r->mx) == 0);
}

static void
cv_notify(cvrun *r)
{
    if (r->cond)
        BENCH_CHECK(conc_cond_notify(r->cond, 1));
    else
        BENCH_ASSERT(pthread_cond_signal(r->cv) == 0);
}

static void *
cond_helper(void *arg)
{
    cvrun *r = arg;
    bench_gate_wait(&r->gate);
    cv_lock(r);
    for (long i = 0; i < r->n; i++) {
        while (r->turn == 0)
            cv_wait(r);
        r->turn = 0;
        cv_notify(r);
    }
    cv_unlock(r);
    return NULL;
}

static double
cond_measure(cvrun *r)
{
    pthread_t t = bench_spawn(cond_helper, r);
    bench_gate_open(&r->gate);
    long long t0 = bench_now_ns();
    cv_lock(r);
    for (long i = 0; i < r->n; i++) {
        r->turn = 1;
        cv_notify(r);
        while (r->turn == 1)
            cv_wait(r);
    }
    cv_unlock(r);
    double s = bench_seconds_since(t0);
    bench_join(t);
    return s;
}

static double
conc_cond_run(void *ctx, long n, long *ops)
{
    cvrun r = {.n = n};
    BENCH_CHECK(conc_cond_new(NULL, &r.cond));
    double s = cond_measure(&r);
    conc_cond_free(r.cond);
    return s;
}

static double
pthread_cond_run(void *ctx, long n, long *ops)
{
    pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    cvrun r = {.mx = &mx, .cv = &cv, .n = n};
    double s = cond_measure(&r);
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mx);
    return s;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl ev = {"conc", event_run, NULL};
    bench_row(&o, "event_pingpong", &ev, 1, 0, 200);

    bench_impl cv[] = {
        {"pthread", pthread_cond_run, NULL},
        {"conc", conc_cond_run, NULL},
    };
    bench_row(&o, "cond_pingpong", cv, 2, 0, 200);
    return 0;
}
