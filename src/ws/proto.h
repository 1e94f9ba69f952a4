/* The WebSocket protocol engine (RFC 6455, RFC 7692), without I/O.
 *
 * Everything here turns bytes into bytes and events: nothing reads or
 * writes a descriptor, nothing blocks, nothing starts a thread. The I/O
 * binding (streams, coroutines) sits above and moves bytes between a
 * socket and a conc__ws_conn; tests and fuzzers drive the engine directly.
 * The design follows python websockets' sans-I/O core: receive_data ->
 * events, send_* -> bytes to write, plus close_expected.
 *
 * Protocol failures are reported with three library codes, each standing
 * for one WebSocket close code, so a caller can tell what the peer did:
 *
 *   CONC_EPROTO    1002 protocol error (bad framing, bad close payload...)
 *   CONC_EVALUE    1007 invalid data (text that is not UTF-8)
 *   CONC_EMSGSIZE  1009 message too big (a configured limit was passed)
 *
 * conc__ws_close_code_for maps them. The pieces, one file each:
 *   frame.c      frame headers, masking, close payloads
 *   utf8.c       incremental fail-fast UTF-8 validation
 *   handshake.c  the HTTP/1.1 upgrade, both sides, extension headers
 *   deflate.c    permessage-deflate negotiation and (de)compression
 *   conn.c       the connection state machine
 *
 * None of these objects is thread-safe: one thread at a time per object
 * (the binding serializes senders). The stateless functions may be called
 * from any thread. */
#ifndef CONC_WS_PROTO_H
#define CONC_WS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "conc/buf.h"

/* ---- Frames (frame.c) -------------------------------------------------- */

enum conc__ws_opcode {
    CONC__WS_CONT = 0x0,
    CONC__WS_TEXT = 0x1,
    CONC__WS_BINARY = 0x2,
    CONC__WS_CLOSE = 0x8,
    CONC__WS_PING = 0x9,
    CONC__WS_PONG = 0xA,
};

/* Close codes of RFC 6455 section 7.4.1 that the engine itself uses. */
#define CONC__WS_CLOSE_NORMAL       1000
#define CONC__WS_CLOSE_GOING_AWAY   1001
#define CONC__WS_CLOSE_PROTOCOL     1002
#define CONC__WS_CLOSE_NO_STATUS    1005 /* never on the wire */
#define CONC__WS_CLOSE_ABNORMAL     1006 /* never on the wire */
#define CONC__WS_CLOSE_INVALID_DATA 1007
#define CONC__WS_CLOSE_TOO_BIG      1009
#define CONC__WS_CLOSE_INTERNAL     1011

/* RSV bits as they sit in the first header byte. */
#define CONC__WS_RSV1 0x40
#define CONC__WS_RSV2 0x20
#define CONC__WS_RSV3 0x10

/* A control frame carries at most 125 bytes (section 5.5); a header is at
 * most 2 + 8 + 4 bytes (section 5.2). */
#define CONC__WS_CONTROL_MAX 125
#define CONC__WS_HEADER_MAX  14

/* Who must mask: a server receives masked frames only, a client unmasked
 * ones only (section 5.1). */
enum conc__ws_role { CONC__WS_SERVER = 0, CONC__WS_CLIENT = 1 };

struct conc__ws_frame {
    unsigned fin;    /* 1 on the last frame of a message */
    unsigned rsv;    /* the three RSV bits, as CONC__WS_RSV* */
    unsigned opcode; /* enum conc__ws_opcode */
    unsigned masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    size_t header_len; /* bytes of header before the payload */
};

/* Parses the frame header at the start of `p` (n bytes), as received by
 * `role`. Checks what the header alone can tell: reserved opcodes, control
 * frames that are fragmented or longer than 125 bytes, a 64-bit length
 * with its top bit set, and masking against the role. The RSV bits are
 * left to the caller (they depend on the extensions). Returns 0 with *f
 * filled, CONC_EAGAIN if `n` bytes do not hold the whole header yet,
 * CONC_EPROTO for a violation, CONC_EINVAL if p or f is NULL. Borrows p.
 * Any thread. */
int conc__ws_frame_parse(const uint8_t *p, size_t n, enum conc__ws_role role,
                         struct conc__ws_frame *f);

/* Writes a frame header into out[CONC__WS_HEADER_MAX] and returns its
 * length. `first` is the first byte (FIN, RSV bits and opcode); a non-NULL
 * mask sets the mask bit and writes the key. Any thread. */
size_t conc__ws_header_write(uint8_t *out, uint8_t first, uint64_t len,
                             const uint8_t *mask);

/* Appends a whole frame to `out`: header, then the payload, masked with
 * `mask` if it is not NULL. Returns 0, CONC_EINVAL for a NULL out (or a
 * NULL payload with n > 0), or CONC_ENOMEM; on failure out is unchanged.
 * Borrows every pointer. One thread at a time per buffer. */
int conc__ws_frame_append(conc_buf *out, uint8_t first, const void *payload,
                          size_t n, const uint8_t *mask);

/* Copies n bytes from src to dst XORed with the 4-byte key, starting at
 * `offset` bytes into the masked payload (so a payload can be unmasked in
 * pieces). dst may equal src; otherwise they must not overlap. Works a
 * machine word at a time. Any thread. */
void conc__ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                        const uint8_t key[4], size_t offset);

/* 1 if `code` may be sent or received in a close frame (1000-1003,
 * 1007-1014, 3000-4999), else 0. Any thread. */
int conc__ws_close_code_valid(unsigned code);

/* Parses a close frame's payload: empty (no status: *code = 1005), or a
 * valid code and a UTF-8 reason. *reason points into p. Returns 0,
 * CONC_EPROTO for a one-byte payload or an invalid code, CONC_EVALUE for
 * a reason that is not UTF-8, CONC_EINVAL for a NULL out-parameter.
 * Borrows p. Any thread. */
int conc__ws_close_parse(const uint8_t *p, size_t n, unsigned *code,
                         const uint8_t **reason, size_t *reason_len);

/* Maps CONC_EPROTO, CONC_EVALUE and CONC_EMSGSIZE to 1002, 1007 and 1009,
 * anything else to 1011 (internal error). Any thread. */
unsigned conc__ws_close_code_for(int err);

/* ---- UTF-8 (utf8.c) ---------------------------------------------------- */

/* Incremental validation state: a text message is checked as its frames
 * (or its decompressed pieces) arrive, and fails at the first byte that
 * cannot belong to valid UTF-8 (Autobahn's "fail fast", group 6.4).
 * Zero-initialize, or call conc__utf8_reset. */
struct conc__utf8 {
    uint8_t need; /* continuation bytes still expected */
    uint8_t lo;   /* the range the next continuation byte must fall in */
    uint8_t hi;
};

void conc__utf8_reset(struct conc__utf8 *s);

/* Checks n more bytes. Returns 0, or CONC_EVALUE at the first byte that
 * makes the text invalid (the state is then meaningless). Any thread, one
 * at a time per state. */
int conc__utf8_feed(struct conc__utf8 *s, const uint8_t *p, size_t n);

/* Returns 0 if the text fed so far ends on a character boundary, else
 * CONC_EVALUE. Any thread. */
int conc__utf8_finish(const struct conc__utf8 *s);

/* Validates a whole string: 0 or CONC_EVALUE. Any thread. */
int conc__utf8_check(const uint8_t *p, size_t n);

/* ---- Handshake (handshake.c) ------------------------------------------- */

/* A piece of a parsed buffer: the parsers never copy. */
struct conc__ws_span {
    const char *p;
    size_t n;
};

struct conc__ws_header {
    struct conc__ws_span name;
    struct conc__ws_span value;
};

/* Limits on what a peer can make a parser read: python websockets' limits
 * (max_line 8192, max_num_headers 128), over the whole head. */
#define CONC__WS_HTTP_MAX_HEAD    16384
#define CONC__WS_HTTP_MAX_HEADERS 128

/* A parsed HTTP/1.1 request or response head. For a request, `method`,
 * `target` are set; for a response, `status` and `reason`. Spans point
 * into the parsed buffer, which must outlive the struct. */
struct conc__ws_http {
    struct conc__ws_span method;
    struct conc__ws_span target;
    unsigned status;
    struct conc__ws_span reason;
    size_t nheaders;
    struct conc__ws_header headers[CONC__WS_HTTP_MAX_HEADERS];
};

/* Parses the head of a request (is_request = 1) or a response at the
 * start of p[0..n). Returns 0 with *h filled and *consumed set to the
 * head's length (with its final CRLF CRLF), CONC_EAGAIN if the head is not
 * complete yet, CONC_EMSGSIZE if it is longer than CONC__WS_HTTP_MAX_HEAD
 * or has more than CONC__WS_HTTP_MAX_HEADERS headers, CONC_EPROTO if it is
 * not HTTP/1.1, CONC_EINVAL for a NULL pointer. Borrows p; *h points into
 * it. Any thread. */
int conc__ws_http_parse(const char *p, size_t n, int is_request,
                        struct conc__ws_http *h, size_t *consumed);

/* Finds the `index`th header named `name` (case-insensitive), 0 first.
 * Returns 0 with *value set, or CONC_ENOENT. Any thread. */
int conc__ws_http_header(const struct conc__ws_http *h, const char *name,
                         size_t index, struct conc__ws_span *value);

/* 1 if header `name` (every instance of it) lists `token` among its
 * comma-separated values, case-insensitively; else 0. Any thread. */
int conc__ws_http_has_token(const struct conc__ws_http *h, const char *name,
                            const char *token);

/* Writes the Sec-WebSocket-Key for a new client handshake: 16 random
 * bytes from OpenSSL, base64 (24 characters and a NUL). Returns 0 or
 * -EIO if OpenSSL has no randomness. Any thread. */
#define CONC__WS_KEY_LEN    24
#define CONC__WS_ACCEPT_LEN 28
int conc__ws_key_new(char key[CONC__WS_KEY_LEN + 1]);

/* Computes Sec-WebSocket-Accept for `key` (section 4.2.2: base64 of the
 * SHA-1 of the key and the protocol's GUID), 28 characters and a NUL.
 * Returns 0, CONC_EINVAL for a NULL pointer. Any thread. */
int conc__ws_accept(const char *key, size_t key_len,
                    char out[CONC__WS_ACCEPT_LEN + 1]);

/* What a client asks for. host and path are required; the rest may be
 * NULL. `extensions` is the value of Sec-WebSocket-Extensions (for
 * instance from conc__ws_deflate_offer); `extra_headers` is appended as
 * is and must be complete "Name: value\r\n" lines. */
struct conc__ws_request_opts {
    const char *host;
    const char *path;
    const char *origin;
    const char *const *subprotocols;
    size_t nsubprotocols;
    const char *extensions;
    const char *extra_headers;
};

/* Replaces `out` with a client's upgrade request using `key` (from
 * conc__ws_key_new). Returns 0, CONC_EINVAL for a NULL pointer, a missing
 * host or path, or a value holding CR or LF, CONC_ENOMEM; out is unchanged
 * on failure. Borrows everything. One thread at a time per buffer. */
int conc__ws_request_build(conc_buf *out, const struct conc__ws_request_opts *o,
                           const char *key);

/* What a server learns from a valid upgrade request: spans into the
 * request. subprotocols and extensions cover the first instance of their
 * header; use conc__ws_http_header for the others. */
struct conc__ws_upgrade {
    struct conc__ws_span key;
    struct conc__ws_span host;
    struct conc__ws_span origin; /* n == 0 when absent */
};

/* Checks that a parsed request is a WebSocket upgrade (section 4.2.1):
 * GET, Host, Upgrade: websocket, Connection: upgrade, a 16-byte base64
 * key, version 13. Returns 0 with *u filled, CONC_ENOENT if the request
 * asks for no upgrade at all (plain HTTP the caller may answer itself),
 * CONC_EPROTO for a broken upgrade (answer 400), CONC_EVALUE for another
 * version (answer 426 with Sec-WebSocket-Version: 13), CONC_EINVAL for a
 * NULL pointer. Borrows h. Any thread. */
int conc__ws_upgrade_check(const struct conc__ws_http *h,
                           struct conc__ws_upgrade *u);

/* Picks the subprotocol: the first of the server's `supported` (its order
 * of preference) that the client listed in any Sec-WebSocket-Protocol
 * header. Returns 0 with *chosen (an element of supported), CONC_ENOENT if
 * there is none in common (*chosen = NULL), CONC_EINVAL for a NULL pointer.
 * Any thread. */
int conc__ws_subprotocol_select(const struct conc__ws_http *h,
                                const char *const *supported, size_t n,
                                const char **chosen);

/* Replaces `out` with a server's 101 response. subprotocol, extensions
 * and extra_headers (complete lines) may be NULL. Returns 0, CONC_EINVAL,
 * CONC_ENOMEM; out is unchanged on failure. One thread at a time per
 * buffer. */
int conc__ws_response_build(conc_buf *out,
                            const char accept[CONC__WS_ACCEPT_LEN + 1],
                            const char *subprotocol, const char *extensions,
                            const char *extra_headers);

/* Replaces `out` with a plain HTTP response (a refusal such as 400, 403,
 * 426, or a health check's 200): the status line, Content-Length,
 * Connection: close, `extra_headers`, and the body. Returns 0, CONC_EINVAL,
 * CONC_ENOMEM. One thread at a time per buffer. */
int conc__ws_http_response_build(conc_buf *out, unsigned status,
                                 const char *reason, const char *extra_headers,
                                 const void *body, size_t body_len);

/* Checks a server's response to the client's request made with `key`:
 * status 101, Upgrade, Connection, the accept value, and a subprotocol
 * among the `offered` ones (or none). Returns 0 with *subprotocol (an
 * element of offered, or NULL), CONC_EPROTO for a failed handshake (the
 * status is in h->status), CONC_EINVAL for a NULL pointer. Extensions are
 * checked by the caller (conc__ws_deflate_accept_response). Any thread. */
int conc__ws_response_check(const struct conc__ws_http *h, const char *key,
                            const char *const *offered, size_t noffered,
                            const char **subprotocol);

/* ---- Extension headers (handshake.c) ------------------------------------
 * Sec-WebSocket-Extensions = 1#extension
 * extension = name *( ";" param ), param = name [ "=" (token | quoted) ] */
#define CONC__WS_EXT_MAX_PARAMS 8

struct conc__ws_ext {
    struct conc__ws_span name;
    size_t nparams;
    struct {
        struct conc__ws_span name;
        struct conc__ws_span value; /* p == NULL when there is no value */
    } params[CONC__WS_EXT_MAX_PARAMS];
};

/* Parses the next extension of a header value; *rest is what is left and
 * moves past it. Returns 0 with *ext, CONC_ENOENT when none is left,
 * CONC_EPROTO for a malformed list (or more than CONC__WS_EXT_MAX_PARAMS
 * parameters, or a quoted value with escapes). Any thread. */
int conc__ws_ext_next(struct conc__ws_span *rest, struct conc__ws_ext *ext);

/* ---- permessage-deflate (deflate.c) ------------------------------------ */

/* A side's wishes, before negotiation. Zero fields mean the defaults:
 * window bits 12 and memLevel 5 (PERF.md: python websockets' 64 KiB per
 * connection instead of zlib's 316 KiB). */
#define CONC__WS_DEFLATE_WBITS    12
#define CONC__WS_DEFLATE_MEMLEVEL 5
struct conc__ws_deflate_opts {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits; /* 9..15, 0 for the default */
    int client_max_window_bits; /* 9..15, 0 for the default */
    int mem_level;              /* 1..9, 0 for the default */
    /* Messages shorter than this go uncompressed; 0 compresses all. */
    size_t threshold;
};

/* What both sides agreed, from the handshake; given to the connection. */
struct conc__ws_deflate_params {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits; /* 8..15 */
    int client_max_window_bits; /* 8..15 */
};

/* Replaces `out` with a client's offer for Sec-WebSocket-Extensions.
 * Returns 0, CONC_EINVAL for a NULL pointer or window bits out of range,
 * CONC_ENOMEM. One thread at a time per buffer. */
int conc__ws_deflate_offer(conc_buf *out,
                           const struct conc__ws_deflate_opts *o);

/* Server side: reads every Sec-WebSocket-Extensions header of a request
 * and accepts the first permessage-deflate offer it can honour. Returns 0
 * with *params and `response` replaced by the header value to send,
 * CONC_ENOENT if no offer is acceptable (answer without the extension),
 * CONC_EPROTO for a malformed header (answer 400), CONC_ENOMEM,
 * CONC_EINVAL. Any thread. */
int conc__ws_deflate_accept_offer(const struct conc__ws_http *request,
                                  const struct conc__ws_deflate_opts *o,
                                  struct conc__ws_deflate_params *params,
                                  conc_buf *response);

/* Client side: checks the Sec-WebSocket-Extensions of the server's
 * response against what `o` offered. Returns 0 with *params (the server
 * accepted), CONC_ENOENT if the server accepted no extension, CONC_EPROTO
 * if it answered with an extension or parameter that was not offered or
 * is malformed (fail the connection), CONC_EINVAL. Any thread. */
int conc__ws_deflate_accept_response(const struct conc__ws_http *response,
                                     const struct conc__ws_deflate_opts *o,
                                     struct conc__ws_deflate_params *params);

/* One side's compressor and decompressor. */
typedef struct conc__ws_deflate conc__ws_deflate;

/* Makes the (de)compression state of `role` for the agreed `params`;
 * `o` (NULL for defaults) gives mem_level and threshold. zlib's streams
 * are made on first use, so an idle connection costs little. Returns 0,
 * CONC_EINVAL, CONC_ENOMEM. The caller frees *out with
 * conc__ws_deflate_free. Any thread. */
int conc__ws_deflate_new(enum conc__ws_role role,
                         const struct conc__ws_deflate_params *params,
                         const struct conc__ws_deflate_opts *o,
                         conc__ws_deflate **out);
void conc__ws_deflate_free(conc__ws_deflate *d);

/* 1 if a message of n bytes should be compressed (n >= threshold). */
int conc__ws_deflate_wants(const conc__ws_deflate *d, size_t n);

/* Compresses one piece of an outgoing message and appends it to `out`.
 * On the last piece (fin) the 0x00 0x00 0xff 0xff tail is removed
 * (RFC 7692 section 7.2.1) and, without context takeover, the stream is
 * reset. Returns 0, CONC_ENOMEM, -EIO if zlib fails. */
int conc__ws_deflate_compress(conc__ws_deflate *d, const void *p, size_t n,
                              int fin, conc_buf *out);

/* Decompresses one frame's payload of an incoming message and appends the
 * result to `out`; on the last frame (fin) the tail is added back first.
 * `out` holds at most `limit` bytes on success; on CONC_EMSGSIZE it may
 * hold limit + 1 (the byte past the limit is how the overrun is seen).
 * Returns 0, CONC_EMSGSIZE past the limit, CONC_EPROTO for data that is
 * not DEFLATE, CONC_ENOMEM. */
int conc__ws_deflate_decompress(conc__ws_deflate *d, const void *p, size_t n,
                                int fin, size_t limit, conc_buf *out);

/* ---- The connection (conn.c) ------------------------------------------- */

/* Python websockets' max_size. */
#define CONC__WS_MAX_MESSAGE_DEFAULT ((size_t)1 << 20)

struct conc__ws_conn_opts {
    enum conc__ws_role role;
    /* Largest message accepted, after decompression; 0 for 1 MiB,
     * SIZE_MAX for no limit. */
    size_t max_message;
    /* Largest frame accepted; 0 for max_message. */
    size_t max_frame;
    /* Negotiated permessage-deflate, or NULL. */
    const struct conc__ws_deflate_params *deflate;
    const struct conc__ws_deflate_opts *deflate_opts; /* NULL: defaults */
    /* 1 to leave pings unanswered (the caller answers). */
    int no_auto_pong;
    /* 1 to hand messages out in pieces as they arrive (the end of each
     * fragment, and every CONC__WS_STREAM_PIECE bytes within one), each
     * event's `more` saying whether pieces of the same message follow;
     * max_message still bounds the whole message. 0: whole messages. */
    int stream;
};

/* In stream mode, a piece is handed out once it holds this many bytes. */
#define CONC__WS_STREAM_PIECE ((size_t)64 * 1024)

enum conc__ws_event_type {
    CONC__WS_EV_TEXT = 1,
    CONC__WS_EV_BINARY,
    CONC__WS_EV_PING,
    CONC__WS_EV_PONG,
    CONC__WS_EV_CLOSE, /* the peer's close frame */
};

struct conc__ws_event {
    enum conc__ws_event_type type;
    conc_buf data; /* the message, ping/pong payload, or close reason */
    unsigned code; /* CLOSE: the peer's code (1005 when none) */
    int more;      /* stream mode: more pieces of this message follow */
};

/* The close handshake (RFC 6455 section 7):
 *
 *   OPEN --send close--> CLOSING --close received--> CLOSED
 *   OPEN --close received (answered at once)------> CLOSED
 *   OPEN/CLOSING --protocol failure (close sent)--> CLOSING, input ignored
 *   any --receive_eof--> CLOSED
 *
 * close_expected says when the binding should close TCP: a server right
 * after the handshake ends (section 7.1.1), a client after waiting a
 * while for the server to do so. */
enum conc__ws_state { CONC__WS_OPEN, CONC__WS_CLOSING, CONC__WS_CLOSED };

typedef struct conc__ws_conn conc__ws_conn;

/* Makes a connection in the OPEN state (after the handshake). Returns 0,
 * CONC_EINVAL, CONC_ENOMEM. Freed with conc__ws_conn_free. Any thread. */
int conc__ws_conn_new(const struct conc__ws_conn_opts *o, conc__ws_conn **out);
void conc__ws_conn_free(conc__ws_conn *c);

/* Feeds bytes received from the peer. Complete messages and control
 * frames become events (conc__ws_conn_next_event); replies (pongs, the
 * close answer) are queued as bytes to send. Returns 0; CONC_EPROTO,
 * CONC_EVALUE or CONC_EMSGSIZE when the peer broke the protocol: the
 * connection is failed, a close frame with the matching code is queued and
 * later input is ignored; CONC_ECLOSED after receive_eof; CONC_ENOMEM
 * (the connection is failed with 1011). Borrows p. */
int conc__ws_conn_receive(conc__ws_conn *c, const void *p, size_t n);

/* The peer closed its side of the transport. Returns 0; the state becomes
 * CLOSED (code 1006 unless the close handshake had finished). */
int conc__ws_conn_receive_eof(conc__ws_conn *c);

/* Takes the oldest event: 0 with *ev (its data now belongs to the caller,
 * who frees it with conc_buf_free), or CONC_EEMPTY. */
int conc__ws_conn_next_event(conc__ws_conn *c, struct conc__ws_event *ev);

/* Queues a whole text or binary message. Returns 0, CONC_EINVAL for
 * another opcode or NULL p with n > 0, CONC_EVALUE for text that is not
 * UTF-8, CONC_ESTATE inside a fragmented send or after close was sent,
 * CONC_ECLOSED once CLOSED, CONC_ENOMEM. */
int conc__ws_conn_send(conc__ws_conn *c, enum conc__ws_opcode opcode,
                       const void *p, size_t n);

/* Queues one fragment of a message: the first names TEXT or BINARY, the
 * others pass CONC__WS_CONT; `fin` ends the message. Control frames may be
 * sent between fragments. Errors as conc__ws_conn_send (text is validated
 * across fragments), CONC_ESTATE for CONT outside a message or TEXT/BINARY
 * inside one. With permessage-deflate, the first fragment's size decides
 * (against the threshold) whether the whole message is compressed. */
int conc__ws_conn_send_fragment(conc__ws_conn *c, enum conc__ws_opcode opcode,
                                const void *p, size_t n, int fin);

/* Queues a ping or a pong (at most 125 bytes, else CONC_EINVAL). Returns
 * 0, CONC_ESTATE after close was sent, CONC_ECLOSED, CONC_ENOMEM. */
int conc__ws_conn_ping(conc__ws_conn *c, const void *p, size_t n);
int conc__ws_conn_pong(conc__ws_conn *c, const void *p, size_t n);

/* Starts the close handshake with `code` (0 for none, else a valid code)
 * and a UTF-8 reason of at most 123 bytes. Returns 0, CONC_EINVAL for a bad
 * code or reason, CONC_ESTATE if close was already sent, CONC_ECLOSED. */
int conc__ws_conn_close(conc__ws_conn *c, unsigned code, const void *reason,
                        size_t n);

/* Replaces `out` with the bytes to write to the peer (possibly none); the
 * connection keeps out's old memory for its next bytes, so nothing is
 * copied. Returns 0 or CONC_EINVAL. */
int conc__ws_conn_take_output(conc__ws_conn *c, conc_buf *out);

enum conc__ws_state conc__ws_conn_state(const conc__ws_conn *c);

/* 1 when the binding should now close the transport (see above). */
int conc__ws_conn_close_expected(const conc__ws_conn *c);

/* The close code the connection ended with: the code received, the code
 * sent when it failed the connection, 1006 for an abrupt end, 0 while it
 * is open. */
unsigned conc__ws_conn_close_code(const conc__ws_conn *c);

#endif
