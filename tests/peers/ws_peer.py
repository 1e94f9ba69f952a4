"""The python websockets peer of tests/test_ws_peers.c.

  ws_peer.py server deflate|plain [CERT KEY]
                                    echo server on 127.0.0.1, a free port
                                    (over TLS with CERT and KEY); prints
                                    "listening on PORT"
  ws_peer.py client URL deflate|plain [CA]
                                    runs the matrix against a conc server
                                    (a wss:// URL trusting the CA file),
                                    prints "ok" and exits 0, or the failure

The echo protocol both sides follow: every message comes back as it came
(text as text, binary as binary), except the text "frag", answered with
the text "abcdef" sent in three fragments, "ping-me", answered "pinged"
once the server's own ping got its pong, and "close:CODE", answered by a
close with CODE and the reason "bye". conc's server also answers
"stream" with "str\u00e9am", sent from a producer in parts that split the
"\u00e9"."""
import asyncio
import ssl
import sys

import websockets

MIB = 1 << 20
WAIT = 10


def compression(mode):
    return "deflate" if mode == "deflate" else None


async def echo(ws):
    try:
        await echo_messages(ws)
    except websockets.ConnectionClosed:
        pass


async def echo_messages(ws):
    async for msg in ws:
        if msg == "frag":
            await ws.send(["ab", "cd", "ef"])
        elif msg == "ping-me":
            pong = await ws.ping()
            await asyncio.wait_for(pong, WAIT)
            await ws.send("pinged")
        elif isinstance(msg, str) and msg.startswith("close:"):
            await ws.close(int(msg[6:]), "bye")
        else:
            await ws.send(msg)


def server_tls(cert_key):
    if not cert_key:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_key)
    return ctx


def client_tls(url, ca):
    if not url.startswith("wss:"):
        return {}
    return {"ssl": ssl.create_default_context(cafile=ca)}


async def server(mode, cert_key):
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=2 * MIB,
                                compression=compression(mode),
                                ssl=server_tls(cert_key)) as srv:
        port = srv.sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None,
                                                         sys.stdin.read)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def round_trip(ws, msg):
    await ws.send(msg)
    got = await asyncio.wait_for(ws.recv(), WAIT)
    check(got == msg and type(got) is type(msg),
          f"echo of {type(msg).__name__} of {len(msg)}")


async def client(url, mode, ca):
    tls = client_tls(url, ca)
    async with websockets.connect(url, max_size=2 * MIB,
                                  compression=compression(mode),
                                  **tls) as ws:
        exts = [e.name for e in ws.extensions]
        want = ["permessage-deflate"] if mode == "deflate" else []
        check(exts == want, f"extensions {exts}, expected {want}")
        for msg in ("hello", "h\u00e9llo \u2603", b"\x00\xff\x01", "", b"",
                    bytes(range(256)) * (MIB // 256)):
            await round_trip(ws, msg)
        await ws.send(["fr", "ag", "ment"])
        check(await asyncio.wait_for(ws.recv(), WAIT) == "fragment",
              "fragmented send")
        await ws.send("frag")
        check(await asyncio.wait_for(ws.recv(), WAIT) == "abcdef",
              "fragmented receive")
        await ws.send("stream")
        check(await asyncio.wait_for(ws.recv(), WAIT) == "str\u00e9am",
              "a message from conc's producer")
        await asyncio.wait_for(await ws.ping(b"py"), WAIT)
        await ws.send("ping-me")
        check(await asyncio.wait_for(ws.recv(), WAIT) == "pinged",
              "the server's ping")
    check(ws.close_code == 1000, f"close code {ws.close_code}")
    async with websockets.connect(url, compression=compression(mode),
                                  **tls) as ws:
        await ws.send("close:4001")
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        check(ws.close_code == 4001 and ws.close_reason == "bye",
              f"server close {ws.close_code} {ws.close_reason!r}")
    async with websockets.connect(url, compression=compression(mode),
                                  **tls) as ws:
        await ws.close(4002, "peer bye")
    print("ok", flush=True)


def main():
    if sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2], sys.argv[3:5]))
    else:
        try:
            ca = sys.argv[4] if len(sys.argv) > 4 else None
            asyncio.run(client(sys.argv[2], sys.argv[3], ca))
        except Exception as e:  # report, do not hide
            print(f"FAILED: {e!r}", flush=True)
            sys.exit(1)


main()
