#!/usr/bin/python3
"""A WebSocket conformance suite: the Autobahn|Testsuite case groups 1-7,
9, 10, 12 and 13, rebuilt from their descriptions.

The official runner (wstest) needs Python 2. This one drives raw frames
over plain sockets, so that every case controls exactly what goes on the
wire: bad RSV bits, reserved opcodes, chopped frames, a close payload of
one byte. The UTF-8 vectors of group 6 are Autobahn's own, taken from
Debian's python3-autobahn.

Two directions, as Autobahn's fuzzingclient and fuzzingserver:

  ws_conformance.py client --server-cmd 'ECHO_SERVER 0' [--cases ...]
      starts an echo server (its first line: "listening on PORT") and plays
      each case as a client against it;
  ws_conformance.py server --client-cmd 'ECHO_CLIENT {url}' [--cases ...]
      listens on loopback and starts an echo client per case, playing the
      case as the server.

--python-echo uses python websockets (Debian python3-websockets) as the
peer instead, to check the suite itself against a known implementation.
--subset runs a few cases per group with small groups 9, 12 and 13 (for
CTest); --cases takes comma-separated prefixes ("1.1,5.19,7").

Every case prints one row: OK, NON-STRICT (accepted by RFC 6455 but not
the strictest reading, as Autobahn grades), INFORMATIONAL (no verdict, the
behaviour is shown) or FAILED. The exit status is 1 if any case FAILED.
"""
import argparse
import base64
import fcntl
import hashlib
import os
import random
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import zlib

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFLATE_TAIL = b"\x00\x00\xff\xff"

WAIT = 2.0          # seconds a case waits for what it expects
CLOSE_WAIT = 3.0    # for the close handshake and the end of TCP
SYNC_WAIT = 1.0     # at most, for written bytes to reach the peer's kernel
SYNC_POLL = 0.001   # how often the unacknowledged output is looked at
FAIL_FAST_WAIT = 1.0  # 6.4: how long a fail-fast peer gets to close

OK, NON_STRICT, INFORMATIONAL, FAILED = (
    "OK", "NON-STRICT", "INFORMATIONAL", "FAILED")
RANK = {OK: 0, INFORMATIONAL: 0, NON_STRICT: 1, FAILED: 2}


def mask_bytes(key, data):
    """XORs data with the 4-byte key (section 5.3), a whole int at once."""
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(data, "little") ^ int.from_bytes(k, "little")
    return x.to_bytes(n, "little")


class Deflate:
    """permessage-deflate for one side, from the agreed parameters."""

    def __init__(self, params, client):
        me, peer = ("client", "server") if client else ("server", "client")
        self.out_reset = params.get(me + "_no_context_takeover", False)
        self.in_reset = params.get(peer + "_no_context_takeover", False)
        # zlib does not compress with an 8-bit window: 9 is the least.
        self.out_bits = max(9, params.get(me + "_max_window_bits", 15))
        self.comp = self.decomp = None

    def compress(self, data):
        if self.comp is None or self.out_reset:
            self.comp = zlib.compressobj(6, zlib.DEFLATED, -self.out_bits)
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(DEFLATE_TAIL) else out

    def decompress(self, data):
        if self.decomp is None or self.in_reset:
            self.decomp = zlib.decompressobj(-15)
        return self.decomp.decompress(data + DEFLATE_TAIL)


def parse_extensions(value):
    """[(name, {param: value or True})] of a Sec-WebSocket-Extensions."""
    out = []
    for ext in filter(None, (e.strip() for e in value.split(","))):
        parts = [p.strip() for p in ext.split(";")]
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip()] = v.strip().strip('"') if v else True
        out.append((parts[0], params))
    return out


def deflate_params(params):
    """The agreed parameters of a permessage-deflate response element."""
    out = {}
    for k, v in params.items():
        if k.endswith("no_context_takeover"):
            out[k] = True
        elif k.endswith("max_window_bits"):
            out[k] = int(v) if v is not True else 15
        else:
            raise ValueError("unknown parameter " + k)
    return out


class Conn:
    """One WebSocket connection seen from the fuzzing side: frames go out
    exactly as a case writes them; frames that come in become events."""

    def __init__(self, sock, client, deflate=None, rest=b""):
        self.sock, self.client, self.deflate = sock, client, deflate
        self.buf = bytearray(rest)
        self.events = []       # ("message", opcode, data) or ("pong", data)
        self.close_received = None  # (code, reason) of the peer's close
        self.close_sent = False
        self.eof = False
        self.violation = None  # what the peer did wrong on the wire
        self.msg = None        # [opcode, parts, compressed] being received
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- sending
    def frame(self, opcode, payload=b"", fin=True, rsv=0, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        m = 0x80 if self.client else 0
        if n < 126:
            head = bytes([b0, m | n])
        elif n < 65536:
            head = bytes([b0, m | 126]) + struct.pack("!H", n)
        else:
            head = bytes([b0, m | 127]) + struct.pack("!Q", n)
        if self.client:
            key = os.urandom(4)
            head += key
            payload = mask_bytes(key, payload)
        return head + payload

    def wait_sent(self):
        """Waits until the peer's kernel has acknowledged all that was
        written (the socket's unsent and unacknowledged output, TIOCOUTQ
        alias SIOCOUTQ, is 0), so that what is written next reaches the
        peer as a separate read. There is no event for that: it polls,
        for at most SYNC_WAIT."""
        deadline = time.monotonic() + SYNC_WAIT
        while time.monotonic() < deadline:
            pending = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ,
                                  struct.pack("i", 0))
            if struct.unpack("i", pending)[0] == 0:
                return
            time.sleep(SYNC_POLL)

    def send_raw(self, data, chop=None, sync=False):
        try:
            if not chop:
                self.sock.sendall(data)
            for i in range(0, len(data), chop or len(data) or 1):
                if chop:
                    self.sock.sendall(data[i:i + chop])
                if sync and chop:
                    self.wait_sent()
            if sync:
                self.wait_sent()
        except OSError:
            pass  # the peer may already have failed the connection

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, chop=None,
                   sync=False, length=None):
        if opcode == CLOSE:
            self.close_sent = True
        self.send_raw(self.frame(opcode, payload, fin, rsv, length),
                      chop, sync)

    def send_message(self, opcode, data, frag=None, compress=None,
                     chop=None, sync=False):
        """A whole message, compressed when deflate is on (unless told
        otherwise), in fragments of `frag` bytes."""
        rsv = 0
        if compress is None:
            compress = self.deflate is not None
        if compress:
            data, rsv = self.deflate.compress(data), 4
        frag = frag or len(data) or 1
        pieces = [data[i:i + frag] for i in range(0, len(data), frag)] or [b""]
        out = []
        for i, p in enumerate(pieces):
            out.append(self.frame(opcode if i == 0 else CONT, p,
                                  i == len(pieces) - 1, rsv if i == 0 else 0))
        self.send_raw(b"".join(out), chop, sync)

    def close(self, code=1000, reason=b""):
        payload = struct.pack("!H", code) + reason if code else b""
        self.send_frame(CLOSE, payload)

    # ---- receiving
    def pump(self, timeout, until=lambda: False):
        """Reads and parses until `until()`, EOF or the timeout."""
        end = time.monotonic() + timeout
        while not until() and not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            try:
                d = self.sock.recv(1 << 20)
            except OSError:
                d = b""
            if not d:
                self.eof = True
                break
            self.buf += d
            self.parse()
        return until()

    def parse(self):
        while not self.violation:
            b = self.buf
            if len(b) < 2:
                return
            n, hl = b[1] & 0x7F, 2
            if n == 126:
                if len(b) < 4:
                    return
                n, hl = struct.unpack("!H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, hl = struct.unpack("!Q", b[2:10])[0], 10
            masked = b[1] & 0x80
            key = b""
            if masked:
                key, hl = bytes(b[hl:hl + 4]), hl + 4
            if len(b) < hl + n:
                return
            payload = bytes(b[hl:hl + n])
            fin, rsv, opcode = b[0] >> 7, (b[0] >> 4) & 7, b[0] & 15
            del self.buf[:hl + n]
            if bool(masked) == self.client:
                self.violation = "frame masked wrongly"
                return
            self.on_frame(fin, rsv, opcode, mask_bytes(key, payload)
                          if masked else payload)

    def on_frame(self, fin, rsv, opcode, payload):
        if opcode >= 8:
            if not fin or len(payload) > 125 or rsv:
                self.violation = "bad control frame"
            elif opcode == PING:
                self.events.append(("ping", payload))
            elif opcode == PONG:
                self.events.append(("pong", payload))
            elif opcode == CLOSE:
                self.on_close(payload)
            else:
                self.violation = "reserved opcode %d" % opcode
            return
        compressed = bool(rsv & 4) and self.deflate is not None
        if (rsv & ~4) or (rsv and not compressed):
            self.violation = "RSV bits %d" % rsv
        elif opcode in (TEXT, BINARY) and self.msg is None:
            self.msg = [opcode, [payload], compressed]
        elif opcode == CONT and self.msg is not None and not rsv:
            self.msg[1].append(payload)
        else:
            self.violation = "bad fragmentation (opcode %d)" % opcode
        if self.violation or not fin:
            return
        op, parts, comp = self.msg
        self.msg = None
        data = b"".join(parts)
        if comp:
            data = self.deflate.decompress(data)
        self.events.append(("message", op, data))

    def on_close(self, payload):
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 \
            else (None if not payload else -1)
        self.close_received = (code, payload[2:])
        if not self.close_sent:  # answer as Autobahn does: echo the code
            self.send_frame(CLOSE, payload[:2])
        if not self.client:      # a server closes TCP first (7.1.1)
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def observed(self):
        return [e for e in self.events if e[0] != "ping"]


def msg(data, opcode=None):
    """The echo of a message."""
    if opcode is None:
        opcode = TEXT if isinstance(data, str) else BINARY
    return ("message", opcode, data.encode() if isinstance(data, str) else data)


def pong(data):
    return ("pong", data.encode() if isinstance(data, str) else data)


class Test:
    """What one case expects; finish() grades what happened."""

    def __init__(self, conn):
        self.c = conn
        self.ok = []            # the events expected
        self.non_strict = None  # events also accepted, graded NON-STRICT
        self.mode = "echo"      # echo: we close after; fail: the peer does;
        #                         closed: the case sent a close itself
        self.codes = [1000]
        self.informational = False
        self.wait = WAIT
        self.verdict = OK       # a case may lower it (6.4 fail fast)
        self.note = ""

    def expect(self, ok, non_strict=None):
        self.ok, self.non_strict = ok, non_strict

    def expect_fail(self, ok=(), codes=(1002,), non_strict=None):
        self.ok, self.non_strict = list(ok), non_strict
        self.mode, self.codes = "fail", list(codes)

    def expect_close(self, codes, ok=()):
        self.ok, self.mode, self.codes = list(ok), "closed", list(codes)

    def finish(self):
        c = self.c
        if self.mode == "echo":
            want = len(self.ok)
            c.pump(self.wait, lambda: len(c.observed()) >= want
                   or c.close_received)
            if not c.close_received and not c.close_sent:
                c.close(1000)
        c.pump(self.wait if self.mode == "fail" else CLOSE_WAIT,
               lambda: c.close_received is not None)
        # The server ends TCP; a client waits for it (7.1.1).
        c.pump(CLOSE_WAIT)
        return self.grade()

    def grade(self):
        c = self.c
        got = c.observed()
        if c.violation:
            return FAILED, "peer sent: " + c.violation
        if got == self.ok:
            verdict = self.verdict
        elif self.non_strict is not None and got == self.non_strict:
            verdict = NON_STRICT
        else:
            return FAILED, "got %s, expected %s" % (brief(got), brief(self.ok))
        if c.close_received is None:
            if self.mode == "fail":
                return NON_STRICT, "dropped TCP without a close frame"
            return FAILED, "no close frame (%s, %d events)" % (
                "TCP closed" if c.eof else "TCP still open", len(got))
        code = c.close_received[0]
        if code not in self.codes:
            return FAILED, "close code %s, expected %s" % (code, self.codes)
        if c.client and not c.eof:
            return FAILED, "the server did not close TCP"
        if self.informational:
            return INFORMATIONAL, "close %s %s" % (code, self.note)
        return verdict, self.note


def brief(events):
    out = []
    for e in events[:6]:
        data = e[-1]
        shown = data[:16] + (b"..." if len(data) > 16 else b"")
        out.append("%s(%d:%r)" % (e[0] if e[0] != "message" else
                                  "text" if e[1] == TEXT else "binary",
                                  len(data), shown))
    return "[" + ", ".join(out) + (", ..." if len(events) > 6 else "") + "]"


# ---------------------------------------------------------------- the cases

CASES = []  # (id, description, function, options)


def case(cid, desc, **opts):
    def deco(fn):
        CASES.append((cid, desc, fn, opts))
        return fn
    return deco


def add(cid, desc, fn, **opts):
    CASES.append((cid, desc, fn, opts))


def group1():
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for op, name, fill in ((TEXT, "text", b"*"), (BINARY, "binary", b"\xfe")):
        g = "1.1" if op == TEXT else "1.2"
        for i, n in enumerate(sizes + [65536]):
            chop = 997 if i == len(sizes) else None

            def fn(t, op=op, n=n, fill=fill, chop=chop):
                t.c.send_frame(op, fill * n, chop=chop)
                t.expect([msg(fill * n, op)])
            add("%s.%d" % (g, i + 1), "Send %s message with payload %d%s"
                % (name, n, ", chopped in 997-octet pieces" if chop else ""),
                fn)


def group2():
    pings = [b"", b"Hello, world!", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff",
             b"\xfe" * 125]
    descs = ["without payload", "with small text payload",
             "with small binary payload", "with 125 octets"]
    for i, (p, d) in enumerate(zip(pings, descs)):
        def fn(t, p=p):
            t.c.send_frame(PING, p)
            t.expect([pong(p)])
        add("2.%d" % (i + 1), "Send ping " + d, fn)

    @case("2.5", "Send ping with payload of 126 octets")
    def _(t):
        t.c.send_frame(PING, b"\xfe" * 126)
        t.expect_fail()

    @case("2.6", "Send ping of 125 octets, sent in 1-octet chops")
    def _(t):
        t.c.send_frame(PING, b"\xfe" * 125, chop=1)
        t.expect([pong(b"\xfe" * 125)])

    @case("2.7", "Send unsolicited pong without payload")
    def _(t):
        t.c.send_frame(PONG)
        t.expect([])

    @case("2.8", "Send unsolicited pong with payload")
    def _(t):
        t.c.send_frame(PONG, b"unsolicited pong payload")
        t.expect([])

    @case("2.9", "Send unsolicited pong, then ping with payload")
    def _(t):
        t.c.send_frame(PONG, b"unsolicited pong payload")
        t.c.send_frame(PING, b"ping payload")
        t.expect([pong(b"ping payload")])

    for cid, chop in (("2.10", None), ("2.11", 1)):
        def fn(t, chop=chop):
            for i in range(10):
                t.c.send_frame(PING, b"payload-%d" % i, chop=chop,
                               sync=bool(chop))
            # Section 5.5.3 allows answering only the most recent ping.
            t.expect([pong(b"payload-%d" % i) for i in range(10)],
                     [pong(b"payload-9")])
        add(cid, "Send 10 pings with payload" +
            (", in 1-octet chops" if chop else ""), fn)


def group3():
    @case("3.1", "Send small text message with RSV = 1")
    def _(t):
        t.c.send_frame(TEXT, b"Hello, world!", rsv=1)
        t.expect_fail()

    for cid, rsv, chop, sync in (("3.2", 2, None, False),
                                 ("3.3", 3, None, True),
                                 ("3.4", 4, 1, True)):
        def fn(t, rsv=rsv, chop=chop, sync=sync):
            t.c.send_frame(TEXT, b"Hello, world!", chop=chop, sync=sync)
            t.c.send_frame(TEXT, b"Hello, world!", rsv=rsv, chop=chop,
                           sync=sync)
            t.c.send_frame(PING, b"", chop=chop, sync=sync)
            t.expect_fail([msg("Hello, world!")], non_strict=[])
        add(cid, "Send small text message, then another with RSV = %d, "
            "then ping%s" % (rsv, " (frame-wise)" if sync and not chop else
                             " (octet-wise)" if chop else ""), fn)

    for cid, rsv, op, payload in (("3.5", 5, BINARY, b"\x00\xff\xfe\xfd"),
                                  ("3.6", 6, PING, b"Hello, world!"),
                                  ("3.7", 7, CLOSE, struct.pack("!H", 1000))):
        def fn(t, rsv=rsv, op=op, payload=payload):
            t.c.send_frame(op, payload, rsv=rsv)
            t.expect_fail()
        add(cid, "Send frame opcode %d with RSV = %d" % (op, rsv), fn)


def group4():
    for g, ops in (("4.1", (3, 4, 5, 6, 7)), ("4.2", (11, 12, 13, 14, 15))):
        for i, op in enumerate(ops):
            payload = b"reserved opcode payload" if i % 2 else b""
            if i < 2:
                def fn(t, op=op, payload=payload):
                    t.c.send_frame(op, payload)
                    t.expect_fail()
                d = "Send frame with reserved opcode %d" % op
            else:
                def fn(t, op=op, payload=payload, sync=(i == 4)):
                    t.c.send_frame(TEXT, b"Hello, world!", sync=sync)
                    t.c.send_frame(op, payload, sync=sync)
                    t.c.send_frame(PING, sync=sync)
                    t.expect_fail([msg("Hello, world!")], non_strict=[])
                d = ("Send small text message, then frame with reserved "
                     "opcode %d, then ping" % op)
            add("%s.%d" % (g, i + 1), d, fn)


def frames_5(t, seq, chop, sync):
    for op, payload, fin in seq:
        t.c.send_frame(op, payload, fin=fin, chop=chop, sync=sync)


def group5():
    modes = ((None, False, ""), (None, True, ", frame-wise"),
             (1, True, ", octet-wise"))
    for cid, op in (("5.1", PING), ("5.2", PONG)):
        def fn(t, op=op):
            frames_5(t, [(op, b"fragment1", False), (CONT, b"fragment2",
                                                      True)], None, False)
            t.expect_fail()
        add(cid, "Send opcode %d fragmented into 2 fragments" % op, fn)
    n = 3
    for seq, want, fail, d in (
            ([(TEXT, b"fragment1", False), (CONT, b"fragment2", True)],
             [msg("fragment1fragment2")], False,
             "Send text message fragmented into 2 fragments"),
            ([(TEXT, b"fragment1", False), (PING, b"ping payload", True),
              (CONT, b"fragment2", True)],
             [pong("ping payload"), msg("fragment1fragment2")], False,
             "Send text message in 2 fragments with a ping between"),
            ([(CONT, b"non-continuation payload", True),
              (TEXT, b"Hello, world!", True)], [], True,
             "Send unfragmented continuation frame (FIN = true) with "
             "nothing to continue, then text message"),
            ([(CONT, b"non-continuation payload", False),
              (TEXT, b"Hello, world!", True)], [], True,
             "Send continuation frame (FIN = false) with nothing to "
             "continue, then text message")):
        for chop, sync, how in modes:
            def fn(t, seq=seq, want=want, fail=fail, chop=chop, sync=sync):
                frames_5(t, seq, chop, sync)
                if fail:
                    t.expect_fail(want)
                else:
                    t.expect(want)
            add("5.%d" % n, d + how, fn)
            n += 1

    @case("5.15", "Send text message in 2 fragments, then continuation "
          "with FIN = false with nothing to continue, then text")
    def _(t):
        frames_5(t, [(TEXT, b"fragment1", False), (CONT, b"fragment2", True),
                     (CONT, b"fragment3", False),
                     (TEXT, b"fragment4", True)], None, False)
        t.expect_fail([msg("fragment1fragment2")], non_strict=[])

    for cid, first_fin in (("5.16", False), ("5.17", True)):
        def fn(t, first_fin=first_fin):
            seq = [(CONT, b"fragment1", first_fin), (TEXT, b"fragment2",
                                                     False),
                   (CONT, b"fragment3", True)]
            frames_5(t, seq * 2, None, False)
            t.expect_fail()
        add(cid, "Repeated 2x: continuation (FIN = %s) with nothing to "
            "continue, then text in 2 fragments" % first_fin, fn)

    @case("5.18", "Send text message in 2 fragments with both frame "
          "opcodes set to text")
    def _(t):
        frames_5(t, [(TEXT, b"fragment1", False), (TEXT, b"fragment2",
                                                   True)], None, False)
        t.expect_fail()

    for cid, sync in (("5.19", False), ("5.20", True)):
        def fn(t, sync=sync):
            c = t.c
            c.send_frame(TEXT, b"fragment1", fin=False, sync=sync)
            c.send_frame(CONT, b"fragment2", fin=False, sync=sync)
            c.send_frame(PING, b"pongme 1!", sync=sync)
            c.send_frame(CONT, b"fragment3", fin=False, sync=sync)
            # The pause is part of the case: Autobahn's 5.19 and 5.20
            # send the 4th fragment after 1 s, so that the peer holds a
            # message in parts across a gap; it is not a wait for an event.
            time.sleep(1)
            c.send_frame(CONT, b"fragment4", fin=False, sync=sync)
            c.send_frame(PING, b"pongme 2!", sync=sync)
            c.send_frame(CONT, b"fragment5", fin=True, sync=sync)
            t.expect([pong("pongme 1!"), pong("pongme 2!"),
                      msg("fragment1fragment2fragment3fragment4fragment5")])
        add(cid, "A text message in 5 fragments, with pings after the 2nd "
            "and the 4th and a 1 s pause" + (", frame-wise" if sync else ""),
            fn)


KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"


def utf8_sequences():
    try:
        from autobahn.nvx.test.test_nvx_utf8validator import \
            _create_utf8_test_sequences
    except ImportError:
        sys.exit("ws_conformance: group 6 needs Debian's python3-autobahn "
                 "for Autobahn's UTF-8 vectors (make deps)")
    return _create_utf8_test_sequences()


def group6():
    @case("6.1.1", "Send text message of length 0")
    def _(t):
        t.c.send_frame(TEXT, b"")
        t.expect([msg("")])

    @case("6.1.2", "Send fragmented text message, 3 fragments each of "
          "length 0")
    def _(t):
        frames_5(t, [(TEXT, b"", False), (CONT, b"", False), (CONT, b"",
                                                              True)],
                 None, False)
        t.expect([msg("")])

    @case("6.1.3", "Send fragmented text message, 3 fragments, first and "
          "last of length 0")
    def _(t):
        frames_5(t, [(TEXT, b"", False), (CONT, b"middle frame payload",
                                          False), (CONT, b"", True)],
                 None, False)
        t.expect([msg("middle frame payload")])

    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    for cid, payload, pieces, d in (
            ("6.2.1", hello, None, "in one fragment"),
            ("6.2.2", hello, [hello[:7], hello[7:]],
             "in 2 fragments split on a code point boundary"),
            ("6.2.3", hello, 1, "in 1-octet fragments"),
            ("6.2.4", KOSME, 1, "(multi-byte) in 1-octet fragments")):
        def fn(t, payload=payload, pieces=pieces):
            if pieces == 1:
                pieces = [payload[i:i + 1] for i in range(len(payload))]
            if not pieces:
                t.c.send_frame(TEXT, payload)
            else:
                for i, p in enumerate(pieces):
                    t.c.send_frame(TEXT if i == 0 else CONT, p,
                                   fin=i == len(pieces) - 1)
            t.expect([msg(payload, TEXT)])
        add(cid, "Send valid UTF-8 text message " + d, fn)

    bad = KOSME + b"\xed\xa0\x80" + b"edited"
    for cid, octets in (("6.3.1", False), ("6.3.2", True)):
        def fn(t, octets=octets):
            if octets:
                frames_5(t, [(TEXT if i == 0 else CONT, bad[i:i + 1],
                              i == len(bad) - 1) for i in range(len(bad))],
                         None, False)
            else:
                t.c.send_frame(TEXT, bad)
            t.expect_fail(codes=(1007,))
        add(cid, "Send invalid UTF-8 text message" +
            (" in 1-octet fragments" if octets else ""), fn)

    parts_a = (KOSME, b"\xf4\x90\x80\x80", b"edited")
    parts_b = (KOSME + b"\xf4", b"\x90", b"\x80\x80edited")
    for cid, parts, chops in (("6.4.1", parts_a, False),
                              ("6.4.2", parts_b, False),
                              ("6.4.3", parts_a, True),
                              ("6.4.4", parts_b, True)):
        def fn(t, parts=parts, chops=chops):
            fail_fast(t, parts, chops)
        add(cid, "Fail fast on invalid UTF-8: %s, the invalid part second, "
            "a pause after it" % ("3 chops of one frame" if chops else
                                  "3 fragments"), fn)

    for k, (title, vectors) in enumerate(utf8_sequences()):
        for j, (valid, payload) in enumerate(vectors):
            def fn(t, valid=valid, payload=payload):
                t.c.send_frame(TEXT, payload)
                if valid:
                    t.expect([msg(payload, TEXT)])
                else:
                    t.expect_fail(codes=(1007,))
            add("6.%d.%d" % (k + 5, j + 1), "%s: %s %s" % (
                title.decode(), "valid" if valid else "invalid",
                payload[:12].hex()), fn)


def fail_fast(t, parts, chops):
    """6.4: the peer should fail the connection (1007) as soon as the
    invalid octets arrive, before the rest is sent."""
    c = t.c
    if chops:
        whole = b"".join(parts)
        head = c.frame(TEXT, whole)
        # Send the header and each part separately (masking is per
        # position, so the frame is built first and cut afterwards).
        cut1 = len(head) - len(whole) + len(parts[0])
        cut2 = cut1 + len(parts[1])
        pieces = [head[:cut1], head[cut1:cut2], head[cut2:]]
    else:
        pieces = [c.frame(TEXT if i == 0 else CONT, p, fin=(i == 2))
                  for i, p in enumerate(parts)]
    c.send_raw(pieces[0], sync=True)
    c.send_raw(pieces[1], sync=True)
    fast = c.pump(FAIL_FAST_WAIT, lambda: c.close_received is not None)
    if not fast:
        c.send_raw(pieces[2])
        t.verdict, t.note = NON_STRICT, "failed at the end, not fast"
    t.expect_fail(codes=(1007,))
    t.verdict = t.verdict if not fast else OK


def group7():
    @case("7.1.1", "Send a message, then close")
    def _(t):
        t.c.send_frame(TEXT, b"Hello World")
        t.expect([msg("Hello World")])

    @case("7.1.2", "Send two close frames")
    def _(t):
        t.c.close(1000)
        t.c.close(1000)
        t.expect_close([1000])

    @case("7.1.3", "Send a ping after close")
    def _(t):
        t.c.close(1000)
        t.c.send_frame(PING, b"Hello World")
        t.expect_close([1000])

    @case("7.1.4", "Send a text message after close")
    def _(t):
        t.c.close(1000)
        t.c.send_frame(TEXT, b"Hello World")
        t.expect_close([1000])

    @case("7.1.5", "Send a fragment, close, then the rest of the message")
    def _(t):
        t.c.send_frame(TEXT, b"fragment1", fin=False)
        t.c.close(1000)
        t.c.send_frame(CONT, b"fragment2")
        t.expect_close([1000])

    @case("7.1.6", "Send 256 KiB text, then close, then ping",
          informational=True)
    def _(t):
        t.c.send_frame(TEXT, b"BAsd7&jh23" * 26214 + b"Bj")
        t.c.close(1000)
        t.c.send_frame(PING, b"Hello World")
        t.expect_close([1000])
        t.informational = True
        t.ok = None  # whether the echo comes first is what is shown

    for cid, payload, codes, d in (
            ("7.3.1", b"", (1000, None), "with payload length 0"),
            ("7.3.2", b"a", (1002,), "with payload length 1"),
            ("7.3.3", struct.pack("!H", 1000), (1000,), "with code only"),
            ("7.3.4", struct.pack("!H", 1000) + b"Hello World!", (1000,),
             "with code and short reason"),
            ("7.3.5", struct.pack("!H", 1000) + b"*" * 123, (1000,),
             "with code and a 123-octet reason"),
            ("7.3.6", struct.pack("!H", 1000) + b"*" * 124, (1002,),
             "with code and a 124-octet reason (frame too long)"),
            ("7.5.1", struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf"
             b"\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
             (1007,), "with an invalid UTF-8 reason")):
        def fn(t, payload=payload, codes=codes):
            t.c.send_frame(CLOSE, payload)
            t.expect_close(list(codes))
        add(cid, "Send close " + d, fn)

    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
             3999, 4000, 4999]
    for i, code in enumerate(valid):
        def fn(t, code=code):
            t.c.close(code)
            t.expect_close([code, 1000])
        add("7.7.%d" % (i + 1), "Send close with valid code %d" % code, fn)
    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
    for i, code in enumerate(invalid):
        def fn(t, code=code):
            t.c.send_frame(CLOSE, struct.pack("!H", code))
            t.expect_close([1002])
        add("7.9.%d" % (i + 1), "Send close with invalid code %d" % code, fn)
    for cid, code in (("7.13.1", 5000), ("7.13.2", 65535)):
        def fn(t, code=code):
            t.c.send_frame(CLOSE, struct.pack("!H", code))
            t.expect_close([1002, 1000, code])
            t.informational = True
        add(cid, "Send close with code %d (out of range)" % code, fn,
            informational=True)


MIB = 1 << 20


def group9(subset):
    sizes = [64 << 10, 256 << 10, MIB, 4 * MIB, 8 * MIB, 16 * MIB]
    for g, op in (("9.1", TEXT), ("9.2", BINARY)):
        for i, n in enumerate(sizes):
            def fn(t, op=op, n=n):
                data = (b"*" if op == TEXT else b"\xfe") * n
                t.c.send_frame(op, data)
                t.wait = 30
                t.expect([msg(data, op)])
            add("%s.%d" % (g, i + 1), "Send %s message of %d bytes" %
                ("text" if op == TEXT else "binary", n), fn)
    frags = [64, 256, 1024, 4096, 16384, 65536, MIB, 4 * MIB]
    for g, op in (("9.3", TEXT), ("9.4", BINARY)):
        for i, f in enumerate([64] + frags):
            if i == 0:
                continue

            def fn(t, op=op, f=f):
                data = (b"*" if op == TEXT else b"\xfe") * (4 * MIB)
                t.c.send_message(op, data, frag=f)
                t.wait = 30
                t.expect([msg(data, op)])
            add("%s.%d" % (g, i), "Send fragmented %s message of 4 MiB, "
                "fragments of %d bytes" % ("text" if op == TEXT else
                                           "binary", f), fn)
    for g, op in (("9.5", TEXT), ("9.6", BINARY)):
        for i, chop in enumerate([64, 128, 256, 512, 1024, 2048]):
            def fn(t, op=op, chop=chop):
                data = (b"*" if op == TEXT else b"\xfe") * MIB
                t.c.send_frame(op, data, chop=chop)
                t.wait = 30
                t.expect([msg(data, op)])
            add("%s.%d" % (g, i + 1), "Send 1 MiB %s message in chops of "
                "%d bytes" % ("text" if op == TEXT else "binary", chop), fn)
    count = 100 if subset else 1000
    for g, op in (("9.7", TEXT), ("9.8", BINARY)):
        for i, n in enumerate([0, 16, 64, 256, 1024, 4096]):
            def fn(t, op=op, n=n):
                round_trips(t, op, n, count)
            add("%s.%d" % (g, i + 1), "Send %d %s messages of %d bytes, "
                "each after the echo of the last" % (
                    count, "text" if op == TEXT else "binary", n), fn)


def round_trips(t, op, n, count, frag=None):
    """Sends `count` messages of n bytes one after the other, each once
    the previous echo is back; every echo must match."""
    c = t.c
    data = (b"*" if op == TEXT else b"\xfe") * n
    t0 = time.monotonic()
    for i in range(count):
        c.send_message(op, data, frag=frag)
        if not c.pump(WAIT * 5, lambda: len(c.observed()) > i
                      or c.close_received):
            break
        if c.close_received:
            break
    took = time.monotonic() - t0
    t.note = "%d round trips in %.2f s" % (len(c.observed()), took)
    t.expect([msg(data, op)] * count)


def group10():
    @case("10.1.1", "Send text message of 65536 bytes in fragments of "
          "1300 bytes")
    def _(t):
        data = b"*" * 65536
        t.c.send_message(TEXT, data, frag=1300)
        t.expect([msg(data, TEXT)])


def corpus(kind, n):
    """Deterministic payloads with the character of Autobahn's 12.x
    files: JSON, a bitmap, prose, HTML, and incompressible binary."""
    rnd = random.Random(kind * 7919 + n)
    if kind == 1:
        unit = b'{"id":%d,"name":"item","tags":["a","b"],"value":%d.%d},'
        out = b"[" + b"".join(unit % (i, rnd.randrange(1000), i % 10)
                              for i in range(n // 40 + 2))
    elif kind == 2:
        out = bytes(rnd.choice((0, 0, 0, 255)) for _ in range(n))
    elif kind == 3:
        words = "Habe nun, ach! Philosophie Juristerei und Medizin und " \
            "leider auch Theologie durchaus studiert mit heißem Bemühn " \
            "Da steh ich nun ich armer Tor und bin so klug als wie zuvor"
        w = words.split()
        out = " ".join(rnd.choice(w) for _ in range(n // 4 + 2)).encode()
    elif kind == 4:
        out = b"".join(b"<div class=\"row\"><a href=\"/p/%d\">Item %d</a>"
                       b"</div>\n" % (i, rnd.randrange(99))
                       for i in range(n // 40 + 2))
    else:
        out = rnd.randbytes(n)
    out = out[:n]
    if kind in (1, 3, 4):  # keep text valid UTF-8 after the cut
        out = out.decode("utf-8", "ignore").encode()
        out += b"x" * (n - len(out))
    return out


SIZES_12 = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
# (size, fragment size): the second half of each 12.x and 13.x group.
FRAGMENTED_12 = [(256, 256), (1024, 256), (4096, 256), (8192, 256),
                 (16384, 256), (32768, 256), (65536, 256), (131072, 256)]
BYTES_PER_CASE = 8 * MIB  # bounds a case's traffic in the full run


def compressed_case(kind, size, frag, subset):
    op = BINARY if kind in (2, 5) else TEXT
    count = min(1000, max(1, BYTES_PER_CASE // size))
    if subset:
        count = min(count, 20)

    def fn(t):
        if t.c.deflate is None:
            t.expect([])
            t.verdict, t.note = FAILED, "permessage-deflate was not agreed"
            return
        data = corpus(kind, size)
        c = t.c
        t0 = time.monotonic()
        for i in range(count):
            c.send_message(op, data, frag=frag)
            if not c.pump(WAIT * 5, lambda: len(c.observed()) > i
                          or c.close_received) or c.close_received:
                break
        t.note = "%d messages in %.2f s" % (len(c.observed()),
                                            time.monotonic() - t0)
        t.expect([msg(data, op)] * count)
    return fn, count


def group12(subset):
    names = ["JSON", "a bitmap", "German prose", "HTML", "random binary"]
    for kind in range(1, 6):
        plans = [(s, None) for s in SIZES_12] + FRAGMENTED_12
        for j, (size, frag) in enumerate(plans):
            fn, count = compressed_case(kind, size, frag, subset)
            add("12.%d.%d" % (kind, j + 1), "Send %d compressed messages of "
                "%d bytes of %s%s" % (count, size, names[kind - 1],
                                      ", fragments of %d" % frag if frag
                                      else ""), fn, deflate=(1,))


# 13.x: the client's offers as Autobahn makes them (client_max_window_bits
# accepted, then the server's no_context_takeover and window bits asked
# for; 8 bits become 9, which zlib can compress with).
OFFERS_13 = {
    1: ["permessage-deflate; client_max_window_bits"],
    2: ["permessage-deflate; client_max_window_bits; "
        "server_no_context_takeover"],
    3: ["permessage-deflate; client_max_window_bits; server_max_window_bits=9"],
    4: ["permessage-deflate; client_max_window_bits; "
        "server_max_window_bits=15"],
    5: ["permessage-deflate; client_max_window_bits; "
        "server_no_context_takeover; server_max_window_bits=9"],
    6: ["permessage-deflate; client_max_window_bits; "
        "server_no_context_takeover; server_max_window_bits=15"],
    7: ["permessage-deflate; client_max_window_bits; "
        "server_no_context_takeover; server_max_window_bits=9",
        "permessage-deflate; client_max_window_bits; "
        "server_no_context_takeover",
        "permessage-deflate; client_max_window_bits"],
}
# The fuzzing server's answers to a client's offer, 13.x in that
# direction: the parameters a server may add on its own (RFC 7692 7.1).
ANSWERS_13 = {
    1: "permessage-deflate",
    2: "permessage-deflate; client_no_context_takeover",
    3: "permessage-deflate; client_max_window_bits=9",
    4: "permessage-deflate; client_max_window_bits=15",
    5: "permessage-deflate; client_no_context_takeover; "
       "client_max_window_bits=9",
    6: "permessage-deflate; client_no_context_takeover; "
       "client_max_window_bits=15",
    7: "permessage-deflate; server_no_context_takeover; "
       "server_max_window_bits=9; client_max_window_bits=9",
}


def group13(subset):
    for g in range(1, 8):
        plans = [(s, None) for s in SIZES_12[:9]] + FRAGMENTED_12 + \
            [(131072, 1024)]
        for j, (size, frag) in enumerate(plans):
            fn, count = compressed_case(1, size, frag, subset)
            add("13.%d.%d" % (g, j + 1), "Send %d compressed JSON messages "
                "of %d bytes%s, deflate parameters set %d" % (
                    count, size, ", fragments of %d" % frag if frag else "",
                    g), fn, deflate=(13, g))


# ---------------------------------------------------------------- the runs

SUBSET = ["1.1.1", "1.1.6", "1.1.8", "1.2.2", "2.1", "2.5", "2.6", "2.10",
          "3.1", "3.2", "3.7", "4.1.1", "4.2.3", "5.1", "5.6", "5.8", "5.9",
          "5.15", "5.18", "6.1.3", "6.2.3", "6.3.2", "6.4.1", "6.4.4",
          "6.5.5", "6.12.3", "6.20.1", "6.22.1", "7.1.1", "7.1.5", "7.1.6",
          "7.3.1", "7.3.2", "7.3.6", "7.5.1", "7.7.13", "7.9.1", "7.13.1",
          "9.1.1", "9.2.3", "9.4.1", "9.6.6", "9.7.3", "10.1.1",
          "12.1.3", "12.2.5", "12.5.11", "13.1.4", "13.2.10", "13.3.1",
          "13.5.3", "13.7.2"]


def build_cases(subset):
    group1()
    group2()
    group3()
    group4()
    group5()
    group6()
    group7()
    group9(subset)
    group10()
    group12(subset)
    group13(subset)


def matches(cid, spec):
    pre = [p.strip() for p in spec.split(",") if p.strip()]
    return any(cid == p or cid.startswith(p + ".") for p in pre)


def select_cases(spec, subset, skip=""):
    chosen = CASES
    if subset:
        chosen = [c for c in chosen if c[0] in SUBSET]
    if spec:
        chosen = [c for c in chosen if matches(c[0], spec)]
    return [c for c in chosen if not matches(c[0], skip)]


def offer_for(opts):
    d = opts.get("deflate")
    if not d:
        return None
    if d[0] == 13:
        return ", ".join(OFFERS_13[d[1]])
    return "permessage-deflate; client_max_window_bits"


def read_head(sock, deadline):
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        d = sock.recv(4096)
        if not d:
            raise ConnectionError("connection closed during the handshake")
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers[k] = (headers[k] + ", " if k in headers else "") + v.strip()
    sock.settimeout(None)
    return lines[0], headers, rest


def accept_value(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def client_connect(port, opts):
    """Opens a connection to the server under test as Autobahn's client."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    offer = offer_for(opts)
    req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n" % (port, key))
    if offer:
        req += "Sec-WebSocket-Extensions: %s\r\n" % offer
    sock.sendall((req + "\r\n").encode())
    status, headers, rest = read_head(sock, time.monotonic() + 5)
    if " 101 " not in status + " " or \
            headers.get("sec-websocket-accept") != accept_value(key):
        raise ConnectionError("handshake refused: " + status)
    deflate = None
    exts = parse_extensions(headers.get("sec-websocket-extensions", ""))
    if exts:
        if not offer or len(exts) != 1 or exts[0][0] != "permessage-deflate":
            raise ConnectionError("unexpected extensions %r" % exts)
        deflate = Deflate(deflate_params(exts[0][1]), client=True)
    return Conn(sock, True, deflate, rest)


def server_accept(lsock, opts):
    """Takes the echo client's connection and answers its handshake as
    Autobahn's fuzzing server."""
    lsock.settimeout(10)
    sock, _ = lsock.accept()
    lsock.settimeout(None)
    _, headers, rest = read_head(sock, time.monotonic() + 5)
    key = headers.get("sec-websocket-key", "")
    resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
            % accept_value(key))
    deflate = None
    offered = [e for e in parse_extensions(
        headers.get("sec-websocket-extensions", "")) if
        e[0] == "permessage-deflate"]
    d = opts.get("deflate")
    if d and offered:
        answer = ANSWERS_13[d[1]] if d[0] == 13 else "permessage-deflate"
        if "client_max_window_bits" not in offered[0][1]:
            answer = "; ".join(p for p in answer.split("; ")
                               if not p.startswith("client_max_window_bits"))
        resp += "Sec-WebSocket-Extensions: %s\r\n" % answer
        deflate = Deflate(deflate_params(parse_extensions(answer)[0][1]),
                          client=False)
    sock.sendall((resp + "\r\n").encode())
    return Conn(sock, False, deflate, rest)


def start_peer(cmd):
    """Starts the server under test; returns it and its port."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    r, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline() if r else ""
    if not line.startswith("listening on "):
        p.kill()
        p.wait()
        sys.exit("ws_conformance: %r printed %r, not 'listening on PORT'"
                 % (cmd, line))
    return p, int(line.split()[2])


PY_ECHO_SERVER = r"""
import asyncio, websockets
async def echo(ws, path=None):
    try:
        async for m in ws:
            await ws.send(m)
    except websockets.ConnectionClosed:
        pass
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None,
                                compression="deflate") as s:
        print("listening on", s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""

PY_ECHO_CLIENT = r"""
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], max_size=None,
                                  compression="deflate") as ws:
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
asyncio.run(main())
"""


def run_one(cid, fn, opts, connect, finish_peer=None):
    t0 = time.monotonic()
    try:
        conn = connect(opts)
    except (OSError, ConnectionError, ValueError) as e:
        return FAILED, "connect: %s" % e, time.monotonic() - t0
    t = Test(conn)
    try:
        fn(t)
        if t.ok is None:  # informational: anything goes
            t.c.pump(CLOSE_WAIT, lambda: t.c.close_received is not None)
            t.ok = t.c.observed()
        if t.verdict == FAILED:
            verdict, note = FAILED, t.note
        else:
            verdict, note = t.finish()
    finally:
        conn.sock.close()
    if finish_peer:
        err = finish_peer()
        if err and verdict != FAILED:
            verdict, note = FAILED, err
    return verdict, note, time.monotonic() - t0


def run_client_mode(args, cases):
    if args.python_echo:
        cmd = [sys.executable, "-c", PY_ECHO_SERVER]
    else:
        cmd = shlex.split(args.server_cmd)
    peer, port = start_peer(cmd)
    try:
        for cid, desc, fn, opts in cases:
            yield (cid, desc) + run_one(
                cid, fn, opts, lambda o: client_connect(port, o))
            if peer.poll() is not None:
                raise SystemExit("ws_conformance: the server exited (status %s) "
                         "after case %s" % (peer.returncode, cid))
    finally:
        peer.kill()
        peer.wait()


def run_server_mode(args, cases):
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    for cid, desc, fn, opts in cases:
        url = "ws://127.0.0.1:%d/runCase?case=%s" % (port, cid)
        if args.python_echo:
            argv = [sys.executable, "-c", PY_ECHO_CLIENT, url]
        else:
            argv = shlex.split(args.client_cmd.replace("{url}", url))
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)

        def finish_peer(p=p):
            try:
                p.wait(timeout=CLOSE_WAIT + 2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return "the client did not exit after the close"
            return None
        yield (cid, desc) + run_one(cid, fn, opts,
                                    lambda o: server_accept(lsock, o),
                                    finish_peer)
    lsock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["client", "server"])
    ap.add_argument("--server-cmd", help="echo server; prints "
                    "'listening on PORT' first")
    ap.add_argument("--client-cmd", help="echo client; {url} is replaced")
    ap.add_argument("--python-echo", action="store_true",
                    help="use python websockets as the peer")
    ap.add_argument("--subset", action="store_true")
    ap.add_argument("--cases", default="")
    ap.add_argument("--skip", default="", help="cases left out, as --cases")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    # A timeout's SIGTERM still runs the finally clauses that stop peers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("ws_conformance: "
                                                       "terminated"))
    build_cases(args.subset)
    cases = select_cases(args.cases, args.subset, args.skip)
    if args.list:
        for cid, desc, _, _ in cases:
            print(cid, desc)
        return 0
    if not cases:
        sys.exit("ws_conformance: no case matches %r" % args.cases)
    if args.mode == "client" and not (args.server_cmd or args.python_echo):
        sys.exit("ws_conformance: client mode needs --server-cmd")
    if args.mode == "server" and not (args.client_cmd or args.python_echo):
        sys.exit("ws_conformance: server mode needs --client-cmd")
    run = run_client_mode if args.mode == "client" else run_server_mode
    counts = {OK: 0, NON_STRICT: 0, INFORMATIONAL: 0, FAILED: 0}
    print("%-9s %-13s %7s  %s" % ("case", "result", "seconds", "description"))
    for cid, desc, verdict, note, secs in run(args, cases):
        counts[verdict] += 1
        print("%-9s %-13s %7.2f  %s%s" % (cid, verdict, secs, desc,
                                          " -- " + note if note else ""),
              flush=True)
    print("%d cases: %s" % (sum(counts.values()), ", ".join(
        "%d %s" % (n, k) for k, n in counts.items())))
    return 1 if counts[FAILED] else 0


if __name__ == "__main__":
    sys.exit(main())
