"""CPython twin of bench_event.c: round trips between two threads through
two Events, and through one Condition and a turn variable."""
import threading

import bench_common as bc


def event_pingpong(n):
    ping, pong = threading.Event(), threading.Event()

    def helper(barrier):
        barrier.wait()
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    t, barrier = bc.start_pair(helper)
    barrier.wait()
    t0 = bc.now()
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    secs = bc.now() - t0
    t.join()
    return secs, n


def cond_pingpong(n):
    # turn is 1 when the helper must answer, 0 when the main side may go on.
    cond = threading.Condition()
    turn = 0

    def helper(barrier):
        nonlocal turn
        barrier.wait()
        with cond:
            for _ in range(n):
                while turn == 0:
                    cond.wait()
                turn = 0
                cond.notify()

    t, barrier = bc.start_pair(helper)
    barrier.wait()
    t0 = bc.now()
    with cond:
        for _ in range(n):
            turn = 1
            cond.notify()
            while turn == 1:
                cond.wait()
    secs = bc.now() - t0
    t.join()
    return secs, n


def main():
    opts = bc.parse()
    bc.row(opts, "event_pingpong", event_pingpong, False, 200)
    bc.row(opts, "cond_pingpong", cond_pingpong, False, 200)


if __name__ == "__main__":
    main()
