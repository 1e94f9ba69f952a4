/* aio_subprocess_pipeline: a shell pipeline wired by coroutines, and
 * producers read all at once, on one loop.
 *
 *   - The pipeline is `seq 1 100000 | grep 7 | wc -l` with no shell: three
 *     programs started by conc_aio_create_subprocess_exec, and two
 *     coroutines that copy one program's stdout stream into the next
 *     one's stdin stream, with drain as backpressure, closing the next
 *     stdin at the end of the stream. The count is checked against the
 *     same count made in C.
 *   - Meanwhile three `sh -c` producers, each printing its lines with a
 *     short pause between them, are read by three coroutines through
 *     communicate; they run side by side, so the whole takes about as
 *     long as one of them.
 *
 * In Python: asyncio.create_subprocess_exec with stdout=PIPE, a task per
 * pipe copying `await src.read(n)` into `dst.write(...); await
 * dst.drain()`, and asyncio.gather over the producers' communicate().
 * Output:
 *
 *     pipeline: seq 1 100000 | grep 7 | wc -l = 40951 (40951 expected)
 *     producer 0: 3 lines, exit 0
 *     producer 1: 3 lines, exit 0
 *     producer 2: 3 lines, exit 0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define SEQ_N      100000
#define SEQ_ARG    "100000"
#define COPY_CHUNK (64 * 1024) /* bytes moved per read */
#define PRODUCERS  3
#define BOUND      30.0 /* seconds: every wait ends well before this */

/* What `grep 7 | wc -l` counts: the numbers of 1..n with a digit 7. */
static long
count_sevens(long n)
{
    long c = 0;
    for (long i = 1; i <= n; i++)
        for (long k = i; k; k /= 10)
            if (k % 10 == 7) {
                c++;
                break;
            }
    return c;
}

struct link {
    conc_aio_stream *from, *to;
};

/* Copies `from` into `to` until the end of stream, then closes `to` so
 * that the next program sees its end of input. */
static int
copy_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct link *l = arg;
    conc_buf chunk = CONC_BUF_INIT;
    int rc;
    for (;;) {
        rc = conc_aio_stream_read(l->from, COPY_CHUNK, BOUND, &chunk);
        if (rc < 0 || chunk.len == 0)
            break;
        rc = conc_aio_stream_write(l->to, chunk.data, chunk.len);
        if (rc == 0)
            rc = conc_aio_stream_drain(l->to, BOUND);
        if (rc < 0)
            break;
    }
    conc_buf_free(&chunk);
    conc_aio_stream_close(l->to);
    return rc;
}

static conc_aio_subprocess *
start(char *const argv[], int in_pipe)
{
    conc_aio_subprocess_opts o = {0};
    o.popen.stdin_mode = in_pipe ? CONC_STDIO_PIPE : CONC_STDIO_DEVNULL;
    o.popen.stdout_mode = CONC_STDIO_PIPE;
    conc_aio_subprocess *p;
    check(conc_aio_create_subprocess_exec(argv, &o, &p), argv[0]);
    return p;
}

/* Starts the copier from a's stdout into b's stdin. */
static conc_future *
link_up(conc_aio_subprocess *a, conc_aio_subprocess *b)
{
    struct link l;
    check(conc_aio_subprocess_stdout(a, &l.from), "stdout");
    check(conc_aio_subprocess_stdin(b, &l.to), "stdin");
    conc_future *f;
    check(conc_aio_create_task(copy_task, &l, sizeof l, NULL, &f), "task");
    return f;
}

static int
pipeline_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_subprocess *seq = start((char *[]){"seq", "1", SEQ_ARG, NULL}, 0);
    conc_aio_subprocess *grep = start((char *[]){"grep", "7", NULL}, 1);
    conc_aio_subprocess *wc = start((char *[]){"wc", "-l", NULL}, 1);
    conc_future *links[2] = {link_up(seq, grep), link_up(grep, wc)};
    conc_aio_stream *out;
    conc_buf text = CONC_BUF_INIT;
    check(conc_aio_subprocess_stdout(wc, &out), "wc stdout");
    check(conc_aio_stream_read(out, CONC_AIO_READ_ALL, BOUND, &text), "read");
    check(conc_aio_gather(links, 2, 0), "copiers");
    conc_aio_subprocess *all[3] = {seq, grep, wc};
    for (int i = 0; i < 3; i++) {
        int code = -1;
        check(conc_aio_subprocess_wait(all[i], BOUND, &code), "wait");
        check(code == 0 ? 0 : CONC_EPROCESS, "exit code");
        conc_aio_subprocess_free(all[i]);
    }
    conc_future_free(links[0]);
    conc_future_free(links[1]);
    check(conc_buf_append(&text, "", 1), "text");
    long got = strtol((const char *)text.data, NULL, 10);
    long want = count_sevens(SEQ_N);
    printf("pipeline: seq 1 %d | grep 7 | wc -l = %ld (%ld expected)\n", SEQ_N,
           got, want);
    conc_buf_free(&text);
    return got == want ? 0 : CONC_EVALUE;
}

/* One producer: its lines through communicate; the result is the number
 * of lines and the exit code. */
static int
producer_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    int id = *(const int *)arg;
    char cmd[128];
    snprintf(cmd, sizeof cmd,
             "for i in 1 2 3; do echo producer %d line $i; sleep 0.05; done",
             id);
    conc_aio_subprocess_opts o = {.popen.stdout_mode = CONC_STDIO_PIPE};
    conc_aio_subprocess *p;
    int rc = conc_aio_create_subprocess_shell(cmd, &o, &p);
    if (rc < 0)
        return rc;
    conc_buf out = CONC_BUF_INIT;
    rc = conc_aio_subprocess_communicate(p, NULL, 0, BOUND, &out, NULL);
    int counts[2] = {0, -1};
    for (size_t i = 0; i < out.len; i++)
        counts[0] += out.data[i] == '\n';
    if (rc == 0)
        conc_aio_subprocess_returncode(p, &counts[1]);
    conc_buf_free(&out);
    conc_aio_subprocess_free(p);
    return rc < 0 ? rc : conc_buf_append(result, counts, sizeof counts);
}

static int
main_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *f[1 + PRODUCERS];
    check(conc_aio_create_task(pipeline_task, NULL, 0, NULL, &f[0]), "task");
    for (int i = 0; i < PRODUCERS; i++)
        check(
            conc_aio_create_task(producer_task, &i, sizeof i, NULL, &f[1 + i]),
            "task");
    check(conc_aio_gather(f, 1 + PRODUCERS, 0), "gather");
    for (int i = 0; i < PRODUCERS; i++) {
        const void *data;
        size_t n;
        check(conc_future_result(f[1 + i], 0, &data, &n), "result");
        int counts[2];
        memcpy(counts, data, sizeof counts);
        printf("producer %d: %d lines, exit %d\n", i, counts[0], counts[1]);
    }
    for (int i = 0; i < 1 + PRODUCERS; i++)
        conc_future_free(f[i]);
    return 0;
}

int
main(void)
{
    check(conc_aio_run(main_task, NULL, 0, NULL), "main");
    return 0;
}
