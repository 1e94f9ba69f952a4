/* The Redis executor: submit, cancel, shutdown (conc/dist.h).
 *
 * A submit takes a slot of max_in_flight, puts a job (a future plus its
 * sequence number) in the in-flight table, then XADDs the task; the
 * watcher thread (watcher.c) takes the job out of the table when the
 * task's result arrives on this submitter's done stream and completes the
 * future. The table holds the executor's reference to each future.
 *
 *   submit --table--> in flight --result--> watcher completes, slot freed
 *                        |--cancel (result key claimed with "c")--> cancelled
 *
 * Lock order: cmd_lock, then cond (executor_internal.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/executor_internal.h"

/* How long a cancel may wait for the server (and for the connection, if
 * another thread holds it), in all. */
#define CANCEL_TIMEOUT_S 2.0
/* Bytes of randomness in a submitter id. */
#define SUB_RANDOM_BYTES 8

static int dist_cancel(conc_future *f);

const struct conc__future_ops conc__dist_future_ops = {
    .cancel = dist_cancel,
};

static size_t
bucket_of(const conc_dist_executor *dx, uint64_t seq)
{
    return (size_t)(seq * 0x9E3779B97F4A7C15ull >> 32) & (dx->nbuckets - 1);
}

struct conc__dist_job *
conc__dist_take(conc_dist_executor *dx, uint64_t seq)
{
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    struct conc__dist_job **p = &dx->table[bucket_of(dx, seq)];
    while (*p && (*p)->seq != seq)
        p = &(*p)->next;
    struct conc__dist_job *j = *p;
    if (j) {
        *p = j->next;
        atomic_store(&j->dx, NULL);
        dx->in_flight--;
        conc_cond_notify_all(dx->cond);
    }
    conc_cond_release(dx->cond);
    return j;
}

struct conc__dist_job *
conc__dist_take_entry(conc_dist_executor *dx, const char *entry, size_t len)
{
    uint64_t seq = 0;
    int found = 0;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    for (size_t b = 0; b < dx->nbuckets && !found; b++)
        for (struct conc__dist_job *j = dx->table[b]; j && !found; j = j->next)
            if (strlen(j->entry) == len && memcmp(j->entry, entry, len) == 0) {
                seq = j->seq;
                found = 1;
            }
    conc_cond_release(dx->cond);
    return found ? conc__dist_take(dx, seq) : NULL;
}

void
conc__dist_complete(struct conc__dist_job *j, const void *v, size_t len)
{
    struct conc__dist_result r;
    char msg[256];
    if (conc__dist_result_decode(v, len, &r) < 0) {
        r.code = CONC_EPROTO;
        r.data = "the task's result value is malformed";
        r.len = strlen(r.data);
    }
    if (r.code == 0) {
        if (conc_future_set_result(&j->f, r.data, r.len) == CONC_ENOMEM)
            conc_future_set_exception(&j->f, CONC_ENOMEM, NULL);
    } else if (r.code == CONC_ECANCELED && r.len == 0) {
        conc__future_cancel_pending(&j->f);
    } else {
        size_t n = r.len < sizeof msg - 1 ? r.len : sizeof msg - 1;
        memcpy(msg, r.data, n);
        msg[n] = '\0';
        conc_future_set_exception(&j->f, r.code, msg);
    }
    conc_future_free(&j->f);
}

/* Claims the result keys of `n` jobs with "c" (NX), so that no worker's
 * result can complete them. won[i] says whether the claim of jobs[i] won;
 * on a connection failure none did. Holds cmd_lock. */
void
conc__dist_claim_cancelled(conc_dist_executor *dx, struct conc__dist_job **jobs,
                           size_t n, int *won)
{
    int64_t deadline = conc__now_ns() + (int64_t)(CANCEL_TIMEOUT_S * 1e9);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRIu64, dx->ttl_ms);
    memset(won, 0, n * sizeof *won);
    /* Within the same bound: a submit with a longer timeout may hold the
     * connection. */
    if (conc_lock_acquire(dx->cmd_lock, CANCEL_TIMEOUT_S) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (conc__rconn_cmdf(&dx->cmd, deadline, 1, &rep,
                             "SET %s%s:%" PRIu64 " c NX PX %s", dx->k_res,
                             dx->sub, jobs[i]->seq, ttl) < 0)
            break;
        won[i] = rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
    }
    conc_lock_release(dx->cmd_lock);
}

/* The future's cancel hook: a task is cancelled by claiming its result
 * key first, which both stops a worker that has not started it (workers
 * skip a task whose result exists) and tells a running one (it watches
 * the key). Returns 1 once cancelled, -1 if the result won the race. */
static int
dist_cancel(conc_future *f)
{
    struct conc__dist_job *j = (struct conc__dist_job *)f;
    conc_dist_executor *dx = atomic_load(&j->dx);
    if (!dx)
        return 0; /* out of the table: being completed */
    int won;
    conc__dist_claim_cancelled(dx, &j, 1, &won);
    if (!won)
        return -1;
    if (conc__dist_take(dx, j->seq) == j) {
        conc__future_cancel_pending(f);
        conc_future_free(f);
    }
    return 1;
}

void
conc__dist_cancel_many(conc_dist_executor *dx, conc_future **fs, size_t n)
{
    struct conc__dist_job **jobs = conc__calloc(n ? n : 1, sizeof *jobs);
    int *won = conc__calloc(n ? n : 1, sizeof *won);
    if (!jobs || !won) {
        for (size_t i = 0; i < n; i++) /* one at a time, then */
            conc_future_cancel(fs[i]);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct conc__dist_job *j = (struct conc__dist_job *)fs[i];
        if (atomic_load(&j->dx) == dx)
            jobs[k++] = j; /* still in the table: not being completed */
    }
    conc__dist_claim_cancelled(dx, jobs, k, won);
    for (size_t i = 0; i < k; i++)
        if (won[i] && conc__dist_take(dx, jobs[i]->seq) == jobs[i]) {
            conc__future_cancel_pending(&jobs[i]->f);
            conc_future_free(&jobs[i]->f);
        }
out:
    conc__free(jobs);
    conc__free(won);
}

static int
check_opts(const conc_dist_opts *o)
{
    if (isnan(o->connect_timeout) || o->connect_timeout < 0 ||
        isnan(o->result_ttl) || o->result_ttl < 0 || isnan(o->time_limit) ||
        o->time_limit < 0)
        return CONC_EINVAL;
    return 0;
}

static int
make_sub_id(char *sub)
{
    unsigned char rnd[SUB_RANDOM_BYTES];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        return -errno;
    int n = sprintf(sub, "%ld-", (long)getpid());
    for (size_t i = 0; i < sizeof rnd; i++)
        n += sprintf(sub + n, "%02x", rnd[i]);
    return 0;
}

/* Allocates dx and everything it owns but the connections and thread. */
static int
alloc_executor(const char *queue, const conc_dist_opts *o,
               conc_dist_executor **out)
{
    conc_dist_executor *dx = conc__calloc(1, sizeof *dx);
    if (!dx)
        return CONC_ENOMEM;
    dx->max_in_flight =
        o->max_in_flight ? o->max_in_flight : CONC__DIST_MAX_IN_FLIGHT;
    dx->nbuckets = 64;
    while (dx->nbuckets < dx->max_in_flight && dx->nbuckets < (1u << 16))
        dx->nbuckets *= 2;
    double ttl = o->result_ttl > 0 ? o->result_ttl : CONC__DIST_RESULT_TTL;
    dx->ttl_ms = (uint64_t)(ttl * 1000) ? (uint64_t)(ttl * 1000) : 1;
    dx->lim_ms = (uint64_t)(o->time_limit * 1000);
    int r = make_sub_id(dx->sub);
    if (r == 0 &&
        (!(dx->queue = conc__strdup(queue)) ||
         !(dx->k_tasks = conc__dist_key_str(queue, "tasks")) ||
         !(dx->k_res = conc__dist_key_str(queue, "res:")) ||
         !(dx->k_lost = conc__dist_key_str(queue, "lost")) ||
         !(dx->table = conc__calloc(dx->nbuckets, sizeof *dx->table))))
        r = CONC_ENOMEM;
    if (r == 0) {
        char suffix[CONC__DIST_NAME_MAX + 8];
        snprintf(suffix, sizeof suffix, "done:%s", dx->sub);
        if (!(dx->k_done = conc__dist_key_str(queue, suffix)))
            r = CONC_ENOMEM;
    }
    if (r == 0 && (r = conc_lock_new(NULL, &dx->cmd_lock)) == 0)
        r = conc_cond_new(NULL, &dx->cond);
    *out = dx;
    return r;
}

void
conc__dist_free_executor(conc_dist_executor *dx)
{
    conc__dist_resend_free(dx);
    conc__rconn_fini(&dx->cmd);
    conc__rconn_fini(&dx->watch);
    conc_lock_free(dx->cmd_lock);
    conc_cond_free(dx->cond);
    conc__free(dx->table);
    conc__free(dx->queue);
    conc__free(dx->k_tasks);
    conc__free(dx->k_done);
    conc__free(dx->k_res);
    conc__free(dx->k_lost);
    conc__free(dx);
}

/* Opens both connections (or, with retry_on_startup, only checks that a
 * wrong password is not the reason one fails) and starts the watcher. */
static int
start_executor(conc_dist_executor *dx, const char *address,
               const char *password, const conc_dist_opts *o)
{
    int r = conc__rconn_init(&dx->cmd, address, password, o->connect_timeout);
    if (r == 0)
        r = conc__rconn_init(&dx->watch, address, password, o->connect_timeout);
    if (r < 0)
        return r;
    atomic_store(&dx->end_ns, CONC__FOREVER);
    dx->watch.limit = &dx->end_ns;
    int64_t deadline =
        conc__now_ns() + (int64_t)(dx->cmd.connect_timeout * 1e9);
    r = conc__rconn_ensure(&dx->cmd, deadline);
    if (r < 0 && (r == CONC_EAUTH || !o->retry_on_startup))
        return r;
    conc_thread_opts to = {.name = "conc-dist-watcher",
                           .daemon = CONC_DAEMON_YES,
                           .parallel_start = 1};
    return conc_thread_start(conc__dist_watcher_main, dx, &to, &dx->watcher);
}

int
conc_dist_executor_new(const char *address, const char *password,
                       const char *queue, const conc_dist_opts *opts,
                       conc_dist_executor **out)
{
    conc_dist_opts o = opts ? *opts : (conc_dist_opts){0};
    if (!address || !queue || !out ||
        !conc__dist_name_ok(queue, strlen(queue)) || check_opts(&o) < 0)
        return CONC_EINVAL;
    conc_dist_executor *dx = NULL;
    int r = alloc_executor(queue, &o, &dx);
    if (r == 0)
        r = start_executor(dx, address, password, &o);
    if (r < 0) {
        if (dx)
            conc__dist_free_executor(dx);
        return r;
    }
    *out = dx;
    return 0;
}
