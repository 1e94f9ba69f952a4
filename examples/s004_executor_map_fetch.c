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
 * port of 127.0.0.1, answers as httpbin's /get does (a JSON object whose
 * "args" echo the query), asked for the seed's URL as a proxy is ("GET
 * http://httpbin.org/get?a=N HTTP/1.0"), after 20 ms. The generator
 * expression is a conc_next_fn, which conc_executor_map calls as it needs
 * more items; the JSON is read with strstr, enough for this answer.
 * conc's map is lazy (Python's submits every URL at once), so the results
 * are read inside the scoped block: leaving it shuts the executor down. The
 * results are always 0 to 11 in order; the time varies.
 */
#define _POSIX_C_SOURCE 200809L /* the socket calls */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "conc.h"

#define LATENCY   0.02 /* the network's delay for one page */
#define N_NUMBERS 12
#define URL       "http://httpbin.org/get?a="

typedef struct page_request {
    char url[64];
    uint16_t port; /* the local server's */
} page_request;

/* Reports a failed call, with the task's message if it left one, and ends
 * the program at once. */
static void
check(int rc, const char *what)
{
    if (rc == 0)
        return;
    fflush(stdout);
    const char *msg = conc_failure_message();
    fprintf(stderr, "%s: %s: %s\n", what, conc_err_name(rc),
            *msg ? msg : conc_strerror(rc));
    _Exit(EXIT_FAILURE);
}

/* A system call's result: 0, or the conc code of errno. */
static int
sys(int rc)
{
    return rc < 0 ? -errno : 0;
}

static int
send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Appends what fd sends until it closes the connection. */
static int
recv_to_end(int fd, conc_buf *out)
{
    for (;;) {
        int rc = conc_buf_reserve(out, 4096);
        if (rc != 0)
            return rc;
        ssize_t n = recv(fd, out->data + out->len, out->cap - out->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        out->len += (size_t)n;
    }
}

/* ---- The local web server ----------------------------------------------
 * It stands in for the internet: a thread accepts connections, and a thread
 * per connection reads the request line "GET URL HTTP/1.0", waits LATENCY
 * as a network would, and answers with the page make_page builds. */

typedef struct web_server {
    int fd; /* the listening socket */
    uint16_t port;
    conc_thread *acceptor;
} web_server;

/* httpbin's /get: the query's argument back as JSON. Returns 1, 0 for a
 * URL not served here, or a negative code. */
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

static int
serve_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[1024];
    size_t got = 0;
    while (got < sizeof req - 1 && !memchr(req, '\n', got)) {
        ssize_t n = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    req[got] = '\0';
    char url[512] = "";
    conc_buf page = CONC_BUF_INIT, resp = CONC_BUF_INIT;
    int known = 0;
    if (sscanf(req, "GET %511s", url) == 1) {
        known = make_page(url, &page);
        check(known < 0 ? known : 0, "make_page");
    }
    check(conc_sleep(LATENCY), "conc_sleep");
    check(conc_buf_appendf(&resp, "HTTP/1.0 %s\r\nContent-Length: %zu\r\n\r\n",
                           known ? "200 OK" : "404 Not Found", page.len),
          "conc_buf_appendf");
    if (page.len > 0)
        check(conc_buf_append(&resp, page.data, page.len), "conc_buf_append");
    send_all(fd, resp.data, resp.len); /* a client that left does not care */
    close(fd);
    conc_buf_free(&page);
    conc_buf_free(&resp);
    return 0;
}

static int
accept_loop(void *arg)
{
    web_server *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && errno == EINVAL) /* web_server_stop shut it down */
            return 0;
        check(sys(fd), "accept");
        /* Not joined: exit() waits for the last one. */
        check(conc_thread_start(serve_connection, (void *)(intptr_t)fd, NULL,
                                NULL),
              "conc_thread_start");
    }
}

static void
web_server_start(web_server *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    check(sys(s->fd), "socket");
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(sys(bind(s->fd, (struct sockaddr *)&addr, sizeof addr)), "bind");
    check(sys(listen(s->fd, 16)), "listen");
    socklen_t len = sizeof addr;
    check(sys(getsockname(s->fd, (struct sockaddr *)&addr, &len)),
          "getsockname");
    s->port = ntohs(addr.sin_port);
    check(conc_thread_start(accept_loop, s, NULL, &s->acceptor),
          "conc_thread_start");
}

static void
web_server_stop(web_server *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() with EINVAL */
    int status;
    check(conc_thread_join(s->acceptor, CONC_FOREVER, &status),
          "conc_thread_join");
    conc_thread_free(s->acceptor);
    close(s->fd);
}

/* requests.get(url), through the local server: the status code, and the
 * body appended to `text`. */
static int
http_get(uint16_t port, const char *url, int *status, conc_buf *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    conc_buf resp = CONC_BUF_INIT;
    int rc = sys(connect(fd, (struct sockaddr *)&addr, sizeof addr));
    if (rc == 0)
        rc = conc_buf_appendf(&resp, "GET %s HTTP/1.0\r\n\r\n", url);
    if (rc == 0)
        rc = send_all(fd, resp.data, resp.len);
    conc_buf_consume(&resp, resp.len);
    if (rc == 0)
        rc = recv_to_end(fd, &resp);
    close(fd);
    if (rc == 0)
        rc = conc_buf_append(&resp, "", 1); /* a NUL for the string calls */
    const char *head = (const char *)resp.data;
    const char *body = rc == 0 ? strstr(head, "\r\n\r\n") : NULL;
    if (rc == 0 && (!body || sscanf(head, "HTTP/%*s %d", status) != 1))
        rc = conc_fail(CONC_EPROTO, "bad response from %s", url);
    if (rc == 0)
        rc = conc_buf_append(text, body + 4,
                             resp.len - 1 - (size_t)(body + 4 - head));
    conc_buf_free(&resp);
    return rc;
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
    web_server_start(&server);
    double start = conc_monotonic();
    fetch_all(server.port);
    printf("total_time: %.3f\n", conc_monotonic() - start);
    web_server_stop(&server);
    return 0;
}
