/* A serving thread's check of the result keys of the tasks its
 * XREADGROUP brings, sent in the same round trip as the read.
 *
 * Why. A task whose result key exists (its submitter cancelled it, or
 * another worker finished it) must not run, so a worker checks the keys of
 * the entries it reads before it runs them. Checked with a command sent
 * once the read's reply is in, the check cost a round trip of its own on
 * the way of every task: the server's wake-up, then the worker's, which
 * measured a third of a lone task's round trip on an idle machine. Redis
 * runs the commands a client pipelined behind a blocking one only once
 * that one is served, in the same turn of its event loop, so a check sent
 * right behind the XREADGROUP runs just after the read delivers its
 * entries, and both replies come back together: one wake-up of the
 * worker, and the check still comes after the delivery, as the separate
 * one did.
 *
 * What. The check cannot name the entries it checks (they are not read
 * yet), so it names what they are: the entries pending with this thread's
 * consumer after the newest one it has already seen (`after`; entry ids
 * grow, and a read with ">" delivers only entries newer than any delivered
 * before). The script lists them with XPENDING, which changes nothing
 * (a read of the consumer's history with XREADGROUP would count one more
 * delivery of each, which counts towards max_deliveries), reads each
 * one's id field with XRANGE and answers [entry-id, EXISTS of its result
 * key, ...]. A batch entry the answer lacks (a batch of more than
 * CONC__DIST_CHECK_MAX; a reply lost with a dropped connection left older
 * entries pending, which took the answer's room; a server that refuses the
 * script, as one older than Redis 6.2 does, whose XPENDING takes no
 * exclusive start) is checked as before, with an MGET. A read that
 * follows one that brought more than CONC__DIST_CHECK_MAX entries goes
 * without the check (worker_internal.h says why).
 *
 * The script builds the result keys it looks at from their prefix, which
 * shares the task stream's hash tag: on a Redis Cluster they live on the
 * same slot as its one declared key. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/worker_internal.h"

/* CONC__DIST_CHECK_MAX as the script's argument. */
#define CHECK_MAX_STR "4"
_Static_assert(CONC__DIST_CHECK_MAX == 4, "CHECK_MAX_STR is its text");

/* KEYS: the task stream; ARGV: group, consumer, the newest entry id seen,
 * CONC__DIST_CHECK_MAX, the result keys' prefix "{conc:Q}:res:". */
static const char check_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '(' .. ARGV[3], '+',\n"
    "                     tonumber(ARGV[4]) + 1, ARGV[2])\n"
    "if #p > tonumber(ARGV[4]) then return {} end\n"
    "local out = {}\n"
    "for _, pe in ipairs(p) do\n"
    "  local e = redis.call('XRANGE', KEYS[1], pe[1], pe[1])[1]\n"
    "  if e then\n"
    "    local f = e[2]\n"
    "    for i = 1, #f - 1, 2 do\n"
    "      if f[i] == 'id' then\n"
    "        out[#out + 1] = e[1]\n"
    "        out[#out + 1] = redis.call('EXISTS', ARGV[5] .. f[i + 1])\n"
    "        break\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Arguments: EVAL script numkeys key group consumer after count prefix. */
#define CHECK_ARGC 9

int
conc__dist_check_append(conc_dist_worker *w, size_t idx, struct conc__rconn *c,
                        const char *after)
{
    char prefix[CONC__DIST_NAME_MAX + 32];
    conc__dist_keyf(prefix, sizeof prefix, w->queue, "res:");
    const char *a[CHECK_ARGC] = {
        "EVAL",     check_lua,        "1",
        w->k_tasks, CONC__DIST_GROUP, w->slots[idx].consumer,
        after,      CHECK_MAX_STR,    prefix};
    size_t l[CHECK_ARGC];
    for (size_t i = 0; i < CHECK_ARGC; i++)
        l[i] = strlen(a[i]);
    return conc__rconn_append(c, CHECK_ARGC, a, l);
}

/* Whether pair k of a check's answer names entry `id`; its verdict into
 * *exists. */
static int
pair_is(const redisReply *chk, size_t k, const redisReply *id, int *exists)
{
    const redisReply *e = chk->element[2 * k], *v = chk->element[2 * k + 1];
    if (e->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_INTEGER ||
        e->len != id->len || memcmp(e->str, id->str, id->len) != 0)
        return 0;
    *exists = v->integer != 0;
    return 1;
}

void
conc__dist_check_apply(const redisReply *chk, const redisReply *entries,
                       size_t n, signed char *verdict)
{
    memset(verdict, -1, n);
    if (!chk || chk->type != REDIS_REPLY_ARRAY || chk->elements % 2)
        return; /* refused, or not this script's answer */
    size_t pairs = chk->elements / 2, k = 0;
    for (size_t i = 0; i < n && k < pairs; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        /* Both lists grow by entry id: a match is after the last one. */
        for (size_t j = k; j < pairs; j++) {
            int exists;
            if (pair_is(chk, j, e->element[0], &exists)) {
                verdict[i] = (signed char)exists;
                k = j + 1;
                break;
            }
        }
    }
}
