/* s004_executor_map_fetch: seed 004, 三 concurrent.futures, Executor.map
 * over a generator of URLs.
 *
 * The Python's fetch(url) asks httpbin.org for url ('/get?a=N') and returns
 * r.json()['args']['a'], the N it sent. Main runs
 * executor.map(fetch, (url.format(n) for n in range(12))) inside
 * `with ThreadPoolExecutor(max_workers=3)` and prints each result, in
 * order, then the total time. Its comments show the other way: submit each
 * URL and read the futures with as_completed.
 *
 * There is no network here: a web server thread of this program, on a free
 * port of 127.0.0.1 (examples/support/local_web.c), answers as httpbin's /get
 * does (a JSON object whose "args" echo the query), asked for the seed's URL as
 * a proxy is ("GET http://httpbin.org/get?a=N HTTP/1.0"), after 20 ms. The
 * generator expression is a conc_next_fn, which conc_executor_map calls as it
 * needs more items; the JSON is read with strstr, enough for this answer.
 * conc's map is lazy (Python's submits every URL at once), so the results
 * are read inside the scoped block: leaving it shuts the executor down. The
 * results are always 0 to 11 in order; the time varies.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conc.h"
#include "example_util.h"
#include "local_web.h"

#define LATENCY   0.02 /* the network's delay for one page */
#define N_NUMBERS 12
#define URL       "http://httpbin.org/get?a="

typedef struct page_request {
    char url[64];
    uint16_t port; /* the local server's */
} page_request;

/* The local server's page callback: httpbin's /get, the query's argument
 * back as JSON. Returns 1, 0 for a URL not served here, or a negative
 * code. */
static int
make_page(const char *url, conc_buf *page)
{
    if (strncmp(url, URL, strlen(URL)) != 0)
        return 0;
    const char *a = url + strlen(URL);
    int rc = conc_buf_appendf(page,
                              "{\n  \"args\": {\n    \"a\": \"%s\"\n  }, \n"
                              "  \"headers\": {\n    \"Host\": \"httpbin.org\""
                              "\n  }, \n  \"url\": \"%s\"\n}\n",
                              a, url);
    return rc == 0 ? 1 : rc;
}

/* fetch(url): r.json()['args']['a'], as the task's result. */
static int
fetch(const void *arg, size_t len, conc_buf *result)
{
    const page_request *req = arg;
    if (len != sizeof *req)
        return conc_fail(CONC_EINVAL, "bad argument");
    conc_buf r = CONC_BUF_INIT;
    int status = 0;
    int rc = http_get(req->port, req->url, &status, &r);
    if (rc == 0)
        rc = conc_buf_append(&r, "", 1); /* a NUL for strstr */
    const char *args =
        rc == 0 ? strstr((const char *)r.data, "\"args\"") : NULL;
    const char *a = args ? strstr(args, "\"a\": \"") : NULL;
    const char *end = a ? strchr(a + 6, '"') : NULL;
    if (rc == 0 && (status != 200 || !end))
        rc = conc_fail(CONC_EVALUE, "%s: status %d, no args.a", req->url,
                       status);
    if (rc == 0)
        rc = conc_buf_append(result, a + 6, (size_t)(end - (a + 6)));
    conc_buf_free(&r);
    return rc;
}

/* (url.format(n) for n in numbers), as a conc_next_fn. */
typedef struct url_gen {
    int n;
    uint16_t port;
} url_gen;

static int
next_url(void *ctx, conc_buf *item)
{
    url_gen *g = ctx;
    if (g->n == N_NUMBERS)
        return 0;
    page_request req = {.port = g->port};
    snprintf(req.url, sizeof req.url, URL "%d", g->n++);
    int rc = conc_buf_append(item, &req, sizeof req);
    return rc == 0 ? 1 : rc;
}

/* The seed's with-block: map, and the results read in it. */
static void
fetch_all(uint16_t port)
{
    CONC_EXECUTOR_SCOPED conc_executor *executor = NULL;
    check(conc_thread_executor_new(&(conc_executor_opts){.max_workers = 3},
                                   &executor),
          "conc_thread_executor_new");
    url_gen gen = {.n = 0, .port = port};
    conc_items numbers = {.next = next_url, .ctx = &gen};
    conc_map_iter *future;
    check(conc_executor_map(executor, fetch, &numbers, NULL, &future),
          "conc_executor_map");
    const void *data;
    size_t len;
    int rc;
    while ((rc = conc_map_next(future, CONC_FOREVER, &data, &len)) == 0)
        printf("%.*s\n", (int)len, (const char *)data);
    check(rc == CONC_ECLOSED ? 0 : rc, "conc_map_next");
    conc_map_free(future);
} /* the executor is shut down here */

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    web_server server;
    web_server_start(&server, make_page, LATENCY);
    double start = conc_monotonic();
    fetch_all(server.port);
    printf("total_time: %.3f\n", conc_monotonic() - start);
    web_server_stop(&server);
    return 0;
}
