"""CPython's asyncio streams as the peer of conc's (tests/test_aio_stream.c).

usage: stream_peer.py server          echo one connection, then exit
       stream_peer.py client PORT     talk to an echo server on PORT

The server prints its port on the first line; each mode prints "done" or
"ok" last when everything it checked held, and exits 0.
"""
import asyncio
import sys

LINES = 100
BLOB = 256 * 1024


async def serve():
    finished = asyncio.Event()

    async def echo(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(finished.wait(), 20)
    server.close()
    await server.wait_closed()
    print("done", flush=True)


async def client(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(LINES):
        writer.write(b"line %d\n" % i)
    await writer.drain()
    for i in range(LINES):
        line = await asyncio.wait_for(reader.readline(), 10)
        assert line == b"line %d\n" % i, line
    blob = bytes(range(256)) * (BLOB // 256)
    writer.write(blob)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(BLOB), 10)
    assert got == blob
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    await writer.wait_closed()
    print("ok", flush=True)


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve())
    else:
        asyncio.run(client(int(sys.argv[2])))


if __name__ == "__main__":
    main()
