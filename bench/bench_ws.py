"""Twin of bench_ws.c with python websockets (Debian's python3-websockets,
so it runs itself under /usr/bin/python3 when this Python lacks it), on
asyncio's loop (impl "cpython") and on uvloop's (impl "uvloop"):
16-byte messages echoed over one connection, and the resident memory per
idle connection (client and server both in this process) without and with
permessage-deflate."""
import asyncio
import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"
try:
    import websockets
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) \
            and os.path.exists(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    print("INFO ws_pingpong_1 cpython python websockets not installed "
          "(Debian's python3-websockets)")
    sys.exit(1)

import bench_common as bc  # noqa: E402

MSG = bytes(16)
IDLE_CONNS = 1000
SMOKE_IDLE = 20


def pingpong_run(new_loop):
    def run(n):
        loop = new_loop()

        async def echo(ws):
            async for m in ws:
                await ws.send(m)

        async def main():
            async with websockets.serve(echo, "127.0.0.1", 0) as srv:
                port = srv.sockets[0].getsockname()[1]
                async with websockets.connect(
                        f"ws://127.0.0.1:{port}/") as ws:
                    t0 = bc.now()
                    for _ in range(n):
                        await ws.send(MSG)
                        await ws.recv()
                    return bc.now() - t0
        try:
            t = loop.run_until_complete(main())
        finally:
            loop.close()
        return t, n
    return run


def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def idle_mem(new_loop, conns, deflate):
    loop = new_loop()
    comp = "deflate" if deflate else None
    stop = None

    async def handler(ws):
        await ws.send(await ws.recv())
        await stop.wait()

    async def main():
        nonlocal stop
        stop = asyncio.Event()
        async with websockets.serve(handler, "127.0.0.1", 0,
                                    compression=comp) as srv:
            port = srv.sockets[0].getsockname()[1]
            before = resident()
            clients = []
            for _ in range(conns):
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/",
                                              compression=comp)
                await ws.send("hello, idle")
                await ws.recv()
                clients.append(ws)
            per = (resident() - before) / conns
            stop.set()
            for ws in clients:
                await ws.close()
            return per
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def measure(opts, new_loop, impl):
    bc.row(opts, "ws_pingpong_1", pingpong_run(new_loop), True, 100,
           impl=impl)
    conns = SMOKE_IDLE if opts.smoke else IDLE_CONNS
    for row, deflate in (("ws_idle_mem", 0), ("ws_idle_mem_deflate", 1)):
        per = idle_mem(new_loop, conns, deflate)
        print(f"RESULT {row} {impl} {per:.6g} ns", flush=True)


def main():
    bc.asyncio_twin(__file__, measure, "ws_pingpong_1")


if __name__ == "__main__":
    main()
