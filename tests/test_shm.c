/* Layer 2 shm: Value, Array and named shared memory segments, within one
 * process and between a parent and the children it forks.
 *
 * Children report through their exit status (0 for success) and pipes;
 * the parent always reaps them. Every test also checks that it left no
 * segment of its own in /dev/shm (names beginning "conc_"). Processes are
 * forked only while the test process has a single thread (besides the
 * sanitizer's own). */
#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"

#define BOUND 20.0

/* ---- Helpers ------------------------------------------------------------ */

static int
read_full(int fd, void *buf, size_t n)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t got = 0;
    while (got < n) {
        if (poll(&p, 1, (int)(BOUND * 1000)) != 1)
            return 0;
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

/* Whether /dev/shm/<name> exists. */
static int
shm_exists(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return access(path, F_OK) == 0;
}

/* The number of segments in /dev/shm whose name begins "conc_". */
static int
count_segments(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "conc_", 5) == 0)
            n++;
    closedir(d);
    return n;
}

/* The leak guard, plus: no segment left behind. */
static int segments_before;

static int
shm_setup(void **state)
{
    segments_before = count_segments();
    return conc_test_setup(state);
}

static int
shm_teardown(void **state)
{
    int now = count_segments();
    if (now != segments_before) {
        print_error("segments in /dev/shm: %d -> %d\n", segments_before, now);
        return -1;
    }
    return conc_test_teardown(state);
}

#define shm_test(f) cmocka_unit_test_setup_teardown(f, shm_setup, shm_teardown)

/* A name unique to this process and test. */
static const char *
test_name(const char *tag)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "conc_test_%d_%s", (int)getpid(), tag);
    return buf;
}

/* ---- Types -------------------------------------------------------------- */

static void
test_ctype_size(void **state)
{
    (void)state;
    assert_int_equal(conc_ctype_size(CONC_CTYPE_I8), 1);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_I16), 2);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_I32), 4);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_I64), 8);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_U8), 1);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_U16), 2);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_U32), 4);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_U64), 8);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_FLOAT), 4);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_DOUBLE), 8);
    assert_int_equal(conc_ctype_size(CONC_CTYPE_CHAR), 1);
    assert_int_equal(conc_ctype_size((conc_ctype)0), 0);
    assert_int_equal(conc_ctype_size((conc_ctype)12), 0);
    assert_int_equal(conc_ctype_size((conc_ctype)-1), 0);
}

/* ---- Value -------------------------------------------------------------- */

static void
test_value_basic(void **state)
{
    (void)state;
    conc_value *v;
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, NULL, &v));
    assert_int_equal(conc_value_type(v), CONC_CTYPE_I64);
    int64_t x = -1;
    assert_conc_ok(conc_value_get_i64(v, &x));
    assert_int_equal(x, 0);
    assert_conc_ok(conc_value_set_i64(v, 42));
    assert_int_equal(*(int64_t *)conc_value_ptr(v), 42);
    *(int64_t *)conc_value_ptr(v) = 7;
    assert_conc_ok(conc_value_get_i64(v, &x));
    assert_int_equal(x, 7);
    /* Its lock is a process-shared RLock, and reentrant. */
    conc_rlock *l = conc_value_get_lock(v);
    assert_non_null(l);
    conc_arena *def;
    assert_conc_ok(conc_arena_default(&def));
    assert_true(conc_arena_contains(def, l));
    assert_true(conc_arena_contains(def, v));
    assert_conc_ok(conc_value_acquire(v, 0));
    assert_int_equal(conc_rlock_is_owned(l), 1);
    assert_conc_ok(conc_value_set_i64(v, 8));
    assert_conc_ok(conc_value_release(v));
    assert_int_equal(conc_rlock_is_owned(l), 0);
    assert_conc(conc_value_release(v), CONC_ENOTOWNER);
    assert_conc(conc_value_acquire(v, NAN), CONC_EINVAL);
    conc_value_free(v);
    conc_value_free(NULL);

    double d = 2.5;
    assert_conc_ok(conc_value_new(CONC_CTYPE_DOUBLE, &d, NULL, &v));
    double got = 0;
    assert_conc_ok(conc_value_get_double(v, &got));
    assert_true(got == 2.5);
    conc_value_free(v);
}

static void
test_value_integers(void **state)
{
    (void)state;
    static const struct {
        conc_ctype type;
        int64_t min;
        uint64_t max;
    } cases[] = {
        {CONC_CTYPE_I8, INT8_MIN, INT8_MAX},
        {CONC_CTYPE_I16, INT16_MIN, INT16_MAX},
        {CONC_CTYPE_I32, INT32_MIN, INT32_MAX},
        {CONC_CTYPE_I64, INT64_MIN, INT64_MAX},
        {CONC_CTYPE_U8, 0, UINT8_MAX},
        {CONC_CTYPE_U16, 0, UINT16_MAX},
        {CONC_CTYPE_U32, 0, UINT32_MAX},
        {CONC_CTYPE_U64, 0, UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conc_value *v;
        assert_conc_ok(conc_value_new(cases[i].type, NULL, NULL, &v));
        int64_t s;
        uint64_t u;
        /* Both ends fit; one past either end does not, and leaves the
         * value unchanged. */
        assert_conc_ok(conc_value_set_i64(v, cases[i].min));
        assert_conc_ok(conc_value_get_i64(v, &s));
        assert_true(s == cases[i].min);
        if (cases[i].min < 0) {
            assert_conc(conc_value_get_u64(v, &u), CONC_EOVERFLOW);
            if (cases[i].min > INT64_MIN)
                assert_conc(conc_value_set_i64(v, cases[i].min - 1),
                            CONC_EOVERFLOW);
        } else {
            assert_conc(conc_value_set_i64(v, -1), CONC_EOVERFLOW);
        }
        assert_conc_ok(conc_value_set_u64(v, cases[i].max));
        assert_conc_ok(conc_value_get_u64(v, &u));
        assert_true(u == cases[i].max);
        if (cases[i].max < UINT64_MAX) {
            assert_conc(conc_value_set_u64(v, cases[i].max + 1),
                        CONC_EOVERFLOW);
            if (cases[i].max < INT64_MAX)
                assert_conc(conc_value_set_i64(v, (int64_t)cases[i].max + 1),
                            CONC_EOVERFLOW);
            assert_conc_ok(conc_value_get_i64(v, &s));
            assert_true((uint64_t)s == cases[i].max);
        } else {
            assert_conc(conc_value_get_i64(v, &s), CONC_EOVERFLOW);
        }
        /* The other family is refused. */
        double d;
        assert_conc(conc_value_get_double(v, &d), CONC_EINVAL);
        assert_conc(conc_value_set_double(v, 1.0), CONC_EINVAL);
        conc_value_free(v);
    }
}

static void
test_value_reals_and_chars(void **state)
{
    (void)state;
    conc_value *f, *c;
    assert_conc_ok(conc_value_new(CONC_CTYPE_FLOAT, NULL, NULL, &f));
    double d;
    assert_conc_ok(conc_value_set_double(f, 1.5));
    assert_conc_ok(conc_value_get_double(f, &d));
    assert_true(d == 1.5);
    assert_true(*(float *)conc_value_ptr(f) == 1.5f);
    assert_conc(conc_value_set_double(f, 1e39), CONC_EOVERFLOW);
    assert_conc(conc_value_set_double(f, -1e39), CONC_EOVERFLOW);
    assert_conc_ok(conc_value_get_double(f, &d));
    assert_true(d == 1.5);
    assert_conc_ok(conc_value_set_double(f, INFINITY));
    assert_conc_ok(conc_value_get_double(f, &d));
    assert_true(isinf(d));
    assert_conc_ok(conc_value_set_double(f, NAN));
    assert_conc_ok(conc_value_get_double(f, &d));
    assert_true(isnan(d));
    int64_t s;
    assert_conc(conc_value_get_i64(f, &s), CONC_EINVAL);
    assert_conc(conc_value_set_i64(f, 1), CONC_EINVAL);
    assert_conc(conc_value_set_u64(f, 1), CONC_EINVAL);
    float fl = 0.25f;
    assert_conc_ok(conc_value_set(f, &fl));
    fl = 0;
    assert_conc_ok(conc_value_get(f, &fl));
    assert_true(fl == 0.25f);
    conc_value_free(f);

    char ch = 'x';
    assert_conc_ok(conc_value_new(CONC_CTYPE_CHAR, &ch, NULL, &c));
    ch = 0;
    assert_conc_ok(conc_value_get(c, &ch));
    assert_int_equal(ch, 'x');
    assert_conc_ok(conc_value_set(c, "y"));
    assert_int_equal(*(char *)conc_value_ptr(c), 'y');
    uint64_t u;
    assert_conc(conc_value_get_u64(c, &u), CONC_EINVAL);
    assert_conc(conc_value_set_i64(c, 1), CONC_EINVAL);
    assert_conc(conc_value_get_double(c, &d), CONC_EINVAL);
    conc_value_free(c);

    /* Generic access to every width. */
    conc_value *w;
    uint16_t h = 0xbeef, h2 = 0;
    assert_conc_ok(conc_value_new(CONC_CTYPE_U16, &h, NULL, &w));
    assert_conc_ok(conc_value_get(w, &h2));
    assert_int_equal(h2, 0xbeef);
    int32_t i32 = -7, i32b = 0;
    conc_value_free(w);
    assert_conc_ok(conc_value_new(CONC_CTYPE_I32, NULL, NULL, &w));
    assert_conc_ok(conc_value_set(w, &i32));
    assert_conc_ok(conc_value_get(w, &i32b));
    assert_int_equal(i32b, -7);
    assert_conc_ok(conc_value_get_i64(w, &s));
    assert_int_equal(s, -7);
    conc_value_free(w);
}

static void
test_value_options(void **state)
{
    (void)state;
    conc_arena *a, *b;
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    assert_conc_ok(conc_arena_new(1 << 16, &b));
    conc_value *v;
    assert_conc(conc_value_new((conc_ctype)0, NULL, NULL, &v), CONC_EINVAL);
    assert_conc(conc_value_new((conc_ctype)99, NULL, NULL, &v), CONC_EINVAL);

    /* No lock: plain access, no lock calls. */
    conc_value_opts nolock = {.arena = a, .no_lock = 1};
    assert_conc_ok(conc_value_new(CONC_CTYPE_I32, NULL, &nolock, &v));
    assert_true(conc_arena_contains(a, v));
    assert_null(conc_value_get_lock(v));
    assert_conc(conc_value_acquire(v, 0), CONC_EINVAL);
    assert_conc(conc_value_release(v), CONC_EINVAL);
    assert_conc_ok(conc_value_set_i64(v, -3));
    int64_t x;
    assert_conc_ok(conc_value_get_i64(v, &x));
    assert_int_equal(x, -3);
    conc_value_free(v);

    /* One borrowed RLock guarding two values. */
    conc_rlock *shared, *private, *elsewhere;
    conc_sync_opts so = {.arena = a}, sob = {.arena = b};
    assert_conc_ok(conc_rlock_new(&so, &shared));
    assert_conc_ok(conc_rlock_new(NULL, &private));
    assert_conc_ok(conc_rlock_new(&sob, &elsewhere));
    conc_value_opts with = {.arena = a, .rlock = shared};
    conc_value *v1, *v2;
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, &with, &v1));
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, &with, &v2));
    assert_ptr_equal(conc_value_get_lock(v1), shared);
    assert_ptr_equal(conc_value_get_lock(v2), shared);
    assert_conc_ok(conc_value_acquire(v1, 0));
    assert_int_equal(conc_rlock_is_owned(shared), 1);
    assert_conc_ok(conc_value_set_i64(v2, 5));
    assert_conc_ok(conc_value_release(v2));
    assert_int_equal(conc_rlock_is_owned(shared), 0);
    conc_value_free(v1);
    conc_value_free(v2);
    /* The borrowed lock outlives the values. */
    assert_conc_ok(conc_rlock_acquire(shared, 0));
    assert_conc_ok(conc_rlock_release(shared));

    conc_value_opts bad = {.arena = a, .rlock = shared, .no_lock = 1};
    assert_conc(conc_value_new(CONC_CTYPE_I64, NULL, &bad, &v), CONC_EINVAL);
    bad = (conc_value_opts){.arena = a, .rlock = private};
    assert_conc(conc_value_new(CONC_CTYPE_I64, NULL, &bad, &v), CONC_EINVAL);
    bad = (conc_value_opts){.arena = a, .rlock = elsewhere};
    assert_conc(conc_value_new(CONC_CTYPE_I64, NULL, &bad, &v), CONC_EINVAL);
    conc_rlock_free(shared);
    conc_rlock_free(private);
    conc_rlock_free(elsewhere);
    conc_arena_free(a);
    conc_arena_free(b);
}

/* A full arena: no room for the value, or room for the value but not its
 * lock (the value's block then goes back). */
static void
test_value_arena_full(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 14, &a));
    conc_value_opts o = {.arena = a};
    /* Blocks the size of a Value's; the last one freed leaves exactly one
     * such hole. */
    void *p, *last = NULL;
    while (conc_arena_alloc(a, 72, &p) == 0)
        last = p;
    assert_non_null(last);
    conc_value *v = NULL;
    conc_array *arr = NULL;
    assert_conc(conc_value_new(CONC_CTYPE_I64, NULL, &o, &v), CONC_ENOMEM);
    assert_conc(conc_array_new(CONC_CTYPE_U8, 4, NULL, &o, &arr), CONC_ENOMEM);
    conc_arena_dealloc(a, last);
    size_t avail = conc_arena_available(a);
    assert_conc(conc_value_new(CONC_CTYPE_I64, NULL, &o, &v), CONC_ENOMEM);
    assert_int_equal(conc_arena_available(a), avail);
    o.no_lock = 1;
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, &o, &v));
    conc_value_free(v);
    assert_int_equal(conc_arena_available(a), avail);
    assert_null(arr);
    conc_arena_free(a);
}

/* Many children add to one value under its lock: the total is exact. */
#define N_CHILDREN 4
#define INCS       5000

static int
increment_proc(void *p)
{
    conc_value *v = p;
    for (int i = 0; i < INCS; i++) {
        int64_t x;
        if (conc_value_acquire(v, BOUND) != 0)
            return 1;
        if (conc_value_get_i64(v, &x) != 0 || conc_value_set_i64(v, x + 1))
            return 2;
        if (conc_value_release(v) != 0)
            return 3;
    }
    return 0;
}

static void
test_value_shared_counter(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    conc_value_opts o = {.arena = a};
    conc_value *v;
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, &o, &v));
    pid_t pid[N_CHILDREN];
    for (int i = 0; i < N_CHILDREN; i++)
        pid[i] = fork_child(increment_proc, v);
    assert_int_equal(increment_proc(v), 0);
    for (int i = 0; i < N_CHILDREN; i++)
        reap(pid[i]);
    int64_t total;
    assert_conc_ok(conc_value_get_i64(v, &total));
    assert_int_equal(total, (int64_t)(N_CHILDREN + 1) * INCS);
    conc_value_free(v);
    conc_arena_free(a);
}

/* A child killed while holding a value's lock: the parent's get and set
 * recover the lock; holding it explicitly shows the death. */
static int
hold_and_wait_proc(void *p)
{
    void **args = p;
    conc_value *v = args[0];
    int *fds = args[1];
    if (conc_value_acquire(v, BOUND) != 0 || conc_value_set_i64(v, 9) != 0)
        return 1;
    char c = 1;
    if (write(fds[1], &c, 1) != 1)
        return 2;
    pause(); /* until killed */
    return 3;
}

static void
kill_holder(conc_value *v)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    void *args[2] = {v, fds};
    pid_t pid = fork_child(hold_and_wait_proc, args);
    char c;
    assert_true(read_full(fds[0], &c, 1));
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = reap_status(pid);
    assert_true(WIFSIGNALED(status));
    close(fds[0]);
    close(fds[1]);
}

static void
test_value_holder_killed(void **state)
{
    (void)state;
    conc_arena *a;
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    conc_value_opts o = {.arena = a};
    conc_value *v;
    assert_conc_ok(conc_value_new(CONC_CTYPE_I64, NULL, &o, &v));
    kill_holder(v);
    int64_t x;
    assert_conc_ok(conc_value_get_i64(v, &x));
    assert_int_equal(x, 9);
    assert_conc_ok(conc_value_acquire(v, 0));
    assert_conc_ok(conc_value_release(v));

    kill_holder(v);
    assert_conc(conc_value_acquire(v, BOUND), CONC_EOWNERDEAD);
    assert_conc_ok(conc_rlock_make_consistent(conc_value_get_lock(v)));
    assert_conc_ok(conc_value_release(v));

    /* Given up unrepaired: the value's lock is unusable. */
    kill_holder(v);
    assert_conc(conc_value_acquire(v, 0), CONC_EOWNERDEAD);
    assert_conc_ok(conc_value_release(v));
    assert_conc(conc_value_get_i64(v, &x), CONC_ENOTRECOVERABLE);
    assert_conc(conc_value_set_i64(v, 1), CONC_ENOTRECOVERABLE);
    assert_conc(conc_value_get(v, &x), CONC_ENOTRECOVERABLE);
    conc_value_free(v);
    conc_arena_free(a);
}

/* ---- Array -------------------------------------------------------------- */

static void
test_array_basic(void **state)
{
    (void)state;
    int32_t init[5] = {1, 2, 3, 4, 5};
    conc_array *a;
    assert_conc_ok(conc_array_new(CONC_CTYPE_I32, 5, init, NULL, &a));
    assert_int_equal(conc_array_len(a), 5);
    assert_int_equal(conc_array_type(a), CONC_CTYPE_I32);
    assert_memory_equal(conc_array_ptr(a), init, sizeof init);
    assert_non_null(conc_array_get_lock(a));
    int64_t x;
    assert_conc_ok(conc_array_get_i64(a, 4, &x));
    assert_int_equal(x, 5);
    assert_conc(conc_array_get_i64(a, 5, &x), CONC_EINVAL);
    assert_conc(conc_array_set_i64(a, 5, 0), CONC_EINVAL);
    assert_conc(conc_array_set_i64(a, SIZE_MAX, 0), CONC_EINVAL);
    assert_conc_ok(conc_array_set_i64(a, 0, -10));
    uint64_t u;
    assert_conc(conc_array_get_u64(a, 0, &u), CONC_EOVERFLOW);
    assert_conc_ok(conc_array_set_u64(a, 1, 20));
    assert_conc_ok(conc_array_get_u64(a, 1, &u));
    assert_int_equal(u, 20);
    assert_conc(conc_array_get_u64(a, 9, &u), CONC_EINVAL);
    assert_conc(conc_array_set_u64(a, 9, 1), CONC_EINVAL);
    int32_t one = 0;
    assert_conc_ok(conc_array_get(a, 2, &one));
    assert_int_equal(one, 3);
    one = 33;
    assert_conc_ok(conc_array_set(a, 2, &one));
    assert_conc(conc_array_get(a, 5, &one), CONC_EINVAL);
    assert_conc(conc_array_set(a, 5, &one), CONC_EINVAL);
    double d;
    assert_conc(conc_array_get_double(a, 0, &d), CONC_EINVAL);
    assert_conc(conc_array_set_double(a, 0, 1.0), CONC_EINVAL);

    /* Slices: a[1:4] out, a[3:5] = ..., empty and bad slices. */
    int32_t out[5] = {0};
    assert_conc_ok(conc_array_get_slice(a, 1, 4, out));
    assert_int_equal(out[0], 20);
    assert_int_equal(out[1], 33);
    assert_int_equal(out[2], 4);
    int32_t in[2] = {-4, -5};
    assert_conc_ok(conc_array_set_slice(a, 3, 5, in));
    assert_conc_ok(conc_array_get_slice(a, 0, 5, out));
    int32_t want[5] = {-10, 20, 33, -4, -5};
    assert_memory_equal(out, want, sizeof want);
    assert_conc_ok(conc_array_get_slice(a, 5, 5, NULL));
    assert_conc_ok(conc_array_set_slice(a, 2, 2, NULL));
    assert_conc(conc_array_get_slice(a, 3, 2, out), CONC_EINVAL);
    assert_conc(conc_array_get_slice(a, 0, 6, out), CONC_EINVAL);
    assert_conc(conc_array_set_slice(a, 4, 6, in), CONC_EINVAL);
    assert_conc(conc_array_set_slice(a, 6, 6, in), CONC_EINVAL);

    assert_conc_ok(conc_array_acquire(a, 0));
    assert_conc_ok(conc_array_set_i64(a, 0, 0));
    assert_conc_ok(conc_array_release(a));
    assert_conc(conc_array_release(a), CONC_ENOTOWNER);
    conc_array_free(a);
    conc_array_free(NULL);
}

static void
test_array_types_and_errors(void **state)
{
    (void)state;
    conc_array *a;
    assert_conc(conc_array_new(CONC_CTYPE_I32, 0, NULL, NULL, &a), CONC_EINVAL);
    assert_conc(conc_array_new((conc_ctype)0, 4, NULL, NULL, &a), CONC_EINVAL);
    assert_conc(conc_array_new(CONC_CTYPE_I64, SIZE_MAX / 4, NULL, NULL, &a),
                CONC_EOVERFLOW);
    assert_conc(conc_array_new(CONC_CTYPE_U8, (size_t)1 << 40, NULL, NULL, &a),
                CONC_ENOMEM);

    /* A double array with no lock; zero-filled. */
    conc_value_opts nolock = {.no_lock = 1};
    assert_conc_ok(conc_array_new(CONC_CTYPE_DOUBLE, 3, NULL, &nolock, &a));
    assert_null(conc_array_get_lock(a));
    assert_conc(conc_array_acquire(a, 0), CONC_EINVAL);
    assert_conc(conc_array_release(a), CONC_EINVAL);
    double d = 1;
    assert_conc_ok(conc_array_get_double(a, 2, &d));
    assert_true(d == 0.0);
    assert_conc_ok(conc_array_set_double(a, 2, -0.5));
    assert_conc_ok(conc_array_get_double(a, 2, &d));
    assert_true(d == -0.5);
    assert_conc(conc_array_get_double(a, 3, &d), CONC_EINVAL);
    assert_conc(conc_array_set_double(a, 3, 1), CONC_EINVAL);
    int64_t x;
    assert_conc(conc_array_get_i64(a, 0, &x), CONC_EINVAL);
    conc_array_free(a);

    /* A char array as bytes (Python's Array('c', b"hello")). */
    assert_conc_ok(conc_array_new(CONC_CTYPE_CHAR, 5, "hello", NULL, &a));
    char buf[6] = {0};
    assert_conc_ok(conc_array_get_slice(a, 0, 5, buf));
    assert_string_equal(buf, "hello");
    assert_conc_ok(conc_array_set_slice(a, 0, 1, "j"));
    assert_memory_equal(conc_array_ptr(a), "jello", 5);
    assert_conc(conc_array_set_i64(a, 0, 'x'), CONC_EINVAL);
    conc_array_free(a);
}

/* Each child fills its own part of the array; the parent then checks the
 * whole, and a last child checks what the parent wrote. */
#define PART 256

struct part_arg {
    conc_array *a;
    int id;
};

static int
fill_part_proc(void *p)
{
    struct part_arg *pa = p;
    uint32_t buf[PART];
    for (int i = 0; i < PART; i++)
        buf[i] = (uint32_t)(pa->id * 1000 + i);
    size_t start = (size_t)pa->id * PART;
    if (conc_array_set_slice(pa->a, start, start + PART, buf) != 0)
        return 1;
    return conc_array_set_u64(pa->a, start, (uint64_t)pa->id * 1000) != 0;
}

static int
check_parent_proc(void *p)
{
    conc_array *a = p;
    uint64_t u;
    for (size_t i = 0; i < conc_array_len(a); i++)
        if (conc_array_get_u64(a, i, &u) != 0 || u != i)
            return 1;
    return 0;
}

static void
test_array_shared(void **state)
{
    (void)state;
    conc_arena *ar;
    assert_conc_ok(conc_arena_new(1 << 16, &ar));
    conc_value_opts o = {.arena = ar};
    conc_array *a;
    assert_conc_ok(
        conc_array_new(CONC_CTYPE_U32, N_CHILDREN * PART, NULL, &o, &a));
    struct part_arg args[N_CHILDREN];
    pid_t pid[N_CHILDREN];
    for (int i = 0; i < N_CHILDREN; i++) {
        args[i] = (struct part_arg){a, i};
        pid[i] = fork_child(fill_part_proc, &args[i]);
    }
    for (int i = 0; i < N_CHILDREN; i++)
        reap(pid[i]);
    const uint32_t *all = conc_array_ptr(a);
    for (int i = 0; i < N_CHILDREN * PART; i++)
        assert_int_equal(all[i], (uint32_t)((i / PART) * 1000 + i % PART));
    for (size_t i = 0; i < conc_array_len(a); i++)
        assert_conc_ok(conc_array_set_u64(a, i, i));
    reap(fork_child(check_parent_proc, a));
    conc_array_free(a);
    conc_arena_free(ar);
}

/* ---- Named segments ----------------------------------------------------- */

static void
test_shm_same_process(void **state)
{
    (void)state;
    const char *name = test_name("same");
    conc_shm *s1, *s2, *s3;
    assert_conc_ok(conc_shm_create(name, 10000, &s1));
    assert_string_equal(conc_shm_name(s1), name);
    assert_int_equal(conc_shm_size(s1), 10000);
    assert_true(shm_exists(name));
    unsigned char *b1 = conc_shm_buf(s1);
    assert_non_null(b1);
    assert_int_equal(b1[0], 0);
    assert_int_equal(b1[9999], 0);
    assert_conc(conc_shm_create(name, 10, &s3), CONC_EEXIST);

    assert_conc_ok(conc_shm_attach(name, &s2));
    assert_int_equal(conc_shm_size(s2), 10000);
    assert_string_equal(conc_shm_name(s2), name);
    unsigned char *b2 = conc_shm_buf(s2);
    assert_ptr_not_equal(b1, b2);
    memcpy(b1, "hello", 5);
    assert_memory_equal(b2, "hello", 5);
    b2[9999] = 7;
    assert_int_equal(b1[9999], 7);

    conc_shm_close(s2);
    assert_null(conc_shm_buf(s2));
    conc_shm_close(s2);
    assert_int_equal(conc_shm_size(s2), 10000);
    assert_int_equal(b1[9999], 7);

    assert_conc_ok(conc_shm_unlink(s1));
    assert_false(shm_exists(name));
    assert_conc(conc_shm_unlink(s1), CONC_ENOENT);
    assert_conc(conc_shm_unlink(s2), CONC_ENOENT);
    assert_conc(conc_shm_attach(name, &s3), CONC_ENOENT);
    /* The mapping outlives the name. */
    assert_int_equal(b1[9999], 7);
    conc_shm_free(s1);
    conc_shm_free(s2);
    conc_shm_free(NULL);
}

static void
test_shm_generated_names(void **state)
{
    (void)state;
    conc_shm *a, *b, *c;
    assert_conc_ok(conc_shm_create(NULL, 1, &a));
    assert_conc_ok(conc_shm_create(NULL, 4096, &b));
    assert_string_not_equal(conc_shm_name(a), conc_shm_name(b));
    assert_int_equal(strlen(conc_shm_name(a)), 21);
    assert_int_equal(strncmp(conc_shm_name(a), "conc_", 5), 0);
    assert_int_equal(conc_shm_size(a), 1);
    assert_true(shm_exists(conc_shm_name(a)));
    assert_conc_ok(conc_shm_attach(conc_shm_name(b), &c));
    assert_int_equal(conc_shm_size(c), 4096);
    assert_conc_ok(conc_shm_unlink(a));
    assert_conc_ok(conc_shm_unlink(c));
    assert_false(shm_exists(conc_shm_name(b)));
    conc_shm_free(a);
    conc_shm_free(b);
    conc_shm_free(c);
}

static void
test_shm_bad_input(void **state)
{
    (void)state;
    conc_shm *s = NULL;
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[256] = 0;
    const char *bad[] = {"", "/", "a/b", "//a", ".", "..", "/..", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_conc(conc_shm_create(bad[i], 10, &s), CONC_EINVAL);
        assert_conc(conc_shm_attach(bad[i], &s), CONC_EINVAL);
    }
    assert_conc(conc_shm_attach(NULL, &s), CONC_EINVAL);
    assert_conc(conc_shm_create(NULL, 0, &s), CONC_EINVAL);
    assert_conc(conc_shm_create(test_name("big"), SIZE_MAX, &s), CONC_EINVAL);
    assert_conc(conc_shm_attach(test_name("none"), &s), CONC_ENOENT);
    assert_null(s);

    /* A leading '/' is accepted and dropped, as is the longest name. */
    char with_slash[80];
    snprintf(with_slash, sizeof with_slash, "/%s", test_name("slash"));
    assert_conc_ok(conc_shm_create(with_slash, 10, &s));
    assert_string_equal(conc_shm_name(s), with_slash + 1);
    conc_shm *t;
    assert_conc_ok(conc_shm_attach(with_slash + 1, &t));
    assert_conc_ok(conc_shm_unlink(t));
    conc_shm_free(t);
    conc_shm_free(s);
    memcpy(longname, "conc_", 5);
    longname[255] = 0;
    assert_conc_ok(conc_shm_create(longname, 10, &s));
    assert_conc_ok(conc_shm_unlink(s));
    conc_shm_free(s);
}

static void
test_shm_alloc_failure(void **state)
{
    (void)state;
    conc_shm *s = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_shm_create(NULL, 10, &s), CONC_ENOMEM);
    conc_test_fail_alloc_after(2); /* the exit-time record */
    assert_conc(conc_shm_create(test_name("nomem"), 10, &s), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_false(shm_exists(test_name("nomem")));
    conc_shm *real;
    assert_conc_ok(conc_shm_create(test_name("nomem"), 10, &real));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_shm_attach(test_name("nomem"), &s), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(s);
    assert_conc_ok(conc_shm_unlink(real));
    conc_shm_free(real);
}

/* A child attaches by name, checks the parent's data, answers, and
 * creates a segment of its own that it leaves behind (_exit runs no
 * clean-up). */
static int
attach_proc(void *p)
{
    const char *name = p;
    conc_shm *s, *mine;
    if (conc_shm_attach(name, &s) != 0)
        return 1;
    char *b = conc_shm_buf(s);
    if (conc_shm_size(s) != 8192 || memcmp(b, "ping", 5) != 0)
        return 2;
    memcpy(b + 4096, "pong", 5);
    conc_shm_free(s);
    if (conc_shm_create(test_name("child"), 100, &mine) != 0)
        return 3;
    memcpy(conc_shm_buf(mine), "left", 5);
    conc_shm_free(mine);
    return 0;
}

static void
test_shm_fork_attach(void **state)
{
    (void)state;
    conc_shm *s;
    assert_conc_ok(conc_shm_create(NULL, 8192, &s));
    char *b = conc_shm_buf(s);
    memcpy(b, "ping", 5);
    char name[64];
    snprintf(name, sizeof name, "%s", conc_shm_name(s));
    pid_t pid = fork_child(attach_proc, name);
    reap(pid);
    assert_memory_equal(b + 4096, "pong", 5);

    /* The child's segment outlived it, named after the child's pid. */
    char child_name[64];
    snprintf(child_name, sizeof child_name, "conc_test_%d_child", (int)pid);
    conc_shm *c;
    assert_conc_ok(conc_shm_attach(child_name, &c));
    assert_int_equal(conc_shm_size(c), 100);
    assert_memory_equal(conc_shm_buf(c), "left", 5);
    assert_conc_ok(conc_shm_unlink(c));
    conc_shm_free(c);
    assert_conc_ok(conc_shm_unlink(s));
    conc_shm_free(s);
}

/* A child creates two segments, unlinks neither, and exits normally: both
 * are gone afterwards. It also inherited the parent's segment, which it
 * must not remove. */
static int
create_and_exit_proc(void *p)
{
    int *fds = p;
    conc_shm *named, *gen;
    if (conc_shm_create(test_name("exit"), 64, &named) != 0 ||
        conc_shm_create(NULL, 64, &gen) != 0)
        _exit(1);
    char name[32] = {0};
    snprintf(name, sizeof name, "%s", conc_shm_name(gen));
    if (write(fds[1], name, sizeof name) != (ssize_t)sizeof name)
        _exit(2);
    /* Freed handles, but the names were never unlinked. */
    conc_shm_free(named);
    conc_shm_free(gen);
    exit(0);
}

static void
test_shm_unlinked_at_exit(void **state)
{
    (void)state;
    conc_shm *mine;
    assert_conc_ok(conc_shm_create(test_name("parent"), 64, &mine));
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork_child(create_and_exit_proc, fds);
    char gen[32];
    assert_true(read_full(fds[0], gen, sizeof gen));
    reap(pid);
    close(fds[0]);
    close(fds[1]);
    char named[64];
    snprintf(named, sizeof named, "conc_test_%d_exit", (int)pid);
    conc_shm *s = NULL;
    assert_conc(conc_shm_attach(named, &s), CONC_ENOENT);
    assert_conc(conc_shm_attach(gen, &s), CONC_ENOENT);
    assert_false(shm_exists(gen));
    /* The parent's own segment is still there. */
    assert_true(shm_exists(test_name("parent")));
    assert_conc_ok(conc_shm_unlink(mine));
    conc_shm_free(mine);
}

/* A segment unlinked and re-created under the same name by another
 * process is not removed at the first creator's exit. */
static int
recreate_proc(void *p)
{
    (void)p;
    conc_shm *s;
    if (conc_shm_create(test_name("reuse"), 64, &s) != 0)
        return 1;
    char name[64];
    snprintf(name, sizeof name, "%s", conc_shm_name(s));
    /* Someone else removes the name and creates a new segment there. */
    pid_t other = fork();
    if (other == 0) {
        conc_shm *o, *n;
        if (conc_shm_attach(name, &o) != 0 || conc_shm_unlink(o) != 0 ||
            conc_shm_create(name, 128, &n) != 0)
            _exit(1);
        _exit(0); /* leaves the new one */
    }
    int status;
    if (waitpid(other, &status, 0) != other || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return 2;
    conc_shm_free(s);
    exit(0);
}

static void
test_shm_exit_spares_recreated(void **state)
{
    (void)state;
    pid_t pid = fork_child(recreate_proc, NULL);
    reap(pid);
    char name[64];
    snprintf(name, sizeof name, "conc_test_%d_reuse", (int)pid);
    conc_shm *s;
    assert_conc_ok(conc_shm_attach(name, &s));
    assert_int_equal(conc_shm_size(s), 128);
    assert_conc_ok(conc_shm_unlink(s));
    conc_shm_free(s);
}

/* The descriptor is closed once mapped: no descriptor outlives the call,
 * which the leak guard checks; and the segment is private to the user. */
static void
test_shm_mode(void **state)
{
    (void)state;
    conc_shm *s;
    assert_conc_ok(conc_shm_create(test_name("mode"), 64, &s));
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/%s", conc_shm_name(s));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 64);
    assert_conc_ok(conc_shm_unlink(s));
    conc_shm_free(s);
}

/* ---- Handing objects to a process ---------------------------------------- */

/* What the parent hands a child: the arena's ref and, since the arena is
 * at the same address in the child, plain pointers to the objects in it. */
struct handoff {
    conc_arena_ref arena;
    conc_lock *lock;
    conc_event *go, *done;
    conc_sem *sem;
    conc_rlock *rlock;
    conc_cond *cond;       /* on its own RLock; guards cells[3] */
    conc_barrier *barrier; /* two parties: the parent and the child */
    conc_value *counter;   /* i64, with its own RLock */
    conc_array *cells;     /* i64[4] */
};

/* The child's second part: a re-entered RLock, a Condition it notifies
 * about cells[3], a Barrier it meets the parent at. */
static int
handoff_child_sync(const struct handoff *h)
{
    if (conc_rlock_acquire(h->rlock, BOUND) != 0 ||
        conc_rlock_acquire(h->rlock, BOUND) != 0)
        return 15;
    conc_rlock_release(h->rlock);
    conc_rlock_release(h->rlock);
    if (conc_cond_acquire(h->cond, BOUND) != 0)
        return 16;
    int r = conc_array_set_i64(h->cells, 3, 7);
    if (!r)
        r = conc_cond_notify(h->cond, 1);
    conc_cond_release(h->cond);
    if (r)
        return 17;
    return conc_barrier_wait(h->barrier, BOUND, NULL) == 0 ? 0 : 18;
}

/* The child: opens the arena, then uses every object. Its exit status
 * says which step failed. */
static int
handoff_child(const void *arg, size_t len)
{
    const struct handoff *h = arg;
    conc_arena *a;
    if (len != sizeof *h || conc_arena_open(&h->arena, &a) != 0)
        return 10;
    if (conc_event_wait(h->go, BOUND) != 0)
        return 11;
    if (conc_lock_acquire(h->lock, BOUND) != 0)
        return 12;
    int64_t v = 0;
    int r = conc_value_acquire(h->counter, BOUND);
    if (!r)
        r = conc_value_get_i64(h->counter, &v);
    if (!r)
        r = conc_value_set_i64(h->counter, v + 1);
    conc_value_release(h->counter);
    conc_lock_release(h->lock);
    if (r || conc_array_set_i64(h->cells, 2, 42) != 0)
        return 13;
    if (conc_sem_release(h->sem, 1) != 0)
        return 14;
    conc_event_set(h->done);
    return handoff_child_sync(h);
}

/* The parent's side of handoff_child_sync. */
static void
handoff_parent_sync(struct handoff *h)
{
    int64_t v = 0;
    assert_conc_ok(conc_cond_acquire(h->cond, BOUND));
    while (conc_array_get_i64(h->cells, 3, &v) == 0 && v != 7)
        assert_conc_ok(conc_cond_wait(h->cond, BOUND));
    assert_conc_ok(conc_cond_release(h->cond));
    assert_conc_ok(conc_barrier_wait(h->barrier, BOUND, NULL));
}

/* Python's Process(target=f, args=(lock, event, value, ...)): the same
 * child function gets the same objects under both start methods, the fork
 * server's included (whose children begin from a fresh image of the
 * program and inherit no memory). */
static void
test_handoff_to_process(void **state)
{
    (void)state;
    static const conc_start_method methods[] = {CONC_START_FORK,
                                                CONC_START_FORKSERVER};
    for (size_t m = 0; m < 2; m++) {
        conc_arena *a;
        assert_conc_ok(conc_arena_new(1 << 20, &a));
        conc_sync_opts so = {.arena = a};
        struct handoff h;
        assert_conc_ok(conc_arena_share(a, &h.arena));
        assert_conc_ok(conc_lock_new(&so, &h.lock));
        assert_conc_ok(conc_event_new(&so, &h.go));
        assert_conc_ok(conc_event_new(&so, &h.done));
        assert_conc_ok(conc_sem_new(0, &so, &h.sem));
        assert_conc_ok(conc_rlock_new(&so, &h.rlock));
        assert_conc_ok(conc_cond_new(&(conc_cond_opts){.arena = a}, &h.cond));
        assert_conc_ok(
            conc_barrier_new(2, &(conc_barrier_opts){.arena = a}, &h.barrier));
        int64_t zero = 0, four[4] = {1, 2, 3, 4};
        conc_value_opts vo = {.arena = a};
        assert_conc_ok(conc_value_new(CONC_CTYPE_I64, &zero, &vo, &h.counter));
        assert_conc_ok(conc_array_new(CONC_CTYPE_I64, 4, four, &vo, &h.cells));

        conc_process *p;
        assert_conc_ok(
            conc_process_new(handoff_child, &h, sizeof h,
                             &(conc_process_opts){.method = methods[m]}, &p));
        assert_conc_ok(conc_process_start(p));
        conc_event_set(h.go);
        assert_conc_ok(conc_event_wait(h.done, BOUND));
        assert_conc_ok(conc_sem_acquire(h.sem, BOUND));
        handoff_parent_sync(&h);
        assert_conc_ok(conc_process_join(p, BOUND));
        int code = -1;
        assert_int_equal(conc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 0);
        conc_process_free(p);
        int64_t v = -1;
        assert_conc_ok(conc_value_get_i64(h.counter, &v));
        assert_int_equal(v, 1);
        assert_conc_ok(conc_array_get_i64(h.cells, 2, &v));
        assert_int_equal(v, 42);

        conc_array_free(h.cells);
        conc_value_free(h.counter);
        conc_barrier_free(h.barrier);
        conc_cond_free(h.cond);
        conc_rlock_free(h.rlock);
        conc_sem_free(h.sem);
        conc_event_free(h.done);
        conc_event_free(h.go);
        conc_lock_free(h.lock);
        conc_arena_free(a);
    }
    assert_conc_ok(conc_forkserver_stop(CONC_FOREVER));
}

/* A ref is checked: bytes that name no arena are refused, and so is an
 * arena whose creator's descriptor is gone. */
static void
test_arena_ref_checked(void **state)
{
    (void)state;
    conc_arena *a, *b;
    conc_arena_ref ref;
    assert_conc_ok(conc_arena_new(1 << 16, &a));
    assert_conc_ok(conc_arena_share(a, &ref));
    assert_conc_ok(conc_arena_open(&ref, &b)); /* mapped here already */
    assert_ptr_equal(a, b);
    conc_arena_ref bad = ref;
    bad.magic++;
    assert_conc(conc_arena_open(&bad, &b), CONC_EINVAL);
    assert_conc(conc_arena_open(NULL, &b), CONC_EINVAL);
    assert_conc(conc_arena_share(NULL, &ref), CONC_EINVAL);
    conc_arena_free(a);
    /* Unmapped and its descriptor closed: nothing left to open. */
    assert_true(conc_arena_open(&ref, &b) < 0);
}

int
main(void)
{
    warm_up_threads();
    /* The default arena is made once, before any test forks. */
    conc_arena *def;
    if (conc_arena_default(&def) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        shm_test(test_ctype_size),
        shm_test(test_value_basic),
        shm_test(test_value_integers),
        shm_test(test_value_reals_and_chars),
        shm_test(test_value_options),
        shm_test(test_value_arena_full),
        shm_test(test_value_shared_counter),
        shm_test(test_value_holder_killed),
        shm_test(test_array_basic),
        shm_test(test_array_types_and_errors),
        shm_test(test_array_shared),
        shm_test(test_shm_same_process),
        shm_test(test_shm_generated_names),
        shm_test(test_shm_bad_input),
        shm_test(test_shm_alloc_failure),
        shm_test(test_shm_fork_attach),
        shm_test(test_shm_unlinked_at_exit),
        shm_test(test_shm_exit_spares_recreated),
        shm_test(test_shm_mode),
        shm_test(test_handoff_to_process),
        shm_test(test_arena_ref_checked),
    };
    return conc_run_tests(tests);
}
