"""Twin of bench_ws.c with python websockets (Debian's python3-websockets,
so it runs itself under /usr/bin/python3 when this Python lacks it), on
asyncio's loop (impl "cpython") and on uvloop's (impl "uvloop"):
16-byte messages echoed over one connection and over 1,000 at once
(without permessage-deflate, as bench_ws.c), and the resident memory per
idle connection (client and server both in this process) without and with
permessage-deflate."""
import asyncio
import os
import resource
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
MANY = 1000  # connections of ws_echo_1000
SMOKE_MANY = 20


def pingpong_run(new_loop):
    def run(n):
        loop = new_loop()

        async def echo(ws):
            async for m in ws:
                await ws.send(m)

        async def main():
            async with websockets.serve(echo, "127.0.0.1", 0,
                                        compression=None) as srv:
                port = srv.sockets[0].getsockname()[1]
                async with websockets.connect(
                        f"ws://127.0.0.1:{port}/",
                        compression=None) as ws:
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


def many_row(opts, new_loop, impl):
    """ws_echo_1000: the connections are opened once, outside the timed
    part, and every run(n) drives all of them at once, n / conns round
    trips each."""
    conns = SMOKE_MANY if opts.smoke else MANY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * conns + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(want, hard) if hard > 0 else want, hard))
    loop = new_loop()

    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async def setup():
        srv = await websockets.serve(echo, "127.0.0.1", 0, compression=None)
        port = srv.sockets[0].getsockname()[1]
        clients = [await websockets.connect(f"ws://127.0.0.1:{port}/",
                                            compression=None)
                   for _ in range(conns)]
        return srv, clients

    async def rounds(ws, k):
        for _ in range(k):
            await ws.send(MSG)
            await ws.recv()

    async def all_rounds(clients, k):
        t0 = bc.now()
        await asyncio.gather(*(rounds(ws, k) for ws in clients))
        return bc.now() - t0

    async def teardown(srv, clients):
        for ws in clients:
            await ws.close()
        srv.close()
        await srv.wait_closed()

    srv, clients = loop.run_until_complete(setup())

    def run(n):
        k = max(1, n // conns)
        return loop.run_until_complete(all_rounds(clients, k)), k * conns
    try:
        bc.row(opts, "ws_echo_1000", run, True, conns, impl=impl)
    finally:
        loop.run_until_complete(teardown(srv, clients))
        loop.close()


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


def idle_in_child(impl, conns, deflate):
    """Measures the idle memory in a fresh process: in this one, memory
    freed by an earlier measurement would be reused and hide the cost."""
    import subprocess
    out = subprocess.run([sys.executable, os.path.abspath(__file__),
                          "--idle-child", impl, str(conns), str(deflate)],
                         stdout=subprocess.PIPE, text=True, check=True)
    return float(out.stdout.strip())


def measure(opts, new_loop, impl):
    bc.row(opts, "ws_pingpong_1", pingpong_run(new_loop), True, 100,
           impl=impl)
    many_row(opts, new_loop, impl)
    conns = SMOKE_IDLE if opts.smoke else IDLE_CONNS
    for row, deflate in (("ws_idle_mem", 0), ("ws_idle_mem_deflate", 1)):
        per = idle_in_child(impl, conns, deflate)
        print(f"RESULT {row} {impl} {per:.6g} ns", flush=True)


def idle_child(impl, conns, deflate):
    if impl == "uvloop":
        import uvloop
        new_loop = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop
    print(idle_mem(new_loop, int(conns), int(deflate)), flush=True)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--idle-child":
        idle_child(*sys.argv[2:])
        return
    bc.asyncio_twin(__file__, measure, "ws_pingpong_1")


if __name__ == "__main__":
    main()
