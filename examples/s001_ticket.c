/* s001_ticket: seed 001, 六 mulitprocess模块, 模拟抢票 (grabbing tickets).
 *
 * The Python keeps the tickets left in a file, db, holding {"count":1}.
 * Three processes each run search() (read the file, print '剩余票数1') and
 * then get() under a multiprocessing.Lock: read the file, wait 0.1 s (the
 * network), and if a ticket is left write the count minus one back after
 * another 0.2 s and print '购票成功', else 'sorry,没票了亲!'. With the lock
 * exactly one process buys. The seed's comments also tell what happens
 * without the lock: every process reads count 1 before anyone writes, and
 * all of them "buy" the one ticket.
 *
 * This program runs both rounds, each on a fresh temporary file under /tmp
 * (removed at the end): first without the lock, where the race usually
 * sells the ticket several times (shown as it happens, not treated as a
 * failure, since the scheduler decides), then with a process-shared
 * conc_lock, where exactly one sale is checked. The sales are counted in a
 * shared conc_value. The delays are 10 ms and 20 ms; the colours (ANSI
 * escapes) are the seed's.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define N_PROCESSES 3
#define READ_DELAY  0.01 /* the seed's 0.1 s */
#define WRITE_DELAY 0.02 /* the seed's 0.2 s */

static char db[64];      /* the file's name */
static conc_lock *lock;  /* process-shared; NULL in the round without it */
static conc_value *sold; /* tickets sold, shared by every process */

/* Process(target=fn, args=...) followed by start(). */
static conc_process *
start(conc_process_fn fn, const void *arg, size_t len,
      const conc_process_opts *opts)
{
    conc_process *p;
    check(conc_process_new(fn, arg, len, opts, &p), "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

/* json.load(open('db'))['count'] */
static int
load_count(void)
{
    FILE *f = fopen(db, "r");
    check(f ? 0 : CONC_ENOENT, "fopen");
    int count = -1;
    int got = fscanf(f, " {\"count\" : %d }", &count);
    fclose(f);
    check(got == 1 ? 0 : CONC_EPROTO, "reading db");
    return count;
}

/* json.dump({'count': count}, open('db', 'w')) */
static void
dump_count(int count)
{
    FILE *f = fopen(db, "w");
    check(f ? 0 : CONC_ENOENT, "fopen");
    fprintf(f, "{\"count\": %d}", count);
    check(fclose(f) == 0 ? 0 : CONC_EINVAL, "fclose");
}

static void
search(void)
{
    printf("\033[43m剩余票数%d\033[0m\n", load_count());
}

static void
get(void)
{
    int count = load_count();
    check(conc_sleep(READ_DELAY), "conc_sleep");
    if (count > 0) {
        count -= 1;
        check(conc_sleep(WRITE_DELAY), "conc_sleep");
        dump_count(count);
        printf("\033[43m购票成功\033[0m\n");
        check(conc_value_acquire(sold, CONC_FOREVER), "conc_value_acquire");
        *(int64_t *)conc_value_ptr(sold) += 1;
        check(conc_value_release(sold), "conc_value_release");
    } else {
        printf("sorry,没票了亲!\n");
    }
}

static int
task(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    search();
    if (lock)
        check(conc_lock_acquire(lock, CONC_FOREVER), "conc_lock_acquire");
    get();
    if (lock)
        check(conc_lock_release(lock), "conc_lock_release");
    return 0;
}

/* Runs three buyers on a fresh db and returns how many tickets they sold. */
static int64_t
round_of_sales(void)
{
    snprintf(db, sizeof db, "/tmp/conc-ticket-db-XXXXXX");
    int fd = mkstemp(db);
    check(fd < 0 ? CONC_ENOENT : 0, "mkstemp");
    close(fd);
    dump_count(1);
    check(conc_value_set_i64(sold, 0), "conc_value_set_i64");
    conc_process *p[N_PROCESSES];
    for (int i = 0; i < N_PROCESSES; i++)
        p[i] = start(task, NULL, 0, NULL);
    for (int i = 0; i < N_PROCESSES; i++) {
        check(conc_process_join(p[i], CONC_FOREVER), "conc_process_join");
        int code = -1;
        check(conc_process_exitcode(p[i], &code) == 1 && code == 0
                  ? 0
                  : CONC_EPROCESS,
              "buyer");
        conc_process_free(p[i]);
    }
    remove(db);
    int64_t n;
    check(conc_value_get_i64(sold, &n), "conc_value_get_i64");
    return n;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    check(conc_value_new(CONC_CTYPE_I64, NULL, NULL, &sold), "conc_value_new");

    printf("-- without the lock --\n");
    int64_t n = round_of_sales();
    printf("one ticket, sold %lld time(s)%s\n", (long long)n,
           n > 1 ? ": the buyers raced" : "");

    printf("-- with the lock --\n");
    conc_sync_opts shared = {.arena = arena};
    check(conc_lock_new(&shared, &lock), "conc_lock_new");
    n = round_of_sales();
    printf("one ticket, sold %lld time(s)\n", (long long)n);
    conc_lock_free(lock);
    conc_value_free(sold);
    return n == 1 ? 0 : EXIT_FAILURE;
}
