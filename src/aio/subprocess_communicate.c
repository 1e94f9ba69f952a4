/* Process.communicate on the loop.
 *
 * Design. Feeding stdin and reading stdout and stderr must all go on at
 * once, or a child that fills one pipe while we wait on another
 * deadlocks. asyncio gathers three coroutines; conc does the same with a
 * TaskGroup: a helper task feeds stdin, another reads stderr, and the
 * caller's task itself reads stdout. The group's exit waits for every
 * helper whatever happens (a timeout, a failure, a cancellation of the
 * caller), so the helpers never outlive the call's frame, whose state
 * they share through a pointer.
 *
 * Nothing is lost at a timeout: output is appended to the process's
 * buffers as it comes (handed to the caller only when a call succeeds),
 * and the input not yet handed to the stdin stream is kept for the next
 * call (what the stream holds it sends by itself). With kill_on_timeout a
 * timeout kills the child (and its group), reaps it, reads what the pipes
 * still hold for a bounded time and closes them, so that the next call
 * succeeds at once with that output.
 *
 * Everything runs in the loop's thread: no locks. */
#include <errno.h>
#include <string.h>

#include "aio/subprocess.h"
#include "core/internal.h"
#include "subprocess/subprocess_internal.h"

/* What the feeder hands to the stdin stream at a time: asyncio's
 * high-water mark, so the stream's buffer stays bounded. */
#define FEED_CHUNK (64u * 1024)
/* What one read of stdout or stderr takes at most. */
#define READ_CHUNK (1024u * 1024)
/* After a timeout killed the child's group, how long the pipes are read
 * to their end (the sync module's bound), and without a group, where
 * surviving grandchildren may hold them open, how long for what is
 * already on its way. */
#define KILL_DRAIN_NS ((int64_t)1000000000)
#define KILL_PEEK_NS  ((int64_t)10000000)

struct comm {
    conc_aio_subprocess *p;
    int64_t deadline;
    const uint8_t *input; /* the bytes the feeder writes */
    size_t len, off;      /* their size, and how many it handed over */
};

/* The time left until `deadline`, as a relative timeout. */
static double
left(int64_t deadline)
{
    if (deadline == CONC__FOREVER)
        return CONC_FOREVER;
    int64_t ns = deadline - conc__now_ns();
    return ns > 0 ? (double)ns / 1e9 : 0.0;
}

/* A child that exits without reading all its input breaks the pipe: not
 * an error (Python ignores BrokenPipeError and ConnectionResetError). */
static int
broken(int r)
{
    return r == -EPIPE || r == -ECONNRESET;
}

/* Writes the input in chunks, draining after each, then closes stdin and
 * waits until the stream has sent everything. */
static int
feed(struct comm *c)
{
    conc_aio_stream *s = c->p->stream[0];
    int r = 0;
    while (c->off < c->len) {
        size_t n = c->len - c->off < FEED_CHUNK ? c->len - c->off : FEED_CHUNK;
        r = conc_aio_stream_write(s, c->input + c->off, n);
        if (r == CONC_EFULL) {
            r = conc_aio_stream_drain(s, left(c->deadline));
            if (r == 0)
                continue;
        }
        if (r < 0)
            break;
        c->off += n;
        if ((r = conc_aio_stream_drain(s, left(c->deadline))) < 0)
            break;
    }
    if (r == 0 || broken(r)) {
        conc_aio_stream_close(s);
        r = conc_aio_stream_wait_closed(s, left(c->deadline));
    }
    return broken(r) ? 0 : r;
}

/* Reads stream i (1 or 2) to its end into the process's buffer. A stream
 * closed by an earlier timeout has nothing more to give. */
static int
gather_output(struct comm *c, int i)
{
    conc_aio_stream *s = c->p->stream[i];
    if (!s || conc_aio_stream_is_closing(s))
        return 0;
    conc_buf chunk;
    conc_buf_init(&chunk);
    int r;
    for (;;) {
        r = conc_aio_stream_read(s, READ_CHUNK, left(c->deadline), &chunk);
        if (r < 0 || chunk.len == 0)
            break;
        if ((r = conc_buf_append(&c->p->got[i - 1], chunk.data, chunk.len)))
            break;
    }
    conc_buf_free(&chunk);
    return r;
}

static int
feed_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    return feed(*(struct comm *const *)arg);
}

static int
stderr_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    return gather_output(*(struct comm *const *)arg, 2);
}

/* Feeds and reads everything at once, until the pipes end or the
 * deadline. Returns 0 or the first failure. */
static int
pump(struct comm *c)
{
    conc_aio_subprocess *p = c->p;
    if (p->stream[0] && c->off == c->len) /* nothing to write: EOF now */
        conc_aio_stream_close(p->stream[0]);
    conc_aio_taskgroup *tg;
    int r = conc_aio_taskgroup_new(&tg);
    if (r < 0)
        return r;
    struct comm *cp = c;
    if (c->off < c->len)
        r = conc_aio_taskgroup_create_task(tg, feed_task, &cp, sizeof cp, NULL,
                                           NULL);
    if (r == 0 && p->stream[1] && p->stream[2])
        r = conc_aio_taskgroup_create_task(tg, stderr_task, &cp, sizeof cp,
                                           NULL, NULL);
    if (r == 0)
        r = gather_output(c, p->stream[1] ? 1 : 2);
    r = conc_aio_taskgroup_exit(tg, r);
    conc_aio_taskgroup_free(tg);
    return r;
}

/* After a call that did not finish: keeps the input not handed over. */
static int
keep_input(conc_aio_subprocess *p, struct comm *c, int from_caller)
{
    if (!from_caller) {
        conc_buf_consume(&p->pending, c->off);
        return 0;
    }
    if (c->off == c->len)
        return 0;
    int r = conc_buf_append(&p->pending, c->input + c->off, c->len - c->off);
    if (r < 0) /* the rest cannot be kept: the child gets its end of input */
        conc_aio_stream_close(p->stream[0]);
    return r;
}

/* The timeout of kill_on_timeout: kill, reap, read what is left, close. */
static void
kill_and_drain(conc_aio_subprocess *p)
{
    conc__popen_kill_reap(p->popen);
    conc_buf_free(&p->pending);
    struct comm c = {.p = p,
                     .deadline =
                         conc__now_ns() +
                         (p->popen->leader ? KILL_DRAIN_NS : KILL_PEEK_NS)};
    (void)pump(&c);
    for (int i = 1; i < 3; i++)
        if (p->stream[i])
            conc_aio_stream_close(p->stream[i]);
}

/* Hands the output over: replaces *out and *err, empties the buffers. */
static int
hand_over(conc_aio_subprocess *p, conc_buf *out, conc_buf *err)
{
    conc_buf *dst[2] = {out, err};
    conc_buf tmp[2];
    for (int i = 0; i < 2; i++) {
        conc_buf_init(&tmp[i]);
        const void *data = p->got[i].len ? p->got[i].data : (void *)"";
        if (dst[i] && conc__buf_set(&tmp[i], data, p->got[i].len)) {
            conc_buf_free(&tmp[0]);
            return CONC_ENOMEM;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (dst[i]) {
            conc_buf_free(dst[i]);
            *dst[i] = tmp[i];
        }
        conc_buf_free(&p->got[i]);
    }
    return 0;
}

static int
check(conc_aio_subprocess *p, const void *input, size_t len, double timeout,
      int64_t *deadline)
{
    if (!p || (!input && len) || conc__deadline(timeout, deadline) < 0)
        return CONC_EINVAL;
    if (input && !p->stream[0])
        return conc_fail(CONC_EINVAL, "input given, but stdin is not a pipe");
    conc_future *self;
    if (conc_aio_current_task(&self) < 0)
        return conc_fail(CONC_ESTATE, "communicate is called from a task");
    if (p->communicating)
        return conc_fail(CONC_ESTATE, "another task communicates");
    if (input && p->comm_started)
        return conc_fail(CONC_ESTATE, "input given again after a first call");
    return 0;
}

static int
communicate(conc_aio_subprocess *p, const void *input, size_t len,
            int64_t deadline, conc_buf *out, conc_buf *err)
{
    int from_caller = !p->comm_started;
    p->comm_started = 1;
    struct comm c = {.p = p, .deadline = deadline};
    if (from_caller) {
        c.input = input;
        c.len = input ? len : 0;
    } else {
        c.input = p->pending.data;
        c.len = p->pending.len;
    }
    int r = pump(&c);
    if (r == 0) /* a cancellation point, as the stream calls are */
        r = conc_popen_wait(p->popen, left(deadline), NULL);
    if (r < 0) {
        int k = keep_input(p, &c, from_caller);
        if (r == CONC_ETIMEDOUT && p->kill_on_timeout)
            kill_and_drain(p);
        return k < 0 && r != CONC_ETIMEDOUT ? k : r;
    }
    conc_buf_free(&p->pending);
    return hand_over(p, out, err);
}

int
conc_aio_subprocess_communicate(conc_aio_subprocess *p, const void *input,
                                size_t len, double timeout, conc_buf *out,
                                conc_buf *err)
{
    int64_t deadline;
    int r = check(p, input, len, timeout, &deadline);
    if (r < 0)
        return r;
    p->communicating = 1;
    r = communicate(p, input, len, deadline, out, err);
    p->communicating = 0;
    return r;
}
