"""CPython twin of bench_pool.c, with multiprocessing.Pool (fork context):
start + map(square, range(20000)) + close + join; map of the square over a
list of 1M ints; apply_async with a callback; and the speed-up of a
recursive fib over fib(32) down to fib(25), each twice, chunksize 1, on
two workers over one."""
import multiprocessing as mp
import os
import sys
import threading

import bench_common as bc

CTX = mp.get_context("fork")


def square(x):
    return x * x


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def check_squares(out, n):
    if out != [i * i for i in range(n)]:
        raise SystemExit("wrong map results")


def start_run(items):
    def run(n):
        t0 = bc.now()
        for _ in range(n):
            p = CTX.Pool()
            out = p.map(square, range(items))
            p.close()
            p.join()
            check_squares(out, items)
        return bc.now() - t0, n
    return run


def big_run(pool, items):
    data = list(range(items))

    def run(n):
        secs = 0.0
        for _ in range(n):
            t0 = bc.now()
            out = pool.map(square, data)
            secs += bc.now() - t0
            check_squares(out, items)
        return secs, n * items
    return run


def apply_run(pool):
    apply_async = pool.apply_async

    def run(n):
        state = [0, 0]  # callbacks run, their results added up
        done = threading.Event()

        def callback(y):  # one at a time, in the pool's result thread
            state[0] += 1
            state[1] += y
            if state[0] == n:
                done.set()

        def error_callback(e):
            # Raising here would only end the result thread.
            print(f"apply_async task failed: {e!r}", file=sys.stderr,
                  flush=True)
            os._exit(2)

        t0 = bc.now()
        for i in range(n):
            apply_async(square, (i % 1000,), callback=callback,
                        error_callback=error_callback)
        done.wait()
        secs = bc.now() - t0
        if state[1] != sum((i % 1000) ** 2 for i in range(n)):
            raise SystemExit("wrong apply_async results")
        return secs, n
    return run


def fib_row(opts):
    lo, hi = (15, 20) if opts.smoke else (25, 32)
    tasks = [n for n in range(hi, lo - 1, -1) for _ in range(2)]
    want = [fib(n) for n in tasks]
    times = []
    for workers in (1, 2):
        with CTX.Pool(workers) as p:
            t0 = bc.now()
            out = p.map(fib, tasks, chunksize=1)
            times.append(bc.now() - t0)
            if out != want:
                raise SystemExit("wrong fib results")
    print(f"INFO pool_fib_speedup cpython {len(tasks)} tasks: 1 worker "
          f"{times[0] * 1e3:.1f} ms, 2 workers {times[1] * 1e3:.1f} ms")
    print(f"RESULT pool_fib_speedup cpython {times[0] / times[1]:.6g} ratio",
          flush=True)


def main():
    opts = bc.parse()
    bc.row(opts, "pool_map_start", start_run(2000 if opts.smoke else 20000),
           False, 1)
    with CTX.Pool() as p:
        bc.row(opts, "pool_map_1m",
               big_run(p, 10000 if opts.smoke else 1000000), True, 1)
    with CTX.Pool() as p:
        bc.row(opts, "pool_apply_async", apply_run(p), True, 100)
    fib_row(opts)


if __name__ == "__main__":
    main()
