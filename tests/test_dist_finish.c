/* Scale-out over Redis: the script that finishes several tasks at once
 * (conc__dist_finish_many_lua, wire.c), run directly on a task stream laid
 * out by the test against a real redis-server (tests/peers/
 * redis_fixture.c): the results it writes (first one wins), the notices,
 * and how it removes the entries it acknowledges (trimmed up to the oldest
 * pending entry, deleted at once if they were added well after it). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "conc_test.h"
#include "core/internal.h"
#include "dist/dist_internal.h"
#include "redis_fixture.h"

#define TTL_MS "60000"
/* The bound of one command. */
#define CMD_NS ((int64_t)5e9)
/* The arguments of one task to the script. */
#define MAX_TASKS 8

static struct redis_fixture server;
static int have_server;
static int queue_no;
static struct conc__rconn conn;

#define NEED_SERVER()                                                          \
    do {                                                                       \
        if (!have_server)                                                      \
            skip();                                                            \
    } while (0)

/* The last command's outcome and reply, for CMD. */
static int cmd_r;
static redisReply *cmd_rep;

static redisReply *
checked(void)
{
    assert_conc_ok(cmd_r);
    return cmd_rep;
}

/* Runs a command (hiredis's format) and returns its reply
 * (freeReplyObject). */
#define CMD(...)                                                               \
    (cmd_r = conc__rconn_cmdf(&conn, conc__now_ns() + CMD_NS, 1, &cmd_rep,     \
                              __VA_ARGS__),                                    \
     checked())

/* The integer reply of a command on one key. */
static long long
int_of(const char *command, const char *key)
{
    redisReply *rep = CMD("%s %s", command, key);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* A new queue whose task stream holds entries with the given ids, all
 * delivered to one consumer (pending); connects `conn`, which the test
 * closes. */
static void
new_stream(char *tasks, size_t size, const char *const *ids, size_t n)
{
    char q[32];
    assert_conc_ok(conc__rconn_init(&conn, server.url, NULL, 5));
    snprintf(q, sizeof q, "f%d-%d", (int)getpid(), ++queue_no);
    snprintf(tasks, size, "{conc:%s}:tasks", q);
    freeReplyObject(CMD("XGROUP CREATE %s workers 0 MKSTREAM", tasks));
    for (size_t i = 0; i < n; i++)
        freeReplyObject(CMD("XADD %s %s id %s:%s", tasks, ids[i], q, ids[i]));
    redisReply *rep = CMD("XREADGROUP GROUP workers c STREAMS %s >", tasks);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->element[0]->element[1]->elements, n);
    freeReplyObject(rep);
}

/* Finishes the entries `ids` (n of them) with the script; each task's
 * result key is TASKS:res:ENTRY and its notice goes to TASKS:done.
 * Returns how many results won. */
static long long
finish(const char *tasks, const char *const *ids, size_t n)
{
    char keys[2 * MAX_TASKS][128], nkeys[8];
    const char *a[5 + 6 * MAX_TASKS];
    size_t l[5 + 6 * MAX_TASKS], k = 0;
    assert_true(n <= MAX_TASKS);
    snprintf(nkeys, sizeof nkeys, "%zu", 2 * n + 1);
    a[k++] = "EVAL";
    a[k++] = conc__dist_finish_many_lua;
    a[k++] = nkeys;
    a[k++] = tasks;
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[2 * i], sizeof keys[0], "%s:res:%s", tasks, ids[i]);
        snprintf(keys[2 * i + 1], sizeof keys[0], "%s:done", tasks);
        a[k++] = keys[2 * i];
        a[k++] = keys[2 * i + 1];
    }
    a[k++] = CONC__DIST_GROUP;
    for (size_t i = 0; i < n; i++) {
        a[k++] = "ok"; /* value */
        a[k++] = TTL_MS;
        a[k++] = ids[i]; /* task id */
        a[k++] = ids[i]; /* entry id */
    }
    for (size_t i = 0; i < k; i++)
        l[i] = strlen(a[i]);
    redisReply *rep = NULL;
    assert_conc_ok(
        conc__rconn_cmd(&conn, conc__now_ns() + CMD_NS, 1, &rep, (int)k, a, l));
    if (rep->type != REDIS_REPLY_INTEGER)
        fail_msg("the script failed: %s", rep->str ? rep->str : "?");
    long long won = rep->integer;
    freeReplyObject(rep);
    return won;
}

/* Whether the task stream holds entry `id`. */
static int
has_entry(const char *tasks, const char *id)
{
    redisReply *rep = CMD("XRANGE %s %s %s", tasks, id, id);
    int has = rep->type == REDIS_REPLY_ARRAY && rep->elements == 1;
    freeReplyObject(rep);
    return has;
}

/* Entries acknowledged while an older one is pending stay for a trim if
 * they were added within CONC__DIST_TRIM_LAG_MS after it, and go at once
 * if later; once the oldest is acknowledged, the trim takes everything
 * older than the next pending one; with nothing pending, the stream ends
 * empty. */
static void
test_finish_trims_behind_oldest_pending(void **state)
{
    (void)state;
    NEED_SERVER();
    _Static_assert(sizeof CONC__DIST_TRIM_LAG_MS - 1 == 4, "ids below");
    static const char *const ids[] = {"1000-0", "1500-0", "1800-0", "2500-0",
                                      "3000-0", "9000-0", "20000-0"};
    char tasks[96];
    new_stream(tasks, sizeof tasks, ids, 7);
    /* 1000-0 pending: 1500 and 1800 wait for a trim, 3000 and 20000 (its
     * time has one digit more) go now. */
    const char *first[] = {ids[1], ids[2], ids[4], ids[6]};
    assert_int_equal(finish(tasks, first, 4), 4);
    assert_true(has_entry(tasks, ids[1]) && has_entry(tasks, ids[2]));
    assert_false(has_entry(tasks, ids[4]) || has_entry(tasks, ids[6]));
    assert_int_equal(int_of("XLEN", tasks), 5);
    /* 1000-0 done: the trim goes up to 2500-0, the oldest pending. */
    assert_int_equal(finish(tasks, ids, 1), 1);
    assert_int_equal(int_of("XLEN", tasks), 2);
    assert_true(has_entry(tasks, ids[3]) && has_entry(tasks, ids[5]));
    /* Nothing pending after these: nothing stays. */
    const char *last[] = {ids[5], ids[3]};
    assert_int_equal(finish(tasks, last, 2), 2);
    assert_int_equal(int_of("XLEN", tasks), 0);
    redisReply *rep = CMD("XPENDING %s workers", tasks);
    assert_int_equal(rep->element[0]->integer, 0);
    freeReplyObject(rep);
    conc__rconn_fini(&conn);
}

/* The first result of a task wins, every entry is acknowledged either way,
 * and one notice carries the results that won. */
static void
test_finish_first_result_wins(void **state)
{
    (void)state;
    NEED_SERVER();
    static const char *const ids[] = {"1000-0", "1001-0"};
    char tasks[96], res[128], done[128];
    new_stream(tasks, sizeof tasks, ids, 2);
    snprintf(res, sizeof res, "%s:res:%s", tasks, ids[0]);
    snprintf(done, sizeof done, "%s:done", tasks);
    freeReplyObject(CMD("SET %s c", res)); /* cancelled first */
    assert_int_equal(finish(tasks, ids, 2), 1);
    redisReply *rep = CMD("GET %s", res);
    assert_string_equal(rep->str, "c");
    freeReplyObject(rep);
    rep = CMD("XRANGE %s - +", done);
    assert_int_equal(rep->elements, 1);
    redisReply *f = rep->element[0]->element[1];
    assert_int_equal(f->elements, 4); /* id 1001-0 r ok */
    assert_string_equal(f->element[1]->str, ids[1]);
    assert_string_equal(f->element[3]->str, "ok");
    freeReplyObject(rep);
    assert_true(int_of("PTTL", done) > 0);
    assert_int_equal(int_of("XLEN", tasks), 0);
    conc__rconn_fini(&conn);
}

static int
group_setup(void **state)
{
    (void)state;
    have_server = redis_fixture_start(&server, NULL, "everysec") == 0;
    if (!have_server) {
        fprintf(stderr,
                "test_dist_finish: no redis-server; its tests are skipped\n");
        return 0;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (have_server)
        redis_fixture_stop(&server);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_finish_trims_behind_oldest_pending),
        conc_unit_test(test_finish_first_result_wins),
    };
    conc_test_install_allocator();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
