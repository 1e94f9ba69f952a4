/* The page of the Chromium interop test and the checks of what it sends,
 * shared by its two servers: ws_chromium_server.c (the I/O binding) and
 * ws_chromium_peer.c (the engine over blocking sockets).
 *
 * The page opens a WebSocket back to /ws, sends a text message, a binary
 * one and a 1 MiB one, checks each echo, then sends its verdict as a
 * last text message and closes with code 4321. */
#ifndef CONC_WS_CHROMIUM_PAGE_H
#define CONC_WS_CHROMIUM_PAGE_H

#include <stdint.h>
#include <string.h>

#include "conc/buf.h"

/* Messages the page sends before its verdict (each one echoed). */
#define PAGE_ECHOES 3

#define BIG_LEN    ((size_t)1 << 20)
#define CLOSE_CODE 4321
#define TEXT_MSG   "hello \xe2\x98\x83 from chromium"

static const char PAGE[] =
    "<!doctype html><meta charset=utf-8><title>conc ws</title><script>\n"
    "const ws = new WebSocket('ws://' + location.host + '/ws');\n"
    "ws.binaryType = 'arraybuffer';\n"
    "const text = 'hello \\u2603 from chromium';\n"
    "const bin = new Uint8Array(256).map((_, i) => i);\n"
    "const big = '0123456789abcdef'.repeat(65536);\n"
    "const want = [text, bin, big];\n"
    "let n = 0, bad = '';\n"
    "function same(a, b) {\n"
    "  if (typeof b === 'string') return a === b;\n"
    "  const u = new Uint8Array(a);\n"
    "  return u.length === b.length && u.every((v, i) => v === b[i]);\n"
    "}\n"
    "ws.onopen = () => { ws.send(text); ws.send(bin); ws.send(big); };\n"
    "ws.onmessage = (e) => {\n"
    "  if (!same(e.data, want[n])) bad += ' echo ' + n;\n"
    "  if (++n === want.length) {\n"
    "    ws.send('verdict ' + (bad || 'ok') +\n"
    "            ' ext=' + ws.extensions);\n"
    "    ws.close(4321, 'done');\n"
    "  }\n"
    "};\n"
    "</script>\n";

#define PAGE_TYPE "Content-Type: text/html; charset=utf-8\r\n"

static int
is_big(const conc_buf *b)
{
    static const char unit[] = "0123456789abcdef";
    if (b->len != BIG_LEN)
        return 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != (uint8_t)unit[i % 16])
            return 0;
    return 1;
}

/* Checks the n-th message the page sent: NULL, or what is wrong. */
static const char *
page_check(size_t n, int text, const conc_buf *b)
{
    switch (n) {
    case 0:
        return text && b->len == strlen(TEXT_MSG) &&
                       memcmp(b->data, TEXT_MSG, b->len) == 0
                   ? NULL
                   : "the text message differs";
    case 1:
        if (text || b->len != 256)
            return "the binary message differs";
        for (size_t i = 0; i < 256; i++)
            if (b->data[i] != i)
                return "the binary message differs";
        return NULL;
    case 2:
        return text && is_big(b) ? NULL : "the 1 MiB message differs";
    default:
        return text && b->len >= 10 && memcmp(b->data, "verdict ok", 10) == 0
                   ? NULL
                   : "the page's verdict is not ok";
    }
}

#endif
