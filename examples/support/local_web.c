/* The examples' local web server and client: see local_web.h.
 *
 * A thread accepts connections, and a thread per connection reads the
 * request line "GET URL HTTP/1.0", waits the server's latency as a network
 * would, and answers with the page the example's callback builds, then
 * closes the connection: the client reads to the end, so it needs no
 * Content-Length, though the answer carries one. */
#define _POSIX_C_SOURCE 200809L /* the socket calls */

#include "local_web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "example_util.h"

/* What a connection's thread needs: its own copy, as the server's storage
 * may be gone before the thread is. */
typedef struct connection {
    int fd;
    web_page_fn page;
    double latency;
} connection;

/* Reads up to the end of the request line (or what fits) into req, a
 * string; a client that breaks off leaves what came. */
static void
read_request(int fd, char *req, size_t size)
{
    size_t got = 0;
    while (got < size - 1 && !memchr(req, '\n', got)) {
        ssize_t n = recv(fd, req + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    req[got] = '\0';
}

static int
serve_connection(void *arg)
{
    connection c = *(connection *)arg;
    free(arg);
    char req[1024], url[512] = "";
    read_request(c.fd, req, sizeof req);
    conc_buf page = CONC_BUF_INIT, resp = CONC_BUF_INIT;
    int known = 0;
    if (sscanf(req, "GET %511s", url) == 1) {
        known = c.page(url, &page);
        check(known < 0 ? known : 0, "make_page");
    }
    check(conc_sleep(c.latency), "conc_sleep");
    check(conc_buf_appendf(&resp, "HTTP/1.0 %s\r\nContent-Length: %zu\r\n\r\n",
                           known ? "200 OK" : "404 Not Found", page.len),
          "conc_buf_appendf");
    if (page.len > 0)
        check(conc_buf_append(&resp, page.data, page.len), "conc_buf_append");
    send_all(c.fd, resp.data, resp.len); /* a client that left does not care */
    close(c.fd);
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
        connection *c = malloc(sizeof *c);
        check(c ? 0 : CONC_ENOMEM, "malloc");
        *c = (connection){.fd = fd, .page = s->page, .latency = s->latency};
        /* Not joined: exit() waits for the last one. */
        check(conc_thread_start(serve_connection, c, NULL, NULL),
              "conc_thread_start");
    }
}

void
web_server_start(web_server *s, web_page_fn page, double latency)
{
    s->page = page;
    s->latency = latency;
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

void
web_server_stop(web_server *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() with EINVAL */
    int status;
    check(conc_thread_join(s->acceptor, CONC_FOREVER, &status),
          "conc_thread_join");
    conc_thread_free(s->acceptor);
    close(s->fd);
}

int
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
