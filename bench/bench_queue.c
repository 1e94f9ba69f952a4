/* In-process queues, one producer and one consumer thread: items per second
 * through conc_simplequeue, an unbounded FIFO conc_queue and a FIFO
 * conc_queue of maxsize 1024. The twin is bench_queue.py.
 *
 * Rows:
 *   queue_simple    SimpleQueue, items per second
 *   queue_fifo      Queue(), items per second
 *   queue_bounded   Queue(maxsize=1024), items per second
 *
 * The producer is a helper thread and the consumer the measuring thread;
 * the clock runs from the moment both are ready until the consumer has
 * taken the last item. Items are the numbers 1..n as pointers, and the
 * consumer checks their sum, so nothing can be skipped or optimized away. */
#include <stdint.h>

#include "bench_common.h"

#include "conc/queue.h"

typedef struct qrun {
    conc_simplequeue *sq; /* the queue under test: this one ... */
    conc_queue *q;        /* ... or this one */
    long n;
    bench_gate gate;
} qrun;

static void *
producer(void *arg)
{
    qrun *r = arg;
    bench_gate_wait(&r->gate);
    for (long i = 1; i <= r->n; i++) {
        void *item = (void *)(uintptr_t)i;
        if (r->sq)
            BENCH_CHECK(conc_simplequeue_put(r->sq, item));
        else
            BENCH_CHECK(conc_queue_put(r->q, item, CONC_FOREVER));
    }
    return NULL;
}

static unsigned long
consume(qrun *r)
{
    unsigned long sum = 0;
    for (long i = 0; i < r->n; i++) {
        void *item;
        if (r->sq)
            BENCH_CHECK(conc_simplequeue_get(r->sq, CONC_FOREVER, &item));
        else
            BENCH_CHECK(conc_queue_get(r->q, CONC_FOREVER, &item));
        sum += (uintptr_t)item;
    }
    return sum;
}

static double
qrun_measure(conc_simplequeue *sq, conc_queue *q, long n)
{
    qrun r = {.sq = sq, .q = q, .n = n};
    pthread_t t = bench_spawn(producer, &r);
    bench_gate_open(&r.gate);
    long long t0 = bench_now_ns();
    unsigned long sum = consume(&r);
    double s = bench_seconds_since(t0);
    bench_join(t);
    BENCH_ASSERT(sum == (unsigned long)n * (unsigned long)(n + 1) / 2);
    return s;
}

static double
simple_run(void *ctx, long n, long *ops)
{
    return qrun_measure(ctx, NULL, n);
}

static double
queue_run(void *ctx, long n, long *ops)
{
    return qrun_measure(NULL, ctx, n);
}

static void
queue_row(const bench_opts *o, const char *row, size_t maxsize)
{
    conc_queue_opts qo = {.maxsize = maxsize, .kind = CONC_QUEUE_FIFO};
    conc_queue *q;
    BENCH_CHECK(conc_queue_new(&qo, &q));
    bench_impl impl = {"conc", queue_run, q};
    bench_row(o, row, &impl, 1, 1, 10000);
    BENCH_ASSERT(conc_queue_qsize(q) == 0);
    conc_queue_free(q);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    conc_simplequeue *sq;
    BENCH_CHECK(conc_simplequeue_new(NULL, &sq));
    bench_impl simple = {"conc", simple_run, sq};
    bench_row(&o, "queue_simple", &simple, 1, 1, 10000);
    BENCH_ASSERT(conc_simplequeue_qsize(sq) == 0);
    conc_simplequeue_free(sq);

    queue_row(&o, "queue_fifo", 0);
    queue_row(&o, "queue_bounded", 1024);
    return 0;
}
