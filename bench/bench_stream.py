"""CPython twin of bench_stream.c: TCP echo of 1 KiB messages with asyncio
streams, server and clients on one loop, on asyncio's own loop (impl
"cpython") and, where Debian's python3-uvloop is installed, on uvloop's
(impl "uvloop"), found as bench_aio.py finds it."""
import asyncio

import bench_common as bc

MSG = 1024


def echo_run(new_loop, conns):
    """n round trips spread over `conns` connections; the setup is not
    timed."""
    def run(n):
        per = max(1, n // conns)
        loop = new_loop()
        handlers = []

        async def handle(reader, writer):
            handlers.append(asyncio.current_task())
            while data := await reader.read(65536):
                writer.write(data)
            writer.close()

        async def client(reader, writer):
            msg = bytes(MSG)
            for _ in range(per):
                writer.write(msg)
                await reader.readexactly(MSG)

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            pairs = [await asyncio.open_connection("127.0.0.1", port)
                     for _ in range(conns)]
            t0 = bc.now()
            await asyncio.gather(*(client(r, w) for r, w in pairs))
            t = bc.now() - t0
            for _, w in pairs:
                w.close()
                await w.wait_closed()
            await asyncio.gather(*handlers)
            server.close()
            await server.wait_closed()
            return t
        try:
            t = loop.run_until_complete(main())
        finally:
            loop.close()
        return t, per * conns
    return run


def measure(opts, new_loop, impl):
    bc.row(opts, "stream_echo_1", echo_run(new_loop, 1), True, 100,
           impl=impl)
    bc.row(opts, "stream_echo_100", echo_run(new_loop, 100), True, 1000,
           impl=impl)


def main():
    bc.asyncio_twin(__file__, measure, "stream_echo_1")


if __name__ == "__main__":
    main()
