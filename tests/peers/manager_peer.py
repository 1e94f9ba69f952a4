"""A CPython peer for tests/test_manager.c: multiprocessing.managers as
Python programs use them, against conc's managers or serving conc's
clients. Run by Debian's /usr/bin/python3.

usage: manager_peer.py MODE ADDRESS KEY
  ADDRESS  "host:port" (TCP; port 0 in server modes) or a Unix path
  KEY      the authkey as text
Server modes print their address on the first line of stdout. Every mode
prints one last line saying how it ended and exits 0 unless a check failed.

Modes:
  worker  seed 000's task_worker (BaseManager, register("get_task_queue"),
          connect, ten get(timeout=1), results put back), without its
          one-second sleep; last line "Worker Exit.".
  client  a BaseManager client of the dict, list and Queue typeids with
          CPython's DictProxy and ListProxy and an AutoProxy queue:
          values, KeyError, IndexError, queue.Empty, queue.Full; "ok".
  badkey  connect() with KEY, which the server should refuse; "auth".
  master  seed 000's task_master on port 0, its slip mended (each callable
          returns its own queue): ten tasks out, ten results back within
          10 s each, shutdown; last line "Master Exit.".
  sync    a SyncManager serving until stdin closes; "ok".
  refused connect() to a server at its bound on clients, which raises
          ConnectionRefusedError naming conc_manager_set_max_clients;
          the message, then "refused".
"""
import queue
import sys
from multiprocessing import AuthenticationError
from multiprocessing.managers import (BaseManager, DictProxy, ListProxy,
                                      SyncManager)


def address(text):
    if ":" in text and not text.startswith("/"):
        host, port = text.rsplit(":", 1)
        return (host, int(port))
    return text


def show(addr):
    return "%s:%d" % addr if isinstance(addr, tuple) else addr


class QueueManager(BaseManager):
    pass


def worker(addr, key):
    QueueManager.register("get_task_queue")
    QueueManager.register("get_result_queue")
    print("Connect to server %s..." % show(addr))
    m = QueueManager(address=addr, authkey=key)
    m.connect()
    task = m.get_task_queue()
    result = m.get_result_queue()
    for i in range(10):
        try:
            n = task.get(timeout=1)
            print("Run task %d * %d..." % (n, n))
            result.put("%d * %d = %d" % (n, n, n * n))
        except queue.Empty:
            print("Task queue is empty.")
    print("Worker Exit.")


def expect(exc, fn):
    try:
        fn()
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def client(addr, key):
    QueueManager.register("dict", proxytype=DictProxy)
    QueueManager.register("list", proxytype=ListProxy)
    QueueManager.register("Queue")
    m = QueueManager(address=addr, authkey=key)
    m.connect()
    d = m.dict({"a": 1})
    d["b"] = [1, 2.5, "x", None, (1, 2), {"k": b"v"}]
    assert d["a"] == 1 and d["b"][5] == {"k": b"v"}, d.copy()
    assert len(d) == 2 and "a" in d and "z" not in d
    assert sorted(d.keys()) == ["a", "b"]
    assert d.get("z", 7) == 7
    e = expect(KeyError, lambda: d["missing"])
    assert e.args == ("missing",), e.args
    # str(proxy) and _getvalue() reach the server's fallbacks.
    d2 = m.dict({"k": 1, "j": (2, None)})
    assert str(d2) == "{'k': 1, 'j': (2, None)}", str(d2)
    assert d2._getvalue() == {"k": 1, "j": (2, None)}
    assert d2.popitem() == ("j", (2, None)) and d2.popitem() == ("k", 1)
    e = expect(KeyError, d2.popitem)
    assert e.args == ("popitem(): dictionary is empty",), e.args
    l = m.list()
    l.append(10)
    l.append("y")
    assert l[0] == 10 and l[-1] == "y" and len(l) == 2
    assert str(l) == "[10, 'y']", str(l)
    qs = str(m.Queue())
    assert qs.startswith("<") and "failed" not in qs, qs
    expect(IndexError, lambda: l[5])
    q = m.Queue(1)
    q.put_nowait("one")
    expect(queue.Full, lambda: q.put_nowait("two"))
    assert q.get(timeout=1) == "one"
    expect(queue.Empty, lambda: q.get(timeout=0.05))
    expect(queue.Empty, q.get_nowait)
    assert q.qsize() == 0 and q.empty()
    print("ok")


def badkey(addr, key):
    m = QueueManager(address=addr, authkey=key)
    try:
        m.connect()
    except AuthenticationError:
        print("auth")
        return
    raise AssertionError("the server accepted a wrong key")


task_queue = queue.Queue()
result_queue = queue.Queue()


def return_task_queue():
    return task_queue


def return_result_queue():
    return result_queue


def master(addr, key):
    QueueManager.register("get_task_queue", callable=return_task_queue)
    QueueManager.register("get_result_queue", callable=return_result_queue)
    manager = QueueManager(address=addr, authkey=key)
    manager.start()
    print(show(manager.address), flush=True)
    task = manager.get_task_queue()
    result = manager.get_result_queue()
    for n in range(10):
        print("Put task %d..." % (n * 37))
        task.put(n * 37)
    print("Try get results...")
    for i in range(10):
        r = result.get(timeout=10)
        print("Result:%s" % r)
    manager.shutdown()
    print("Master Exit.")


def sync(addr, key):
    m = SyncManager(address=addr, authkey=key)
    m.start()
    print(show(m.address), flush=True)
    sys.stdin.read()
    m.shutdown()
    print("ok")


def refused(addr, key):
    m = BaseManager(address=addr, authkey=key)
    e = expect(ConnectionRefusedError, m.connect)
    assert "conc_manager_set_max_clients" in str(e), str(e)
    print(e)
    print("refused")


def main():
    mode, addr, key = sys.argv[1], address(sys.argv[2]), sys.argv[3].encode()
    {"worker": worker, "client": client, "badkey": badkey,
     "master": master, "sync": sync, "refused": refused}[mode](addr, key)


if __name__ == "__main__":
    main()
