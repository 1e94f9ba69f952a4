"""CPython twin of bench_aio.c: the same async-core workloads with asyncio,
run on asyncio's own loop (impl "cpython") and, where Debian's
python3-uvloop is installed, on uvloop's (impl "uvloop").

uvloop is looked for in this interpreter and then in Debian's
/usr/bin/python3 (where python3-uvloop installs), which runs this script
again with --uvloop-only; where neither has it, the uvloop column says so
in an INFO line and stays empty."""
import asyncio
import gc
import os
import queue
import random
import threading

import bench_common as bc

GATHER_BATCH = 200_000   # PERF.md: gather of 200k tasks
IDLE_TASKS = 100_000     # PERF.md: 100k sleeping tasks
ARMED_TIMERS = 1_000_000  # PERF.md: 1M armed timers
SMOKE_BATCH = 2000        # each of the three above in a smoke run
LONG_SLEEP = 3600.0       # an idle task never wakes during a run
TIMER_SPAN = 1000.0       # armed timers fall due over this many seconds
MAX_WAKE_ROUNDS = 100_000


def on_loop(new_loop, coro_fn):
    """Runs coro_fn() to completion on a new loop; returns its result."""
    loop = new_loop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


def aio_switch(new_loop):
    """Two tasks take turns, each awaiting sleep(0) n times."""
    def run(n):
        async def sleeper():
            sleep = asyncio.sleep
            for _ in range(n):
                await sleep(0)

        async def main():
            t0 = bc.now()
            await asyncio.gather(sleeper(), sleeper())
            return bc.now() - t0
        return on_loop(new_loop, main), 2 * n
    return run


def aio_call_soon(new_loop):
    """n callbacks scheduled with call_soon, then run by the loop."""
    def run(n):
        loop = new_loop()
        count = [0]

        def cb():
            count[0] += 1
        call_soon = loop.call_soon
        t0 = bc.now()
        for _ in range(n):
            call_soon(cb)
        call_soon(loop.stop)
        loop.run_forever()
        t = bc.now() - t0
        loop.close()
        assert count[0] == n
        return t, n
    return run


async def noop():
    pass


def aio_create_await(new_loop):
    """Create a task that returns at once, and await it."""
    def run(n):
        async def main():
            create_task = asyncio.get_running_loop().create_task
            t0 = bc.now()
            for _ in range(n):
                await create_task(noop())
            return bc.now() - t0
        return on_loop(new_loop, main), n
    return run


def aio_gather(new_loop, batch):
    """gather of batches of `batch` tasks, their creation included."""
    def run(n):
        async def main():
            create_task = asyncio.get_running_loop().create_task
            t0 = bc.now()
            done = 0
            while done < n:
                k = min(batch, n - done)
                await asyncio.gather(*[create_task(noop())
                                       for _ in range(k)])
                done += k
            return bc.now() - t0
        return on_loop(new_loop, main), n
    return run


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def aio_idle_mem(new_loop, impl, n):
    """Resident bytes per task asleep, n tasks."""
    async def idle():
        await asyncio.sleep(LONG_SLEEP)

    async def main():
        create_task = asyncio.get_running_loop().create_task
        gc.collect()
        before = resident_bytes()
        tasks = [create_task(idle()) for _ in range(n)]
        await asyncio.sleep(0)  # every task runs up to its sleep
        after = resident_bytes()
        for t in tasks:
            assert not t.done()
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(t.cancelled() for t in tasks)
        return after - before
    grown = on_loop(new_loop, main)
    print(f"RESULT aio_idle_mem {impl} {grown / n:.6g} bytes", flush=True)
    print(f"INFO aio_idle_mem {impl} {n} idle tasks: "
          f"{grown / 2**20:.1f} MiB resident more", flush=True)


def aio_timers(loop):
    """call_later + cancel while 1M other timers are armed."""
    rnd = random.Random(1)

    def cb():
        raise AssertionError("a timer set far ahead fired")

    def run(n):
        call_later = loop.call_later
        uniform = rnd.uniform
        t0 = bc.now()
        for _ in range(n):
            call_later(uniform(TIMER_SPAN, 2 * TIMER_SPAN), cb).cancel()
        return bc.now() - t0, n
    return run, cb


def arm_timers(new_loop, armed):
    loop = new_loop()
    run, cb = aio_timers(loop)
    rnd = random.Random(2)
    for _ in range(armed):
        loop.call_later(rnd.uniform(TIMER_SPAN, 2 * TIMER_SPAN), cb)
    return loop, run


def aio_threadsafe(new_loop):
    """Another thread hands n callbacks to the loop."""
    def run(n):
        loop = new_loop()
        count = [0]

        def cb():
            count[0] += 1
            if count[0] == n:
                loop.stop()

        def sender(barrier):
            barrier.wait()
            call = loop.call_soon_threadsafe
            for _ in range(n):
                call(cb)
        th, barrier = bc.start_pair(sender)
        barrier.wait()
        t0 = bc.now()
        loop.run_forever()
        t = bc.now() - t0
        th.join()
        loop.close()
        assert count[0] == n
        return t, n
    return run


def wake(new_loop, use_queue):
    """A task and a thread pass the turn, as in bench_aio.c; the task waits
    with threading's own Lock or queue.Queue, which blocks the whole loop:
    asyncio has no other way to wait for them inside a coroutine."""
    def run(n):
        n = min(n, MAX_WAKE_ROUNDS)
        stamp = [0.0]
        total = [0.0]
        if use_queue:
            ping, pong = queue.Queue(), queue.Queue()
        else:
            ping, pong = threading.Lock(), threading.Lock()
            ping.acquire()
            pong.acquire()

        def helper():
            for i in range(n):
                if use_queue:
                    item = ping.get()
                    stamp[0] = bc.now()
                    pong.put(item)
                else:
                    ping.acquire()
                    stamp[0] = bc.now()
                    pong.release()

        async def main():
            for i in range(n):
                if use_queue:
                    ping.put(i)
                    assert pong.get() == i
                else:
                    ping.release()
                    pong.acquire()
                total[0] += bc.now() - stamp[0]
        th = threading.Thread(target=helper)
        th.start()
        on_loop(new_loop, main)
        th.join()
        return total[0], n
    return run


def measure(opts, new_loop, impl):
    def row(name, run, per_second, smoke_n):
        bc.row(opts, name, run, per_second, smoke_n, impl=impl)
    batch = SMOKE_BATCH if opts.smoke else GATHER_BATCH
    row("aio_switch", aio_switch(new_loop), False, 1000)
    row("aio_call_soon", aio_call_soon(new_loop), False, 1000)
    row("aio_create_await", aio_create_await(new_loop), False, 1000)
    row("aio_gather", aio_gather(new_loop, batch), True, SMOKE_BATCH)
    aio_idle_mem(new_loop, impl, SMOKE_BATCH if opts.smoke else IDLE_TASKS)
    loop, run = arm_timers(new_loop,
                           SMOKE_BATCH if opts.smoke else ARMED_TIMERS)
    row("aio_timers", run, False, 1000)
    loop.close()
    row("aio_threadsafe", aio_threadsafe(new_loop), True, 1000)
    for name, use_queue in (("aio_lock_wake", False),
                            ("aio_queue_wake", True)):
        row(name, wake(new_loop, use_queue), False, 100)
        print(f"INFO {name} {impl} the waiting coroutine blocks its loop",
              flush=True)


def main():
    bc.asyncio_twin(__file__, measure, "aio_switch")


if __name__ == "__main__":
    main()
