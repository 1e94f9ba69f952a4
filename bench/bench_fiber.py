"""CPython twin of bench_fiber.c: the cheapest switch CPython has, a
generator's send() (what a coroutine's await does underneath, without an
event loop), and a generator's whole life."""
import bench_common as bc


def fiber_pingpong(n):
    """One send() is a round trip: into the generator and back out."""
    def pong():
        x = 0
        while True:
            x = yield x

    g = pong()
    next(g)
    send = g.send
    t0 = bc.now()
    for i in range(n):
        send(i)
    return bc.now() - t0, n


def fiber_create(n):
    """Make a generator, run it to its end, drop it."""
    count = [0]

    def short():
        count[0] += 1
        yield

    t0 = bc.now()
    for _ in range(n):
        for _ in short():
            pass
    t = bc.now() - t0
    assert count[0] == n
    return t, n


def main():
    opts = bc.parse()
    bc.row(opts, "fiber_pingpong", fiber_pingpong, False, 1000)
    bc.row(opts, "fiber_create", fiber_create, False, 1000)


if __name__ == "__main__":
    main()
