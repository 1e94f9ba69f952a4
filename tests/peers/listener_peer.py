"""A CPython peer for tests/test_listener.c: multiprocessing.connection's
Listener and Client as Python programs use them, and a small stand-in for
CPython 3.12's side of the handshake.

The installed CPython is 3.11, whose Listener and Client speak the legacy
handshake (a bare 20-byte challenge answered with a raw HMAC-MD5). No 3.12
is installed, so the "py312-*" modes speak 3.12's form on a raw socket,
byte for byte as the notes' transcripts show it (a "{sha256}" prefix, 40
random bytes, replies "{sha256}" + HMAC-SHA256 over the whole message,
prefix included; a 20-byte challenge is still answered with raw MD5 and a
16-byte reply still accepted as MD5). The framing is the same in both
versions.

usage: listener_peer.py MODE ADDRESS KEY
  ADDRESS  "host:port" (TCP; port 0 in server modes) or a Unix path
  KEY      the authkey as text, or "-" for none
Server modes print their address on the first line of stdout. Every mode
prints one last line saying how it ended ("ok", "auth", "eof", ...) and
exits 0 unless a check failed.

Modes:
  server        Listener; accepts one client and echoes each message
                until the client closes.
  client        Client; sends b"", b"x", 65536 bytes, and a message
                through the 8-byte length escape, and checks each echo.
  py312-server  as server, speaking 3.12's handshake.
  py312-client  as client's first messages, speaking 3.12's handshake.
  midframe      Listener without a key: accepts one client, sends a header
                for 100 bytes, 10 of them, and closes.
  escape        Listener without a key: accepts one client and sends
                b"hello" framed with the 8-byte escape, then echoes.
  obj-server    Listener: receives one object with recv() and answers
                ("#RETURN", obj) with send(), as a manager does.
  huge-server   Listener: receives one message, answers its length and
                its first, middle and last bytes, then sends 2**31 + 1
                bytes of its own (both through the 8-byte escape).
"""
import hmac
import os
import socket
import struct
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

CHALLENGE = b"#CHALLENGE#"
WELCOME = b"#WELCOME#"
FAILURE = b"#FAILURE#"
DIGESTS = {b"md5", b"sha256", b"sha384", b"sha3_256", b"sha3_384"}
HUGE = 2**31 + 1


def parse(address):
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and "/" not in address:
        return (host, int(port))
    return address


def say(*words):
    print(*words, flush=True)


def listener(address, key):
    lst = Listener(parse(address), authkey=key)
    addr = lst.address
    say(f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else addr)
    return lst


def echo(conn):
    while True:
        try:
            conn.send_bytes(conn.recv_bytes())
        except EOFError:
            return "eof"


def server(address, key):
    with listener(address, key) as lst:
        try:
            conn = lst.accept()
        except AuthenticationError:
            return "auth"
        with conn:
            return echo(conn)


def client_messages():
    return [b"", b"x", bytes(range(256)) * 256]


def client(address, key):
    try:
        conn = Client(parse(address), authkey=key)
    except AuthenticationError:
        return "auth"
    with conn:
        for m in client_messages():
            conn.send_bytes(m)
            if conn.recv_bytes() != m:
                return "mismatch"
        # Python reads the 8-byte escape for any length: send one by hand.
        conn._send(struct.pack("!iQ", -1, 5) + b"hello")
        if conn.recv_bytes() != b"hello":
            return "mismatch"
    return "ok"


# ---- 3.12's handshake on a raw socket -----------------------------------

def send_frame(sock, data):
    sock.sendall(struct.pack("!i", len(data)) + data)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def recv_frame(sock, cap=256):
    (n,) = struct.unpack("!i", recv_exact(sock, 4))
    if n < 0 or n > cap:
        raise OSError("bad message length")
    return recv_exact(sock, n)


def digest_and_payload(message):
    if len(message) in (20, 16):
        return "", message
    if message.startswith(b"{"):
        curly = message.find(b"}", 1, 10)
        if curly > 0 and message[1:curly] in DIGESTS:
            return message[1:curly].decode("ascii"), message[curly + 1:]
    raise AuthenticationError("unsupported message")


def deliver_312(sock, key):
    message = b"{sha256}" + os.urandom(40)
    send_frame(sock, CHALLENGE + message)
    response = recv_frame(sock)
    name, mac = digest_and_payload(response)
    expected = hmac.new(key, message, name or "md5").digest()
    if len(expected) != len(mac) or not hmac.compare_digest(expected, mac):
        send_frame(sock, FAILURE)
        raise AuthenticationError("digest received was wrong")
    send_frame(sock, WELCOME)


def answer_312(sock, key):
    message = recv_frame(sock)
    if not message.startswith(CHALLENGE):
        raise AuthenticationError("expected challenge")
    message = message[len(CHALLENGE):]
    name, _ = digest_and_payload(message)
    if not name:
        send_frame(sock, hmac.new(key, message, "md5").digest())
    else:
        mac = hmac.new(key, message, name).digest()
        send_frame(sock, b"{%s}%s" % (name.encode("ascii"), mac))
    if recv_frame(sock) != WELCOME:
        raise AuthenticationError("digest sent was rejected")


def echo_raw(sock):
    while True:
        try:
            m = recv_frame(sock, 1 << 20)
        except EOFError:
            return "eof"
        send_frame(sock, m)


def py312_server(address, key):
    with socket.create_server(parse(address)) as srv:
        host, port = srv.getsockname()[:2]
        say(f"{host}:{port}")
        sock, _ = srv.accept()
        with sock:
            try:
                deliver_312(sock, key)
                answer_312(sock, key)
            except AuthenticationError:
                return "auth"
            return echo_raw(sock)


def py312_client(address, key):
    with socket.create_connection(parse(address)) as sock:
        try:
            answer_312(sock, key)
            deliver_312(sock, key)
        except AuthenticationError:
            return "auth"
        send_frame(sock, b"from 3.12")
        return "ok" if recv_frame(sock) == b"from 3.12" else "mismatch"


# ---- framing edge cases -------------------------------------------------

def midframe(address, key):
    with listener(address, None) as lst, lst.accept() as conn:
        conn._send(struct.pack("!i", 100) + b"0123456789")
    return "cut"


def escape(address, key):
    with listener(address, None) as lst, lst.accept() as conn:
        conn._send(struct.pack("!iQ", -1, 5) + b"hello")
        return echo(conn)


def obj_server(address, key):
    with listener(address, key) as lst, lst.accept() as conn:
        conn.send(("#RETURN", conn.recv()))
        return echo(conn)


def huge_server(address, key):
    with listener(address, key) as lst, lst.accept() as conn:
        m = conn.recv_bytes()
        conn.send_bytes(b"%d %d %d %d" % (len(m), m[0], m[len(m) // 2], m[-1]))
        del m
        conn.send_bytes(b"\x5a" * HUGE)
        return echo(conn)


MODES = {
    "server": server,
    "client": client,
    "py312-server": py312_server,
    "py312-client": py312_client,
    "midframe": midframe,
    "escape": escape,
    "obj-server": obj_server,
    "huge-server": huge_server,
}


def main():
    mode, address, key = sys.argv[1:4]
    key = None if key == "-" else key.encode()
    say(MODES[mode](address, key))


if __name__ == "__main__":
    main()
