/* s001_queue_basic: seed 001, 队列 (multiprocessing.Queue), its methods and
 * a queue shared with two children.
 *
 * First part: the Python makes Queue(3), puts 3, 2 and 1, tries
 * put_nowait(4) on the full queue ('队列已经满了'), prints full() (True),
 * gets 3, 2, 1, tries get_nowait() on the empty queue ('队列已经空了') and
 * prints empty() (True). conc_mpqueue with maxsize 3 does the same;
 * put_nowait and get_nowait return CONC_EFULL and CONC_EEMPTY where Python
 * raises queue.Full and queue.Empty. The numbers travel as their text.
 *
 * Second part: the parent puts '小鬼', starts f, which puts
 * '姑娘,多少钱~', and f2, which prints '》》》》》》》》' and gets the
 * first message, '小鬼'; the parent gets the second. The seed sleeps a
 * second first; here the parent's get simply waits for the message. The
 * output of both parts is the seed's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define MESSAGE_WAIT 10.0 /* seconds; the messages come at once */

static conc_mpqueue *q; /* made before the fork; the children inherit it */

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

static void
put_text(conc_mpqueue *queue, const char *text)
{
    check(conc_mpqueue_put(queue, text, strlen(text), MESSAGE_WAIT),
          "conc_mpqueue_put");
}

/* print(q.get()) */
static void
print_get(conc_mpqueue *queue)
{
    conc_buf b;
    conc_buf_init(&b);
    check(conc_mpqueue_get(queue, MESSAGE_WAIT, &b), "conc_mpqueue_get");
    printf("%.*s\n", (int)b.len, b.len ? (const char *)b.data : "");
    conc_buf_free(&b);
}

static void
queue_methods(void)
{
    conc_mpqueue *small;
    conc_mpqueue_opts opts = {.maxsize = 3};
    check(conc_mpqueue_new(&opts, &small), "conc_mpqueue_new");
    put_text(small, "3");
    put_text(small, "2");
    put_text(small, "1");
    int rc = conc_mpqueue_put_nowait(small, "4", 1);
    if (rc == CONC_EFULL)
        printf("队列已经满了\n");
    else
        check(rc == 0 ? CONC_EPROCESS : rc, "conc_mpqueue_put_nowait");
    printf("%s\n", conc_mpqueue_full(small) ? "True" : "False");
    print_get(small);
    print_get(small);
    print_get(small);
    conc_buf b;
    conc_buf_init(&b);
    rc = conc_mpqueue_get_nowait(small, &b);
    if (rc == CONC_EEMPTY)
        printf("队列已经空了\n");
    else
        check(rc == 0 ? CONC_EPROCESS : rc, "conc_mpqueue_get_nowait");
    conc_buf_free(&b);
    printf("%s\n", conc_mpqueue_empty(small) ? "True" : "False");
    conc_mpqueue_free(small);
}

static int
f(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    put_text(q, "姑娘,多少钱~");
    return 0;
}

static int
f2(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    printf("》》》》》》》》\n");
    print_get(q);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    queue_methods();

    check(conc_mpqueue_new(NULL, &q), "conc_mpqueue_new");
    put_text(q, "小鬼");
    conc_process *p = start(f, NULL, 0, NULL);
    conc_process *p2 = start(f2, NULL, 0, NULL);
    join(p2); /* f2 takes '小鬼', the first message */
    print_get(q);
    join(p);
    conc_mpqueue_free(q);
    return 0;
}
