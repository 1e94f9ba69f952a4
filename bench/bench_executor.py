"""CPython twin of bench_executor.c: submit + result of tiny tasks through
concurrent.futures' ThreadPoolExecutor and ProcessPoolExecutor (fork
context), each at its default number of workers, started by a warm-up batch
before the calibration. As in the C program the work is batched: submit
10000 tasks, keeping their futures, then take every result in order; each
task returns its argument plus one and the sum of the results is
checked."""
import concurrent.futures as cf
import multiprocessing as mp

import bench_common as bc

BATCH = 10000
WARMUP = 1000


def tiny_task(x):
    return x + 1


def through(ex):
    submit = ex.submit

    def run(n):
        t0 = bc.now()
        done = 0
        while done < n:
            k = min(BATCH, n - done)
            fs = [submit(tiny_task, i) for i in range(k)]
            total = 0
            for f in fs:
                total += f.result()
            if total != k * (k + 1) // 2:
                raise SystemExit("wrong results")
            done += k
        return bc.now() - t0, n
    return run


def measure(opts, name, ex):
    run = through(ex)
    # Both executors start their workers on demand: a first batch starts
    # them all, or the calibration would time the start-up.
    run(100 if opts.smoke else WARMUP)
    bc.row(opts, name, run, True, 100)


def main():
    opts = bc.parse()
    with cf.ThreadPoolExecutor() as ex:
        measure(opts, "executor_thread", ex)
    with cf.ProcessPoolExecutor(mp_context=mp.get_context("fork")) as ex:
        measure(opts, "executor_process", ex)


if __name__ == "__main__":
    main()
