#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: a few tiny inputs per
target in fuzz/corpus/<name>/, each a well-formed case or an edge that
once broke a parser. Run it again after changing an input format."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def outcome(code, msg=b"", data=b""):
    """One item outcome of a chunk result."""
    return (struct.pack("<iIQ", code, len(msg), len(data)) + pad8(msg) +
            pad8(data))


def notice(fields):
    """The fields of a done-stream entry, split at NUL bytes."""
    return b"\0".join(fields)


def item(b):
    """One item of a chunk argument."""
    return u64(len(b)) + pad8(b)


def pyframe(payload):
    """A message in CPython's framing (multiprocessing.connection)."""
    return struct.pack(">i", len(payload)) + payload


def frame(kind, payload=b"", length=None):
    """A connection frame: 56-bit length and kind in one 64-bit word."""
    n = len(payload) if length is None else length
    return u64(n << 8 | kind) + payload


BYTES, FD, DIVERT = 0x42, 0x46, 0x44
RING, WAKE = 0x52, 0x57
RING_CAP = 64 << 10


def ring_input(flags, head, delta, ops, body):
    """A pipe_ring input: flags, reader's position, writer's distance past
    it, the receive program, then the ring's bytes."""
    return (u8(flags) + u64(head) + u32(delta) + u8(len(ops)) +
            bytes(ops) + body)


FS_MAGIC = 0x636F6E63


def fs_request(module=b"", name=b"Process-1", ident=b"1",
               parent=b"MainProcess", arg=b"", daemon=0, fn_off=0x1234,
               arg_len=None):
    """A fork server request: the header (native order, little-endian
    here), then the four strings and the argument."""
    n = len(arg) if arg_len is None else arg_len
    return (u32(FS_MAGIC) + u32(daemon) + u64(fn_off) + u64(n) +
            u32(len(module)) + u32(len(name)) + u32(len(ident)) +
            u32(len(parent)) + module + name + ident + parent + arg)


RES_MORE, RES_CONT, RES_INIT = 1, 2, 4
TASK_FD, TASK_ARENA, TASK_EXIT = 1, 2, 4


def res_frame(seq, total, code=0, msg=b"", flags=0, piece=0, length=None):
    """A result frame for fuzz_res_frame: its payload length, then the
    header (seq, total, code, msglen, flags, pad, run_ns)."""
    n = 40 + len(msg) + piece if length is None else length
    return u32(n) + struct.pack("<QQiIIIQ", seq, total, code, len(msg), flags,
                                0, 1000)


def task_frame(length, due, seq, wseq, arglen, flags=0, off=0):
    """A task frame for fuzz_task_frame: its length, the number due, then
    the header (seq, wseq, fn, len, arena_off, flags, pad)."""
    return (u64(length) + u64(due) +
            struct.pack("<QQQQQII", seq, wseq, 0x401000, arglen, off, flags, 0))


SEEDS = {
    "chunk_result": {
        "two_outcomes": outcome(0, data=b"abc") + outcome(-22, msg=b"bad"),
        "empty": b"",
        "msglen_wraps": outcome(0)[:4] + u32(0xFFFFFFFF) + u64(0),
        "datalen_wraps": u32(0) + u32(0) + u64(2**64 - 7),
    },
    "chunk_task": {
        "three_items": item(b"\x01ab") + item(b"") + item(b"\x00" * 9),
        "overrun": item(b"\x01x") + u64(100) + b"short",
        "unpadded_last": item(b"\x02") + u64(3) + b"\x01ab",
    },
    "exec_ring": {
        # Start 8 bytes before the ring's end (256 KiB), so the first
        # frame wraps; put two, peek, take both.
        "wrap": u64(2**18 - 8) + u8(0) + u8(0) + u16(20) + u8(7) +
        u8(8) + u8(1) + u16(3) + u16(5) + u8(9) + u8(2) + u8(3) +
        u8(5) + u8(0) * 2 + u8(3) + u8(0) * 3,
        "full": u64(0) + (u8(16) + u8(0) + u16(0xFFFF) + u8(1)) * 3 +
        u8(3) + u8(0) * 3,
    },
    "mpq_ring": {
        # 1 KiB ring starting just below the 32-bit byte and message
        # wrap; whole, streamed and chunked puts, then gets.
        "wrap": u8(0) + u8(0) + u64(0xFFFFFFFF_FFFFFFF0) +
        u8(1) + u16(10) + u8(3) + u8(1) + u16(300) + u8(4) +
        u8(0) + u8(2) + u16(100) + u8(2) + u16(400) + u8(0),
        "chunked": u8(0) + u8(0) + u64(0) + u8(1) + u16(2000) + u8(5) +
        u8(1) + u16(8) + u8(6) + u8(0) + u8(0),
        "maxsize": u8(1) + u8(2) + u64(0) + (u8(1) + u16(1) + u8(1)) * 3 +
        u8(0) * 3,
    },
    "fs_request": {
        "two": fs_request(arg=b"\x01\x02\x03") +
        fs_request(module=b"/usr/lib/libx.so", name=b"worker", daemon=1),
        # An argument too big to hold (the target's allocator refuses
        # more than 4 KiB): read to its end and refused, then the next
        # request is read.
        "refused": fs_request(arg=b"x" * 5000) + fs_request(),
        "bad_magic": u32(0) + fs_request()[4:],
        # A name at the protocol's limit: the header alone is refused.
        "long_name": fs_request()[:28] + u32(1 << 16) + u32(0) + u32(0),
        "truncated": fs_request(arg=b"abcdef")[:-2],
    },
    "arena": {
        # Allocate three blocks, free two (both merges run), check,
        # allocate again, free a pointer that is no block.
        "alloc_free": u8(0) + u16(100) + u8(1) + u16(5000) + u8(2) +
        u16(300) + u8(3) + u8(1) + u8(4) + u8(0) + u8(7) + u8(0) +
        u16(200) + u8(5) + u16(4096 + 64 + 8) + u8(7),
        # Two blocks, then a wild next_free link in the free block's tag
        # (line 4 past the header), then an allocation that meets it.
        "scribble": u8(0) + u16(100) + u8(0) + u16(100) + u8(6) + u8(0) +
        u16(4) + u8(3) + u64(12345) + u8(0) + u16(50) + u8(7),
    },
    "res_frame": {
        "one": res_frame(7, 4, piece=4),
        "failure": res_frame(8, 0, code=-22, msg=b"bad item"),
        "pieces": res_frame(9, 10, flags=RES_MORE, piece=6) +
        res_frame(9, 0, flags=RES_CONT, piece=4),
        "init": res_frame(0, 0, code=-5, msg=b"init", flags=RES_INIT),
        "msg_past_frame": res_frame(3, 0, code=-1, msg=b"x", length=40),
        "short": u32(12) + b"\0" * 12,
        "stray_cont": res_frame(5, 0, flags=RES_CONT, piece=1),
    },
    "task_frame": {
        "inline": task_frame(40 + 4, 3, 11, 3, 4),
        "arena": task_frame(40, 1, 2, 1, 1 << 20, TASK_ARENA, 4096),
        "exit": task_frame(40, 9, 0, 0, 0, TASK_EXIT),
        "wrong_number": task_frame(44, 5, 1, 6, 4),
        "arena_past_end": task_frame(40, 1, 1, 1, 2, TASK_ARENA, (1 << 30) - 1),
        "huge_len": task_frame(2**40, 1, 1, 1, 2**40 - 40),
    },
    "pipe_ring": {
        # Two messages, taken by recv_bytes and recv_bytes_into(4096),
        # a poll, a receive that finds the ring empty.
        "two": ring_input(8, 0, 0, [0, 1 | 5 << 2, 2, 0],
                          pad8(frame(BYTES, b"hello")) +
                          pad8(frame(BYTES, b"x" * 9))),
        # A frame that wraps at the ring's end, on a simplex pipe.
        "wrap": ring_input(8 | 1, RING_CAP - 8, 0, [0, 0],
                           pad8(frame(BYTES, b"abcdefghij"))),
        # A message announced on the descriptor, then one in the ring.
        "divert": ring_input(8, 16, 0, [2, 3, 0, 0],
                             frame(DIVERT) + pad8(frame(BYTES, b"z"))),
        # A writer's position that is not a frame boundary; a limit of
        # 16 bytes on the second try.
        "broken": ring_input(2, 0, 12, [0, 0, 2],
                             pad8(frame(BYTES, b"abc"))),
    },
    "conn_recv": {
        # Socket, 4 KiB limit, ops: bytes, into(8), poll, fd.
        "socket": u8(0b011) + u8(3) + u8(0) + u8(1 | 3 << 2) + u8(2) +
        u8(3) + u16(0) + u8(0) + frame(BYTES, b"hello") +
        frame(BYTES, b"") + frame(FD) + frame(BYTES, b"x" * 9),
        # The descriptor travels with the second half of the stream.
        "fd": u8(0b100001 | 1 << 1) + u8(1) + u8(3) + u8(0) + u16(0) +
        u8(128) + frame(FD) + frame(FD) + frame(BYTES, b"z"),
        "pipe": u8(0b010) + u8(1) + u8(0) + u8(1) + u16(0) + u8(0) +
        frame(BYTES, b"abc") + frame(0x99) + frame(BYTES, b"!"),
        # A 70000-byte message (more than the input buffer) made of
        # filler, on a socket with a 100000-byte limit.
        "big": u8(0b1101) + u8(0) + u8(0) + u16(8751) + u8(0) +
        frame(BYTES, length=70000),
        # The markers a conc_pipe's end sends about its ring, which an
        # end without one skips: the recv_fd after RING takes the FD
        # frame (whose descriptor is missing), and the stream ends inside
        # a header.
        "marker": u8(0b011) + u8(3) + u8(0) + u8(1 | 3 << 2) + u8(2) +
        u8(3) + u16(0) + u8(0) + frame(BYTES, b"hello") + frame(RING) +
        frame(FD) + b"\x42\x09\x00",
        # WAKE markers around messages on a pipe, and a RING with a
        # payload, which is no marker.
        "wake": u8(0b000) + u8(2) + u8(0) + u8(1 | 2 << 2) + u8(0) +
        u16(0) + u8(0) + frame(WAKE) + frame(BYTES, b"ab") + frame(WAKE) +
        frame(WAKE) + frame(BYTES, b"cd") + frame(RING, b"r"),
    },
    "frame": {
        # 4 KiB limit, ops: bytes, into(8), poll; then CPython's frames:
        # b"hello", b"", the 8-byte escape for b"x" * 9, and -2.
        "python": u8(1) + u8(3) + u8(0) + u8(1 | 3 << 2) + u8(2) + u16(0) +
        pyframe(b"hello") + pyframe(b"") +
        struct.pack(">iQ", -1, 9) + b"x" * 9 + struct.pack(">i", -2),
        # A 70000-byte message of filler, with a 100000-byte limit.
        "big": u8(0b110) + u8(0) + u8(0) + u16(8751) +
        struct.pack(">i", 70000),
        # A message cut inside its payload.
        "cut": u8(3) + u8(0) + u8(0) + u16(0) + struct.pack(">i", 10) + b"abc",
    },
    "auth": {
        # Key "Willard", 3.11's challenge from the transcripts and its
        # MD5 reply; then the same with 3.12's form.
        "legacy": u8(7) + u16(31) + u16(16) + u8(0) + b"Willard" +
        b"#CHALLENGE#" +
        bytes.fromhex("b5e3fa47705ebb906bf1a49621bfa9e49c0ed5fd") +
        bytes.fromhex("aaf71f5f3b0dd95e0d8252e12e2c2db1"),
        "sha256": u8(7) + u16(59) + u16(40) + u8(2) + b"Willard" +
        b"#CHALLENGE#" + bytes.fromhex(
            "7b7368613235367d3d17e00f3d194b8be86a5f5b151c8ab734f6384edd317a"
            "729f955eec1c6c85108992a926a76eaff8") + b"{sha256}" +
        bytes.fromhex("33d42d6c62c7e01d2f08bcab53ac9720906558e93ebe5e88"
                      "dbc5252e67b61ed2"),
        "prefix": u8(0) + u16(30) + u16(9) + u8(5) + b"#CHALLENGE#{sha3_384}" +
        b"123456789" + b"{sha3_38}",
    },
    # A flags byte (role, deflate, takeover, limit, piece size), then
    # the bytes a peer sent.
    "ws_frame": {
        # RFC 6455 section 5.7: "Hello" masked, to a server, whole.
        "masked": u8(0b1100000) + bytes([0x81, 0x85, 0x37, 0xfa, 0x21,
                                           0x3d, 0x7f, 0x9f, 0x4d, 0x51,
                                           0x58]),
        # Unmasked fragments around a ping, to a client, byte by byte.
        "fragments": u8(1) + bytes([0x01, 0x03, 0x48, 0x65, 0x6c, 0x89,
                                    0x00, 0x80, 0x02, 0x6c, 0x6f]),
        # RFC 7692 section 7.2.3.2: two compressed messages, to a client.
        "deflate": u8(0b0100011) + bytes([0xc1, 0x07, 0xf2, 0x48, 0xcd,
                                          0xc9, 0xc9, 0x07, 0x00, 0xc1,
                                          0x05, 0xf2, 0x00, 0x11, 0x00,
                                          0x00]),
        # An empty unfragmented message, to a client (once applied an
        # offset to a NULL buffer, which clang's UBSan reports).
        "empty": u8(1) + bytes([0x82, 0x00]),
        # The same with deflate on: its echo compresses an empty message.
        "empty_deflate": u8(0b0000011) + bytes([0x82, 0x00]),
        # A close with a code and a reason, to a client.
        "close": u8(0b1100001) + bytes([0x88, 0x05, 0x03, 0xe8]) + b"bye",
    },
    # A side byte (0 server, 1 client), then an HTTP head.
    "ws_handshake": {
        "request": u8(0) + b"GET /chat HTTP/1.1\r\nHost: h\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; "
        b"client_max_window_bits; server_max_window_bits=10\r\n\r\n",
        "response": u8(1) + b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; "
        b"server_max_window_bits=12; client_max_window_bits=9\r\n\r\n",
    },
    "dist_notice": {
        # Fields split at NUL bytes (a field b"\xff": not a string).
        "one": notice([b"id", b"p1-ab:7", b"r", b"ok"]),
        "several": notice([b"id", b"p1-ab:1", b"r", b"o1",
                           b"id", b"p1-ab:2", b"r", b"e-10005 bad row 3",
                           b"id", b"p1-ab:3", b"r", b"c"]),
        "foreign": notice([b"id", b"p2-cd:4", b"r", b"o",
                           b"id", b"p1-ab:5", b"r", b"\xff"]),
        "wake": notice([b"stop", b"1"]),
        # Once taken for task 1: one spelling per task id.
        "leading_zeros": notice([b"id", b"p1-ab:0001", b"r", b"o"]),
    },
    "dist_wire": {
        # Mode byte (0 result, 1 task entry, 2 address), then the bytes.
        "result_ok": u8(0) + b"o" + u64(42),
        "result_err": u8(0) + b"e-10005 bad row 3",
        "result_cancel": u8(0) + b"c",
        # Another worker's spelling of a cancel with no message.
        "result_cancel_err": u8(0) + b"e-125 ",
        "task": u8(1) + b"\0".join([b"id", b"p1-ab:7", b"fn", b"square",
                                      b"sub", b"p1-ab", b"ttl", b"86400000",
                                      b"lim", b"0", b"arg", u64(9)]),
        "address": u8(2) + b"redis://user:pw@127.0.0.1:6380/0",
    },
}


def pickle_seeds():
    """CPython's own pickles for the pickle reader: messages a manager
    exchanges (from the captures in the manager notes: requests, replies,
    an exception, a Token, a proxy inside a value), other plain values at
    protocols 2 to 5, a recursive list and a refused global."""
    import pickle
    import queue
    seeds = {
        # ('7f29445d44c0', '__setitem__', ('inner', RebuildProxy(...)), {})
        "rebuild_proxy": bytes.fromhex(
            "800495b200000000000000288c0c376632393434356434346330948c0b5f5f73"
            "65746974656d5f5f948c05696e6e6572948c186d756c746970726f6365737369"
            "6e672e6d616e6167657273948c0c52656275696c6450726f7879949394286803"
            "8c094c69737450726f787994939468038c05546f6b656e9493942981948c046c"
            "697374948c093132372e302e302e31944d8b1386948c0c376632393434363435"
            "643030948794628c067069636b6c65947d947494529486947d9474942e"),
        # ('#PROXY', (('__next__', 'send', 'throw', 'close'), Token(...)))
        "proxy_reply": bytes.fromhex(
            "80049589000000000000008c062350524f585994288c085f5f6e6578745f5f94"
            "8c0473656e64948c057468726f77948c05636c6f73659474948c186d756c7469"
            "70726f63657373696e672e6d616e6167657273948c05546f6b656e9493942981"
            "948c084974657261746f72948c093132372e302e302e31944d8a1386948c0c37"
            "663239343435626562313094879462869486942e"),
        "recursive": bytes.fromhex("80049506000000000000005d946800612e"),
        "os_system": bytes.fromhex(
            "80049514000000000000008c05706f736978948c0673797374656d9493942e"),
    }
    shared = [1, "two"]
    values = {
        "request": (None, "create", ("dict",), {}),
        "get": ("7fada356a250", "get", (), {"timeout": 1}),
        "update": {"f": 1.5, "b": b"\x00\x01", "t": (1, "x"), "n": None,
                   "T": True, "big": -1208925819614629174706176,
                   "s": "\u00e9"},
        "error": ("#ERROR", KeyError("missing")),
        "empty": ("#ERROR", queue.Empty()),
        "keys": ("#RETURN", ["a", "b"]),
        "numbers": [0, 255, 65536, -1, 2**31, 2**64, -(10**40), 2**2100,
                    0.1, float("nan"), -0.0, 1e-310],
        "text": ["\U0001F600", "x" * 300, b"y" * 300, bytearray(b"ab")],
        "sets": [set(), {1, 2}, frozenset({3}), {frozenset(): (1,)}],
        "shared": [shared, shared, {"k": shared}],
        "deep": [[[[[[[[[[[]]]]]]]]]]],
    }
    for name, v in values.items():
        for proto in (2, 3, 4, 5):
            if proto <= pickle.HIGHEST_PROTOCOL:
                seeds["%s_p%d" % (name, proto)] = pickle.dumps(v, proto)
    return seeds


SEEDS["pickle"] = pickle_seeds()


def ws_deflate_seed(flags, offer, messages, wbits=15):
    """The flags byte, the offer's length and text, then messages
    compressed as a peer would (raw DEFLATE, the sync tail removed)."""
    import zlib
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = b""
    for m in messages:
        z = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        out += z[:-4]
    return u8(flags) + u8(len(offer)) + offer + out


# A flags byte (takeover, window bits, role, limit, frame size, two
# messages), an offer, then compressed payload.
SEEDS["ws_deflate"] = {
    "plain": ws_deflate_seed(0, b"permessage-deflate", [b"Hello" * 20]),
    "offer_bits": ws_deflate_seed(
        0b0100, b"permessage-deflate; client_max_window_bits; "
        b"server_max_window_bits=10", [b"abc" * 100], wbits=10),
    "takeover": ws_deflate_seed(
        0b10101000, b"permessage-deflate; server_no_context_takeover",
        [b"repeat " * 30, b"repeat " * 30]),
    "small_limit": ws_deflate_seed(0b00110000, b"x-other, permessage-deflate",
                                   [b"0123456789" * 50]),
    "several": ws_deflate_seed(
        0b01000010, b"permessage-deflate; client_no_context_takeover; "
        b"client_max_window_bits=9, permessage-deflate", [b"{\"k\": 1}"]),
    # RFC 7692 section 7.2.3.1: "Hello" as one compressed message.
    "rfc_hello": u8(0) + u8(0) + bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                        0x00]),
}


def client_hello(**alpn):
    """A real ClientHello from Python's ssl module (its random bytes
    differ on each run; any one will do)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn["alpn"])
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


# tls_records: the first byte is the size of the pieces fed (0: all at
# once), the rest is what a client sends to a server session.
SEEDS["tls_records"] = {
    "hello": u8(0) + client_hello(),
    "hello_alpn_pieces": u8(7) + client_hello(alpn=["h2", "http/1.1"]),
    "http": u8(0) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "alert": u8(0) + bytes([21, 3, 3, 0, 2, 2, 40]),
}


def manager_request_seeds():
    """Requests as a manager server reads them (fuzz_manager_request): the
    server's functions, and methods of the target's dict "d", list "l" and
    stopped Queue "q", with a list proxy inside a value."""
    import pickle
    from multiprocessing.managers import ListProxy, Token
    token = Token("list", ("127.0.0.1", 5000), "7f0000000001")
    proxy = ListProxy(token, "pickle", authkey=b"", incref=False)
    requests = {
        "create": (None, "create", ("dict",), {}),
        "create_queue": (None, "create", ("Queue", 3), {}),
        "create_unknown": (None, "create", ("nope",), {}),
        "accept": (None, "accept_connection", ("MainProcess",), {}),
        "debug_info": (None, "debug_info", (), {}),
        "count": (None, "number_of_objects", (), {}),
        "incref": (None, "incref", ("d",), {}),
        "get_methods": (None, "get_methods", ("x",), {}),
        "dummy": (None, "dummy", (), {}),
        "setitem": ("d", "__setitem__", ("k", [1, 2.5]), {}),
        "getitem": ("d", "__getitem__", ("missing",), {}),
        "update": ("d", "update", ({"a": 1},), {}),
        "items": ("d", "items", (), {}),
        "nested_proxy": ("d", "__setitem__", ("inner", proxy), {}),
        "append": ("l", "append", (proxy,), {}),
        "index": ("l", "__getitem__", (-7,), {}),
        "slice": ("l", "__getitem__", (slice(1, None, 2),), {}),
        "put": ("q", "put", ("x",), {"timeout": 0.5}),
        "get": ("q", "get", (), {"block": True, "timeout": None}),
        "not_exposed": ("q", "_private", (), {}),
        "getvalue": ("l", "#GETVALUE", (), {}),
        "short": ("d", "keys"),
        "not_tuple": ["d", "keys", (), {}],
        "dict_iter": ("d", "__iter__", (), {}),
        "dict_ior": ("d", "__ior__", ([("a", 1), "xy", (1, 2, 3)],), {}),
        "dict_or": ("d", "__or__", ({"b": 2},), {}),
        "dict_ror": ("d", "__ror__", (5,), {}),
        "dict_reversed": ("d", "__reversed__", (), {}),
        "dict_fromkeys": ("d", "fromkeys", ("abc", [0]), {}),
        "list_clear": ("l", "clear", (), {}),
        "list_copy": ("l", "copy", (1,), {}),
        "create_iterator": (None, "create", ("Iterator", 1), {}),
    }
    return {name: pickle.dumps(r, 4) for name, r in requests.items()}


SEEDS["manager_request"] = manager_request_seeds()


def ws_stream_seeds():
    """fuzz_ws_stream's input: fuzz_ws_frame's (whose seeds it starts
    from), and the top bit of the flags byte for the echo's fragment
    size. Plus a message of 300 KiB compressed into three frames to a
    client, fed whole: its pieces pass CONC__WS_STREAM_PIECE."""
    seeds = dict(SEEDS["ws_frame"])
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = z.compress(bytes(range(256)) * 1200) + z.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]  # RFC 7692 section 7.2.1: without 00 00 ff ff
    third = len(body) // 3
    parts = [body[:third], body[third:2 * third], body[2 * third:]]
    heads = [0x42, 0x00, 0x80]  # binary with RSV1, continuation, fin

    def head(b0, n):
        if n < 126:
            return bytes([b0, n])
        return bytes([b0, 126]) + struct.pack(">H", n)
    seeds["big_deflate"] = u8(0b11100011) + b"".join(
        head(h, len(p)) + p for h, p in zip(heads, parts))
    # "Hello" in two fragments of a text message, to a client, byte by
    # byte, echoed in large fragments.
    seeds["two_fragments"] = u8(0b10000001) + bytes(
        [0x01, 0x02]) + b"He" + bytes([0x80, 0x03]) + b"llo"
    return seeds


SEEDS["ws_stream"] = ws_stream_seeds()


def main():
    for target, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
