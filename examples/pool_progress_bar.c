/* pool_progress_bar: a terminal progress bar driven by a map's progress
 * callback.
 *
 * Not a seed program: it shows what conc_map_opts.progress is for. A
 * process Pool maps a slow task over 400 items in chunks of 4; the pool
 * calls progress(arg, done, total) from the thread that collects results,
 * each time more items are done, and the callback redraws the bar.
 *
 * On a terminal the bar is redrawn in place with '\r'; when the output is
 * a file or a pipe it prints a line at every tenth instead, so a log stays
 * readable. The callback only formats a line: it must be short, as it runs
 * on the pool's collecting thread. The run takes about 0.4 s on two cores.
 */
#define _POSIX_C_SOURCE 200809L /* fileno */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define N_ITEMS   400
#define WORK      0.002 /* seconds of "work" per item */
#define BAR_WIDTH 40

typedef struct bar {
    int tty;          /* redraw in place */
    size_t last_step; /* without a terminal: the last tenth printed */
} bar;

static int
square(const void *arg, size_t len, conc_buf *result)
{
    const int *n = arg;
    if (len != sizeof *n)
        return conc_fail(CONC_EINVAL, "bad argument");
    int rc = conc_sleep(WORK);
    if (rc != 0)
        return rc;
    int r = *n * *n;
    return conc_buf_append(result, &r, sizeof r);
}

/* conc_progress_fn: draws "[#####.....]  50% 200/400". */
static void
draw(void *arg, size_t done, size_t total)
{
    bar *b = arg;
    if (total == 0)
        return; /* a generator whose end is unknown: nothing to scale by */
    size_t step = done * 10 / total;
    if (!b->tty && step == b->last_step && done != total)
        return;
    b->last_step = step;
    char cells[BAR_WIDTH + 1];
    size_t full = done * BAR_WIDTH / total;
    memset(cells, '#', full);
    memset(cells + full, '.', BAR_WIDTH - full);
    cells[BAR_WIDTH] = '\0';
    printf("%s[%s] %3zu%% %zu/%zu%s", b->tty ? "\r" : "", cells,
           done * 100 / total, done, total, b->tty ? "" : "\n");
    fflush(stdout);
}

int
main(void)
{
    static int numbers[N_ITEMS], squares[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++)
        numbers[i] = i;
    bar b = {.tty = isatty(fileno(stdout)), .last_step = (size_t)-1};
    conc_pool *pool;
    check(conc_pool_new(NULL, &pool), "conc_pool_new");
    conc_map_opts opts = {.chunksize = 4, .progress = draw, .progress_arg = &b};
    check(conc_pool_map(pool, square, &CONC_ITEMS(numbers, N_ITEMS), squares,
                        sizeof squares[0], &opts, CONC_FOREVER),
          "conc_pool_map");
    if (b.tty)
        printf("\n");
    printf("squares[%d] = %d\n", N_ITEMS - 1, squares[N_ITEMS - 1]);
    conc_pool_free(pool);
    return 0;
}
