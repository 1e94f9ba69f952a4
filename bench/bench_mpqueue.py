"""CPython twin of bench_mpqueue.c: multiprocessing.Queue between a forked
producer process and the consumer, with 64-byte and 1 MiB messages (bytes
objects). As in the C program, the producer first puts warm-up messages
that the consumer gets before the clock starts (16 of them: enough to start
the queue's feeder thread; there is no ring to fill), then both sides pass
a barrier and the clock runs until the last get."""
import multiprocessing as mp

import bench_common as bc

MIB = 1 << 20
WARMUP = 16


def produce(q, barrier, n, size):
    """Puts 64-byte messages as bytes that begin with the sequence number;
    1 MiB messages as a tuple (number, payload) of one payload made once,
    since building a new 1 MiB bytes object for each message would cost
    CPython a copy that the C producer does not make."""
    pad = bytes(size - 8)
    payload = bytes(size)
    put = q.put
    for i in range(-WARMUP, n):
        if i == 0:
            barrier.wait()
        if size < MIB:
            put(i.to_bytes(8, "little", signed=True) + pad)
        else:
            put((i, payload))


def check(m, i, size):
    if size < MIB:
        return len(m) == size and int.from_bytes(m[:8], "little",
                                                 signed=True) == i
    return m[0] == i and len(m[1]) == size


def run(n, size):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    barrier = ctx.Barrier(2)
    p = ctx.Process(target=produce, args=(q, barrier, n, size),
                    daemon=True)
    p.start()
    get = q.get
    t0 = 0.0
    for i in range(-WARMUP, n):
        if i == 0:
            barrier.wait()
            t0 = bc.now()
        if not check(get(), i, size):
            raise SystemExit("wrong message")
    t = bc.now() - t0
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"producer exit code {p.exitcode}")
    q.close()
    q.join_thread()
    return t, (n * size if size >= MIB else n)


def main():
    opts = bc.parse()
    bc.row(opts, "mpqueue_small", lambda n: run(n, 64), True, 1000)
    bc.row(opts, "mpqueue_large", lambda n: run(n, MIB), True, 10)


if __name__ == "__main__":
    main()
