"""CPython twin of bench_listener.c: multiprocessing.connection's Listener
and Client over TCP loopback with an authkey. listener_connect: Client()
with the handshake, one 16-byte request and its reply, and close, against
a Listener serving in a thread;
listener_roundtrip: 16-byte send_bytes/recv_bytes round trips with a
thread echoing."""
import threading
from multiprocessing.connection import Client, Listener

import bench_common as bc

KEY = b"bench-key"
MSG_LEN = 16


def connect(n):
    with Listener(("127.0.0.1", 0), authkey=KEY) as lst:
        def serve():
            for _ in range(n + 1):
                with lst.accept() as c:
                    c.send_bytes(c.recv_bytes())
        t = threading.Thread(target=serve)
        t.start()
        t0 = 0.0
        for i in range(-1, n):  # one warm-up connection
            if i == 0:
                t0 = bc.now()
            with Client(lst.address, authkey=KEY) as c:
                c.send_bytes(bytes(MSG_LEN))
                c.recv_bytes()
        secs = bc.now() - t0
        t.join()
    return secs, n


def roundtrip(n):
    with Listener(("127.0.0.1", 0), authkey=KEY) as lst:
        def serve():
            with lst.accept() as c:
                try:
                    while True:
                        c.send_bytes(c.recv_bytes())
                except EOFError:
                    pass
        t = threading.Thread(target=serve)
        t.start()
        c = Client(lst.address, authkey=KEY)
        t0 = 0.0
        for i in range(-1, n):
            if i == 0:
                t0 = bc.now()
            msg = i.to_bytes(8, "little", signed=True) * 2
            c.send_bytes(msg)
            if c.recv_bytes() != msg:
                raise SystemExit("wrong echo")
        secs = bc.now() - t0
        c.close()
        t.join()
    return secs, n


def main():
    opts = bc.parse()
    bc.row(opts, "listener_connect", connect, True, 5)
    bc.row(opts, "listener_roundtrip", roundtrip, True, 100)


if __name__ == "__main__":
    main()
