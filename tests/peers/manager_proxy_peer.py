"""A CPython peer for tests/test_manager_proc.c: proxies returned by
methods (method_to_typeid), proxies inside values (RebuildProxy), and
Connection.send/recv of values, against conc. Run by Debian's
/usr/bin/python3.

usage: manager_proxy_peer.py MODE ADDRESS KEY
  ADDRESS  "host:port" (TCP) or a Unix path
  KEY      the authkey as text
Every mode prints one last line, "ok" when its checks passed, and exits 0
unless a check failed.

Modes:
  holder  a BaseManager client of the "Holder" typeid, whose get_queue
          returns a Queue proxy ('#PROXY'): reads the item conc put there
          and puts "from python".
  nested  a client of the "get_dict" object: reads the list proxy conc
          stored under "conc_list" and appends "from python" to it, then
          stores a new list proxy ["made", "by", "python"] under
          "py_list".
  conn    Client(ADDRESS, authkey=KEY): receives one value, sends back
          ["echo", value], then sends a value of every kind.
"""
import multiprocessing
import sys
from multiprocessing.connection import Client
from multiprocessing.managers import BaseManager, DictProxy, ListProxy


def address(text):
    if ":" in text and not text.startswith("/"):
        host, port = text.rsplit(":", 1)
        return (host, int(port))
    return text


class M(BaseManager):
    pass


def connect(addr, key):
    m = M(address=addr, authkey=key)
    m.connect()
    # Proxies rebuilt from values take the process's key, as in CPython.
    multiprocessing.current_process().authkey = key
    return m


def holder(addr, key):
    M.register("Holder")
    M.register("Queue")
    m = connect(addr, key)
    q = m.Holder().get_queue()
    got = q.get(timeout=10)
    assert got == "from conc", got
    q.put("from python")
    print("ok")


def nested(addr, key):
    M.register("get_dict", proxytype=DictProxy)
    M.register("list", proxytype=ListProxy)
    m = connect(addr, key)
    d = m.get_dict()
    conc_list = d["conc_list"]
    assert isinstance(conc_list, ListProxy), type(conc_list)
    assert conc_list[0] == "made by conc", conc_list[0]
    conc_list.append("from python")
    d["py_list"] = m.list(["made", "by", "python"])
    print("ok")


def conn(addr, key):
    c = Client(addr, authkey=key)
    value = c.recv()
    c.send(["echo", value])
    c.send({"str": "é", "int": 2**70, "neg": -5, "float": 1.5,
            "tuple": (1, None, True), "bytes": b"\x00\xff",
            "set": {3}, "nested": [[{"a": []}]]})
    c.close()
    print("ok")


def main():
    mode, addr, key = sys.argv[1], address(sys.argv[2]), sys.argv[3].encode()
    {"holder": holder, "nested": nested, "conn": conn}[mode](addr, key)


if __name__ == "__main__":
    main()
