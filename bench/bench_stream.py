"""CPython twin of bench_stream.c: TCP echo of 1 KiB messages with asyncio
streams, server and clients on one loop, on asyncio's own loop (impl
"cpython") and, where Debian's python3-uvloop is installed, on uvloop's
(impl "uvloop"), found as bench_aio.py finds it.

One loop per core (row stream_echo_100_cores) is what asyncio does with
processes, its GIL keeping two loops of a process from running at once:
one server process per CPU on one port (start_server's reuse_port) and as
many client processes, each a loop with its share of the connections; the
time is the slowest client's, from a barrier all pass once connected."""
import asyncio
import multiprocessing
import os

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


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


def _serve(new_loop, port, port_q, stop):
    """A server process: reuse_port on `port` (0: a free one, reported)."""
    loop = new_loop()

    async def main():
        srv = await asyncio.start_server(_echo, "127.0.0.1", port,
                                         reuse_port=True)
        port_q.put(srv.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, stop.wait)
        srv.close()
    loop.run_until_complete(main())
    loop.close()


def _clients(new_loop, port, conns, per, go, out_q):
    """A client process: its connections, then round trips after `go`."""
    loop = new_loop()

    async def client(reader, writer):
        msg = bytes(MSG)
        for _ in range(per):
            writer.write(msg)
            await reader.readexactly(MSG)

    async def main():
        pairs = [await asyncio.open_connection("127.0.0.1", port)
                 for _ in range(conns)]
        await loop.run_in_executor(None, go.wait)
        t0 = bc.now()
        await asyncio.gather(*(client(r, w) for r, w in pairs))
        t = bc.now() - t0
        for _, w in pairs:
            w.close()
        return t
    out_q.put(loop.run_until_complete(main()))
    loop.close()


def cores_run(new_loop, conns):
    """n round trips over `conns` connections, a server and a client
    process per CPU."""
    ctx = multiprocessing.get_context("fork")
    ncpu = os.cpu_count() or 1

    def run(n):
        per = max(1, n // conns)
        port_q, out_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        go = ctx.Barrier(ncpu)
        servers, port = [], 0
        for _ in range(ncpu):
            servers.append(ctx.Process(target=_serve,
                                       args=(new_loop, port, port_q, stop)))
            servers[-1].start()
            port = port_q.get()
        shares = [conns // ncpu + (i < conns % ncpu) for i in range(ncpu)]
        clients = [ctx.Process(target=_clients,
                               args=(new_loop, port, k, per, go, out_q))
                   for k in shares]
        for c in clients:
            c.start()
        t = max(out_q.get() for _ in clients)
        for c in clients:
            c.join()
        stop.set()
        for sp in servers:
            sp.join()
        return t, per * conns
    return run


def measure(opts, new_loop, impl):
    bc.row(opts, "stream_echo_1", echo_run(new_loop, 1), True, 100,
           impl=impl)
    bc.row(opts, "stream_echo_100", echo_run(new_loop, 100), True, 1000,
           impl=impl)
    bc.row(opts, "stream_echo_100_cores", cores_run(new_loop, 100), True,
           1000, impl=impl)


def main():
    bc.asyncio_twin(__file__, measure, "stream_echo_1")


if __name__ == "__main__":
    main()
