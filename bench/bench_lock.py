"""CPython twin of bench_lock.c: threading.Lock and RLock, an uncontended
acquire+release pair, and a counter incremented under a Lock by two threads.
"""
import threading

import bench_common as bc


def pair(make):
    def run(n):
        lock = make()
        acquire, release = lock.acquire, lock.release
        t0 = bc.now()
        for _ in range(n):
            acquire()
            release()
        return bc.now() - t0, n
    return run


def contended(n):
    # Each thread increments up to n times; the first to finish stops the
    # other, so the whole interval is contended (as in the C program).
    lock = threading.Lock()
    counter = 0
    stop = False

    def work():
        nonlocal counter, stop
        k = 0
        while k < n and not stop:
            with lock:
                counter += 1
            k += 1
        stop = True
        return k

    done = []

    def helper(barrier):
        barrier.wait()
        done.append(work())

    t, barrier = bc.start_pair(helper)
    barrier.wait()
    t0 = bc.now()
    mine = work()
    t.join()
    secs = bc.now() - t0
    assert counter == mine + done[0]
    return secs, counter


def main():
    opts = bc.parse()
    bc.row(opts, "lock_pair", pair(threading.Lock), False, 1000)
    bc.row(opts, "lock_contended", contended, True, 1000)
    bc.row(opts, "rlock_pair", pair(threading.RLock), False, 1000)


if __name__ == "__main__":
    main()
