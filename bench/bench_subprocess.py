"""CPython twin of bench_subprocess.c: subprocess.run(['true']), one run
after the other; and asyncio's create_subprocess_exec('true') awaited in a
coroutine, on asyncio's loop and (where Debian's python3-uvloop is
installed) on uvloop's."""
import asyncio
import subprocess

import bench_common as bc


def run_true(n):
    run = subprocess.run
    t0 = bc.now()
    for _ in range(n):
        if run(["true"]).returncode != 0:
            raise SystemExit("true failed")
    return bc.now() - t0, n


def aio_run_true(new_loop):
    """n times: await (await create_subprocess_exec("true")).wait()."""
    def run(n):
        async def main():
            t0 = bc.now()
            for _ in range(n):
                p = await asyncio.create_subprocess_exec("true")
                if await p.wait() != 0:
                    raise SystemExit("true failed")
            return bc.now() - t0
        loop = new_loop()
        try:
            return loop.run_until_complete(main()), n
        finally:
            loop.close()
    return run


def measure(opts, new_loop, impl):
    if impl == "cpython":
        bc.row(opts, "subprocess_run", run_true, True, 5)
    bc.row(opts, "aio_subprocess_run", aio_run_true(new_loop), True, 5,
           impl=impl)


def main():
    bc.asyncio_twin(__file__, measure, "aio_subprocess_run")


if __name__ == "__main__":
    main()
