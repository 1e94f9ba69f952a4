/* s001_pool_callback_file: seed 001, 五 进程池, 回调函数的简单使用 (workers
 * fetch pages, a callback in the parent parses them into one file).
 *
 * The Python gives Pool(3) five get_page(url) with apply_async and
 * callback=pasrse_page. get_page prints '<进程PID> get URL', fetches the
 * page with requests.get and returns {'url': url, 'text': text};
 * pasrse_page, in the parent, prints '<进程PID> parse URL' and appends
 * 'url:<URL> size:[LEN]' to db.txt. After close() and join() main prints
 * every result (which the callback already handled). The slow part, the
 * network, runs in the workers; the parent only parses.
 *
 * There is no network here: a web server thread of this program, on a free
 * port of 127.0.0.1, stands in for the five sites. A worker asks it for the
 * seed's URL as a client asks a proxy ("GET https://www.baidu.com
 * HTTP/1.0") and the server answers after 20 ms with a page of its own
 * making. The result bytes are the URL, a NUL, then the text. db.txt is a
 * temporary file, printed and removed at the end; the results print with
 * their text cut short. The order of the get and parse lines varies; the
 * file's lines come in completion order.
 */
#define _POSIX_C_SOURCE 200809L /* the socket calls, mkstemp */

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

#define LATENCY 0.02 /* the network's delay for one page */
#define N_URLS  5

static const char *const urls[N_URLS] = {
    "https://www.baidu.com",     "https://www.python.org",
    "https://www.openstack.org", "https://help.github.com/",
    "http://www.sina.com.cn/",
};

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

/* The page of a site, the same frame with a body whose size depends on
 * the URL: returns 1, 0 for a URL not served here, or a negative code. */
static int
make_page(const char *url, conc_buf *page)
{
    int known = 0;
    for (int i = 0; i < N_URLS; i++)
        known |= strcmp(url, urls[i]) == 0;
    if (!known)
        return 0;
    int rc = conc_buf_appendf(page,
                              "<!DOCTYPE html>\r\n<html><head><title>%s"
                              "</title></head><body>\r\n",
                              url);
    for (size_t i = 0; rc == 0 && i < 40 * strlen(url); i++)
        rc = conc_buf_appendf(page, "%c", 'a' + (int)(i % 26));
    if (rc == 0)
        rc = conc_buf_appendf(page, "\r\n</body></html>\r\n");
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

/* In a worker: the result is the URL, a NUL, then the page. */
static int
get_page(const void *arg, size_t len, conc_buf *result)
{
    const page_request *req = arg;
    if (len != sizeof *req)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("<进程%d> get %s\n", (int)getpid(), req->url);
    int rc = conc_buf_append(result, req->url, strlen(req->url) + 1);
    int status = 0;
    if (rc == 0)
        rc = http_get(req->port, req->url, &status, result);
    if (rc == 0 && status != 200)
        rc = conc_fail(CONC_EVALUE, "%s: status %d", req->url, status);
    return rc;
}

/* In the parent's result thread: one line per page into db.txt. */
static void
pasrse_page(void *arg, const void *data, size_t len)
{
    const char *db = arg;
    const char *url = data;
    size_t text_len = len - strlen(url) - 1;
    printf("<进程%d> parse %s\n", (int)getpid(), url);
    FILE *f = fopen(db, "a");
    check(f ? 0 : CONC_ENOENT, "fopen");
    fprintf(f, "url:<%s> size:[%zu]\n", url, text_len);
    check(fclose(f) == 0 ? 0 : -errno, "fclose");
}

/* print([res.get() for res in res_l]), with each text cut short. */
static void
print_results(conc_async_result **res_l)
{
    printf("[");
    for (int i = 0; i < N_URLS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res_l[i], CONC_FOREVER, &data, &len),
              "get_page");
        const char *url = data, *text = url + strlen(url) + 1;
        printf("%s{'url': '%s', 'text': '%.15s\\r\\n...'}", i ? ", " : "", url,
               text);
        conc_async_result_free(res_l[i]);
    }
    printf("]\n");
}

static void
print_file(const char *path)
{
    char line[256];
    FILE *f = fopen(path, "r");
    check(f ? 0 : CONC_ENOENT, "fopen");
    printf("db.txt:\n");
    while (fgets(line, sizeof line, f))
        printf("  %s", line);
    fclose(f);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    char db[] = "/tmp/db.txt-XXXXXX";
    int fd = mkstemp(db);
    check(sys(fd), "mkstemp");
    close(fd);
    /* The pool before the server: workers forked before any other thread
     * exists inherit no lock held by one. */
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 3}, &p),
          "conc_pool_new");
    web_server server;
    web_server_start(&server);

    conc_async_result *res_l[N_URLS];
    conc_apply_opts cb = {.callback = pasrse_page, .arg = db};
    for (int i = 0; i < N_URLS; i++) {
        page_request req = {.port = server.port};
        snprintf(req.url, sizeof req.url, "%s", urls[i]);
        check(conc_pool_apply_async(p, get_page, &req, sizeof req, &cb,
                                    &res_l[i]),
              "conc_pool_apply_async");
    }
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    print_results(res_l);
    conc_pool_free(p);
    web_server_stop(&server);
    print_file(db);
    remove(db);
    return 0;
}
