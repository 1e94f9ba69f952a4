/* Spinning before a socket's receive sleeps: when, how long, and why.
 *
 * Why. A request and its reply over a socket (a manager's call: the
 * proxy sends, the server's thread reads, answers, the proxy reads) cost
 * two system calls each way, a microsecond or two, but when the reader
 * sleeps each message also costs its wake-up: from a few to 17 us on the
 * machines conc's figures come from, several times the round trip
 * itself. A reader that looks at the socket for a while before it sleeps
 * (recv with MSG_DONTWAIT, one system call per look) takes a message that
 * comes within that while at the cost of the look. Between a manager's
 * server thread and a C proxy both sides spin, and a call then costs
 * about what a raw socket round trip with both sides spinning costs.
 *
 * When. Only where it can pay, and never where it would change more than
 * timing: on stream sockets (a pipe's descriptor cannot be read without
 * waiting one call at a time, and a conc_pipe's rings have their own
 * spin, ring.c), on a machine with more than one CPU (on one, the spin
 * only delays the very process it waits for), outside coroutines (there
 * the wait must go through the loop, conc__poll_fd, so that the other
 * coroutines run), and never in a call that must not block (timeout 0).
 * The spin follows core/wait.h's policy (looks at growing gaps, never
 * past the caller's deadline) and yields the CPU at each read of the
 * clock (CONC__SPIN_YIELD), since the writer is another process that may
 * share this CPU.
 *
 * How long. Each connection adapts its budget, between
 * CONC__CONN_SPIN_MIN_NS and CONC__CONN_SPIN_MAX_NS (or 0: no spin), to
 * how soon its messages have come, as an adaptive mutex does:
 *  - a spin that caught the message keeps its budget (grown to twice the
 *    wait, for headroom);
 *  - a wait that slept but whose message came within the cap would have
 *    been caught by a spin of twice its length: the next spins that long;
 *  - a wait that slept longer than the cap (an idle connection, a peer
 *    that thinks between messages) halves the budget, down to none, so
 *    an idle connection costs three spins in all (under twice the cap)
 *    and then nothing.
 * The cap, 60 us, is what a spin must outlast to catch the answers that
 * matter: a manager's call over TCP loopback takes the server longer than
 * over AF_UNIX, often past 20 us here (a TCP send runs the receiver's side
 * of the stack too), and a CPython client sends its next request tens of
 * microseconds after a reply. With a cap of 20 us (the budget for waiting
 * for a task, core/wait.h), waits that came a little later than the cap
 * made both sides of a TCP connection stop spinning, each then waited for
 * the other's wake-up (tens of us on an idle CPU of these machines), and so
 * each saw waits that confirmed it: conc's own client made 12-15k dict
 * pairs a second over TCP where the same exchange made 37-39k with 60 us,
 * and a CPython client 5-7k where it made 15k (bench_manager, the server
 * and the client on two CPUs; caps of 40 and 100 us gave 31-33k and 39-40k,
 * and 11k and 15k). A spin that does not pay costs at most twice the cap
 * per wait, and an idle connection three spins in all. A new connection
 * starts at the cap, so that two peers that both sleep (whose waits,
 * wake-ups included, look long to each other) find out that they answer
 * quickly once both spin.
 *
 * Whether it pays. A spin that catches its message can still lose: when
 * the other side shares this CPU, or the CPUs are busy with other work,
 * the yields hand the CPU to whatever else runs and the message comes
 * later than a sleeping reader would have had it (measured here with a
 * fuzzer taking one of two CPUs: 13 us per round trip sleeping, 15 to 28
 * spinning). So each connection also keeps the average wait of the waits
 * that spun and of those that did not, and spins only while the first is
 * the shorter; one wait in CONC__CONN_SPIN_PROBE does the other thing, so
 * that both averages follow a machine whose load changes. */
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "ipc/conn_wait.h"
#include "ipc/ipc_internal.h"
#include "unix/coro.h"
#include "unix/fdwait.h"

/* Waits longer than this count as this long in the averages, so that one
 * long gap does not decide for the next hundred waits. */
#define AVG_CLAMP_NS (4 * CONC__CONN_SPIN_MAX_NS)

/* The averages' weight of a new wait: 1 / 2^AVG_SHIFT. */
#define AVG_SHIFT 3

/* Whether the machine has more than one CPU, asked once per process. */
static int
multicore(void)
{
    static _Atomic int cpus; /* 0: not asked yet */
    int n = atomic_load_explicit(&cpus, memory_order_relaxed);
    if (CONC__UNLIKELY(n == 0)) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k > 1 ? 2 : 1;
        atomic_store_explicit(&cpus, n, memory_order_relaxed);
    }
    return n > 1;
}

void
conc__conn_spin_init(struct conc__conn_spin_stats *st)
{
    *st = (struct conc__conn_spin_stats){.budget = CONC__CONN_SPIN_MAX_NS};
}

int64_t
conc__conn_spin_choose(struct conc__conn_spin_stats *st)
{
    if (st->budget == 0)
        return 0;
    int spin = st->slept == 0 || st->spun <= st->slept;
    if (++st->waits % CONC__CONN_SPIN_PROBE == 0)
        spin = !spin;
    return spin ? st->budget : 0;
}

/* The next budget after a wait of `took` ns (INT64_MAX: nothing came)
 * with a spin of `budget` ns. */
static int64_t
next_budget(int64_t budget, int64_t took, int caught)
{
    int64_t want =
        took <= CONC__CONN_SPIN_MAX_NS / 2 ? 2 * took : CONC__CONN_SPIN_MAX_NS;
    if (want < CONC__CONN_SPIN_MIN_NS)
        want = CONC__CONN_SPIN_MIN_NS;
    if (caught)
        return want > budget ? want : budget;
    if (took <= CONC__CONN_SPIN_MAX_NS)
        return want; /* a spin that long would have caught it */
    budget /= 2;     /* spinning did not pay */
    return budget < CONC__CONN_SPIN_MIN_NS ? 0 : budget;
}

void
conc__conn_spin_learn(struct conc__conn_spin_stats *st, int64_t budget,
                      int64_t took, int caught, int came)
{
    if (came) {
        int64_t t = took < AVG_CLAMP_NS ? took : AVG_CLAMP_NS;
        int64_t *avg = budget ? &st->spun : &st->slept;
        *avg = *avg ? *avg + ((t - *avg) >> AVG_SHIFT) : t;
    }
    /* A wait that did not spin by choice says nothing of the budget; one
     * whose budget is 0 may turn spinning back on. */
    if (budget || st->budget == 0)
        st->budget = next_budget(budget, came ? took : INT64_MAX, caught);
}

void
conc__conn_spin_begin(conc_conn *c, int64_t deadline, struct conc__conn_spin *w)
{
    w->learn = (c->flags & CONC__CONN_SOCKET) && deadline != CONC__POLL &&
               !conc__coro_self && multicore();
    w->budget = w->learn ? conc__conn_spin_choose(&c->spin) : 0;
    w->t0 = w->learn ? conc__now_ns() : 0;
    /* A zero budget must not look at all: a spin given CONC__POLL ends
     * before its first look. */
    w->sp = conc__spin_start_flags(w->budget, w->budget ? deadline : CONC__POLL,
                                   CONC__SPIN_YIELD);
}

int
conc__conn_spin_more(struct conc__conn_spin *w)
{
    return conc__spin_more(&w->sp);
}

void
conc__conn_spin_end(conc_conn *c, const struct conc__conn_spin *w, int caught,
                    int came)
{
    if (w->learn)
        conc__conn_spin_learn(&c->spin, w->budget, conc__now_ns() - w->t0,
                              caught, came);
}

/* Looks once: 1 when a receive can go on at once, 0 if not, or an error
 * (conc__conn_poll_sock with a deadline that is already past). */
static int
look(conc_conn *c)
{
    return conc__conn_poll_sock(c, CONC__POLL);
}

int
conc__conn_wait_recv(conc_conn *c, int fd, int64_t deadline)
{
    if (!c)
        return CONC_EINVAL;
    int r = conc__conn_check_recv(c);
    if (r)
        return r;
    if (c->rx)
        return CONC_EINVAL;
    if ((r = conc__conn_buffered(c)) != 0)
        return r < 0 ? r : CONC__CONN_WAIT_MSG;
    struct conc__conn_spin w;
    conc__conn_spin_begin(c, deadline, &w);
    if (w.budget) {
        do
            if ((r = look(c)) != 0) {
                conc__conn_spin_end(c, &w, 1, 1);
                return r < 0 ? r : CONC__CONN_WAIT_MSG;
            }
        while (conc__conn_spin_more(&w));
    }
    struct pollfd fds[2] = {{.fd = c->fd, .events = POLLIN},
                            {.fd = fd, .events = POLLIN}};
    r = conc__poll_until(fds, fd < 0 ? 1 : 2, deadline);
    conc__conn_spin_end(c, &w, 0, r > 0 && fds[0].revents);
    if (r <= 0)
        return r;
    return fds[1].revents ? CONC__CONN_WAIT_FD : CONC__CONN_WAIT_MSG;
}
