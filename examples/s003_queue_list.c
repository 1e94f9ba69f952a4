/* s003_queue_list: seed 003, 数据在不同进程间进行交换 (Queue).
 *
 * The Python passes a multiprocessing.Queue to a child that puts the list
 * [42, None, 156161]; the parent prints what it gets, then joins the
 * child. Messages are bytes in conc, so the child sends the list's text,
 * which the parent prints as Python would print the list.
 *
 * As in the seed, the queue is the child's argument (args=(q,)): its
 * conc_mpqueue_ref, bytes from which the child opens a handle of its own.
 * That works whichever way the child starts; this program uses the fork
 * server, whose children inherit nothing from the parent's memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

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

/* def f(qq): qq.put([42, None, 156161]) */
static int
f(const void *arg, size_t len)
{
    (void)len;
    conc_mpqueue *qq;
    check(conc_mpqueue_open(arg, &qq), "conc_mpqueue_open");
    static const char list[] = "[42, None, 156161]";
    check(conc_mpqueue_put(qq, list, strlen(list), CONC_FOREVER),
          "conc_mpqueue_put");
    conc_mpqueue_free(qq);
    return 0;
}

int
main(void)
{
    conc_mpqueue *q;
    check(conc_mpqueue_new(NULL, &q), "conc_mpqueue_new");
    conc_mpqueue_ref ref;
    check(conc_mpqueue_share(q, &ref), "conc_mpqueue_share");
    conc_process *p =
        start(f, &ref, sizeof ref,
              &(conc_process_opts){.method = CONC_START_FORKSERVER});
    conc_buf got;
    conc_buf_init(&got);
    check(conc_mpqueue_get(q, CONC_FOREVER, &got), "conc_mpqueue_get");
    printf("%.*s\n", (int)got.len, (const char *)got.data);
    conc_buf_free(&got);
    join(p);
    conc_mpqueue_free(q);
    return 0;
}
