/* The exit sequence (core/internal.h): whichever of threads, processes and
 * shared memory a program touches first, exit joins its non-daemon
 * threads, then terminates its daemon children and joins the others, then
 * unlinks its segments.
 *
 * Each case runs this program again as a fresh process (so that no earlier
 * test has registered anything), which touches the three features in the
 * order given on its command line and then sets up:
 *   - a named segment it leaves for exit to unlink;
 *   - a daemon child D, which waits for the SIGTERM of the children stage
 *     and then reports whether the segment still exists;
 *   - a non-daemon thread T, released by the program's own atexit handler
 *     (registered last, so it runs before conc's), which watches D for a
 *     while and reports whether D ended meanwhile and whether the segment
 *     still exists.
 * In Python's order T reports D alive and the segment there (the children
 * and segments stages wait for T's end), D reports the segment there, and
 * the segment is gone once the program has ended. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"

#define BOUND 10.0
/* How long T watches D. In the right order D lives throughout; in a wrong
 * one it is terminated at once, so this only needs to outlast that. */
#define WATCH     0.5
#define REPORT_FD 3

/* ---- The program ------------------------------------------------------ */

static char seg_name[64];
static conc_event *release;
static conc_process *daemon_child;
static int ready[2]; /* D says it is waiting for SIGTERM */

static int
seg_exists(void)
{
    char path[80];
    snprintf(path, sizeof path, "/%s", seg_name);
    int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static int
daemon_main(const void *arg, size_t len)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (write(ready[1], "r", 1) != 1)
        return 1;
    struct timespec bound = {(time_t)BOUND, 0};
    int got = sigtimedwait(&set, NULL, &bound) == SIGTERM;
    dprintf(REPORT_FD, "D term=%d seg=%d\n", got, seg_exists());
    return 0;
}

static int
thread_main(void *arg)
{
    if (conc_event_wait(release, BOUND) != 0)
        return 1;
    int ended = conc_process_join(daemon_child, WATCH) == 0;
    dprintf(REPORT_FD, "T ended=%d seg=%d\n", ended, seg_exists());
    return 0;
}

static int
nothing_thread(void *arg)
{
    return 0;
}

static int
nothing_process(const void *arg, size_t len)
{
    return 0;
}

/* The first use of each feature registers its exit stage. */
static int
touch(char feature)
{
    conc_thread *t;
    conc_process *p;
    conc_shm *s;
    char name[64];
    switch (feature) {
    case 't':
        if (conc_thread_start(nothing_thread, NULL, NULL, &t) ||
            conc_thread_join(t, BOUND, NULL))
            return 1;
        conc_thread_free(t);
        return 0;
    case 'p':
        if (conc_process_new(nothing_process, NULL, 0, NULL, &p) ||
            conc_process_start(p) || conc_process_join(p, BOUND))
            return 1;
        conc_process_free(p);
        return 0;
    case 's':
        /* Named after the process: two runs of this test at once (other
         * checkouts on the machine) must not meet on one name. */
        snprintf(name, sizeof name, "conc_test_exit_touch_%d", (int)getpid());
        if (conc_shm_create(name, 64, &s) || conc_shm_unlink(s))
            return 1;
        conc_shm_free(s);
        return 0;
    }
    return 1;
}

static void
set_release(void)
{
    conc_event_set(release);
}

static int
program(const char *order, const char *name)
{
    snprintf(seg_name, sizeof seg_name, "%s", name);
    for (const char *c = order; *c; c++)
        if (touch(*c))
            return 10;
    conc_shm *s;
    conc_thread *t;
    conc_process_opts po = {.daemon = CONC_DAEMON_YES};
    char c;
    if (conc_shm_create(seg_name, 64, &s) || conc_event_new(NULL, &release) ||
        pipe(ready) ||
        conc_process_new(daemon_main, NULL, 0, &po, &daemon_child) ||
        conc_process_start(daemon_child) || read(ready[0], &c, 1) != 1 ||
        conc_thread_start(thread_main, NULL, NULL, &t))
        return 11;
    conc_thread_free(t); /* it runs on, and exit waits for it */
    conc_shm_close(s);   /* left for exit to unlink */
    atexit(set_release);
    exit(0);
}

/* ---- The test ----------------------------------------------------------- */

static char self_path[4096];

/* Runs the program with `order`; returns what it reported, in `out`. */
static void
run_program(const char *order, const char *name, char *out, size_t cap)
{
    int rp[2];
    assert_int_equal(pipe2(rp, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(rp[1], REPORT_FD) != REPORT_FD)
            _exit(12);
        execl(self_path, self_path, "--exit-program", order, name,
              (char *)NULL);
        _exit(13);
    }
    close(rp[1]);
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = rp[0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(BOUND * 1000)), 1);
        ssize_t n = read(rp[0], out + len, cap - 1 - len);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    close(rp[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_exit_order(void **state)
{
    (void)state;
    static const char *orders[] = {"tps", "tsp", "pts", "pst", "stp", "spt"};
    for (size_t i = 0; i < sizeof orders / sizeof *orders; i++) {
        char name[64], out[256];
        snprintf(name, sizeof name, "conc_test_exit_%d_%s", (int)getpid(),
                 orders[i]);
        run_program(orders[i], name, out, sizeof out);
        print_message("order %s: %s", orders[i], out);
        /* T ended before the children stage, and before the segment was
         * unlinked; D was terminated, before the segment was unlinked. */
        assert_non_null(strstr(out, "T ended=0 seg=1\n"));
        assert_non_null(strstr(out, "D term=1 seg=1\n"));
        snprintf(seg_name, sizeof seg_name, "%s", name);
        assert_false(seg_exists()); /* and then it was */
    }
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--exit-program") == 0)
        return program(argv[2], argv[3]);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0)
        return 1;
    self_path[n] = '\0';
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_exit_order),
    };
    return conc_run_tests(tests);
}
