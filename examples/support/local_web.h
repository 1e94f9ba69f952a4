/* A tiny web server and client on 127.0.0.1, standing in for the internet
 * in the examples whose seeds fetch pages (requests.get). The example says
 * what pages there are with a page callback; the server waits a given
 * latency before each answer, as a network would. A client asks for the
 * seed's own URL as a client asks a proxy: "GET http://host/path HTTP/1.0".
 *
 * Start the server before any thread of the program but after any process
 * pool: workers forked while other threads exist could inherit a lock one
 * of them held. */
#ifndef LOCAL_WEB_H
#define LOCAL_WEB_H

#include <stdint.h>

#include "conc.h"

/* Appends to page the page at url: returns 1 if the URL is served here, 0
 * for "404 Not Found", or a negative code, which ends the program. Runs on
 * a thread of its own per request, several at once. */
typedef int (*web_page_fn)(const char *url, conc_buf *page);

/* The fields are set by web_server_start before its thread starts and only
 * read after, so they need no lock. */
typedef struct web_server {
    int fd;           /* the listening socket */
    uint16_t port;    /* where it listens on 127.0.0.1: give it to clients */
    web_page_fn page; /* builds each page */
    double latency;   /* seconds every answer waits */
    conc_thread *acceptor;
} web_server;

/* Listens on a free port of 127.0.0.1 and serves each connection on a
 * thread of its own: reads the request line, waits `latency` seconds and
 * answers with what page builds (200) or nothing (404). s is the caller's
 * storage and must stay until web_server_stop. Any failure ends the
 * program (check). */
void web_server_start(web_server *s, web_page_fn page, double latency);

/* Stops accepting and joins the accepting thread. A connection still being
 * served finishes on its own; exit() waits for it. */
void web_server_stop(web_server *s);

/* requests.get(url) through the server on port: sets *status to the
 * response's status code and appends its body to text. Returns 0, -errno,
 * CONC_ENOMEM, or CONC_EPROTO (with a failure message) for a response it
 * cannot read. Any thread or process; borrows url and text. */
int http_get(uint16_t port, const char *url, int *status, conc_buf *text);

#endif
