/* aio_crawler: seed 001, 五 进程池, the crawler pipeline
 * (s001_pool_crawler) with coroutines: fetching tasks and a parsing task
 * on one loop, joined by a queue, against a local HTTP server the example
 * runs itself on the same loop.
 *
 * The seed gives Pool() get_page(url) with apply_async and callback=
 * parse_page: workers wait on the network, the parent parses. Waiting on a
 * network needs no process: here each page is fetched by a coroutine
 * (open_connection to "localhost", resolved in a thread so the loop never
 * blocks, then "GET url HTTP/1.0" and read to the end), all at once; each
 * page goes onto an asyncio.Queue that a parser task empties, and the
 * parser prints the films of each page in page order. The server is
 * asyncio.start_server on a free port: it reads the request line, waits a
 * "network" latency of 20 ms and answers with the board page asked for,
 * one film per page (http://maoyan.com/board/7?offset=N). Five pages
 * fetched at once take about one latency, not five. The output is always
 * the same five dicts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"

#define LATENCY   0.02 /* the network's delay for one page */
#define BOARD_URL "http://maoyan.com/board/7?offset="
#define WAIT      10.0 /* seconds: a bound on any wait */

/* The films of the board: index, title, actors, release, score. */
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
#define N_PAGES (int)(sizeof films / sizeof films[0])

/* A fetched page on the queue: its number and its body. */
typedef struct page {
    int n;
    conc_buf body;
} page;

/* ---- The local web server -------------------------------------------- */

/* The page at url in the site's markup, or -1 if there is none. */
static int
page_of(const char *url, size_t len)
{
    size_t pre = strlen(BOARD_URL);
    if (len <= pre || memcmp(url, BOARD_URL, pre) != 0)
        return -1;
    int n = atoi(url + pre);
    return n >= 0 && n < N_PAGES ? n : -1;
}

static int
write_page(conc_aio_stream *s, int n)
{
    const char *const *f = films[n];
    conc_buf body = CONC_BUF_INIT, head = CONC_BUF_INIT;
    int rc = conc_buf_appendf(
        &body,
        "<dd>\n  <i class=\"board-index board-index-%s\">%s</i>\n"
        "  <a href=\"/films/%d\" title=\"%s\" class=\"image-link\"></a>\n"
        "  <p class=\"star\">\n      主演：%s\n  </p>\n"
        "  <p class=\"releasetime\">上映时间：%s</p>\n"
        "  <p class=\"score\"><i class=\"integer\">%.2s</i>"
        "<i class=\"fraction\">%s</i></p>\n</dd>\n",
        f[0], f[0], 1200 + n, f[1], f[2], f[3], f[4], f[4] + 2);
    if (rc == 0)
        rc = conc_buf_appendf(&head,
                              "HTTP/1.0 200 OK\r\nContent-Length: "
                              "%zu\r\n\r\n",
                              body.len);
    if (rc == 0)
        rc = conc_aio_stream_write(s, head.data, head.len);
    if (rc == 0)
        rc = conc_aio_stream_write(s, body.data, body.len);
    conc_buf_free(&body);
    conc_buf_free(&head);
    return rc;
}

/* One request: "GET url HTTP/1.0", headers, a blank line. */
static int
serve_page(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf line = CONC_BUF_INIT, hdr = CONC_BUF_INIT;
    int rc = conc_aio_stream_readline(s, WAIT, &line);
    while (rc == 0 && (rc = conc_aio_stream_readline(s, WAIT, &hdr)) == 0 &&
           hdr.len > 2)
        ; /* the headers are not needed */
    const char *url = line.len > 4 ? (const char *)line.data + 4 : "";
    const char *end = line.len > 4 ? memchr(url, ' ', line.len - 4) : NULL;
    int n = end ? page_of(url, (size_t)(end - url)) : -1;
    if (rc == 0)
        rc = conc_aio_sleep(LATENCY);
    if (rc == 0 && n >= 0)
        rc = write_page(s, n);
    else if (rc == 0)
        rc = conc_aio_stream_write(s, "HTTP/1.0 404 Not Found\r\n\r\n", 26);
    if (rc == 0)
        rc = conc_aio_stream_drain(s, WAIT);
    conc_buf_free(&line);
    conc_buf_free(&hdr);
    return rc;
}

/* ---- Fetching ---------------------------------------------------------- */

typedef struct fetch_args {
    int n, port;
    conc_aio_queue *pages;
} fetch_args;

/* get_page: fetches page n and puts its body on the queue. */
static int
get_page(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const fetch_args *a = arg;
    conc_aio_stream *s;
    check(conc_aio_open_connection("localhost", a->port, NULL, WAIT, &s),
          "open_connection");
    char req[128];
    int k =
        snprintf(req, sizeof req, "GET %s%d HTTP/1.0\r\n\r\n", BOARD_URL, a->n);
    check(conc_aio_stream_write(s, req, (size_t)k), "write");
    page *p = calloc(1, sizeof *p);
    check(p ? 0 : CONC_ENOMEM, "calloc");
    p->n = a->n;
    check(conc_aio_stream_read(s, CONC_AIO_READ_ALL, WAIT, &p->body), "read");
    check(conc_buf_append(&p->body, "", 1), "append"); /* a C string now */
    conc_aio_stream_free(s);
    const char *body = strstr((const char *)p->body.data, "\r\n\r\n");
    check(body && strncmp((const char *)p->body.data, "HTTP/1.0 200", 12) == 0
              ? 0
              : CONC_EPROTO,
          "response");
    conc_buf_consume(&p->body, (size_t)(body + 4 - (char *)p->body.data));
    return conc_aio_queue_put(a->pages, p, WAIT);
}

/* ---- Parsing ----------------------------------------------------------- */

/* Captures what lies between `from` (after `skip`) and `until` into out:
 * one step of the seed's pattern ".*?skip.*?from(.*?)until". */
static const char *
capture(const char *s, const char *skip, const char *from, const char *until,
        const char **at, int *len)
{
    s = s ? strstr(s, skip) : NULL;
    s = s ? strstr(s + strlen(skip), from) : NULL;
    if (!s)
        return NULL;
    s += strlen(from);
    const char *end = strstr(s, until);
    if (!end)
        return NULL;
    while (*s == ' ' || *s == '\n')
        s++;
    *at = s;
    *len = (int)(end - s);
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\n'))
        (*len)--;
    return end;
}

/* parse_page: prints the page's film as the seed's dict. */
static void
parse_page(const page *p)
{
    const char *at[6];
    int len[6];
    const char *s = (const char *)p->body.data;
    s = capture(s, "board-index", ">", "<", &at[0], &len[0]);
    s = capture(s, "title=", "\"", "\"", &at[1], &len[1]);
    s = capture(s, "star", "主演：", "<", &at[2], &len[2]);
    s = capture(s, "releasetime", "上映时间：", "<", &at[3], &len[3]);
    s = capture(s, "integer", ">", "<", &at[4], &len[4]);
    s = capture(s, "fraction", ">", "<", &at[5], &len[5]);
    check(s ? 0 : CONC_EPROTO, "parse");
    printf("{'index': '%.*s', 'title': '%.*s', 'actor': '%.*s', "
           "'time': '%.*s', 'score': '%.*s%.*s'}\n",
           len[0], at[0], len[1], at[1], len[2], at[2], len[3], at[3], len[4],
           at[4], len[5], at[5]);
}

/* Takes every page off the queue, then prints them in page order. */
static int
parser(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_queue *pages = *(conc_aio_queue *const *)arg;
    page *got[N_PAGES] = {0};
    for (int i = 0; i < N_PAGES; i++) {
        void *item;
        check(conc_aio_queue_get(pages, WAIT, &item), "queue get");
        page *p = item;
        got[p->n] = p;
    }
    for (int i = 0; i < N_PAGES; i++) {
        parse_page(got[i]);
        conc_buf_free(&got[i]->body);
        free(got[i]);
    }
    return 0;
}

static int
amain(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_loop *loop;
    conc_aio_server *web;
    conc_aio_queue *pages;
    check(conc_aio_get_running_loop(&loop), "get_running_loop");
    check(conc_aio_start_server(loop, NULL, 0, serve_page, NULL, NULL, &web),
          "start_server");
    check(conc_aio_queue_new(NULL, &pages), "queue");
    conc_future *fs[N_PAGES + 1];
    double t0 = conc_aio_loop_time(loop);
    check(
        conc_aio_create_task(parser, &pages, sizeof pages, NULL, &fs[N_PAGES]),
        "create_task");
    for (int i = 0; i < N_PAGES; i++) {
        fetch_args a = {i, conc_aio_server_port(web), pages};
        check(conc_aio_create_task(get_page, &a, sizeof a, NULL, &fs[i]),
              "create_task");
    }
    check(conc_aio_gather(fs, N_PAGES + 1, 0), "gather");
    printf("%d pages fetched at once in %.2f s (one page's latency: %.2f "
           "s)\n",
           N_PAGES, conc_aio_loop_time(loop) - t0, LATENCY);
    for (int i = 0; i <= N_PAGES; i++)
        conc_future_free(fs[i]);
    conc_aio_queue_free(pages);
    check(conc_aio_server_close(web), "server close");
    check(conc_aio_server_wait_closed(web, WAIT), "server wait_closed");
    conc_aio_server_free(web);
    return 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    check(conc_aio_run(amain, NULL, 0, NULL), "conc_aio_run");
    return 0;
}
