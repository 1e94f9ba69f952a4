"""CPython twin of bench_shlock.c: a multiprocessing.Lock contended by the
parent and a forked child, each incrementing a multiprocessing.Value while
holding the lock. As in the C program, each side aims at n increments and
the first to finish stops the other."""
import multiprocessing as mp

import bench_common as bc


def count(lock, value, stop, mine, n):
    acquire, release = lock.acquire, lock.release
    i = 0
    while i < n and not stop.value:
        acquire()
        value.value += 1
        release()
        i += 1
    stop.value = 1
    mine.value = i


def main():
    opts = bc.parse()
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    value = ctx.Value("q", 0, lock=False)  # guarded by `lock`
    stop = ctx.RawValue("i", 0)
    mine = [ctx.RawValue("q", 0), ctx.RawValue("q", 0)]
    barrier = ctx.Barrier(2)

    def child(n):
        barrier.wait()
        count(lock, value, stop, mine[1], n)

    def contended(n):
        value.value = 0
        stop.value = 0
        p = ctx.Process(target=child, args=(n,))
        p.start()
        barrier.wait()
        t0 = bc.now()
        count(lock, value, stop, mine[0], n)
        p.join()
        t = bc.now() - t0
        if p.exitcode != 0 or value.value != mine[0].value + mine[1].value:
            raise SystemExit("lost increments")
        return t, value.value

    bc.row(opts, "shlock_contended", contended, True, 1000)


if __name__ == "__main__":
    main()
