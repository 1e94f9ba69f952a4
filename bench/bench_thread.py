"""CPython twin of bench_thread.c: threading.Thread start + join, one thread
after the other."""
import threading

import bench_common as bc


def body():
    pass


def start_join(n):
    t0 = bc.now()
    for _ in range(n):
        t = threading.Thread(target=body)
        t.start()
        t.join()
    return bc.now() - t0, n


def main():
    opts = bc.parse()
    bc.row(opts, "thread_start", start_join, True, 20)


if __name__ == "__main__":
    main()
