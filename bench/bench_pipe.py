"""CPython twin of bench_pipe.c: multiprocessing.Pipe() between the parent
and a forked child that echoes every message, 16 bytes with send_bytes and
recv_bytes. In the spinning row both sides call poll() until a message is
there, then recv_bytes."""
import multiprocessing as mp
import os

import bench_common as bc

MSG_LEN = 16


def pin(spin, side):
    """As in bench_pipe.c: while both sides spin, the parent (side 0) and
    the child (side 1) run on two different CPUs; side -1 restores the
    parent's affinity."""
    if not spin or len(SAVED) < 2:
        return
    os.sched_setaffinity(0, SAVED if side < 0 else {sorted(SAVED)[side]})


SAVED = os.sched_getaffinity(0)


def echo(conn, other, spin):
    pin(spin, 1)
    other.close()  # the parent's end, copied by the fork
    recv, send, poll = conn.recv_bytes, conn.send_bytes, conn.poll
    try:
        while True:
            if spin:
                while not poll():
                    pass
            send(recv())
    except EOFError:
        pass


def roundtrip(n, spin):
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b, a, spin))
    p.start()
    pin(spin, 0)
    b.close()
    recv, send, poll = a.recv_bytes, a.send_bytes, a.poll
    t0 = 0.0
    for i in range(-1, n):
        if i == 0:
            t0 = bc.now()
        msg = i.to_bytes(8, "little", signed=True) * 2
        send(msg)
        if spin:
            while not poll():
                pass
        if recv() != msg:
            raise SystemExit("wrong echo")
    t = bc.now() - t0
    a.close()
    p.join()
    pin(spin, -1)
    if p.exitcode != 0:
        raise SystemExit(f"echo child exit code {p.exitcode}")
    return t, n


def main():
    opts = bc.parse()
    bc.row(opts, "pipe_roundtrip", lambda n: roundtrip(n, False), True, 100)
    bc.row(opts, "pipe_roundtrip_spin", lambda n: roundtrip(n, True), True,
           100)


if __name__ == "__main__":
    main()
