#!/usr/bin/env python3
"""CPython's side of tests/test_obj_python.c: pickles and reprs from the
real pickle module, to prove conc's codec against it.

  obj_peer.py dump   prints, for every value of BATTERY and protocols 2 to
                     5, a line "<protocol> <pickle hex> <repr hex>" (the
                     repr's UTF-8 in hex).
  obj_peer.py load   reads lines of pickle hex on stdin and prints, for
                     each, the hex of repr(pickle.loads(...)) and whether
                     the pickle is CPython's own pickle of that value at
                     protocol 4 without FRAME and MEMOIZE (1, 0, or - when
                     CPython's fetches from its memo, which conc does not
                     write), or "ERR <exception>" when CPython refuses it.
"""
import binascii
import math
import pickle
import pickletools
import queue
import random
import struct
import sys
from multiprocessing.managers import Namespace, Token, Value

def random_doubles(n, seed=5):
    """Doubles drawn from random bit patterns (every exponent), finite."""
    rng, out = random.Random(seed), []
    while len(out) < n:
        v = struct.unpack('<d', rng.getrandbits(64).to_bytes(8, 'little'))[0]
        if math.isfinite(v):
            out.append(v)
    return out


shared_list = [1, 'two']
shared_tuple = ('x', b'y')

BATTERY = [
    None, True, False,
    0, 1, -1, 255, 256, 65535, 65536, -65536, 2**31 - 1, -2**31, 2**31,
    2**63, -2**63 - 1, 2**64, 1180591620717411303424,
    -1208925819614629174706176, 10**100, -(10**300), 2**2100,
    0.1, 1.5, -0.0, 0.0, float('inf'), float('-inf'), float('nan'), 1e-310,
    5e-324, 1e16, 1e15, 1e22, 1e-5, 1.7976931348623157e308, 2.0**53,
    0.30000000000000004, 123456789.123,
    '', 'abc', "it's", 'a\'b"c', '\u00e9', '\U0001F600', '\x00\t\n\r\\',
    '\u200b\u00a0\u00ad\ue000', 'x' * 300, '\u4e2d\u6587',
    b'', b'\x00\xff', b"it's", b'x' * 300,
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),),
    [], [1], list(range(1500)), [[[]]],
    {}, {'a': 1}, {1: 'a', 2.5: None, (1, 2): [3]}, {1: 'a', True: 'b'},
    dict.fromkeys(range(1200)),
    set(), {1}, {1, 2, 3}, frozenset(), frozenset({1}), {frozenset({2}): 1},
    {'f': 1.5, 'b': b'\x00\x01', 't': (1, 'x'), 'n': None, 'T': True,
     'big': -1208925819614629174706176, 's': '\u00e9'},
    [shared_list, shared_list, {'again': shared_list}],
    (shared_tuple, shared_tuple),
    KeyError('x'), ValueError(1, 2), StopIteration(), queue.Empty(),
    bytearray(b'ab'), slice(1, 2, None),
    Token('list', ('127.0.0.1', 5003), '7f2944645d00'),
    Namespace(x=10, b='s', _hidden=1, a=[1.5]), Namespace(), Value('i', 3),
    ('#ERROR', KeyError('missing')),
    # Shortest round-trip floats: every power of two (where the gap below
    # is half the gap above), powers of ten, random bit patterns.
    [2.0**k for k in range(-1074, 1024)],
    [10.0**k for k in range(-30, 30)],
    random_doubles(3000),
]


def hexs(b):
    return binascii.hexlify(b).decode()


def dump():
    for v in BATTERY:
        for proto in (2, 3, 4, 5):
            if proto > pickle.HIGHEST_PROTOCOL:
                continue
            print(proto, hexs(pickle.dumps(v, proto)),
                  hexs(repr(v).encode('utf-8')))


def without_frames(data):
    """CPython's pickle less its FRAME and MEMOIZE opcodes, or None if it
    fetches from the memo."""
    ops = list(pickletools.genops(data))
    out = b''
    for i, (op, _, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name in ('BINGET', 'LONG_BINGET', 'GET'):
            return None
        if op.name not in ('FRAME', 'MEMOIZE'):
            out += data[pos:end]
    return out


def load():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            data = binascii.unhexlify(line)
            v = pickle.loads(data)
            own = without_frames(pickle.dumps(v, 4))
            same = '-' if own is None else '1' if own == data else '0'
            print(hexs(repr(v).encode('utf-8')), same)
        except Exception as e:  # reported to the C side, which fails
            print('ERR', type(e).__name__, str(e).replace('\n', ' '))


if __name__ == '__main__':
    {'dump': dump, 'load': load}[sys.argv[1]]()
