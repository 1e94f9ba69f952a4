/* Scale-out over Redis Streams, from the inside: the wire format (wire.c,
 * pure), the connection (conn.c), and what the executor and the worker
 * share. docs/scale-out.md documents the wire format for other languages.
 *
 * Keys (one hash tag per queue, so that a queue's keys live on one Redis
 * Cluster slot and a Lua script may touch them all):
 *   {conc:Q}:tasks        stream of tasks; consumer group "workers"
 *   {conc:Q}:res:ID       a task's result, SET NX PX (first result wins)
 *   {conc:Q}:done:SUB     stream of results for submitter SUB
 *   {conc:Q}:dead         dead-letter stream
 *   {conc:Q}:lost         notices of task entries deleted while pending
 *   {conc:Q}:workers      hash: worker name -> last seen (ms since epoch)
 */
#ifndef CONC_DIST_INTERNAL_H
#define CONC_DIST_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/buf.h"
#include "conc/dist.h"

/* The consumer group every worker of a queue joins. */
#define CONC__DIST_GROUP "workers"
/* The longest queue name, task name, task id and submitter id. */
#define CONC__DIST_NAME_MAX 200
/* The longest stream entry id ("ms-seq", two uint64s) and its NUL. */
#define CONC__DIST_ENTRY_MAX 48
/* Notices of lost entries kept (a capped stream of notices, not of
 * tasks: trimming it loses no task). */
#define CONC__DIST_LOST_KEEP "10000"
/* The failure of a task whose entry was deleted before it was done. */
#define CONC__DIST_DELETED_MSG                                                 \
    "the task's entry was deleted from the stream before it was done"
/* Defaults of the options (see conc/dist.h). */
#define CONC__DIST_CONNECT_TIMEOUT 5.0
#define CONC__DIST_MAX_IN_FLIGHT   10000
#define CONC__DIST_RESULT_TTL      86400.0 /* Celery's result_expires */
#define CONC__DIST_RECLAIM_IDLE    60.0
#define CONC__DIST_MAX_DELIVERIES  5
/* How long after the oldest pending task entry (by their ids' times) the
 * finish_many script lets acknowledged entries wait for a trim instead of
 * deleting them (wire.c): bounds what a long task holds back to what was
 * added within this time after it. A string: it goes in the script. */
#define CONC__DIST_TRIM_LAG_MS "1000"
/* Entries a serving thread takes per XREADGROUP by default. */
#define CONC__DIST_WORKER_BATCH 64
/* The most it takes: bounds the memory a batch holds. */
#define CONC__DIST_WORKER_BATCH_MAX 1024

/* ---- Wire format (wire.c): pure functions, fuzzed ---------------------- */

/* 1 if `s` (n bytes) is a valid queue, task, worker or submitter name:
 * 1 to CONC__DIST_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
int conc__dist_name_ok(const char *s, size_t n);

/* Appends the key "{conc:QUEUE}:SUFFIX" (suffix may be "") to `b`,
 * replacing its content. Returns 0 or CONC_ENOMEM. */
int conc__dist_key(conc_buf *b, const char *queue, const char *suffix);

/* The key conc__dist_key builds, as a new string (conc__free), or NULL
 * without memory. */
char *conc__dist_key_str(const char *queue, const char *suffix);

/* A task stream entry, decoded: pointers into the entry's field values. */
struct conc__dist_task {
    const char *id, *fn, *sub; /* task id, task name, submitter id */
    size_t id_len, fn_len, sub_len;
    const void *arg;
    size_t arg_len;
    uint64_t ttl_ms; /* result's time to live */
    uint64_t lim_ms; /* time limit, 0 for none */
};

/* Decodes an entry's fields: n strings alternating name and value (vals[i]
 * of lens[i] bytes). Unknown fields are ignored (a later version may add
 * some). Returns 0, or CONC_EPROTO with a reason in `why` (a static
 * string) for an entry that lacks a field or has a bad one. */
int conc__dist_task_decode(size_t n, const char *const *vals,
                           const size_t *lens, struct conc__dist_task *t,
                           const char **why);

/* A result value: "o" + the result bytes; "e" + decimal code + " " +
 * message; or "c" (the submitter cancelled the task). */
struct conc__dist_result {
    int code;         /* 0, a negative code, or CONC_ECANCELED */
    const char *data; /* result bytes, or the message (not terminated) */
    size_t len;
};

/* Decodes a result value. Returns 0 or CONC_EPROTO. */
int conc__dist_result_decode(const void *v, size_t len,
                             struct conc__dist_result *r);

/* Replaces b's content with the result value for `code` (0: success with
 * `len` bytes at `data`; negative: failure with the message `data`, or
 * CONC_ECANCELED alone for "c"). Returns 0 or CONC_ENOMEM. */
int conc__dist_result_encode(conc_buf *b, int code, const void *data,
                             size_t len);

/* Receives one result of a notice: task `seq` of this submitter, its
 * result value `v` (len bytes, pointing into the notice's fields). */
typedef void (*conc__dist_notice_fn)(void *arg, uint64_t seq, const char *v,
                                     size_t len);

/* The sequence number of task id `id` (len bytes) if it is "SUB:SEQ" of
 * submitter `sub` (a NUL-terminated string) with SEQ written as this
 * submitter writes it (decimal, no leading zero). Returns 0 or
 * CONC_EPROTO. */
int conc__dist_notice_seq(const char *sub, const char *id, size_t len,
                          uint64_t *seq);

/* Decodes the fields of a done-stream entry (notice.c): n strings
 * alternating name and value (vals[i] of lens[i] bytes; NULL for a field
 * that is not a string), and calls fn once per result of submitter `sub`
 * (an "id" field then an "r" field), in order. Fields it does not know
 * are skipped; a result of another submitter, or with a malformed id, is
 * skipped. Returns how many results it handed to fn. */
size_t conc__dist_notice_decode(const char *sub, size_t n,
                                const char *const *vals, const size_t *lens,
                                conc__dist_notice_fn fn, void *arg);

/* Parses a decimal uint64 of n bytes. Returns 0 or CONC_EPROTO. */
int conc__dist_parse_u64(const char *s, size_t n, uint64_t *out);

/* Parses "redis://[user:password@]host[:port][/db]", "host:port" or
 * "host" into a new host string (conc__free), a port, and a new password
 * string or NULL. Returns 0, CONC_EINVAL, CONC_ENOMEM. */
int conc__dist_parse_address(const char *addr, char **host, int *port,
                             char **password);

/* The Lua script that finishes a task atomically (workers and the
 * reclaimer run it; docs/scale-out.md shows it for other languages):
 * KEYS: result key, submitter's done stream, task stream;
 * ARGV: result value, ttl ms, task id, entry id, group.
 * Writes the result if none exists (NX), and only then tells the
 * submitter; acknowledges and deletes the entry either way. Returns 1 if
 * this result won. */
extern const char conc__dist_finish_lua[];

/* The script that finishes several tasks at once (a worker's result
 * writer runs it): KEYS: the task stream, then per task its result key and
 * its submitter's done stream; ARGV: the group, then per task its result
 * value, ttl ms, task id and entry id. Writes each result if none exists
 * and tells each submitter of those that won in one done-stream entry
 * (fields id, r, id, r, ...); acknowledges every entry. Returns how many
 * results won.
 *
 * It deletes the entries by trimming where it can: an XDEL costs the
 * server a walk of the entry's listpack node from its start, per entry
 * (about 2 us of its CPU per task, as much as the result's SET), while
 * XTRIM MINID frees whole nodes. Every entry older than the oldest
 * pending one was delivered (the group reads in order) and acknowledged
 * (not pending), so it may go: the script trims the stream up to that
 * one, deletes at once those of its entries added more than TRIM_LAG_MS
 * after it (the oldest may be a long task, and the trim waits for it),
 * and leaves the others to a later trim, once it is acknowledged. With
 * nothing pending, it trims up to the group's last delivered entry and
 * deletes that one and its own. */
extern const char conc__dist_finish_many_lua[];
/* The most tasks one such script finishes (Lua's unpack takes a few
 * thousand values at most). */
#define CONC__DIST_FINISH_MANY_MAX 256

/* ---- One connection to Redis (conn.c) -----------------------------------
 *
 * A hiredis context in non-blocking mode whose every wait goes through the
 * platform's descriptor wait (conc__poll_fd) with a deadline, so no read
 * blocks without bound. A connection that fails is closed; the next call
 * reconnects, after a backoff that doubles from RECONNECT_MIN to
 * RECONNECT_MAX while attempts keep failing. One thread at a time per
 * connection (its owner's lock, if it is shared). */
struct redisContext;
struct redisReply;

struct conc__rconn {
    struct redisContext *ctx; /* NULL while disconnected; reads replies */
    /* Commands appended and not yet sent: this file sends them itself,
     * with MSG_NOSIGNAL, because hiredis writes with write(), which raises
     * SIGPIPE (and so kills the process) on a socket the server reset. */
    conc_buf out;
    size_t out_sent; /* bytes of `out` sent so far */
    char *host;
    int port;
    char *password;          /* NULL for none */
    double connect_timeout;  /* seconds per attempt */
    int64_t backoff_ns;      /* the wait before the next attempt */
    int64_t next_attempt_ns; /* monotonic; no attempt before it */
    int connects;            /* successful connections so far */
    int last_err;            /* why the last attempt failed */
    /* When set, the end of its owner's work (monotonic ns, CONC__FOREVER
     * for none; another thread may move it earlier): a call made before
     * it gives up at it, whatever deadline it was given, and one made
     * after it gets CONC__DIST_LATE_NS at most. So a worker's run, or an
     * executor's watcher, ends in bounded time while the server hangs. */
    const _Atomic int64_t *limit;
};

/* The time a call to the server gets after its connection's limit: a
 * round trip to a server that answers, even under a loaded machine, so
 * that the last results written and the tasks handed back at the end of
 * a run are not lost to a tight bound. */
#define CONC__DIST_LATE_NS (200 * 1000 * 1000LL)

/* Fills `c` from an address and password (either may carry the password;
 * `password` wins), without a limit. Does not connect. Returns 0, CONC_EINVAL,
 * CONC_ENOMEM. */
int conc__rconn_init(struct conc__rconn *c, const char *address,
                     const char *password, double connect_timeout);
void conc__rconn_fini(struct conc__rconn *c);

/* Connects (with AUTH) if not connected, retrying with backoff until
 * `deadline` (monotonic ns). Returns 0, CONC_EAUTH (at once: retrying
 * would not help), CONC_ETIMEDOUT or the last attempt's error at the
 * deadline. */
int conc__rconn_ensure(struct conc__rconn *c, int64_t deadline);

/* Drops the connection (the next call reconnects). */
void conc__rconn_close(struct conc__rconn *c);

/* Drops the connection after `err`: the next attempt waits out the
 * backoff, which doubles. */
void conc__rconn_fail(struct conc__rconn *c, int err);

/* Runs one command (argv/lens as hiredis's) and hands its reply in *out
 * (freeReplyObject), connecting first if needed. A connection that fails
 * on the way is dropped and, when `retry`, the command is sent again on a
 * new one until `deadline`. An error reply is a reply (the caller reads
 * it), except NOAUTH and WRONGPASS (CONC_EAUTH) and LOADING (retried).
 * Returns 0 or an error of conc__rconn_ensure. */
int conc__rconn_cmd(struct conc__rconn *c, int64_t deadline, int retry,
                    struct redisReply **out, int argc, const char **argv,
                    const size_t *lens);

/* conc__rconn_cmd with printf-style arguments, as redisCommand takes. */
int conc__rconn_cmdf(struct conc__rconn *c, int64_t deadline, int retry,
                     struct redisReply **out, const char *fmt, ...);

/* Pipelining: appends commands, then sends them all and reads `n`
 * replies into out[0..n). No retry: a failure drops the connection and
 * frees the replies read so far. Returns 0 or a negative code. */
int conc__rconn_append(struct conc__rconn *c, int argc, const char **argv,
                       const size_t *lens);
/* conc__rconn_append with printf-style arguments, as redisCommand takes. */
int conc__rconn_appendf(struct conc__rconn *c, const char *fmt, ...);
int conc__rconn_pipeline(struct conc__rconn *c, int64_t deadline, size_t n,
                         struct redisReply **out);

/* Sends the appended commands now, leaving their replies to a later
 * conc__rconn_pipeline (which counts them in its n). A failure drops the
 * connection. Returns 0 or a negative code. */
int conc__rconn_send(struct conc__rconn *c, int64_t deadline);

/* The error replies that are about the connection, not the command:
 * CONC_EAUTH for NOAUTH and WRONGPASS, CONC_EAGAIN for a server loading
 * its data (LOADING) and the like; 0 for any other reply. */
int conc__reply_transient(const struct redisReply *r);

/* Whether a reply is an error reply starting with `prefix`. */
int conc__reply_error_is(const struct redisReply *r, const char *prefix);

#endif
