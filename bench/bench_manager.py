"""CPython twin of bench_manager.c: multiprocessing's managers.

manager_dict_unix, manager_queue_unix: a SyncManager started as Manager()
does (a child process on AF_UNIX), DictProxy d[k] = v then d[k], and
Queue put then get; manager_dict_tcp: the same dict on TCP loopback;
manager_connect_tcp: connect(), create a dict and drop its proxy. The
manager's process runs on one CPU and the client on another, as in
bench_manager.c (bench_common.place).

With --against ADDRESS KEY, the dict_tcp and connect_tcp rows run as an
unmodified CPython client against the manager at ADDRESS (conc's, started
by bench_manager.c) and print their results as impl "pyclient"."""
import sys
from multiprocessing.managers import BaseManager, DictProxy, SyncManager

import bench_common as bc

KEY = b"bench-key"


class Client(BaseManager):
    pass


Client.register("dict", proxytype=DictProxy)


def dict_pairs(d):
    def run(n):
        t0 = bc.now()
        for _ in range(n):
            d["key"] = 12345
            d["key"]
        return bc.now() - t0, n
    return run


def queue_pairs(q):
    def run(n):
        t0 = bc.now()
        for _ in range(n):
            q.put(12345)
            q.get()
        return bc.now() - t0, n
    return run


def connects(address, key):
    def run(n):
        t0 = bc.now()
        for _ in range(n):
            m = Client(address=address, authkey=key)
            m.connect()
            d = m.dict()
            del d
        return bc.now() - t0, n
    return run


def against(opts, text, key):
    host, port = text.rsplit(":", 1)
    address = (host, int(port))
    bc.place(bc.CLIENT_CPU)  # where bench_manager.c put its clients
    m = Client(address=address, authkey=key)
    m.connect()
    d = m.dict()
    bc.row(opts, "manager_dict_tcp", dict_pairs(d), True, 20, "pyclient")
    bc.row(opts, "manager_connect_tcp", connects(address, key), True, 3,
           "pyclient")


def started(**kwargs):
    """A SyncManager whose process runs on the server's CPU, its client
    (this process) on the client's."""
    m = SyncManager(**kwargs)
    bc.place(bc.SERVER_CPU)
    m.start()
    bc.place(bc.CLIENT_CPU)
    return m


def main():
    if "--against" in sys.argv:
        i = sys.argv.index("--against")
        text, key = sys.argv[i + 1], sys.argv[i + 2].encode()
        del sys.argv[i:i + 3]
        against(bc.parse(), text, key)
        return
    opts = bc.parse()
    with started(authkey=KEY) as m:  # AF_UNIX, as Manager()
        bc.row(opts, "manager_dict_unix", dict_pairs(m.dict()), True, 20)
        bc.row(opts, "manager_queue_unix", queue_pairs(m.Queue()), True, 20)
    with started(address=("127.0.0.1", 0), authkey=KEY) as m:
        bc.row(opts, "manager_dict_tcp", dict_pairs(m.dict()), True, 20)
        bc.row(opts, "manager_connect_tcp", connects(m.address, KEY), True, 3)


if __name__ == "__main__":
    main()
