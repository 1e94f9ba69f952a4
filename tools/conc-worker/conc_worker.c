/* conc-worker: serves a queue with task functions loaded from a shared
 * library, or prints a queue's status.
 *
 *   conc-worker [options] LIBRARY.so NAME[=SYMBOL]...
 *   conc-worker --status [options]
 *
 * Each NAME is registered as the conc_task_fn the library exports as
 * SYMBOL (NAME itself by default), so a library of plain task functions,
 * the ones a thread or process pool runs, needs nothing more. Options:
 *   --url URL            the server (default $REDIS_URL or
 *                        redis://127.0.0.1:6379); the password comes from
 *                        the URL or $REDIS_PASSWORD
 *   --queue NAME         the queue (default "default")
 *   --threads N          serving threads (default 1)
 *   --processes N        run the tasks in N worker processes (a task that
 *                        crashes one fails alone; the process is replaced)
 *   --batch N            tasks taken from the server at a time (default
 *                        64, or 1 with --processes; at most 1024)
 *   --reclaim-idle S     seconds before a silent worker's task is taken over
 *   --max-deliveries N   deliveries before a task is dead-lettered
 * SIGINT and SIGTERM stop the worker once its running tasks are done.
 * Exit status: 0, 1 for an error (printed), 2 for bad usage. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"

struct args {
    const char *url, *queue, *library;
    int status;
    conc_dist_worker_opts opts;
    char **tasks;
    int ntasks;
};

static conc_dist_worker *worker;

static void
on_signal(int sig)
{
    (void)sig;
    conc_dist_worker_stop(worker); /* async-signal-safe */
}

static int
usage(void)
{
    fputs("usage: conc-worker [--url URL] [--queue NAME] [--threads N]\n"
          "                   [--processes N] [--batch N] [--reclaim-idle S]\n"
          "                   [--max-deliveries N]\n"
          "                   LIBRARY.so NAME[=SYMBOL]...\n"
          "       conc-worker --status [--url URL] [--queue NAME]\n",
          stderr);
    return 2;
}

/* Parses a count (decimal digits only) into *out. Returns 0 or 2. */
static int
count_arg(const char *v, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || (size_t)n != n || *v < '0' || *v > '9')
        return 2;
    *out = (size_t)n;
    return 0;
}

/* Reads the options; returns 0 or 2 (bad usage). */
static int
parse(int argc, char **argv, struct args *a)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--status") == 0) {
            a->status = 1;
            continue;
        }
        if (i + 1 >= argc)
            return 2;
        const char *v = argv[++i];
        size_t *count = strcmp(o, "--threads") == 0     ? &a->opts.threads
                        : strcmp(o, "--processes") == 0 ? &a->opts.processes
                        : strcmp(o, "--batch") == 0     ? &a->opts.batch
                                                        : NULL;
        if (count) {
            if (count_arg(v, count) != 0)
                return 2;
        } else if (strcmp(o, "--url") == 0)
            a->url = v;
        else if (strcmp(o, "--queue") == 0)
            a->queue = v;
        else if (strcmp(o, "--reclaim-idle") == 0)
            a->opts.reclaim_idle = atof(v);
        else if (strcmp(o, "--max-deliveries") == 0)
            a->opts.max_deliveries = (unsigned)strtoul(v, NULL, 10);
        else
            return 2;
    }
    if (a->status)
        return i == argc ? 0 : 2;
    if (argc - i < 2)
        return 2;
    a->library = argv[i];
    a->tasks = argv + i + 1;
    a->ntasks = argc - i - 1;
    return 0;
}

static int
print_status(const struct args *a)
{
    conc_dist_status st;
    int r = conc_dist_status_get(a->url, getenv("REDIS_PASSWORD"), a->queue, 10,
                                 &st);
    if (r < 0) {
        fprintf(stderr, "conc-worker: status of %s: %s\n", a->queue,
                conc_err_name(r));
        return 1;
    }
    printf("queue %s: %llu queued, %llu in flight, %llu workers seen, "
           "%llu dead letters\n",
           a->queue, (unsigned long long)st.queued,
           (unsigned long long)st.in_flight,
           (unsigned long long)st.workers_seen,
           (unsigned long long)st.dead_letters);
    return 0;
}

/* Registers every NAME[=SYMBOL] from the library. */
static int
load_tasks(const struct args *a)
{
    void *lib = dlopen(a->library, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "conc-worker: %s\n", dlerror());
        return 1;
    }
    for (int i = 0; i < a->ntasks; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s", a->tasks[i]);
        char *eq = strchr(name, '=');
        const char *sym = eq ? eq + 1 : name;
        if (eq)
            *eq = '\0';
        void *p = dlsym(lib, sym);
        conc_task_fn fn;
        memcpy(&fn, &p, sizeof fn); /* a data pointer to a function's */
        int r = p ? conc_dist_register(name, fn) : CONC_ENOENT;
        if (r < 0) {
            fprintf(stderr, "conc-worker: task %s (symbol %s): %s\n", name, sym,
                    p ? conc_err_name(r) : "no such symbol");
            return 1;
        }
    }
    return 0; /* the library stays loaded while the tasks may run */
}

int
main(int argc, char **argv)
{
    struct args a = {.url = getenv("REDIS_URL"), .queue = "default"};
    if (!a.url)
        a.url = "redis://127.0.0.1:6379";
    if (parse(argc, argv, &a) != 0)
        return usage();
    if (a.status)
        return print_status(&a);
    if (load_tasks(&a) != 0)
        return 1;
    int r = conc_dist_worker_new(a.url, getenv("REDIS_PASSWORD"), a.queue,
                                 &a.opts, &worker);
    if (r == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        r = conc_dist_worker_run(worker, CONC_FOREVER);
        conc_dist_worker_free(worker);
    }
    if (r < 0) {
        fprintf(stderr, "conc-worker: %s: %s\n", a.url, conc_err_name(r));
        return 1;
    }
    return 0;
}
