"""CPython's asyncio with ssl as the peer of conc's TLS streams
(tests/test_tls.c).

usage: tls_peer.py server CERT KEY     echo one TLS connection, then exit
       tls_peer.py client PORT CAFILE  talk to a TLS echo server on PORT

The server prints its port on the first line. Both offer ALPN "h2" and
"http/1.1" and check what was chosen; each prints "done" or "ok" last
when everything it checked held, and exits 0.
"""
import asyncio
import ssl
import sys

LINES = 100
BLOB = 256 * 1024
WAIT = 20


async def serve(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    finished = asyncio.Event()
    seen = {}

    async def echo(reader, writer):
        obj = writer.get_extra_info("ssl_object")
        seen["alpn"] = obj.selected_alpn_protocol()
        seen["sni"] = obj.server_hostname
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(finished.wait(), WAIT)
    server.close()
    await server.wait_closed()
    assert seen["alpn"] == "http/1.1", seen
    print("done", flush=True)


async def client(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                server_hostname="localhost"), WAIT)
    obj = writer.get_extra_info("ssl_object")
    assert obj.selected_alpn_protocol() == "h2", obj.selected_alpn_protocol()
    subject = dict(x[0] for x in obj.getpeercert()["subject"])
    assert subject["commonName"] == "localhost", subject
    for i in range(LINES):
        writer.write(b"line %d\n" % i)
    await writer.drain()
    for i in range(LINES):
        line = await asyncio.wait_for(reader.readline(), WAIT)
        assert line == b"line %d\n" % i, line
    blob = bytes(range(256)) * (BLOB // 256)
    writer.write(blob)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(BLOB), WAIT)
    assert got == blob
    writer.close()
    await writer.wait_closed()
    print("ok", flush=True)


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve(sys.argv[2], sys.argv[3]))
    else:
        asyncio.run(client(int(sys.argv[2]), sys.argv[3]))


if __name__ == "__main__":
    main()
