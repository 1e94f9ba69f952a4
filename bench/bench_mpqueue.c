/* Process queue throughput: one producer process puts n messages, one
 * consumer process gets them, through a conc_mpqueue
 * (multiprocessing.Queue). The twin is bench_mpqueue.py.
 *
 * Rows:
 *   mpqueue_small   64-byte messages per second
 *   mpqueue_large   bytes per second in 1 MiB messages, beside the
 *                   bandwidth of memcpy of 1 MiB blocks measured in the same
 *                   program (a queue copies each message twice: into the
 *                   ring and out of it)
 *
 * Each measurement makes a new queue (of the default capacity) in an arena
 * of its own and forks the producer (a raw fork, so that only the queue is
 * conc's), pinned to another CPU than the consumer. The producer first
 * puts one ring's worth of warm-up messages, which the consumer gets
 * before the clock starts: a new queue's first messages after a fork are
 * far slower than the rest (the time until the first one arrives is
 * printed as an INFO line), and this row is about throughput. Then both
 * sides pass a second start line with the ring empty, the clock runs
 * until the last get, and the producer is reaped before the measurement
 * returns. Each message carries its sequence number, which the consumer
 * checks. */
#include "bench_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/arena.h"
#include "conc/mpqueue.h"

#define MIB ((size_t)1 << 20)

/* The CPUs of the consumer (the parent) and the producer, and the parent's
 * affinity to restore afterwards; pinned is 0 when fewer than two CPUs are
 * allowed. */
static struct {
    int pinned;
    cpu_set_t saved, side[2];
} cpus;

static void
cpus_init(void)
{
    int found = 0;
    BENCH_ASSERT(sched_getaffinity(0, sizeof cpus.saved, &cpus.saved) == 0);
    CPU_ZERO(&cpus.side[0]);
    CPU_ZERO(&cpus.side[1]);
    for (int i = 0; i < CPU_SETSIZE && found < 2; i++) {
        if (CPU_ISSET(i, &cpus.saved))
            CPU_SET(i, &cpus.side[found++]);
    }
    cpus.pinned = found == 2;
}

/* Pins the parent (side 0) or the producer (1), or restores the parent's
 * affinity (-1). */
static void
pin(int side)
{
    if (!cpus.pinned)
        return;
    const cpu_set_t *set = side < 0 ? &cpus.saved : &cpus.side[side];
    BENCH_ASSERT(sched_setaffinity(0, sizeof *set, set) == 0);
}

typedef struct qbench {
    size_t msg_len;
    bench_gate *gate; /* two start lines, in a MAP_SHARED page */
    conc_arena *arena;
    unsigned char *payload; /* msg_len bytes, the producer's message */
    conc_buf got;           /* the consumer's buffer, reused */
    long warmup;            /* warm-up messages: one ring's worth */
    double first_ms;        /* the first message's wait, last measurement */
} qbench;

static void
produce(qbench *b, conc_mpqueue *q, long n)
{
    bench_gate_wait(&b->gate[0]);
    for (long i = -b->warmup; i < n; i++) {
        if (i == 0)
            bench_gate_wait(&b->gate[1]);
        memcpy(b->payload, &i, sizeof i);
        BENCH_CHECK(conc_mpqueue_put(q, b->payload, b->msg_len, CONC_FOREVER));
    }
}

/* The consumer's side: gets the warm-up messages, opens the second start
 * line, and returns the seconds that the n measured gets took. */
static double
consume(qbench *b, conc_mpqueue *q, long n)
{
    bench_gate_open(&b->gate[0]);
    long long t0 = bench_now_ns();
    for (long i = -b->warmup; i < n; i++) {
        if (i == 0) {
            bench_gate_open(&b->gate[1]);
            t0 = bench_now_ns();
        }
        BENCH_CHECK(conc_mpqueue_get(q, CONC_FOREVER, &b->got));
        BENCH_ASSERT(b->got.len == b->msg_len);
        BENCH_ASSERT(memcmp(b->got.data, &i, sizeof i) == 0);
        if (i == -b->warmup)
            b->first_ms = bench_seconds_since(t0) * 1e3;
    }
    return bench_seconds_since(t0);
}

static double
conc_queue(void *ctx, long n, long *ops)
{
    qbench *b = ctx;
    conc_mpqueue *q;
    int status;
    BENCH_CHECK(conc_mpqueue_new(&(conc_mpqueue_opts){.arena = b->arena}, &q));
    for (int g = 0; g < 2; g++) {
        atomic_store(&b->gate[g].open, 0);
        atomic_store(&b->gate[g].ready, 0);
    }
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid == 0) {
        /* A producer blocked on a full ring must not outlive a consumer
         * that failed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin(1);
        produce(b, q, n);
        _exit(0);
    }
    pin(0);
    double s = consume(b, q, n);
    BENCH_ASSERT(waitpid(pid, &status, 0) == pid);
    BENCH_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pin(-1);
    BENCH_ASSERT(conc_mpqueue_empty(q));
    conc_mpqueue_free(q);
    *ops = b->msg_len >= MIB ? n * (long)b->msg_len : n;
    return s;
}

/* The reference bandwidth: copies of 1 MiB from one buffer to another,
 * both already touched, so that only the copy is measured. */
static double
memcpy_bandwidth(void *ctx, long n, long *ops)
{
    qbench *b = ctx;
    long long t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        memcpy(b->payload, &i, sizeof i);
        memcpy(b->got.data, b->payload, b->msg_len);
        bench_clobber();
    }
    double s = bench_seconds_since(t0);
    BENCH_ASSERT(memcmp(b->got.data, &(long){n - 1}, sizeof(long)) == 0);
    *ops = n * (long)b->msg_len;
    return s;
}

static void
qbench_init(qbench *b, size_t msg_len, bench_gate *gate)
{
    b->msg_len = msg_len;
    b->gate = gate;
    b->warmup =
        (long)(CONC_MPQUEUE_CAPACITY / CONC_MPQUEUE_FRAME_SIZE(msg_len));
    BENCH_CHECK(conc_arena_new(16 * MIB, &b->arena));
    b->payload = malloc(msg_len);
    BENCH_ASSERT(b->payload != NULL);
    memset(b->payload, 0x5a, msg_len);
    conc_buf_init(&b->got);
    BENCH_CHECK(conc_buf_reserve(&b->got, msg_len));
    memset(b->got.data, 0, msg_len);
}

static void
qbench_fini(qbench *b)
{
    conc_buf_free(&b->got);
    free(b->payload);
    conc_arena_free(b->arena);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    cpus_init();
    bench_gate *gate = mmap(NULL, 2 * sizeof *gate, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_ASSERT(gate != MAP_FAILED);
    qbench small, large;
    qbench_init(&small, 64, gate);
    qbench_init(&large, MIB, gate);
    bench_impl small_impls[] = {{"conc", conc_queue, &small}};
    bench_impl large_impls[] = {
        {"pthread", memcpy_bandwidth, &large},
        {"conc", conc_queue, &large},
    };
    bench_row(&o, "mpqueue_small", small_impls, 1, 1, 1000);
    bench_row(&o, "mpqueue_large", large_impls, 2, 1, 10);
    printf("INFO mpqueue_small conc first message after the fork came in "
           "%.2f ms\n",
           small.first_ms);
    printf("INFO mpqueue_large conc first message after the fork came in "
           "%.2f ms\n",
           large.first_ms);
    qbench_fini(&small);
    qbench_fini(&large);
    munmap(gate, 2 * sizeof *gate);
    return 0;
}
