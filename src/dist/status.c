/* The status of a queue (conc_dist_status_get, conc-worker --status): read
 * from the server, so any process may ask. */
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

/* A worker counts as seen if it marked itself within this (ms). */
#define SEEN_WINDOW_MS 60000

/* The script that gathers the numbers in one round trip, on the server's
 * clock: {lag, pending, workers seen, dead letters}. XINFO GROUPS gives
 * the group's "lag" (entries not yet delivered) and "pending". */
static const char status_lua[] =
    "local lag, pending = 0, 0\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "    local name, l, p\n"
    "    for i = 1, #g, 2 do\n"
    "      if g[i] == 'name' then name = g[i + 1] end\n"
    "      if g[i] == 'lag' then l = g[i + 1] end\n"
    "      if g[i] == 'pending' then p = g[i + 1] end\n"
    "    end\n"
    "    if name == ARGV[1] then\n"
    "      pending = p\n"
    "      if type(l) == 'number' then lag = l\n"
    "      else lag = redis.call('XLEN', KEYS[1]) - p end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local seen, all = 0, redis.call('HGETALL', KEYS[2])\n"
    "for i = 2, #all, 2 do\n"
    "  if now - tonumber(all[i]) <= tonumber(ARGV[2]) then seen = seen + 1 "
    "end\n"
    "end\n"
    "return {lag, pending, seen, redis.call('XLEN', KEYS[3])}\n";

static int
fill(const redisReply *rep, conc_dist_status *out)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4)
        return CONC_EPROTO;
    uint64_t v[4];
    for (size_t i = 0; i < 4; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER ||
            rep->element[i]->integer < 0)
            return CONC_EPROTO;
        v[i] = (uint64_t)rep->element[i]->integer;
    }
    *out = (conc_dist_status){v[0], v[1], v[2], v[3]};
    return 0;
}

int
conc_dist_status_get(const char *address, const char *password,
                     const char *queue, double timeout, conc_dist_status *out)
{
    int64_t deadline;
    if (!address || !queue || !out || conc__deadline(timeout, &deadline) < 0 ||
        !conc__dist_name_ok(queue, strlen(queue)))
        return CONC_EINVAL;
    struct conc__rconn c;
    int r = conc__rconn_init(&c, address, password, 0);
    if (r < 0)
        return r;
    char *keys[3] = {conc__dist_key_str(queue, "tasks"),
                     conc__dist_key_str(queue, "workers"),
                     conc__dist_key_str(queue, "dead")};
    redisReply *rep = NULL;
    if (!keys[0] || !keys[1] || !keys[2])
        r = CONC_ENOMEM;
    else
        r = conc__rconn_cmdf(&c, deadline, 1, &rep, "EVAL %s 3 %s %s %s %s %d",
                             status_lua, keys[0], keys[1], keys[2],
                             CONC__DIST_GROUP, SEEN_WINDOW_MS);
    if (r == 0) {
        r = fill(rep, out);
        freeReplyObject(rep);
    }
    for (size_t i = 0; i < 3; i++)
        conc__free(keys[i]);
    conc__rconn_fini(&c);
    return r;
}
