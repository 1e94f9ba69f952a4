/* s001_pool_crawler: seed 001, 五 进程池, 使用多进程请求多个url来减少网络等待
 * 浪费的时间 (a crawler: workers fetch, a callback in the parent parses).
 *
 * The Python maps each URL to the compiled re pattern that parses its page
 * (here one: Maoyan's film board, http://maoyan.com/board/7), and gives
 * Pool() get_page(url, pattern) with apply_async and callback=parse_page.
 * get_page fetches the page and returns (text, pattern); parse_page, in
 * the parent, runs re.findall over the text and prints a dict per film:
 * index, title, actor (without '主演：'), time (without '上映时间：') and
 * score (integer and fraction parts joined). Main waits with get() on each
 * result.
 *
 * There is no network here: a web server thread of this program, on a free
 * port of 127.0.0.1 (examples/support/local_web.c), serves a board page of five
 * films in the site's markup, asked for the seed's URL as a proxy is ("GET
 * http://maoyan.com/board/7 HTTP/1.0"), after 20 ms. A compiled pattern
 * cannot travel to a worker as bytes, and needs not: the callback's
 * argument (conc_apply_opts.arg) is the parser, and the task returns only
 * the text. The parser follows the seed's regular expression step by step
 * ('.*?X' becomes "skip to X"), as POSIX regex has no lazy '.*?'. The
 * output is always the same five dicts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"
#include "local_web.h"

#define LATENCY   0.02 /* the network's delay for one page */
#define BOARD_URL "http://maoyan.com/board/7"

typedef struct page_request {
    char url[64];
    uint16_t port; /* the local server's */
} page_request;

/* The films on the local board page: index, title, actors, release, score. */
static const char *const films[][5] = {
    {"1", "霸王别姬", "张国荣,张丰毅,巩俐", "1993-01-01", "9.5"},
    {"2", "肖申克的救赎", "蒂姆·罗宾斯,摩根·弗里曼,鲍勃·冈顿",
     "1994-09-10(加拿大)", "9.5"},
    {"3", "罗马假日", "格利高里·派克,奥黛丽·赫本,埃迪·艾伯特",
     "1953-09-02(美国)", "9.1"},
    {"4", "这个杀手不太冷", "让·雷诺,加里·奥德曼,娜塔莉·波特曼",
     "1994-09-14(法国)", "9.5"},
    {"5", "泰坦尼克号", "莱昂纳多·迪卡普里奥,凯特·温丝莱特,比利·赞恩",
     "1998-04-03", "9.5"},
};
#define N_FILMS (sizeof films / sizeof films[0])

/* The local server's page callback: the board page, in the markup the
 * seed's pattern expects. Returns 1, 0 for a URL not served here, or a
 * negative code. */
static int
make_page(const char *url, conc_buf *page)
{
    if (strcmp(url, BOARD_URL) != 0)
        return 0;
    int rc =
        conc_buf_appendf(page, "<html><body><dl class=\"board-wrapper\">\n");
    for (size_t i = 0; rc == 0 && i < N_FILMS; i++) {
        const char *const *f = films[i];
        rc = conc_buf_appendf(
            page,
            "<dd>\n"
            "  <i class=\"board-index board-index-%s\">%s</i>\n"
            "  <a href=\"/films/%zu\" title=\"%s\" class=\"image-link\"></a>\n"
            "  <p class=\"star\">\n      主演：%s\n  </p>\n"
            "  <p class=\"releasetime\">上映时间：%s</p>\n"
            "  <p class=\"score\"><i class=\"integer\">%.2s</i>"
            "<i class=\"fraction\">%s</i></p>\n"
            "</dd>\n",
            f[0], f[0], 1200 + i, f[1], f[2], f[3], f[4], f[4] + 2);
    }
    if (rc == 0)
        rc = conc_buf_appendf(page, "</dl></body></html>\n");
    return rc == 0 ? 1 : rc;
}

/* In a worker: the page's text. */
static int
get_page(const void *arg, size_t len, conc_buf *result)
{
    const page_request *req = arg;
    if (len != sizeof *req)
        return conc_fail(CONC_EINVAL, "bad argument");
    int status = 0;
    int rc = http_get(req->port, req->url, &status, result);
    if (rc == 0 && status != 200)
        rc = conc_fail(CONC_EVALUE, "%s: status %d", req->url, status);
    return rc;
}

/* One step of the pattern: skip to `skip` (".*?skip"), then, if `until` is
 * set, capture up to it ("(.*?)until"). */
typedef struct step {
    const char *skip;
    const char *until;
} step;

/* The seed's pattern1, step by step:
 * <dd>.*?board-index.*?>(\d+)<.*?title="(.*?)".*?star.*?>(.*?)<
 * .*?releasetime.*?>(.*?)<.*?integer.*?>(.*?)<.*?fraction.*?>(.*?)< */
static const step pattern1[] = {
    {"<dd>", NULL},
    {"board-index", NULL},
    {">", "<"},
    {"title=\"", "\""},
    {"star", NULL},
    {">", "<"},
    {"releasetime", NULL},
    {">", "<"},
    {"integer", NULL},
    {">", "<"},
    {"fraction", NULL},
    {">", "<"},
};
#define N_STEPS  (sizeof pattern1 / sizeof pattern1[0])
#define N_GROUPS 6

typedef struct group {
    const char *at;
    int len;
} group;

/* Matches the pattern once from *s; on success fills the six groups, moves
 * *s past the match and returns 1, else returns 0. */
static int
match(const char **s, group *item)
{
    const char *p = *s;
    int g = 0;
    for (size_t i = 0; i < N_STEPS; i++) {
        p = strstr(p, pattern1[i].skip);
        if (!p)
            return 0;
        p += strlen(pattern1[i].skip);
        if (!pattern1[i].until)
            continue;
        const char *end = strstr(p, pattern1[i].until);
        if (!end)
            return 0;
        item[g++] = (group){p, (int)(end - p)};
        p = end + strlen(pattern1[i].until);
    }
    *s = p;
    return 1;
}

/* Python's str.strip() and then dropping a known prefix ([3:], [5:]). */
static group
trim(group g, const char *prefix)
{
    while (g.len > 0 && (*g.at == ' ' || *g.at == '\n')) {
        g.at++;
        g.len--;
    }
    while (g.len > 0 && (g.at[g.len - 1] == ' ' || g.at[g.len - 1] == '\n'))
        g.len--;
    size_t n = strlen(prefix);
    if ((size_t)g.len >= n && memcmp(g.at, prefix, n) == 0) {
        g.at += n;
        g.len -= (int)n;
    }
    return g;
}

/* In the parent's result thread: re.findall, then one dict per film. */
static void
parse_page(void *arg, const void *data, size_t len)
{
    (void)arg; /* the pattern: pattern1 is the only one */
    char *text = malloc(len + 1);
    check(text ? 0 : CONC_ENOMEM, "malloc");
    memcpy(text, data, len);
    text[len] = '\0';
    group item[N_GROUPS];
    for (const char *s = text; match(&s, item);) {
        group actor = trim(item[2], "主演：");
        group time = trim(item[3], "上映时间：");
        printf("{'index': '%.*s', 'title': '%.*s', 'actor': '%.*s', "
               "'time': '%.*s', 'score': '%.*s%.*s'}\n",
               item[0].len, item[0].at, item[1].len, item[1].at, actor.len,
               actor.at, time.len, time.at, item[4].len, item[4].at,
               item[5].len, item[5].at);
    }
    free(text);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    /* The pool before the server: workers forked before any other thread
     * exists inherit no lock held by one. */
    conc_pool *p;
    check(conc_pool_new(NULL, &p), "conc_pool_new");
    web_server server;
    web_server_start(&server, make_page, LATENCY);

    /* url_dic: each URL with the pattern that parses its page. */
    static const struct {
        const char *url;
        const step *pattern;
    } url_dic[] = {{BOARD_URL, pattern1}};
    conc_async_result *res_l[1];
    for (int i = 0; i < 1; i++) {
        page_request req = {.port = server.port};
        snprintf(req.url, sizeof req.url, "%s", url_dic[i].url);
        conc_apply_opts cb = {.callback = parse_page,
                              .arg = (void *)url_dic[i].pattern};
        check(conc_pool_apply_async(p, get_page, &req, sizeof req, &cb,
                                    &res_l[i]),
              "conc_pool_apply_async");
    }
    for (int i = 0; i < 1; i++) {
        check(conc_async_result_get(res_l[i], CONC_FOREVER, NULL, NULL),
              "get_page");
        conc_async_result_free(res_l[i]);
    }
    conc_pool_free(p);
    web_server_stop(&server);
    return 0;
}
