/* The wire format of scale-out (dist_internal.h, docs/scale-out.md): keys,
 * task entries and result values. Pure functions over bytes: everything
 * here reads bytes another process wrote, so every field is checked like
 * input, and fuzz/fuzz_dist_wire.c feeds it garbage. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

/* The longest decimal field (a uint64 has 20 digits). */
#define U64_DIGITS_MAX 20
/* The default Redis port. */
#define REDIS_PORT 6379

const char conc__dist_finish_lua[] =
    "local won = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])\n"
    "if won then\n"
    "  redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'r', ARGV[1])\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
    "end\n"
    "redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])\n"
    "redis.call('XDEL', KEYS[3], ARGV[4])\n"
    "if won then return 1 end\n"
    "return 0\n";

const char conc__dist_finish_many_lua[] =
    "local n = (#KEYS - 1) / 2\n"
    "local won, entries, order, notes = 0, {}, {}, {}\n"
    "for i = 1, n do\n"
    "  local v, ttl, id = ARGV[4*i-2], ARGV[4*i-1], ARGV[4*i]\n"
    "  entries[i] = ARGV[4*i+1]\n"
    "  if redis.call('SET', KEYS[2*i], v, 'NX', 'PX', ttl) then\n"
    "    won = won + 1\n"
    "    local d = notes[KEYS[2*i+1]]\n"
    "    if not d then\n"
    "      d = {ttl = 0, f = {}}\n"
    "      notes[KEYS[2*i+1]] = d\n"
    "      order[#order + 1] = KEYS[2*i+1]\n"
    "    end\n"
    "    if tonumber(ttl) > d.ttl then d.ttl = tonumber(ttl) end\n"
    "    local f = d.f\n"
    "    f[#f+1] = 'id'; f[#f+1] = id; f[#f+1] = 'r'; f[#f+1] = v\n"
    "  end\n"
    "end\n"
    "for _, k in ipairs(order) do\n"
    "  redis.call('XADD', k, '*', unpack(notes[k].f))\n"
    "  redis.call('PEXPIRE', k, notes[k].ttl)\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))\n"
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1)\n"
    "if not p[1] then\n"
    "  local last\n"
    "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "    for i = 1, #g, 2 do\n"
    "      if g[i] == 'name' and g[i+1] ~= ARGV[1] then break end\n"
    "      if g[i] == 'last-delivered-id' then last = g[i+1] end\n"
    "    end\n"
    "  end\n"
    "  if last then\n"
    "    redis.call('XTRIM', KEYS[1], 'MINID', last)\n"
    "    entries[#entries+1] = last\n"
    "  end\n"
    "  redis.call('XDEL', KEYS[1], unpack(entries))\n"
    "  return won\n"
    "end\n"
    "redis.call('XTRIM', KEYS[1], 'MINID', p[1][1])\n"
    "local floor = tonumber(string.match(p[1][1], '^%d+')) "
    "+ " CONC__DIST_TRIM_LAG_MS "\n"
    "local far = {}\n"
    "for _, e in ipairs(entries) do\n"
    "  if tonumber(string.match(e, '^%d+')) > floor then far[#far+1] = e end\n"
    "end\n"
    "if #far > 0 then redis.call('XDEL', KEYS[1], unpack(far)) end\n"
    "return won\n";

static int
name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

int
conc__dist_name_ok(const char *s, size_t n)
{
    if (!s || n == 0 || n > CONC__DIST_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int
conc__dist_key(conc_buf *b, const char *queue, const char *suffix)
{
    conc_buf k = CONC_BUF_INIT;
    int r = conc_buf_appendf(&k, "{conc:%s}%s%s", queue, *suffix ? ":" : "",
                             suffix);
    if (r == 0)
        r = conc__buf_set(b, k.data, k.len);
    conc_buf_free(&k);
    return r;
}

char *
conc__dist_key_str(const char *queue, const char *suffix)
{
    conc_buf b = CONC_BUF_INIT;
    if (conc__dist_key(&b, queue, suffix) < 0 ||
        conc_buf_append(&b, "", 1) < 0) {
        conc_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)conc_buf_detach(&b, &len);
}

int
conc__dist_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > U64_DIGITS_MAX)
        return CONC_EPROTO;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CONC_EPROTO;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CONC_EPROTO;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int
field_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* Stores one known field of a task entry; unknown ones are skipped. */
static int
task_field(struct conc__dist_task *t, const char *k, size_t kl, const char *v,
           size_t vl)
{
    if (field_is(k, kl, "id")) {
        t->id = v;
        t->id_len = vl;
    } else if (field_is(k, kl, "fn")) {
        t->fn = v;
        t->fn_len = vl;
    } else if (field_is(k, kl, "sub")) {
        t->sub = v;
        t->sub_len = vl;
    } else if (field_is(k, kl, "arg")) {
        t->arg = v;
        t->arg_len = vl;
    } else if (field_is(k, kl, "ttl")) {
        return conc__dist_parse_u64(v, vl, &t->ttl_ms);
    } else if (field_is(k, kl, "lim")) {
        return conc__dist_parse_u64(v, vl, &t->lim_ms);
    }
    return 0;
}

int
conc__dist_task_decode(size_t n, const char *const *vals, const size_t *lens,
                       struct conc__dist_task *t, const char **why)
{
    memset(t, 0, sizeof *t);
    *why = "an odd number of fields";
    if (n % 2)
        return CONC_EPROTO;
    for (size_t i = 0; i < n; i += 2) {
        *why = "a bad number in a field";
        if (task_field(t, vals[i], lens[i], vals[i + 1], lens[i + 1]) < 0)
            return CONC_EPROTO;
    }
    *why = "a missing or bad task id";
    if (!conc__dist_name_ok(t->id, t->id_len))
        return CONC_EPROTO;
    *why = "a missing or bad task name";
    if (!conc__dist_name_ok(t->fn, t->fn_len))
        return CONC_EPROTO;
    *why = "a missing or bad submitter";
    if (!conc__dist_name_ok(t->sub, t->sub_len))
        return CONC_EPROTO;
    *why = "a missing or zero ttl";
    if (t->ttl_ms == 0)
        return CONC_EPROTO;
    if (!t->arg)
        t->arg_len = 0;
    *why = NULL;
    return 0;
}

/* Parses the code of an "e" value: a negative decimal int, then a space. */
static int
parse_code(const char *s, size_t n, int *code, size_t *used)
{
    size_t i = 0;
    /* One spelling per code: no leading zeros. */
    if (n < 2 || s[0] != '-' || s[1] == '0')
        return CONC_EPROTO;
    long v = 0;
    for (i = 1; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > -(long)INT_MIN)
            return CONC_EPROTO;
    }
    if (i == 1 || i == n || s[i] != ' ') /* the space is required */
        return CONC_EPROTO;
    *code = (int)-v;
    *used = i + 1;
    return 0;
}

int
conc__dist_result_decode(const void *v, size_t len, struct conc__dist_result *r)
{
    const char *s = v;
    if (!s || len == 0)
        return CONC_EPROTO;
    switch (s[0]) {
    case 'o':
        *r = (struct conc__dist_result){0, s + 1, len - 1};
        return 0;
    case 'c':
        if (len != 1)
            return CONC_EPROTO;
        *r = (struct conc__dist_result){CONC_ECANCELED, NULL, 0};
        return 0;
    case 'e': {
        size_t used;
        int code;
        if (parse_code(s + 1, len - 1, &code, &used) < 0)
            return CONC_EPROTO;
        *r = (struct conc__dist_result){code, s + 1 + used, len - 1 - used};
        return 0;
    }
    default:
        return CONC_EPROTO;
    }
}

int
conc__dist_result_encode(conc_buf *b, int code, const void *data, size_t len)
{
    conc_buf v = CONC_BUF_INIT;
    int r;
    if (code == 0) {
        r = conc_buf_append(&v, "o", 1);
        if (r == 0 && len)
            r = conc_buf_append(&v, data, len);
    } else if (code == CONC_ECANCELED && len == 0) {
        r = conc_buf_append(&v, "c", 1);
    } else {
        r = conc_buf_appendf(&v, "e%d ", code < 0 ? code : CONC_EPROTO);
        if (r == 0 && len)
            r = conc_buf_append(&v, data, len);
    }
    if (r == 0)
        r = conc__buf_set(b, v.data, v.len);
    conc_buf_free(&v);
    return r;
}

/* Splits "[user:]password@" off the front of `s`; returns the rest. */
static const char *
take_userinfo(const char *s, char **password, int *err)
{
    const char *at = strrchr(s, '@');
    if (!at)
        return s;
    const char *colon = memchr(s, ':', (size_t)(at - s));
    const char *p = colon ? colon + 1 : s;
    size_t n = (size_t)(at - p);
    if (!(*password = conc__malloc(n + 1))) {
        *err = CONC_ENOMEM;
        return s;
    }
    memcpy(*password, p, n);
    (*password)[n] = '\0';
    return at + 1;
}

int
conc__dist_parse_address(const char *addr, char **host, int *port,
                         char **password)
{
    int err = 0;
    char *pw = NULL;
    const char *s = addr;
    if (strncmp(s, "redis://", 8) == 0)
        s = take_userinfo(s + 8, &pw, &err);
    if (err)
        return err;
    size_t hl = strcspn(s, ":/");
    long p = REDIS_PORT;
    if (s[hl] == ':') {
        char *end;
        p = strtol(s + hl + 1, &end, 10);
        if (end == s + hl + 1 || (*end && *end != '/') || p <= 0 || p > 65535)
            err = CONC_EINVAL;
    }
    if (hl == 0)
        err = CONC_EINVAL;
    if (!err && !(*host = conc__malloc(hl + 1)))
        err = CONC_ENOMEM;
    if (err) {
        conc__free(pw);
        return err;
    }
    memcpy(*host, s, hl);
    (*host)[hl] = '\0';
    *port = (int)p;
    *password = pw;
    return 0;
}
