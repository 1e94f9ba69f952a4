/* Tasks, a fixture and helpers shared by the executor and pool tests
 * (test_executor*.c, test_pool*.c).
 *
 * Every task runs unchanged on threads and in worker processes. Tasks
 * that must stay running wait on an Event in a shared arena (the "gate"),
 * after releasing a shared Semaphore the test waits on, so the test knows
 * exactly which tasks run. The fixture is opened before each executor or
 * pool is created, so process workers (forked by it) share it. Nothing
 * sleeps to synchronize and every wait is bounded. */
#ifndef CONC_TEST_TASKS_H
#define CONC_TEST_TASKS_H

#include <stdatomic.h>

#include "conc_test.h"

/* A bound for waits that should end at once. */
#define WAIT_S 20.0

/* A short timeout that must run out, and the slack allowed for rounding
 * when checking that it did (time checks are one-sided). */
#define SHORT_S 0.05
#define SLACK_S 0.001

/* ---- Shared state between the test and its tasks ------------------------ */

#define GATES 8
#define SLOTS 512

struct shared {
    atomic_int started;     /* tasks that began (held and map tasks) */
    atomic_int finished;    /* count_task runs */
    atomic_int init_runs;   /* initializer runs */
    atomic_int last_pid;    /* the pid of the last held or dying task */
    atomic_int slot[SLOTS]; /* random deaths: pid of the task on item i */
};

struct fixture {
    conc_arena *arena;
    struct shared *sh;
    conc_event *gate;           /* held tasks wait for it */
    conc_sem *started;          /* a held task adds one unit as it starts */
    conc_sem *item_gate[GATES]; /* gated_task v waits on item_gate[v] */
    conc_event *seven_done;     /* first_failure_task: item 7 has failed */
};

extern struct fixture fx;

void fixture_open(void);
void fixture_close(void);
/* Waits until n more held tasks have started. */
void wait_started(int n);
/* Forgets the starts of earlier held tasks. */
void forget_started(void);
void release_gate(void);

/* ---- The engines: every scenario runs once on each ----------------------
 *
 * A scenario is a test body that takes the engine's kind; the test
 * program lists its scenarios once, and run_per_engine runs each of them
 * on every engine of the table, as NAME_threads and NAME_processes. Tests
 * of one engine alone are plain cmocka tests beside them. */

enum kind { THREADS, PROCESSES };

struct engine {
    const char *name; /* the test names' suffix */
    enum kind kind;
    int (*executor_new)(const conc_executor_opts *opts, conc_executor **out);
    int (*pool_new)(const conc_pool_opts *opts, conc_pool **out);
};

#define ENGINES 2
extern const struct engine engines[ENGINES]; /* indexed by enum kind */

struct scenario {
    const char *name;
    void (*body)(enum kind k);
};

#define SCENARIO(body)                                                         \
    {                                                                          \
#body, body                                                            \
    }

/* Runs the `ntests` tests, then every scenario on every engine, each with
 * the leak guard and the counting allocator (conc_run_tests's setup); with
 * CONC_TEST_FILTER=pattern, only the matching ones. Returns cmocka's
 * result. */
int run_per_engine(const struct CMUnitTest *tests, size_t ntests,
                   const struct scenario *scenarios, size_t nscenarios);

#define conc_run_per_engine(tests, scenarios)                                  \
    run_per_engine((tests), sizeof(tests) / sizeof *(tests), (scenarios),      \
                   sizeof(scenarios) / sizeof *(scenarios))

/* The four ways a worker dies, each a test calling run(how, what), where
 * `what` is what the failure message must name. */
#define DEATH_TESTS_OF(run)                                                    \
    static void test_death_sigkill(void **state)                               \
    {                                                                          \
        (void)state;                                                           \
        run(DIE_KILL, "signal 9");                                             \
    }                                                                          \
    static void test_death_segfault(void **state)                              \
    {                                                                          \
        (void)state;                                                           \
        run(DIE_SEGV, "signal 11");                                            \
    }                                                                          \
    static void test_death_abort(void **state)                                 \
    {                                                                          \
        (void)state;                                                           \
        run(DIE_ABORT, "signal 6");                                            \
    }                                                                          \
    static void test_death_exit(void **state)                                  \
    {                                                                          \
        (void)state;                                                           \
        run(DIE_EXIT, "status 3");                                             \
    }
#define DEATH_TESTS                                                            \
    conc_unit_test(test_death_sigkill), conc_unit_test(test_death_segfault),   \
        conc_unit_test(test_death_abort), conc_unit_test(test_death_exit)

/* ---- Tasks -------------------------------------------------------------- */

/* The items 0, 1, ..., n - 1, written into the caller's array in. */
conc_items number_items(int *in, int n);

int arg_int(const void *arg, size_t len);
int put_int(conc_buf *result, int v);

int square_task(const void *arg, size_t len, conc_buf *result);
/* Fails with CONC_EVALUE "bad item N". */
int fail_task(const void *arg, size_t len, conc_buf *result);
/* Squares, except items ending in 3, which fail ("bad item N"). */
int square_or_fail_task(const void *arg, size_t len, conc_buf *result);
/* Counts its run in fx.sh->finished and returns its argument. */
int count_task(const void *arg, size_t len, conc_buf *result);
/* Announces itself, waits for the gate, then squares its argument. */
int held_task(const void *arg, size_t len, conc_buf *result);

/* A result that says who computed it. */
struct tagged {
    int value;
    int pid;
    long tid;
};

int put_tagged(conc_buf *result, int v);
int tagged_task(const void *arg, size_t len, conc_buf *result);
/* A struct tagged with value 0. */
int whoami_task(const void *arg, size_t len, conc_buf *result);

/* The initializer stores its int argument; tag_task returns it. */
int init_fn(const void *arg, size_t len, conc_buf *result);
int tag_task(const void *arg, size_t len, conc_buf *result);

/* Writes its argument to its descriptor and returns the descriptor. */
int fd_write_task(const void *arg, size_t len, conc_buf *result);

/* How die_task ends its worker. */
enum death { DIE_KILL, DIE_SEGV, DIE_ABORT, DIE_EXIT };
int die_task(const void *arg, size_t len, conc_buf *result);

/* ---- Helpers ------------------------------------------------------------ */

conc_thread *start_thread(conc_thread_fn fn, void *arg);
/* Joins within WAIT_S, checks the status is 0, frees. */
void join_thread(conc_thread *t);
size_t cpu_count(void);
/* Checks that `msg` names `pid` and contains `what` (unless NULL). */
void check_death_message(const char *msg, int pid, const char *what);
/* For conc_test_wait_until: whether the process *(int *)arg is gone. */
int process_gone(void *arg);

/* ---- Random deaths ------------------------------------------------------
 *
 * rd_task records its pid in its item's slot while it runs; a killer thread
 * claims a slot (so the worker is certainly alive and running that item)
 * and kills the worker. Items i with i % RD_SELF == 5 kill themselves. */
#define RD_SELF 37

int rd_task(const void *arg, size_t len, conc_buf *result);

struct killer {
    atomic_int stop;
    int ntasks;    /* items, at most SLOTS */
    int max_kills; /* stops after this many */
    int kills, next_slot;
};

/* A conc_thread_fn: kills workers until max_kills or stop. */
int killer_fn(void *arg);

/* ---- Executors ---------------------------------------------------------- */

conc_executor *new_exec(enum kind k, const conc_executor_opts *opts);
/* Opens the fixture, then an executor of kind k with `workers` workers. */
conc_executor *open_exec(enum kind k, size_t workers);
/* Frees ex, then closes the fixture. */
void close_exec(conc_executor *ex);

/* The int a future holds; a failure names the caller's line. */
#define future_int(f) future_int_at((f), __FILE__, __LINE__)
int future_int_at(conc_future *f, const char *file, int line);
conc_future *submit_int(conc_executor *ex, conc_task_fn fn, int v);
struct tagged run_whoami(conc_executor *ex);

/* ---- Pools -------------------------------------------------------------- */

conc_pool *new_pool(enum kind k, const conc_pool_opts *opts);
conc_pool *pool_of(enum kind k, size_t n);

/* The int an AsyncResult holds; a failure names the caller's line. */
#define result_int(r) result_int_at((r), __FILE__, __LINE__)
int result_int_at(conc_async_result *r, const char *file, int line);
conc_async_result *apply_int(conc_pool *p, conc_task_fn fn, int v,
                             const conc_apply_opts *o);
struct tagged apply_tagged(conc_pool *p, conc_task_fn fn, int v);
/* Closes, joins and frees. */
void close_join(conc_pool *p);
/* Opens the fixture, then a pool of kind k with n processes (pool_of). */
conc_pool *open_pool(enum kind k, size_t n);
/* close_join, then closes the fixture. */
void close_pool(conc_pool *p);

/* ---- Pool callback recording -------------------------------------------- */

#define CB_MAX 512

struct cb_log {
    atomic_int inside, overlaps;
    atomic_int n_ok, n_err;
    int value[CB_MAX];
    int task_pid[CB_MAX];
    long task_tid[CB_MAX];
    int cb_pid[CB_MAX];
    long cb_tid[CB_MAX];
    int code[CB_MAX];
    char msg[CB_MAX][48];
    size_t len[CB_MAX];
    unsigned char bytes[4][128]; /* the first callbacks' data */
    conc_sem *calls;             /* one unit per callback */
};

void cb_log_init(struct cb_log *l);
void cb_log_fini(struct cb_log *l);
/* Waits for n more callbacks. */
void wait_callbacks(struct cb_log *l, int n);
/* A callback and an error callback recording into the cb_log `arg`. */
void ok_cb(void *arg, const void *data, size_t len);
void err_cb(void *arg, int code, const char *message);

#endif
