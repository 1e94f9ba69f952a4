/* s000_queue_write_read: seed 000, section 4 (进程间通信), a Queue between
 * a writer and a reader.
 *
 * The Python creates a multiprocessing.Queue, starts a writer that puts the
 * letters of "WILLARD" one by one (printing "Put X to queue..." and sleeping
 * a random time up to a second after each) and a reader that loops for ever
 * on q.get() printing "Get X from queue."; it joins the writer and ends the
 * reader with terminate(), since its loop never ends. conc_mpqueue is the
 * Queue; the writer sleeps 20 ms after each put instead of a random time,
 * so each "Get" follows its "Put" as in the seed's output.
 *
 * One difference: in Python, terminate() may come before the reader has
 * printed the last letter. Here the reader releases a process-shared
 * semaphore after each line, and the parent takes it seven times before it
 * terminates the reader, so the output is always whole. The reader then
 * ends with exit code -15 (SIGTERM), which is checked.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define SECOND    0.02 /* one second of the seed, scaled down */
#define N_LETTERS 7

static conc_mpqueue *q;   /* made before the fork; the children inherit it */
static conc_sem *printed; /* released by the reader after each line */

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

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
write_letters(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    static const char letters[N_LETTERS] = {'W', 'I', 'L', 'L', 'A', 'R', 'D'};
    printf("Process to write:%d\n", (int)getpid());
    for (int i = 0; i < N_LETTERS; i++) {
        printf("Put %c to queue...\n", letters[i]);
        check(conc_mpqueue_put(q, &letters[i], 1, CONC_FOREVER),
              "conc_mpqueue_put");
        check(conc_sleep(SECOND), "conc_sleep");
    }
    return 0;
}

static int
read_letters(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conc_buf value;
    conc_buf_init(&value);
    printf("Process to read:%d\n", (int)getpid());
    int rc; /* the loop ends only if a get fails */
    while ((rc = conc_mpqueue_get(q, CONC_FOREVER, &value)) == 0) {
        printf("Get %c from queue.\n", value.data[0]);
        check(conc_sem_release(printed, 1), "conc_sem_release");
    }
    check(rc, "conc_mpqueue_get");
    return 0;
}

int
main(void)
{
    /* Each line goes out whole as it is printed, so that the processes'
     * lines interleave as they happen and a terminated one loses none. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    conc_arena *arena;
    check(conc_arena_default(&arena), "conc_arena_default");
    conc_sync_opts shared = {.arena = arena};
    check(conc_sem_new(0, &shared, &printed), "conc_sem_new");
    check(conc_mpqueue_new(NULL, &q), "conc_mpqueue_new");

    conc_process *pw = start(write_letters, NULL, 0, NULL);
    conc_process *pr = start(read_letters, NULL, 0, NULL);
    join(pw);
    for (int i = 0; i < N_LETTERS; i++)
        check(conc_sem_acquire(printed, 10.0), "conc_sem_acquire");
    /* The reader's loop never ends: end it by force. */
    check(conc_process_terminate(pr), "conc_process_terminate");
    check(conc_process_join(pr, CONC_FOREVER), "conc_process_join");
    int code = 0;
    check(conc_process_exitcode(pr, &code) == 1 ? 0 : CONC_ESTATE,
          "conc_process_exitcode");
    check(code == -SIGTERM ? 0 : CONC_EPROCESS, "the reader's exit code");
    conc_process_free(pr);
    conc_mpqueue_free(q);
    conc_sem_free(printed);
    return 0;
}
