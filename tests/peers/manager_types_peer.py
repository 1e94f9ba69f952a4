"""A CPython peer for tests/test_manager_types.c: SyncManager's Lock,
RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier, Value,
Array, Namespace and set as Python programs use them, against conc's
managers or serving conc's clients. Run by Debian's /usr/bin/python3.

usage: manager_types_peer.py MODE ADDRESS KEY
  ADDRESS  "host:port" (TCP; port 0 in server modes) or a Unix path
  KEY      the authkey as text
Server modes print their address on the first line of stdout. Every mode
prints one last line saying how it ended and exits 0 unless a check failed.

Modes:
  client  SyncManager.connect() to a conc manager and every type through
          CPython's own proxies (AutoProxy for set before 3.14), with
          threads for the clients that must differ (each thread has a
          connection of its own); "ok".
  sync    a SyncManager serving until stdin closes, with 3.14's "set"
          registered as 3.14 does where the Python is older; "ok".
  hold    connects to a conc manager, acquires the shared objects
          get_lock, get_rlock (twice) and get_sem, prints "held" and
          waits to be killed.
"""
import array
import fractions
import gc
import multiprocessing
import sys
import threading
import time
from multiprocessing.managers import (AcquirerProxy, BarrierProxy, DictProxy,
                                      ListProxy, RemoteError, SyncManager)

SET_EXPOSED = (
    '__and__', '__contains__', '__iand__', '__ior__', '__isub__', '__iter__',
    '__ixor__', '__len__', '__or__', '__rand__', '__ror__', '__rsub__', '__rxor__',
    '__sub__', '__xor__', '__ge__', '__gt__', '__le__', '__lt__', 'add',
    'clear', 'copy', 'difference', 'difference_update', 'discard',
    'intersection', 'intersection_update', 'isdisjoint', 'issubset',
    'issuperset', 'pop', 'remove', 'symmetric_difference',
    'symmetric_difference_update', 'union', 'update')

# 3.14's ListProxy and DictProxy exposed names: its clear and copy, and
# __ior__, __or__, __reversed__, __ror__ and fromkeys.
LIST_EXPOSED = (
    '__add__', '__contains__', '__delitem__', '__getitem__', '__imul__',
    '__len__', '__mul__', '__reversed__', '__rmul__', '__setitem__',
    'append', 'clear', 'copy', 'count', 'extend', 'index', 'insert', 'pop',
    'remove', 'reverse', 'sort')
DICT_EXPOSED = (
    '__contains__', '__delitem__', '__getitem__', '__ior__', '__iter__',
    '__len__', '__or__', '__reversed__', '__ror__', '__setitem__', 'clear',
    'copy', 'fromkeys', 'get', 'items', 'keys', 'pop', 'popitem',
    'setdefault', 'update', 'values')


def address(text):
    if ":" in text and not text.startswith("/"):
        host, port = text.rsplit(":", 1)
        return (host, int(port))
    return text


def show(addr):
    return "%s:%d" % addr if isinstance(addr, tuple) else addr


class Manager(SyncManager):
    pass


# Barriers whose action is C's, registered so by the conc server of
# test_manager_types.c: one counts its trips, one fails.
Manager.register("ActionBarrier", proxytype=BarrierProxy, create_method=True)
Manager.register("FailingBarrier", proxytype=BarrierProxy, create_method=True)

if not hasattr(SyncManager, "set"):
    Manager.register("set", set, exposed=SET_EXPOSED)
# list and dict as 3.14 registers them, where the Python is older (its
# DictProxy keeps __iter__ as the 'Iterator' typeid).
if "clear" not in ListProxy._exposed_:
    Manager.register("list", list, ListProxy, exposed=LIST_EXPOSED)
if "fromkeys" not in DictProxy._exposed_:
    Manager.register("dict", dict, DictProxy, exposed=DICT_EXPOSED)
if "locked" not in AcquirerProxy._exposed_:  # 3.14's Lock.locked
    Manager.register("Lock", threading.Lock, AcquirerProxy,
                     exposed=("acquire", "release", "locked"))


def expect(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def in_thread(fn, *args):
    """Runs fn on another thread (another connection); returns its result."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)))
    t.start()
    t.join(30)
    assert not t.is_alive() and out, "the thread did not finish"
    return out[0]


def check_locks(m):
    lock = m.Lock()
    assert lock.acquire() is True
    assert lock.acquire(False) is False
    start = time.monotonic()
    assert lock.acquire(True, 0.05) is False
    assert time.monotonic() - start >= 0.05
    expect(ValueError, lock.acquire, False, 1)
    assert in_thread(lambda: lock.acquire(False)) is False
    in_thread(lock.release)  # a Lock has no owner
    e = expect(RuntimeError, lock.release)
    assert "release unlocked lock" in str(e), e
    with lock:
        pass
    r = m.RLock()
    assert r.acquire() and r.acquire()
    in_thread(expect, RuntimeError, r.release)
    assert in_thread(lambda: r.acquire(timeout=0.05)) is False
    r.release()
    r.release()
    e = expect(RuntimeError, r.release)
    assert "un-acquired" in str(e), e


def check_semaphores(m):
    s = m.Semaphore(2)
    assert s.acquire() and s.acquire(False)
    assert s.acquire(False) is False
    assert s.acquire(timeout=0.05) is False
    s.release()
    s.release()
    # A failed create is a traceback, as CPython's server sends it.
    e = expect(RemoteError, m.Semaphore, -1)
    assert "ValueError: semaphore initial value must be >= 0" in str(e), e
    b = m.BoundedSemaphore(1)
    assert b.acquire()
    b.release()
    e = expect(ValueError, b.release)
    assert "too many" in str(e), e


def check_condition(m):
    c = m.Condition()
    expect(RuntimeError, c.wait, 0.01)
    expect(RuntimeError, c.notify)
    with c:
        assert c.wait(0.05) is False
    holding = threading.Event()

    def waiter():
        with c:
            holding.set()
            return c.wait(20)
    out = []
    t = threading.Thread(target=lambda: out.append(waiter()))
    t.start()
    assert holding.wait(20)
    with c:  # granted once the waiter's wait() gave the lock up
        c.notify()
    t.join(20)
    assert out == [True], out
    for make in (m.Lock, m.RLock):  # Condition(lock): that very lock
        lock = make()
        c = m.Condition(lock)
        with c:
            assert in_thread(lambda: lock.acquire(False)) is False
            assert c.wait(0.05) is False
            assert in_thread(lambda: lock.acquire(False)) is False
            c.notify_all()
        assert in_thread(lambda: lock.acquire(False)) is True
        in_thread(lock.release) if make is m.Lock else None


def check_event_barrier(m):
    e = m.Event()
    assert not e.is_set()
    assert e.wait(0.05) is False
    in_thread(e.set)
    assert e.wait(1) is True and e.is_set()
    e.clear()
    assert not e.is_set()
    b = m.Barrier(3)
    assert b.parties == 3 and b.n_waiting == 0 and not b.broken
    ts, out = [], []
    for _ in range(3):
        ts.append(threading.Thread(target=lambda: out.append(b.wait(20))))
        ts[-1].start()
    for t in ts:
        t.join(30)
    assert sorted(out) == [0, 1, 2], out
    b2 = m.Barrier(2)
    expect(threading.BrokenBarrierError, b2.wait, 0.05)
    assert b2.broken
    b2.reset()
    assert not b2.broken
    b2.abort()
    expect(threading.BrokenBarrierError, b2.wait)


def check_array_slices(m, a):
    """Slice assignment (an array of the same typecode; a step of 1 may
    change the length) and 'Q' and 'L' ints beyond 2**63, with
    array.array's errors."""
    a[0:2] = array.array("i", [7, 8, 9])
    assert list(a[:]) == [7, 8, 9, 3], list(a[:])
    a[::2] = array.array("i", [0, 0])
    assert list(a[:]) == [0, 8, 0, 3], list(a[:])
    e = expect(TypeError, a.__setitem__, slice(0, 1), [1])
    assert str(e) == 'can only assign array (not "list") to array slice', e
    e = expect(TypeError, a.__setitem__, slice(0, 1), array.array("l", [1]))
    assert str(e) == "bad argument type for built-in operation", e
    e = expect(ValueError, a.__setitem__, slice(0, 4, 2),
               array.array("i", [1]))
    assert "array of size 1 to extended slice of size 2" in str(e), e
    e = expect(IndexError, a.__setitem__, 9, 1)
    assert str(e) == "array assignment index out of range", e
    q = m.Array("Q", [2 ** 64 - 1, 0])
    assert q[0] == 2 ** 64 - 1
    q[1] = 2 ** 63
    q[0:1] = array.array("Q", [2 ** 64 - 2])
    assert list(q[:]) == [2 ** 64 - 2, 2 ** 63], list(q[:])
    e = expect(OverflowError, q.__setitem__, 0, 2 ** 64)
    assert str(e) == "int too big to convert", e
    e = expect(OverflowError, q.__setitem__, 0, -1)
    assert str(e) == "can't convert negative int to unsigned", e
    u = m.Array("L", [2 ** 64 - 1])
    assert u[0] == 2 ** 64 - 1
    e = expect(OverflowError, u.__setitem__, 0, 2 ** 64)
    assert str(e) == "Python int too large to convert to C unsigned long", e
    e = expect(TypeError, u.__setitem__, 0, 1.5)
    assert str(e) == "'float' object cannot be interpreted as an integer", e
    d = m.Array("d", [1.5])
    e = expect(TypeError, d.__setitem__, 0, "x")
    assert str(e) == "must be real number, not str", e
    e = expect(RemoteError, m.Array, "i", "abc")
    assert ("TypeError: cannot use a str to initialize an array with "
            "typecode 'i'") in str(e), e


def action():
    """A Python callable, which conc's server cannot run."""


def check_barrier_action(m):
    """A conc server runs the C action of the typeid; a Python callable
    sent as the action does not unpickle there, other values are
    refused."""
    b = m.ActionBarrier(2)
    out = []
    ts = [threading.Thread(target=lambda: out.append(b.wait(20)))
          for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(out) == [0, 1], out
    f = m.FailingBarrier(1)
    e = expect(ValueError, f.wait)
    assert str(e) == "the action failed", e
    expect(threading.BrokenBarrierError, f.wait)
    e = expect(RemoteError, m.Barrier, 2, action)
    assert "UnpicklingError" in str(e) and "__main__.action" in str(e), e
    e = expect(RemoteError, m.Barrier, 2, "x")
    assert "TypeError: conc's manager cannot call a str" in str(e), e
    m.Barrier(1).wait()  # the manager goes on


def check_values(m):
    v = m.Value("i", 5)
    assert v.value == 5
    v.value = [1, 2]
    copy = v.get()
    copy.append(3)
    assert v.get() == [1, 2], v.get()
    copy = v._getvalue()  # '#GETVALUE': a managers.Value
    assert type(copy).__name__ == "Value" and copy.value == [1, 2], copy
    a = m.Array("i", [1, 2, 3])
    assert len(a) == 3 and a[0] == 1 and a[-1] == 3
    a[1] = 10
    assert a[1] == 10
    assert list(a[:]) == [1, 10, 3] and list(a[::-1]) == [3, 10, 1]
    expect(IndexError, lambda: a[3])
    expect(TypeError, a.__setitem__, 0, "x")
    e = expect(OverflowError, a.__setitem__, 0, 2 ** 40)
    assert str(e) == "signed integer is greater than maximum", e
    check_array_slices(m, a)
    n = m.Namespace(x=1)
    assert n.x == 1
    n.y = "two"
    assert n.y == "two"
    del n.x
    expect(AttributeError, lambda: n.x)
    expect(AttributeError, delattr, n, "x")
    n._local = 5  # stays in the proxy
    assert n._local == 5
    copy = n._getvalue()
    assert type(copy).__name__ == "Namespace" and copy.y == "two", copy
    s = m.set([1, 2])
    s.add(3)
    assert 3 in s and 9 not in s and len(s) == 3
    assert s.union([4]) == {1, 2, 3, 4} and (s | {5}) == {1, 2, 3, 5}
    assert s.intersection([2, 3, 7]) == {2, 3} and (s - {1}) == {2, 3}
    assert s.issubset([1, 2, 3, 4]) and s <= {1, 2, 3} and not s < {1, 2, 3}
    expect(KeyError, s.remove, 9)
    s.intersection_update([1, 2])
    assert s._getvalue() == {1, 2}
    assert s.pop() in (1, 2) and len(s) == 1
    chars = m.set("abcab")  # a set of the characters
    assert chars._getvalue() == {"a", "b", "c"}, chars._getvalue()
    assert sorted(iter(chars)) == ["a", "b", "c"]  # an iterator over a copy
    assert sorted(chars.union("xy")) == ["a", "b", "c", "x", "y"]
    e = expect(TypeError, chars.union, 5)
    assert "'int' object is not iterable" in str(e), e


def check_lists(m):
    l = m.list([1, 2, 3])
    l.insert(1, 9)
    l.insert(-100, 0)
    l.insert(100, 7)
    assert l._getvalue() == [0, 1, 9, 2, 3, 7], l._getvalue()
    e = expect(TypeError, l.insert, "a", 1)
    assert str(e) == "'str' object cannot be interpreted as an integer", e
    l.reverse()
    assert l._getvalue() == [7, 3, 2, 9, 1, 0], l._getvalue()
    l = m.list([1, 2])
    assert l + [3] == [1, 2, 3] and l * 2 == [1, 2, 1, 2] and 0 * l == []
    e = expect(TypeError, lambda: l + (3,))
    assert str(e) == 'can only concatenate list (not "tuple") to list', e
    assert list(reversed(l)) == [2, 1]
    it = l.__reversed__()
    assert type(it).__name__ == "list_reverseiterator" and list(it) == [2, 1]
    l += [3]
    l *= 2
    assert l._getvalue() == [1, 2, 3, 1, 2, 3], l._getvalue()
    expect(TypeError, l.__imul__, "x")
    l = m.list([0, 1, 2, 3, 4, 5])
    assert l[-1::-2] == [5, 3, 1] and l[:0] == [], l[-1::-2]
    l[1:3] = "ab"
    l[1:3] = {}
    l[9:] = (6,)
    l[::-2] = [7, 8, 9]
    assert l._getvalue() == [9, 3, 8, 5, 7], l._getvalue()
    e = expect(ValueError, l.__setitem__, slice(None, None, 2), [0])
    assert "sequence of size 1 to extended slice of size 3" in str(e), e
    e = expect(TypeError, l.__setitem__, slice(1, 2), 5)
    assert str(e) == "can only assign an iterable", e
    del l[-1::-2]
    assert l._getvalue() == [3, 5], l._getvalue()
    check_list_sort(m)
    check_iterables(m)


# Creates with wrong arguments, and the last line of the traceback that
# CPython's own server sends for each (3.11's texts, the same to 3.14).
CREATE_ERRORS = (
    ("Value", (), {}, "TypeError: Value.__init__() missing 2 required "
     "positional arguments: 'typecode' and 'value'"),
    ("Value", ("i",), {}, "TypeError: Value.__init__() missing 1 required "
     "positional argument: 'value'"),
    ("Value", ("i",), {"typecode": "i"}, "TypeError: Value.__init__() got "
     "multiple values for argument 'typecode'"),
    ("Value", (1, 2, 3, 4), {}, "TypeError: Value.__init__() takes from 3 "
     "to 4 positional arguments but 5 were given"),
    ("Semaphore", ("x",), {}, "TypeError: '<' not supported between "
     "instances of 'str' and 'int'"),
    ("Semaphore", (None,), {}, "TypeError: '<' not supported between "
     "instances of 'NoneType' and 'int'"),
    ("Semaphore", (), {"x": 1}, "TypeError: Semaphore.__init__() got an "
     "unexpected keyword argument 'x'"),
    ("BoundedSemaphore", (1, 2), {}, "TypeError: BoundedSemaphore.__init__() "
     "takes from 1 to 2 positional arguments but 3 were given"),
    ("Lock", (1,), {}, "TypeError: _thread.allocate_lock() takes no "
     "arguments (1 given)"),
    ("Lock", (), {"x": 1}, "TypeError: _thread.allocate_lock() takes no "
     "keyword arguments"),
    ("Event", (1,), {}, "TypeError: Event.__init__() takes 1 positional "
     "argument but 2 were given"),
    ("Barrier", (), {}, "TypeError: Barrier.__init__() missing 1 required "
     "positional argument: 'parties'"),
    ("Barrier", (1,), {"parties": 2}, "TypeError: Barrier.__init__() got "
     "multiple values for argument 'parties'"),
    ("Queue", (1, 2), {}, "TypeError: Queue.__init__() takes from 1 to 2 "
     "positional arguments but 3 were given"),
    ("JoinableQueue", (), {"x": 2}, "TypeError: Queue.__init__() got an "
     "unexpected keyword argument 'x'"),
    ("Condition", (1,), {}, "AttributeError: 'int' object has no attribute "
     "'acquire'"),
    ("Condition", (None, 1), {}, "TypeError: Condition.__init__() takes from "
     "1 to 2 positional arguments but 3 were given"),
    ("Namespace", (1,), {}, "TypeError: Namespace.__init__() takes 1 "
     "positional argument but 2 were given"),
    ("Array", ("z", []), {}, "ValueError: bad typecode (must be b, B, u, h, "
     "H, i, I, l, L, q, Q, f or d)"),
    ("Array", ("i",), {}, "TypeError: Array() missing 1 required positional "
     "argument: 'sequence'"),
    ("Array", (), {}, "TypeError: Array() missing 2 required positional "
     "arguments: 'typecode' and 'sequence'"),
    ("Array", ("i", [], True, 1), {}, "TypeError: Array() takes from 2 to 3 "
     "positional arguments but 4 were given"),
    ("Array", ("i", ["x"]), {}, "TypeError: 'str' object cannot be "
     "interpreted as an integer"),
    ("Array", ("i", b"\x01"), {}, "ValueError: bytes length not a multiple "
     "of item size"),
    ("list", (), {"x": 1}, "TypeError: list() takes no keyword arguments"),
    ("dict", (1, 2), {}, "TypeError: dict expected at most 1 argument, "
     "got 2"),
)


class Utf16Array:
    """Pickles as an array.array('u') from a machine whose wchar_t is
    UTF-16 (Windows): machine format 18 or 19."""

    def __init__(self, text, fmt=18):
        self.text, self.fmt = text, fmt

    def __reduce__(self):
        codec = "utf-16-le" if self.fmt == 18 else "utf-16-be"
        return (array._array_reconstructor,
                (array.array, "u", self.fmt, self.text.encode(codec)))


def check_array_formats(m):
    for fmt in (18, 19):
        a = m.Array("u", Utf16Array("a\u00e9\U0001f600", fmt))
        assert len(a) == 3 and a[2] == "\U0001f600", list(a[:])
        l = m.list()
        l.extend(Utf16Array("xy", fmt))
        assert l._getvalue() == ["x", "y"], l._getvalue()


def check_create_errors(m):
    for typeid, args, kwds, want in CREATE_ERRORS:
        e = expect(RemoteError, lambda: getattr(m, typeid)(*args, **kwds))
        lines = [t for t in str(e).splitlines() if t and t[0] != "-"]
        assert lines[-1] == want, (typeid, args, kwds, lines[-1])
    assert m.Value("i", 1, lock=False).get() == 1
    assert m.Value("i", "x").get() == "x"  # the typecode is not enforced
    assert list(m.Array("i", b"\x01\x00\x00\x00")[:]) == [1]  # frombytes
    assert m.Semaphore(value=2).acquire(timeout=0)


def check_iterables(m):
    """extend, += (extend in ListProxy), list(), dict() and set.update take
    every iterable that arrives by value, as CPython's server does."""
    for it in ((1, 2), [3], {4}, frozenset({5}), {"k": 1}, "ab", b"\x01\x02",
               range(0, 6, 2), array.array("i", [7, 8]), bytearray(b"\x09")):
        want = list(it)
        l = m.list()
        l.extend(it)
        assert l._getvalue() == want, (it, l._getvalue())
        l = m.list()
        l += it
        assert l._getvalue() == want, (it, l._getvalue())
        assert m.list(it)._getvalue() == want, it
    for bad in (5, None, 1.5):
        e = expect(TypeError, m.list().extend, bad)
        assert str(e) == "'%s' object is not iterable" % type(bad).__name__, e
        e = expect(RemoteError, m.list, bad)
        assert "TypeError: '%s' object is not iterable" % type(bad).__name__ \
            in str(e), e
    e = expect(RemoteError, m.list, 1, 2)
    assert "TypeError: list expected at most 1 argument, got 2" in str(e), e
    d = m.dict([(1, 2), "ab"])
    d.update([range(3, 5)])
    assert d._getvalue() == {1: 2, "a": "b", 3: 4}, d._getvalue()
    e = expect(ValueError, d.update, [(1, 2, 3)])
    assert str(e) == "dictionary update sequence element #0 has length 3; " \
        "2 is required", e
    s = m.set()
    s.update(range(3))
    assert s._getvalue() == {0, 1, 2}, s._getvalue()


def by_len(x):
    return len(x)


def check_list_sort(m):
    items = [3, 1.5, True, 2 ** 70, -2 ** 70, 2, 0.5, 1]
    l = m.list(items)
    l.sort(key=None)
    assert l._getvalue() == sorted(items), l._getvalue()
    l.sort(reverse=True)
    assert l._getvalue() == sorted(items, reverse=True), l._getvalue()
    words = [("b", 1), ("\u00e9",), ("ab", 2), ("a", 0), ("a",)]
    l = m.list(words)
    l.sort()
    assert l._getvalue() == sorted(words), l._getvalue()
    l = m.list([1, "a"])
    e = expect(TypeError, l.sort)
    assert str(e) == "'<' not supported between instances of 'str' and " \
        "'int'", e
    # A key function arrives but cannot be called by conc's server: a
    # TypeError names it, the list stays as it was, and the connection
    # serves on (CPython's own server calls the function).
    l = m.list(["bb", "a"])
    for key, name in ((len, "builtins.len"), (str.lower, "builtins.str.lower"),
                      (by_len, "__main__.by_len")):
        e = expect(TypeError, lambda: l.sort(key=key))
        assert str(e) == "sort key functions cannot be called by conc's " \
            "manager server (key=%s); sort a copy in the client instead" \
            % name, e
    e = expect(TypeError, lambda: l.sort(key="x"))
    assert str(e) == "'str' object is not callable", e
    # A value conc does not read: a traceback, and the connection serves on.
    e = expect(RemoteError, l.append, fractions.Fraction(1, 2))
    assert "UnpicklingError" in str(e) and "fractions.Fraction" in str(e), e
    assert l._getvalue() == ["bb", "a"], l._getvalue()


def check_dict_iter(m):
    """iter(d): an IteratorProxy, one round trip per key, on the live
    dict; the iterator is dropped with its proxy."""
    d = m.dict({"a": 1, "b": 2})
    assert [k for k in d] == ["a", "b"]
    assert list(d) == ["a", "b"] and sorted(d) == ["a", "b"]
    gc.collect()  # the iterators above, in cycles on some Pythons
    before = m._number_of_objects()
    it = iter(d)
    assert type(it).__name__ == "IteratorProxy", type(it)
    assert m._number_of_objects() == before + 1
    assert next(it) == "a"
    d["c"] = 3
    for _ in range(2):
        e = expect(RuntimeError, next, it)
        assert str(e) == "dictionary changed size during iteration", e
    e = expect(RemoteError, it.send, None)
    assert "KeyError: 'send'" in str(e), e
    del it, e  # e's traceback holds it too
    gc.collect()
    assert m._number_of_objects() == before
    it = iter(d)
    assert list(it) == ["a", "b", "c"]
    expect(StopIteration, next, it)
    e = expect(RemoteError, m._create, "Iterator")
    assert "ValueError: Without callable" in str(e), e


def check_dict_314(m):
    """3.14's dict and list methods, through _callmethod where this
    Python's proxies lack them."""
    d = m.dict({"a": 1, "b": 2})
    assert d._callmethod("__or__", ({"x": 9},)) == {"a": 1, "b": 2, "x": 9}
    assert d._callmethod("__or__", (5,)) is NotImplemented
    r = d._callmethod("__ror__", ({"z": 0, "b": 7},))
    assert list(r.items()) == [("z", 0), ("b", 2), ("a", 1)], r
    r = d._callmethod("__ior__", ([("c", 3)],))
    assert r == {"a": 1, "b": 2, "c": 3} == d._getvalue(), r
    e = expect(ValueError, d._callmethod, "__ior__", ([(1, 2, 3)],))
    assert "element #0 has length 3; 2 is required" in str(e), e
    e = expect(TypeError, d._callmethod, "__ior__", (5,))
    assert str(e) == "'int' object is not iterable", e
    rev = d._callmethod("__reversed__")
    assert type(rev).__name__ == "list_iterator" and list(rev) == \
        ["c", "b", "a"]
    assert d._callmethod("fromkeys", ("xy", 0)) == {"x": 0, "y": 0}
    e = expect(TypeError, d._callmethod, "fromkeys")
    assert str(e) == "fromkeys expected at least 1 argument, got 0", e
    d.update([("k", 1)], z=2)
    assert d["k"] == 1 and d["z"] == 2
    if "fromkeys" in DictProxy._exposed_:  # 3.14's proxies: the operators
        assert (d | {"q": 1})["q"] == 1 and ({"q": 1} | d)["a"] == 1
        assert list(reversed(d))[0] == "z"
        d |= {"w": 0}
        assert d["w"] == 0
    l = m.list([1, 2])
    assert l._callmethod("copy") == [1, 2]
    l._callmethod("clear")
    assert len(l) == 0
    lock = m.Lock()
    assert lock._callmethod("locked") is False
    lock.acquire()
    assert lock._callmethod("locked") is True
    lock.release()
    c = m.Condition()
    with c:
        assert c._callmethod("locked") is True


def client(addr, key):
    # The garbage collector runs freely: a proxy's finalizer sends its
    # decref on a connection of its own, possibly in the middle of another
    # connection's handshake, which conc's server runs on each
    # connection's own thread.
    m = Manager(address=addr, authkey=key)
    m.connect()
    for check in (check_locks, check_semaphores, check_condition,
                  check_event_barrier, check_barrier_action, check_values,
                  check_lists, check_dict_iter, check_dict_314,
                  check_create_errors, check_array_formats):
        check(m)
    print("ok")


def sync(addr, key):
    # The server rebuilds a proxy it is sent (Condition(lock)) with its
    # process's authkey, as CPython always does.
    multiprocessing.current_process().authkey = key
    m = Manager(address=addr, authkey=key)
    m.start()
    print(show(m.address), flush=True)
    sys.stdin.read()
    m.shutdown()
    print("ok")


def hold(addr, key):
    from multiprocessing.managers import AcquirerProxy, BaseManager

    class Holder(BaseManager):
        pass
    for name in ("get_lock", "get_rlock", "get_sem"):
        Holder.register(name, proxytype=AcquirerProxy)
    m = Holder(address=addr, authkey=key)
    m.connect()
    lock, rlock, sem = m.get_lock(), m.get_rlock(), m.get_sem()
    assert lock.acquire() and rlock.acquire() and rlock.acquire()
    assert sem.acquire()
    print("held", flush=True)
    sys.stdin.read()
    print("not killed")


def main():
    mode, addr, key = sys.argv[1], address(sys.argv[2]), sys.argv[3].encode()
    {"client": client, "sync": sync, "hold": hold}[mode](addr, key)


if __name__ == "__main__":
    main()
