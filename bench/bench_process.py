"""CPython twin of bench_process.c: multiprocessing.Process with the fork
start method, start + join, one process after the other."""
import multiprocessing as mp

import bench_common as bc


def body(ran):
    with ran.get_lock():
        ran.value += 1


def main():
    opts = bc.parse()
    ctx = mp.get_context("fork")
    ran = ctx.Value("q", 0)

    def start_join(n):
        before = ran.value
        t0 = bc.now()
        for _ in range(n):
            p = ctx.Process(target=body, args=(ran,))
            p.start()
            p.join()
            if p.exitcode != 0:
                raise SystemExit(f"child exit code {p.exitcode}")
        t = bc.now() - t0
        if ran.value - before != n:
            raise SystemExit("a child did not run")
        return t, n

    bc.row(opts, "process_start", start_join, True, 5)


if __name__ == "__main__":
    main()
