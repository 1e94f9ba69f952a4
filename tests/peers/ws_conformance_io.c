/* Blocking sockets around the WebSocket engine: see ws_conformance_io.h. */
#include "ws_conformance_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "conc/error.h"

#define READ_CHUNK   65536
#define LINGER_SECS  2 /* how long a closing side waits for the peer's EOF */
#define URL_HOST_MAX 256

static void
set_timeout(int fd, int secs)
{
    struct timeval tv = {.tv_sec = secs};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int
write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int
wsp_listen(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0)
        return perror("socket"), -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("bind/listen");
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

/* Reads an HTTP head into `in`; returns 0 with *h and *used, else -1. */
static int
read_head(int fd, conc_buf *in, int is_request, struct conc__ws_http *h,
          size_t *used)
{
    char chunk[4096];
    for (;;) {
        int r = in->len ? conc__ws_http_parse((const char *)in->data, in->len,
                                              is_request, h, used)
                        : CONC_EAGAIN;
        if (r != CONC_EAGAIN)
            return r ? -1 : 0;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || conc_buf_append(in, chunk, (size_t)n))
            return -1;
    }
}

static int
start(struct wsp *p, enum conc__ws_role role,
      const struct conc__ws_deflate_params *dp)
{
    struct conc__ws_conn_opts o = {
        .role = role, .max_message = WSP_MAX_MESSAGE, .deflate = dp};
    p->deflate = dp != NULL;
    p->server = role == CONC__WS_SERVER;
    return conc__ws_conn_new(&o, &p->conn) ? -1 : 0;
}

/* Answers a request that is not an upgrade; always closes fd. */
static int
answer_plain(int fd, int check, const struct conc__ws_http *h, wsp_http_fn http,
             void *arg)
{
    conc_buf out = CONC_BUF_INIT;
    if (check == CONC_ENOENT && http && http(arg, h, &out) == 0)
        check = 0;
    else if (check == CONC_ENOENT)
        conc__ws_http_response_build(&out, 404, "Not Found", NULL, "", 0);
    else if (check == CONC_EVALUE)
        conc__ws_http_response_build(&out, 426, "Upgrade Required",
                                     "Sec-WebSocket-Version: 13\r\n", "", 0);
    else
        conc__ws_http_response_build(&out, 400, "Bad Request", NULL, "", 0);
    write_all(fd, out.data, out.len);
    conc_buf_free(&out);
    shutdown(fd, SHUT_WR);
    close(fd);
    return check == 0 ? 0 : -1;
}

/* Negotiates deflate and the subprotocol and writes the 101 response. */
static int
upgrade(struct wsp *p, const struct conc__ws_http *h,
        const struct conc__ws_upgrade *u, int deflate, const char *proto)
{
    char accept[CONC__WS_ACCEPT_LEN + 1];
    struct conc__ws_deflate_opts dopts = {0};
    struct conc__ws_deflate_params dp;
    conc_buf ext = CONC_BUF_INIT, out = CONC_BUF_INIT;
    const char *chosen = NULL;
    int use = 0;
    if (conc__ws_accept(u->key.p, u->key.n, accept))
        return -1;
    if (deflate && conc__ws_deflate_accept_offer(h, &dopts, &dp, &ext) == 0)
        use = conc_buf_append(&ext, "", 1) == 0;
    if (proto)
        conc__ws_subprotocol_select(h, &proto, 1, &chosen);
    int r = conc__ws_response_build(&out, accept, chosen,
                                    use ? (const char *)ext.data : NULL, NULL);
    if (r == 0)
        r = write_all(p->fd, out.data, out.len);
    if (r == 0)
        r = start(p, CONC__WS_SERVER, use ? &dp : NULL);
    conc_buf_free(&ext);
    conc_buf_free(&out);
    return r ? -1 : 0;
}

int
wsp_accept(int fd, int deflate, const char *proto, wsp_http_fn http, void *arg,
           struct wsp *p)
{
    struct conc__ws_http *hp = malloc(sizeof *hp);
    struct conc__ws_upgrade u;
    size_t used = 0;
    int r = -1;
    memset(p, 0, sizeof *p);
    p->fd = fd;
    set_timeout(fd, WSP_IO_TIMEOUT);
    if (!hp || read_head(fd, &p->in, 1, hp, &used)) {
        wsp_free(p);
        free(hp);
        return -1;
    }
    int check = conc__ws_upgrade_check(hp, &u);
    if (check) {
        r = answer_plain(fd, check, hp, http, arg);
        p->fd = -1;
        wsp_free(p);
        free(hp);
        return r == 0 ? 0 : -1;
    }
    r = upgrade(p, hp, &u, deflate, proto);
    free(hp);
    if (r) {
        wsp_free(p);
        return -1;
    }
    conc_buf_consume(&p->in, used);
    return 1;
}

/* Splits ws://host[:port][/path] into its parts. */
static int
parse_url(const char *url, char *host, char *port, const char **path)
{
    const char *s = url + strlen("ws://");
    if (strncmp(url, "ws://", 5))
        return -1;
    size_t hn = strcspn(s, ":/");
    if (hn == 0 || hn >= URL_HOST_MAX)
        return -1;
    memcpy(host, s, hn);
    host[hn] = 0;
    s += hn;
    strcpy(port, "80");
    if (*s == ':') {
        size_t pn = strcspn(++s, "/");
        if (pn == 0 || pn > 5)
            return -1;
        memcpy(port, s, pn);
        port[pn] = 0;
        s += pn;
    }
    *path = *s ? s : "/";
    return 0;
}

static int
dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res))
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends the upgrade request; *key gets the key it used. */
static int
send_request(struct wsp *p, const char *host, const char *path, int deflate,
             const char *proto, char key[CONC__WS_KEY_LEN + 1])
{
    struct conc__ws_deflate_opts dopts = {0};
    conc_buf ext = CONC_BUF_INIT, req = CONC_BUF_INIT;
    struct conc__ws_request_opts o = {.host = host, .path = path};
    int r = conc__ws_key_new(key);
    if (r == 0 && deflate) {
        /* Offer client_max_window_bits so that a server may pick. */
        dopts.client_max_window_bits = 15;
        r = conc__ws_deflate_offer(&ext, &dopts);
        if (r == 0)
            r = conc_buf_append(&ext, "", 1);
        o.extensions = (const char *)ext.data;
    }
    o.subprotocols = proto ? &proto : NULL;
    o.nsubprotocols = proto ? 1 : 0;
    if (r == 0)
        r = conc__ws_request_build(&req, &o, key);
    if (r == 0)
        r = write_all(p->fd, req.data, req.len);
    conc_buf_free(&ext);
    conc_buf_free(&req);
    return r;
}

static int
check_response(struct wsp *p, const char *key, int deflate, const char *proto)
{
    struct conc__ws_http *h = malloc(sizeof *h);
    struct conc__ws_deflate_opts dopts = {.client_max_window_bits = 15};
    struct conc__ws_deflate_params dp;
    const char *chosen;
    size_t used;
    int r = h ? read_head(p->fd, &p->in, 0, h, &used) : -1;
    if (r == 0 &&
        conc__ws_response_check(h, key, &proto, proto ? 1 : 0, &chosen)) {
        fprintf(stderr, "ws: handshake refused (status %u)\n", h->status);
        r = -1;
    }
    int ext =
        r ? CONC_ENOENT : conc__ws_deflate_accept_response(h, &dopts, &dp);
    if (r == 0 && (ext == CONC_EPROTO || (ext == 0 && !deflate)))
        r = -1;
    if (r == 0)
        r = start(p, CONC__WS_CLIENT, ext == 0 ? &dp : NULL);
    if (r == 0)
        conc_buf_consume(&p->in, used);
    free(h);
    return r;
}

int
wsp_connect(const char *url, int deflate, const char *proto, struct wsp *p)
{
    char host[URL_HOST_MAX], port[6], key[CONC__WS_KEY_LEN + 1];
    const char *path;
    memset(p, 0, sizeof *p);
    p->fd = -1;
    if (parse_url(url, host, port, &path)) {
        fprintf(stderr, "ws: bad url %s\n", url);
        return -1;
    }
    p->fd = dial(host, port);
    if (p->fd < 0) {
        fprintf(stderr, "ws: cannot connect to %s\n", url);
        return -1;
    }
    set_timeout(p->fd, WSP_IO_TIMEOUT);
    if (send_request(p, host, path, deflate, proto, key) ||
        check_response(p, key, deflate, proto)) {
        wsp_free(p);
        p->fd = -1;
        return -1;
    }
    return 0;
}

int
wsp_flush(struct wsp *p)
{
    conc_buf out = CONC_BUF_INIT;
    int r = conc__ws_conn_take_output(p->conn, &out);
    if (r == 0 && out.len)
        r = write_all(p->fd, out.data, out.len);
    conc_buf_free(&out);
    return r ? -1 : 0;
}

/* Ends the transport the way RFC 6455 section 7.1.1 asks: the server
 * closes first; the client waits a while for the server to do so. Either
 * side then drains until EOF, so that its close frame is not lost to a
 * reset. */
static void
finish(struct wsp *p)
{
    char buf[READ_CHUNK];
    if (conc__ws_conn_state(p->conn) != CONC__WS_CLOSED &&
        !conc__ws_conn_close_expected(p->conn))
        conc__ws_conn_receive_eof(p->conn);
    set_timeout(p->fd, LINGER_SECS);
    if (p->server)
        shutdown(p->fd, SHUT_WR);
    while (recv(p->fd, buf, sizeof buf, 0) > 0)
        ;
}

static int
feed(struct wsp *p)
{
    static __thread char buf[READ_CHUNK];
    if (p->in.len) {
        conc__ws_conn_receive(p->conn, p->in.data, p->in.len);
        conc_buf_consume(&p->in, p->in.len);
        return 0;
    }
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n <= 0) {
        conc__ws_conn_receive_eof(p->conn);
        return -1;
    }
    /* A protocol failure queues the close frame; close_expected ends. */
    conc__ws_conn_receive(p->conn, buf, (size_t)n);
    return 0;
}

int
wsp_next(struct wsp *p, struct conc__ws_event *ev, unsigned *code)
{
    for (;;) {
        int got = conc__ws_conn_next_event(p->conn, ev) == 0;
        if (wsp_flush(p))
            break;
        if (got)
            return 1;
        if (conc__ws_conn_close_expected(p->conn) || feed(p))
            break;
    }
    finish(p);
    *code = conc__ws_conn_close_code(p->conn);
    return 0;
}

unsigned
wsp_echo(struct wsp *p)
{
    struct conc__ws_event ev;
    unsigned code;
    while (wsp_next(p, &ev, &code)) {
        if (ev.type == CONC__WS_EV_TEXT || ev.type == CONC__WS_EV_BINARY)
            conc__ws_conn_send(p->conn,
                               ev.type == CONC__WS_EV_TEXT ? CONC__WS_TEXT
                                                           : CONC__WS_BINARY,
                               ev.data.data, ev.data.len);
        conc_buf_free(&ev.data);
    }
    return code;
}

void
wsp_free(struct wsp *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    conc__ws_conn_free(p->conn);
    p->conn = NULL;
    conc_buf_free(&p->in);
}
