/* Test helpers; see conc_test.h. */
#include <pthread.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conc_test.h"

void
conc_test_assert_code(int got, int want, const char *expr, const char *file,
                      int line)
{
    if (got == want)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "%s returned %s (%d: %s), expected %s (%d)", expr,
             conc_err_name(got), got, conc_strerror(got), conc_err_name(want),
             want);
    /* _fail does not return: print first. */
    print_error("%s\n", msg);
    _fail(file, line);
}

/* ---- Counting allocator with failure injection -------------------------- */

static atomic_long live;
static __thread long fail_countdown;

static int
should_fail(void)
{
    if (fail_countdown > 0 && --fail_countdown == 0)
        return 1;
    return 0;
}

static void *
t_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

static void *
t_calloc(size_t c, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = calloc(c, n);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

static void *
t_realloc(void *old, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = realloc(old, n);
    if (p && !old)
        atomic_fetch_add(&live, 1);
    return p;
}

static void
t_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live, 1);
    free(p);
}

void
conc_test_install_allocator(void)
{
    conc_replace_allocator(t_malloc, t_realloc, t_calloc, t_free);
    /* The default arena keeps a descriptor open until exit; made here,
     * before any test counts descriptors, it is no test's leak. */
    conc_arena *a;
    conc_arena_default(&a);
}

long
conc_test_live_allocations(void)
{
    return atomic_load(&live);
}

void
conc_test_fail_alloc_after(long n)
{
    fail_countdown = n;
}

long
conc_test_fail_alloc_left(void)
{
    return fail_countdown;
}

/* ---- Leak guard --------------------------------------------------------- */

static int
count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int
conc_test_count_fds(void)
{
    return count_dir("/proc/self/fd") - 1; /* the DIR's own descriptor */
}

int
conc_test_count_threads(void)
{
    return count_dir("/proc/self/task");
}

/* Children (zombies included) of every thread of this process, from
 * /proc/self/task/<tid>/children. */
int
conc_test_count_children(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

struct snapshot {
    int fds, threads, children;
    long allocs;
};

static struct snapshot before;

int
conc_test_setup(void **state)
{
    (void)state;
    conc_test_fail_alloc_after(0);
    before.fds = conc_test_count_fds();
    before.threads = conc_test_count_threads();
    before.children = conc_test_count_children();
    before.allocs = conc_test_live_allocations();
    return 0;
}

static int
settled(void *arg)
{
    (void)arg;
    return conc_test_count_threads() <= before.threads &&
           conc_test_live_allocations() <= before.allocs &&
           conc_test_count_children() <= before.children;
}

int
conc_test_teardown(void **state)
{
    (void)state;
    conc_test_fail_alloc_after(0);
    /* A thread that returned is gone a moment later; give it up to 5 s. */
    conc_test_wait_until(settled, NULL, 5.0);
    int fds = conc_test_count_fds();
    int threads = conc_test_count_threads();
    int children = conc_test_count_children();
    long allocs = conc_test_live_allocations();
    if (fds != before.fds || threads > before.threads ||
        children > before.children ||
        allocs > before.allocs) { /* fewer: an earlier object went */
        print_error("leak: fds %d -> %d, threads %d -> %d, children %d -> %d, "
                    "allocations %ld -> %ld\n",
                    before.fds, fds, before.threads, threads, before.children,
                    children, before.allocs, allocs);
        return -1;
    }
    return 0;
}

int
conc_test_wait_until(int (*cond)(void *), void *arg, double timeout)
{
    double end = conc_monotonic() + timeout;
    for (;;) {
        if (cond(arg))
            return 1;
        if (conc_monotonic() >= end)
            return cond(arg);
        /* A capped poll, for states that no event announces. */
        struct timespec ts = {0, 1000000};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    }
}

/* ---- Children made with a raw fork() ------------------------------------ */

pid_t
fork_child(int (*fn)(void *arg), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

int
reap_status(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

void
reap(pid_t pid)
{
    int status = reap_status(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

void
kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    reap_status(pid);
}

static void *
nothing_fn(void *arg)
{
    return arg;
}

void
warm_up_threads(void)
{
    pthread_t warm;
    if (pthread_create(&warm, NULL, nothing_fn, NULL) == 0)
        pthread_join(warm, NULL);
}

/* ---- A peer process's output -------------------------------------------- */

/* With `whole`, the timeout bounds the whole line, else each byte. */
static void
read_line(int fd, double timeout, int whole, char *buf, size_t cap)
{
    size_t n = 0;
    double end = conc_monotonic() + timeout;
    while (n + 1 < cap) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int wait_ms = (int)(timeout * 1000);
        if (whole) {
            wait_ms = (int)((end - conc_monotonic()) * 1000);
            assert_true(wait_ms > 0);
        }
        assert_int_equal(poll(&pfd, 1, wait_ms), 1);
        char ch;
        assert_int_equal(read(fd, &ch, 1), 1);
        if (ch == '\n')
            break;
        buf[n++] = ch;
    }
    buf[n] = '\0';
}

void
conc_test_read_line(int fd, double timeout, char *buf, size_t cap)
{
    read_line(fd, timeout, 0, buf, cap);
}

void
conc_test_read_line_within(int fd, double timeout, char *buf, size_t cap)
{
    read_line(fd, timeout, 1, buf, cap);
}

conc_popen *
conc_test_peer_start(char *const argv[])
{
    conc_popen_opts o = {.stdout_mode = CONC_STDIO_PIPE};
    conc_popen *p;
    assert_conc_ok(conc_popen_new(argv, &o, &p));
    return p;
}

int
conc_test_peer_port(conc_popen *p, double timeout, int *fd)
{
    int out;
    char line[64];
    assert_conc_ok(conc_popen_stdout_fd(p, &out));
    conc_test_read_line(out, timeout, line, sizeof line);
    int port = atoi(line);
    assert_true(port > 0);
    if (fd)
        *fd = out;
    return port;
}

/* ---- A peer process's end ------------------------------------------------ */

void
conc_test_peer_finish_has(conc_popen *p, double timeout, const char *want)
{
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, timeout, &out, NULL));
    int rc = -1;
    assert_int_equal(conc_popen_returncode(p, &rc), 1);
    assert_int_equal(rc, 0);
    assert_conc_ok(conc_buf_append(&out, "", 1));
    assert_non_null(strstr((char *)out.data, want));
    conc_buf_free(&out);
    conc_popen_free(p);
}

void
conc_test_peer_finish_last(conc_popen *p, double timeout, const char *want,
                           conc_buf *out)
{
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_popen_communicate(p, NULL, 0, timeout, &b, NULL));
    int rc = -1;
    assert_int_equal(conc_popen_returncode(p, &rc), 1);
    assert_conc_ok(conc_buf_append(&b, "", 1));
    char *text = (char *)b.data;
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        text[--n] = '\0';
    char *last = strrchr(text, '\n');
    if (strcmp(last ? last + 1 : text, want) != 0)
        fprintf(stderr, "peer output:\n%s\n", text);
    assert_string_equal(last ? last + 1 : text, want);
    assert_int_equal(rc, 0);
    conc_popen_free(p);
    if (out)
        *out = b;
    else
        conc_buf_free(&b);
}
