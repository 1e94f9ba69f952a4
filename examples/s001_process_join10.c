/* s001_process_join10: seed 001, 六 mulitprocess模块, 开启多个进程.
 *
 * The Python starts ten processes running func('姑娘i', '来玩啊!'), which
 * prints both arguments, then joins them all, and only then prints
 * '不要钱~~~~~~~~~~~~~~~~!'. As the seed explains, a join inside the loop
 * would run the children one after the other; joining after the loop lets
 * them all run at once while the last line still comes last. The order of
 * the children's lines varies from run to run, as in Python.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conc.h"
#include "example_util.h"

#define N_PROCESSES 10

/* The arguments (x, y), copied into the child. */
typedef struct func_args {
    char x[32];
    char y[32];
} func_args;

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
func(const void *arg, size_t len)
{
    (void)len;
    const func_args *a = arg;
    printf("%s\n", a->x);
    printf("%s\n", a->y);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    conc_process *p_list[N_PROCESSES];
    for (int i = 0; i < N_PROCESSES; i++) {
        func_args a;
        snprintf(a.x, sizeof a.x, "姑娘%d", i);
        snprintf(a.y, sizeof a.y, "来玩啊!");
        p_list[i] = start(func, &a, sizeof a, NULL);
    }
    for (int i = 0; i < N_PROCESSES; i++)
        join(p_list[i]);
    printf("不要钱~~~~~~~~~~~~~~~~!\n");
    return 0;
}
