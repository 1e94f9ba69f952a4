/* A WebSocket echo server on libwebsockets, the C library people would
 * pick instead of conc's server: bench_ws.c runs conc's client against it
 * beside conc's own server. Built only where pkg-config finds
 * libwebsockets (Debian's libwebsockets-dev).
 *
 *   lws_echo PORT      serves ws:// on 127.0.0.1 (PORT 0: any free one),
 *                      prints "listening on PORT" as its first line, and
 *                      echoes every message (text as text, binary as
 *                      binary) until SIGTERM or SIGINT.
 *
 * It uses lws's own poll loop and one protocol (the first, so that a
 * client asking for none gets it), no extensions: permessage-deflate
 * offers are declined. Each connection keeps the messages it has not
 * echoed yet in a list and writes one per WRITEABLE callback, as lws
 * requires. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

/* A message received whole (fragments joined), waiting to be echoed. */
struct msg {
    struct msg *next;
    int binary;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of room, then the payload */
};

/* Per connection: the message being received, then those to echo. */
struct session {
    struct msg *rx;
    size_t rx_cap;
    struct msg *head, **tail;
};

static volatile sig_atomic_t stop;
static struct lws_context *context;

/* Appends `len` bytes of the current frame to the message being received. */
static int
rx_append(struct session *s, const void *in, size_t len, int binary)
{
    if (!s->rx || s->rx->len + len > s->rx_cap) {
        size_t used = s->rx ? s->rx->len : 0;
        size_t cap = (used + len) * 2 + 64;
        struct msg *m = realloc(s->rx, sizeof *m + LWS_PRE + cap);
        if (!m)
            return -1;
        if (!s->rx)
            m->len = 0;
        s->rx = m;
        s->rx_cap = cap;
    }
    s->rx->binary = binary;
    memcpy(s->rx->data + LWS_PRE + s->rx->len, in, len);
    s->rx->len += len;
    return 0;
}

/* Moves the complete message to the echo list and asks to write. */
static void
rx_done(struct lws *wsi, struct session *s)
{
    struct msg *m = s->rx;
    s->rx = NULL;
    s->rx_cap = 0;
    m->next = NULL;
    *s->tail = m;
    s->tail = &m->next;
    lws_callback_on_writable(wsi);
}

/* Writes the oldest message; asks again while more wait. */
static int
echo_one(struct lws *wsi, struct session *s)
{
    struct msg *m = s->head;
    if (!m)
        return 0;
    enum lws_write_protocol how = m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    if (lws_write(wsi, m->data + LWS_PRE, m->len, how) < (int)m->len)
        return -1;
    s->head = m->next;
    if (!s->head)
        s->tail = &s->head;
    free(m);
    if (s->head)
        lws_callback_on_writable(wsi);
    return 0;
}

static void
session_clear(struct session *s)
{
    free(s->rx);
    while (s->head) {
        struct msg *m = s->head;
        s->head = m->next;
        free(m);
    }
    s->rx = NULL;
    s->tail = &s->head;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
         void *in, size_t len)
{
    struct session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        s->tail = &s->head;
        break;
    case LWS_CALLBACK_RECEIVE:
        if (rx_append(s, in, len, lws_frame_is_binary(wsi)) < 0)
            return -1;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
            rx_done(wsi, s);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return echo_one(wsi, s);
    case LWS_CALLBACK_CLOSED:
        session_clear(s);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", callback, sizeof(struct session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
    if (context)
        lws_cancel_service(context);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    context = lws_create_context(&info);
    if (!context)
        return 1;
    info.port = atoi(argv[1]);
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    struct lws_vhost *vh = lws_create_vhost(context, &info);
    if (!vh) {
        lws_context_destroy(context);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("listening on %d\n", lws_get_vhost_listen_port(vh));
    fflush(stdout);
    while (!stop && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
