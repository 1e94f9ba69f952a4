/* A broadcast chat: one server serves its browser page over plain HTTP
 * (the process_request hook) and the chat over a WebSocket at /ws; every
 * message a member sends goes to every member (conc_ws_broadcast, which
 * never waits: a member too far behind is closed with 1008 instead of
 * growing memory).
 *
 *   ws_chat 8765     serves http://127.0.0.1:8765/ until SIGTERM or SIGINT
 *   ws_chat          runs a short session by itself: starts the server on
 *                    a free port, fetches the page, and three members
 *                    chat; each prints what it received, then it exits
 *
 * Python websockets' equivalent:
 *
 *   members = set()
 *   async def chat(ws):
 *       members.add(ws)
 *       try:
 *           async for message in ws:
 *               websockets.broadcast(members, message)
 *       finally:
 *           members.remove(ws) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/aio_stream.h"
#include "conc/aio_sync.h"
#include "conc/ws.h"

#define MAX_MEMBERS 64
#define TIMEOUT     10.0 /* seconds for any one step of the session */
#define NPEOPLE     3

static const char page[] =
    "<!doctype html><meta charset=utf-8><title>conc chat</title>\n"
    "<pre id=log></pre><input id=msg autofocus>\n"
    "<script>\n"
    "const ws = new WebSocket(`ws://${location.host}/ws`);\n"
    "const log = document.getElementById('log');\n"
    "ws.onmessage = (e) => { log.textContent += e.data + '\\n'; };\n"
    "document.getElementById('msg').onkeydown = (e) => {\n"
    "  if (e.key === 'Enter') { ws.send(e.target.value); e.target.value = ''; "
    "}\n"
    "};\n"
    "</script>\n";

/* The members, in the server's loop only: no lock. */
static conc_ws *members[MAX_MEMBERS];
static size_t nmembers;

static void
leave(conc_ws *ws)
{
    for (size_t i = 0; i < nmembers; i++)
        if (members[i] == ws) {
            members[i] = members[--nmembers];
            return;
        }
}

static int
chat(void *arg, conc_ws *ws)
{
    (void)arg;
    if (nmembers == MAX_MEMBERS)
        return conc_ws_close(ws, 1013, "the room is full"); /* try again */
    members[nmembers++] = ws;
    char hello[64];
    snprintf(hello, sizeof hello, "welcome: %zu in the room", nmembers);
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    int r = conc_ws_send(ws, CONC_WS_TEXT, hello, strlen(hello), TIMEOUT);
    while (r == 0 && (r = conc_ws_recv(ws, CONC_FOREVER, &kind, &msg)) == 0)
        conc_ws_broadcast(members, nmembers, kind, msg.data, msg.len, 1008,
                          NULL);
    leave(ws);
    conc_buf_free(&msg);
    return r == CONC_ECLOSED ? 0 : r;
}

/* Plain HTTP for anything but /ws: the page at /, 404 elsewhere. */
static int
http(void *arg, const conc_ws_request *req, conc_ws_response *resp)
{
    (void)arg;
    if (strcmp(req->path, "/ws") == 0)
        return 0; /* go on with the upgrade */
    if (strcmp(req->path, "/") == 0) {
        *resp = (conc_ws_response){
            .status = 200,
            .headers = "Content-Type: text/html; charset=utf-8\r\n",
            .body = page,
            .body_len = sizeof page - 1};
    } else {
        *resp = (conc_ws_response){
            .status = 404, .body = "not found\n", .body_len = 10};
    }
    return 1;
}

static int
serve(conc_aio_loop *loop, int port, conc_ws_server **srv)
{
    conc_ws_opts o = {.process_request = http};
    return conc_ws_serve(loop, "127.0.0.1", port, chat, NULL, &o, srv);
}

/* ---- The session ws_chat runs by itself ----------------------------------
 */

/* Fetches the page as a browser would and checks it is the chat's. */
static int
fetch_page(int port)
{
    conc_aio_stream *s;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_open_connection("127.0.0.1", port, NULL, TIMEOUT, &s);
    if (r < 0)
        return r;
    static const char get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    r = conc_aio_stream_write(s, get, sizeof get - 1);
    if (!r)
        r = conc_aio_stream_readuntil(s, "</script>\n", 10, TIMEOUT, &b);
    if (!r)
        printf("GET / -> %.*s, %zu bytes of page\n",
               (int)strcspn((const char *)b.data, "\r"), (const char *)b.data,
               b.len);
    conc_aio_stream_free(s);
    conc_buf_free(&b);
    return r;
}

static int
session(int port)
{
    static const char *const names[NPEOPLE] = {"ann", "bob", "cid"};
    char url[64];
    conc_ws *ws[NPEOPLE] = {0};
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", port);
    int r = fetch_page(port);
    /* A member is in the room once the server's welcome came: messages
     * sent from then on reach it. */
    for (int i = 0; i < NPEOPLE && r == 0; i++) {
        r = conc_ws_connect(url, NULL, TIMEOUT, &ws[i]);
        if (!r)
            r = conc_ws_recv(ws[i], TIMEOUT, &kind, &msg);
        if (!r)
            printf("%s read \"%.*s\"\n", names[i], (int)msg.len,
                   (const char *)msg.data);
    }
    /* Each says hello in turn and everyone reads it before the next
     * speaks, so every member gets the three lines in the same order. */
    for (int i = 0; i < NPEOPLE && r == 0; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s: hello from %s", names[i], names[i]);
        r = conc_ws_send(ws[i], CONC_WS_TEXT, line, strlen(line), TIMEOUT);
        for (int j = 0; j < NPEOPLE && r == 0; j++) {
            r = conc_ws_recv(ws[j], TIMEOUT, &kind, &msg);
            if (!r)
                printf("%s read \"%.*s\"\n", names[j], (int)msg.len,
                       (const char *)msg.data);
        }
    }
    for (int i = 0; i < NPEOPLE; i++)
        if (ws[i]) {
            conc_ws_close(ws[i], 1000, "bye");
            conc_ws_free(ws[i]);
        }
    conc_buf_free(&msg);
    return r;
}

static void
on_signal(void *arg)
{
    conc_aio_event_set(arg);
}

static int
chat_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    int port = *(const int *)arg;
    conc_aio_loop *loop;
    conc_aio_event *stop = NULL;
    conc_ws_server *srv;
    int r = conc_aio_get_running_loop(&loop);
    if (!r)
        r = serve(loop, port, &srv);
    if (r < 0) {
        fprintf(stderr, "ws_chat: %s\n", conc_strerror(r));
        return r;
    }
    if (port == 0) { /* the session */
        printf("chat on http://127.0.0.1:%d/\n", conc_ws_server_port(srv));
        r = session(conc_ws_server_port(srv));
    } else if ((r = conc_aio_event_new(&stop)) == 0) {
        printf("chat on http://127.0.0.1:%d/\n", conc_ws_server_port(srv));
        fflush(stdout);
        conc_aio_add_signal_handler(loop, SIGTERM, on_signal, stop);
        conc_aio_add_signal_handler(loop, SIGINT, on_signal, stop);
        r = conc_aio_event_wait(stop, CONC_FOREVER);
        conc_aio_remove_signal_handler(loop, SIGTERM);
        conc_aio_remove_signal_handler(loop, SIGINT);
        conc_aio_event_free(stop);
    }
    conc_ws_server_close(srv); /* members get 1001 */
    conc_ws_server_wait_closed(srv, TIMEOUT);
    conc_ws_server_free(srv);
    if (r < 0)
        fprintf(stderr, "ws_chat: %s\n", conc_strerror(r));
    return r;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: ws_chat [PORT]\n");
        return 2;
    }
    return conc_aio_run(chat_main, &port, sizeof port, NULL) < 0 ? 1 : 0;
}
