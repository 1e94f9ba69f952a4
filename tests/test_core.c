/* Layer 0: errors, failure messages, time, the allocator hook, byte buffers
 * and the shared arena. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "core/arena_internal.h"

/* A bound for waits that should end at once. */
#define BOUND_MS 20000

static void
test_error_names(void **state)
{
    (void)state;
    assert_string_equal(conc_err_name(CONC_EEMPTY), "CONC_EEMPTY");
    assert_string_equal(conc_err_name(CONC_ETIMEDOUT), "CONC_ETIMEDOUT");
    assert_string_equal(conc_err_name(CONC_ENOTOWNER), "CONC_ENOTOWNER");
    assert_string_equal(conc_err_name(0), "0");
    /* System errors outside the table keep their errno name. */
    assert_string_equal(conc_err_name(-ECONNRESET), "ECONNRESET");
    assert_string_equal(conc_err_name(-99999), "CONC_EUNKNOWN");
    assert_int_equal(CONC_ENOMEM, -ENOMEM);
    assert_int_equal(CONC_ETIMEDOUT, -ETIMEDOUT);
    assert_true(CONC_EEMPTY < -4096);
}

static void
test_error_messages(void **state)
{
    (void)state;
    assert_string_equal(conc_strerror(0), "success");
    assert_non_null(strstr(conc_strerror(CONC_EFULL), "queue.Full"));
    assert_string_equal(conc_strerror(-ECONNRESET), strerror(ECONNRESET));
    assert_string_equal(conc_strerror(-99999), "unknown error");
    assert_string_equal(conc_strerror(12345), "unknown error");
}

static void
test_failure_message(void **state)
{
    (void)state;
    conc_clear_failure();
    assert_string_equal(conc_failure_message(), "");
    assert_conc(conc_fail(CONC_EVALUE, "bad row %d", 7), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad row 7");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    conc_fail(CONC_EVALUE, "%s", big);
    assert_int_equal(strlen(conc_failure_message()), 255);
    conc_clear_failure();
    assert_string_equal(conc_failure_message(), "");
}

static void
test_time(void **state)
{
    (void)state;
    double a = conc_monotonic();
    int64_t an = conc_monotonic_ns();
    assert_conc_ok(conc_sleep(0.02));
    assert_true(conc_monotonic() - a >= 0.02);
    assert_true(conc_monotonic_ns() - an >= 20000000);
    assert_conc_ok(conc_sleep(0));
    assert_conc(conc_sleep(-1), CONC_EINVAL);
    assert_conc(conc_sleep(NAN), CONC_EINVAL);
}

static void
test_allocator_replace_rejects_null(void **state)
{
    (void)state;
    assert_conc(conc_replace_allocator(NULL, realloc, calloc, free),
                CONC_EINVAL);
}

static void
test_buf(void **state)
{
    (void)state;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_buf_append(&b, "hello", 5));
    assert_conc_ok(conc_buf_appendf(&b, " %d-%s", 42, "x"));
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "hello 42-x", 10);
    assert_int_equal(b.data[b.len], '\0');
    conc_buf_consume(&b, 6);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "42-x", 4);
    for (int i = 0; i < 10000; i++)
        assert_conc_ok(conc_buf_append(&b, "abcdefgh", 8));
    assert_int_equal(b.len, 4 + 80000);
    assert_conc(conc_buf_reserve(&b, SIZE_MAX), CONC_EOVERFLOW);
    size_t len;
    uint8_t *d = conc_buf_detach(&b, &len);
    assert_int_equal(len, 80004);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    conc_free(d);
    conc_buf_consume(&b, 3);
    conc_buf_free(&b);
}

static void
test_buf_alloc_failure_leaves_buffer(void **state)
{
    (void)state;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_buf_append(&b, "abc", 3));
    conc_test_fail_alloc_after(1);
    char big[1000] = {0};
    assert_conc(conc_buf_append(&b, big, sizeof big), CONC_ENOMEM);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    conc_buf_free(&b);
}

/* A buffer started on the caller's storage writes there while it fits,
 * moves to memory of its own with its content when it outgrows it, and
 * never frees the storage. */
static void
test_buf_on_storage(void **state)
{
    (void)state;
    uint8_t store[8];
    conc_buf b;
    conc_buf_init_with(&b, store, sizeof store);
    assert_conc_ok(conc_buf_append(&b, "abcdefgh", 8));
    assert_ptr_equal(b.data, store);
    assert_conc_ok(conc_buf_append(&b, "ij", 2));
    assert_true(b.data != store);
    assert_int_equal(b.borrowed, 0);
    assert_memory_equal(b.data, "abcdefghij", 10);
    conc_buf_free(&b);

    conc_buf_init_with(&b, store, sizeof store);
    assert_conc_ok(conc_buf_append(&b, "xyz", 3));
    size_t len = 99;
    uint8_t *d = conc_buf_detach(&b, &len); /* a copy: store is not ours */
    assert_int_equal(len, 3);
    assert_true(d != store);
    assert_memory_equal(d, "xyz", 3);
    assert_null(b.data);
    conc_free(d);

    conc_buf_init_with(&b, store, sizeof store);
    assert_null(conc_buf_detach(&b, &len)); /* empty: nothing to hand */
    assert_int_equal(len, 0);

    conc_buf_init_with(&b, store, sizeof store);
    assert_conc_ok(conc_buf_append(&b, "abc", 3));
    conc_test_fail_alloc_after(1);
    assert_null(conc_buf_detach(&b, &len)); /* no memory: b unchanged */
    conc_test_fail_alloc_after(1);
    assert_conc(conc_buf_append(&b, "0123456789", 10), CONC_ENOMEM);
    assert_ptr_equal(b.data, store);
    assert_int_equal(b.len, 3);
    conc_buf_free(&b); /* leaves store alone (ASan would see a bad free) */
    assert_null(b.data);
}

static void
test_arena_alloc_free_coalesce(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc(conc_arena_new(0, &a), CONC_EINVAL);
    assert_conc_ok(conc_arena_new(1 << 20, &a));
    size_t avail = conc_arena_available(a);
    assert_true(avail >= (1 << 20));
    void *p[64];
    for (int i = 0; i < 64; i++) {
        assert_conc_ok(conc_arena_alloc(a, 100 + (size_t)i * 37, &p[i]));
        assert_true(conc_arena_contains(a, p[i]));
        assert_int_equal((uintptr_t)p[i] % 64, 0);
        for (size_t k = 0; k < 100 + (size_t)i * 37; k++)
            assert_int_equal(((unsigned char *)p[i])[k], 0);
        memset(p[i], 0xab, 100 + (size_t)i * 37);
    }
    assert_true(conc_arena_available(a) < avail);
    /* Free odd blocks then even ones, so both coalescing directions run. */
    for (int i = 1; i < 64; i += 2)
        conc_arena_dealloc(a, p[i]);
    for (int i = 0; i < 64; i += 2)
        conc_arena_dealloc(a, p[i]);
    assert_int_equal(conc_arena_available(a), avail);
    /* After coalescing, one block can take nearly everything again. */
    void *big;
    assert_conc_ok(conc_arena_alloc(a, avail - 64, &big));
    void *more;
    assert_conc(conc_arena_alloc(a, 64, &more), CONC_ENOMEM);
    conc_arena_dealloc(a, big);
    assert_conc(conc_arena_alloc(a, 0, &more), CONC_EINVAL);
    assert_false(conc_arena_contains(a, &more));
    conc_arena_dealloc(a, NULL);
    conc_arena_free(a);
    conc_arena_free(NULL);
}

static void
test_arena_shared_with_child(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 20, &a));
    int *cell;
    assert_conc_ok(conc_arena_alloc(a, sizeof *cell, (void **)&cell));
    *cell = 1;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child sees the parent's write, allocates from the same
         * arena, and its writes reach the parent. */
        void *q;
        if (*cell != 1 || conc_arena_alloc(a, 4096, &q) != 0)
            _exit(1);
        *cell = 2;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(*cell, 2);
    /* The child's block is accounted for in the shared bookkeeping. */
    size_t cap = conc_arena_capacity(a);
    assert_true(conc_arena_available(a) <= cap - 4096 - 64);
    conc_arena_free(a);
}

static void
test_arena_default(void **state)
{
    (void)state;
    conc_arena *a, *b;
    assert_conc_ok(conc_arena_default(&a));
    assert_conc_ok(conc_arena_default(&b));
    assert_ptr_equal(a, b);
    assert_true(conc_arena_capacity(a) >= (64u << 20) - 4096);
}

/* ---- The arena after a crash inside it ---------------------------------- */

/* Where the child stops: the hook tells the parent through the pipe, then
 * waits there, lock held, for its SIGKILL. */
static int stop_fd = -1;
static enum conc__arena_point stop_at;

static void
stop_here(enum conc__arena_point point)
{
    if (point != stop_at)
        return;
    char c = 1;
    if (write(stop_fd, &c, 1) != 1)
        _exit(2);
    for (;;)
        pause();
}

/* Reads one byte from `fd` within BOUND_MS. Returns 1, or 0 on timeout or
 * end of file. */
static int
read_within(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char c;
    return poll(&pfd, 1, BOUND_MS) == 1 && read(fd, &c, 1) == 1;
}

struct bounded_alloc {
    conc_arena *a;
    void *p;
    int rc;
    int fd; /* written once the allocation returned */
};

static void *
alloc_thread(void *arg)
{
    struct bounded_alloc *b = arg;
    b->rc = conc_arena_alloc(b->a, 3000, &b->p);
    char c = 1;
    if (write(b->fd, &c, 1) != 1)
        b->rc = CONC_EPROTO;
    return NULL;
}

/* Allocates from `a` in a thread, and fails the test if that does not
 * return within BOUND_MS (the thread is then left blocked). */
static void *
alloc_within_bound(conc_arena *a)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct bounded_alloc b = {a, NULL, -1, p[1]};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alloc_thread, &b), 0);
    if (!read_within(p[0]))
        fail_msg("conc_arena_alloc hangs after its lock holder died");
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    assert_conc_ok(b.rc);
    return b.p;
}

/* Runs `op` in a child that stops at `point` inside it, with the arena's
 * lock held, and kills the child there with SIGKILL. */
static void
kill_inside(conc_arena *a, enum conc__arena_point point, void *to_free)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        stop_fd = p[1];
        stop_at = point;
        conc__arena_hook = stop_here;
        void *q;
        if (to_free)
            conc_arena_dealloc(a, to_free);
        else
            conc_arena_alloc(a, 1000, &q);
        _exit(1); /* the point was not reached */
    }
    close(p[1]);
    int stopped = read_within(p[0]);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(p[0]);
    assert_true(stopped);
    assert_true(WIFSIGNALED(status));
}

/* A process killed inside conc_arena_alloc or conc_arena_dealloc, at each
 * point where it holds the arena's lock with its work half done, does not
 * stop the others: the next allocation returns at once, and the arena's
 * bookkeeping is whole again (nothing lost but the block the dead process
 * had taken). */
static void
test_arena_owner_killed_inside(void **state)
{
    (void)state;
    for (int point = 0; point < CONC__ARENA_POINTS; point++) {
        conc_arena *a;
        assert_conc_ok(conc_arena_new(1 << 20, &a));
        size_t avail = conc_arena_available(a);
        void *x = NULL, *y = NULL, *z = NULL;
        if (point == CONC__ARENA_MERGED) {
            /* y is freed by the child, between two free neighbours. */
            assert_conc_ok(conc_arena_alloc(a, 500, &x));
            assert_conc_ok(conc_arena_alloc(a, 500, &y));
            assert_conc_ok(conc_arena_alloc(a, 500, &z));
            assert_conc_ok(conc_arena_dealloc(a, x));
            assert_conc_ok(conc_arena_dealloc(a, z));
        }
        kill_inside(a, (enum conc__arena_point)point, y);
        void *p = alloc_within_bound(a);
        assert_true(conc_arena_contains(a, p));
        if (conc__arena_check(a))
            print_message("%s\n", conc_failure_message());
        assert_conc_ok(conc__arena_check(a));
        assert_conc_ok(conc_arena_dealloc(a, p));
        assert_conc_ok(conc__arena_check(a));
        /* Only the block the child had marked taken is gone. */
        size_t lost = point == CONC__ARENA_ALLOC_TAKEN ? 1088 : 0;
        assert_int_equal(conc_arena_available(a), avail - lost);
        conc_arena_free(a);
    }
}

/* Tags that another process wrote over are caught, not followed: the call
 * that meets them fails with CONC_EBROKEN and says so, and so does every
 * later one. Pointers that are not live blocks are refused. */
static void
test_arena_corrupt_tags(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 20, &a));
    void *x, *y;
    assert_conc_ok(conc_arena_alloc(a, 100, &x));
    assert_conc_ok(conc_arena_alloc(a, 100, &y));
    assert_conc(conc_arena_dealloc(a, (char *)x + 64), CONC_EINVAL);
    assert_conc(conc_arena_dealloc(a, (char *)x + 1), CONC_EINVAL);
    assert_conc(conc_arena_dealloc(a, &x), CONC_EINVAL);
    assert_conc_ok(conc_arena_dealloc(a, x));
    assert_conc(conc_arena_dealloc(a, x), CONC_EINVAL); /* twice */
    assert_conc_ok(conc__arena_check(a));

    /* The free block after y: its tag, one cache line before where its
     * payload would be, written over with a wild link. */
    uint64_t *tag = (uint64_t *)((char *)y + 128);
    tag[3] = 12345; /* next_free */
    assert_conc(conc_arena_alloc(a, 100000, &x), CONC_EBROKEN);
    assert_non_null(strstr(conc_failure_message(), "shared arena"));
    assert_conc(conc_arena_alloc(a, 10, &x), CONC_EBROKEN);
    assert_conc(conc_arena_dealloc(a, y), CONC_EBROKEN);
    assert_conc(conc__arena_check(a), CONC_EBROKEN);
    conc_arena_free(a);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_error_names),
        conc_unit_test(test_error_messages),
        conc_unit_test(test_failure_message),
        conc_unit_test(test_time),
        conc_unit_test(test_allocator_replace_rejects_null),
        conc_unit_test(test_buf),
        conc_unit_test(test_buf_alloc_failure_leaves_buffer),
        conc_unit_test(test_buf_on_storage),
        conc_unit_test(test_arena_alloc_free_coalesce),
        conc_unit_test(test_arena_shared_with_child),
        conc_unit_test(test_arena_default),
        conc_unit_test(test_arena_owner_killed_inside),
        conc_unit_test(test_arena_corrupt_tags),
    };
    return conc_run_tests(tests);
}
