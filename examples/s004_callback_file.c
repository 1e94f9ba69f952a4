/* s004_callback_file: seed 004, 一 进程池, 多进程向同一文件写入数据 (results
 * written to one file by a callback).
 *
 * The Python creates Pool(6) and hands it run(i) for i in range(1000) with
 * apply_async and callback=callback; run returns num * num, and callback
 * opens a.txt for appending and writes the result on a line of its own.
 * Only the parent writes the file, one callback at a time, so no line is
 * lost or torn although six processes compute.
 *
 * conc_apply_opts.arg carries the file's name to the callback. a.txt is a
 * temporary file here; after close() and join() main reads it back, checks
 * that it holds 1000 lines whose sum is that of the squares, prints that,
 * and removes it. The order of the lines in the file varies.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define N_TASKS 1000

/* In the parent's result thread, one call at a time. */
static void
callback(void *arg, const void *result, size_t len)
{
    const char *path = arg;
    int64_t r = 0;
    check(len == sizeof r ? 0 : CONC_EVALUE, "result size");
    r = *(const int64_t *)result;
    FILE *f = fopen(path, "a+");
    check(f ? 0 : -errno, "fopen");
    fprintf(f, "%" PRId64 "\n", r);
    check(fclose(f) == 0 ? 0 : -errno, "fclose");
}

static int
run(const void *arg, size_t len, conc_buf *result)
{
    const int64_t *num = arg;
    if (len != sizeof *num)
        return conc_fail(CONC_EINVAL, "bad argument");
    int64_t r = *num * *num;
    return conc_buf_append(result, &r, sizeof r);
}

/* Reads the file back: the number of lines and their sum. */
static void
read_back(const char *path, int *lines, int64_t *sum)
{
    FILE *f = fopen(path, "r");
    check(f ? 0 : -errno, "fopen");
    int64_t v;
    *lines = 0;
    *sum = 0;
    while (fscanf(f, "%" SCNd64, &v) == 1) {
        ++*lines;
        *sum += v;
    }
    fclose(f);
}

int
main(void)
{
    char path[] = "/tmp/a.txt-XXXXXX";
    int fd = mkstemp(path);
    check(fd < 0 ? -errno : 0, "mkstemp");
    close(fd);

    conc_pool *pool;
    check(conc_pool_new(&(conc_pool_opts){.processes = 6}, &pool),
          "conc_pool_new");
    conc_apply_opts cb = {.callback = callback, .arg = path};
    for (int64_t i = 0; i < N_TASKS; i++)
        check(conc_pool_apply_async(pool, run, &i, sizeof i, &cb, NULL),
              "conc_pool_apply_async");
    check(conc_pool_close(pool), "conc_pool_close");
    check(conc_pool_join(pool, CONC_FOREVER), "conc_pool_join");
    conc_pool_free(pool);

    int lines;
    int64_t sum;
    read_back(path, &lines, &sum);
    remove(path);
    int64_t expected = (int64_t)(N_TASKS - 1) * N_TASKS * (2 * N_TASKS - 1) / 6;
    printf("a.txt: %d lines, sum %" PRId64
           " (the squares of 0..%d sum to %" PRId64 ")\n",
           lines, sum, N_TASKS - 1, expected);
    return lines == N_TASKS && sum == expected ? 0 : EXIT_FAILURE;
}
