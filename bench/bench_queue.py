"""CPython twin of bench_queue.c: one producer thread puts the numbers 1..n,
the measuring thread gets them, through queue.SimpleQueue, queue.Queue()
and queue.Queue(maxsize=1024)."""
import queue

import bench_common as bc


def through(make):
    def run(n):
        q = make()

        def producer(barrier):
            put = q.put
            barrier.wait()
            for i in range(1, n + 1):
                put(i)

        t, barrier = bc.start_pair(producer)
        get = q.get
        total = 0
        barrier.wait()
        t0 = bc.now()
        for _ in range(n):
            total += get()
        secs = bc.now() - t0
        t.join()
        assert total == n * (n + 1) // 2
        return secs, n
    return run


def main():
    opts = bc.parse()
    bc.row(opts, "queue_simple", through(queue.SimpleQueue), True, 10000)
    bc.row(opts, "queue_fifo", through(queue.Queue), True, 10000)
    bc.row(opts, "queue_bounded", through(lambda: queue.Queue(1024)), True,
           10000)


if __name__ == "__main__":
    main()
