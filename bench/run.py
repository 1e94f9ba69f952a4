#!/usr/bin/env python3
"""Runs conc's benchmarks beside their CPython twins and prints one table.

Each C program bench/bench_<name>.c (built into BUILD/bench/bench_<name>)
and its twin bench/bench_<name>.py print lines
    RESULT <row> <impl> <value> <unit>      unit: "ns" per op, or "per_s"
    INFO <row> <impl> <remark>
Every repetition runs every C program and then its twin, so the two sides
of a ratio are measured in the same run, close in time. The table shows the
median over the repetitions of each value, the speed-up of conc over
CPython, the other C implementation where one is measured, the goal set by the
project, and whether conc meets it.

Benchmarks are not tests: the exit status is 0 whatever the numbers, and
non-zero only when a program crashed, hung, or printed nothing.

    python3 bench/run.py --build build            # full run, 5 repetitions
    python3 bench/run.py --build build --smoke    # each program once, tiny
"""
import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 120


class Row:
    """How one row reads: its label, how to show a value, its goal.

    kind "time" rows carry ns per operation (lower is better), kind "rate"
    rows operations per second (higher is better), kind "ratio" rows a
    plain number that is not compared with CPython's (a speed-up). `scale`
    and `unit` turn the raw value into what is shown; `other` names the C
    baseline shown in the other-C column (its impl id in the output is
    "pthread"), or is a list of (impl id, name) when several C libraries
    are measured. `goal` is (text, test) where test(conc, cpython, other)
    says whether it is met; `other` is then the best baseline measured, or
    None.
    """

    def __init__(self, row, label, prog, kind, scale, unit, goal,
                 other=None):
        self.row, self.label, self.prog = row, label, prog
        self.kind, self.scale, self.unit = kind, scale, unit
        self.goal = goal
        self.others = ([("pthread", other)] if isinstance(other, str)
                       else other or [])

    def show(self, value):
        if value is None:
            return "-"
        v = value / self.scale
        digits = 3 if v < 1 else 2 if v < 10 else 1 if v < 100 else 0
        return f"{v:.{digits}f} {self.unit}"

    def speedup(self, conc, cpython):
        if not conc or not cpython or self.kind == "ratio":
            return None
        return cpython / conc if self.kind == "time" else conc / cpython

    def best(self, values):
        """The best of the baselines' values, or None."""
        values = [v for v in values if v is not None]
        if not values:
            return None
        return min(values) if self.kind == "time" else max(values)


class BaselinesRow(Row):
    """A row whose goal names its baselines: the test gets every
    baseline's value in the order of `other` (None where not measured)
    instead of the best of them."""

    def best(self, values):
        return list(values)


def faster_than_cpython(row):
    def test(conc, cpython, other):
        sp = row.speedup(conc, cpython)
        return sp is not None and sp > 1
    return test


def at_least(limit):
    return lambda conc, cpython, other: conc >= limit


RAW_SOCKET = [("rawsock", "raw socket, blocking"),
              ("rawspin", "raw socket, both spin")]
MANAGER_10X = (lambda c, p, o: p is not None and c >= 10 * p)
MANAGER_DICT_GOAL = (">= 10x CPython, >= 90% of raw",
                     lambda c, p, o: MANAGER_10X(c, p, o) and o is not None
                     and c >= 0.9 * o)
UVLOOP = [("uvloop", "uvloop")]  # a faster Python stack, not a C one
REDIS_QUEUES = [("celery", "Celery"), ("rq", "RQ")]  # Python, on Redis

ROWS = [
    Row("lock_pair", "Lock, uncontended acquire+release", "lock", "time",
        1, "ns", ("<= 10 ns and < pthread_mutex",
                  lambda c, p, o: c <= 10 and o is not None and c < o),
        other="pthread_mutex"),
    Row("lock_contended", "Lock, 2 threads contended", "lock", "rate",
        1e6, "M incs/s", (">= 25 M incs/s", at_least(25e6)),
        other="pthread_mutex"),
    Row("rlock_pair", "RLock, uncontended acquire+release", "lock", "time",
        1, "ns", None, other="recursive pthread_mutex"),
    Row("thread_start", "Thread start + join", "thread", "rate", 1e3,
        "k/s", (">= 90% of raw pthread",
                lambda c, p, o: o is not None and c >= 0.9 * o),
        other="pthread_create+join"),
    Row("queue_simple", "SimpleQueue, 1 producer 1 consumer", "queue",
        "rate", 1e6, "M items/s", (">= 20 M items/s", at_least(20e6))),
    Row("queue_fifo", "Queue(), 1 producer 1 consumer", "queue", "rate",
        1e6, "M items/s", (">= 20 M items/s", at_least(20e6))),
    Row("queue_bounded", "Queue(maxsize=1024), 1P 1C", "queue", "rate",
        1e6, "M items/s", (">= 20 M items/s", at_least(20e6))),
    Row("event_pingpong", "Event ping-pong round trip", "event", "time",
        1e3, "µs", None),
    Row("cond_pingpong", "Condition ping-pong round trip", "event", "time",
        1e3, "µs", None, other="pthread_cond"),
    Row("process_start", "Process start + join (fork)", "process", "rate",
        1, "/s", (">= 90% of raw fork+wait",
                  lambda c, p, o: o is not None and c >= 0.9 * o),
        other="fork+waitpid"),
    Row("subprocess_run", "subprocess run of `true`", "subprocess", "rate",
        1, "/s", (">= 90% of raw posix_spawn+wait",
                  lambda c, p, o: o is not None and c >= 0.9 * o),
        other="posix_spawnp+waitpid"),
    # The same from a coroutine: conc waits on the child's pidfd through
    # the loop; asyncio on its child watcher (pidfd-based since 3.12 where
    # the kernel has pidfds), uvloop on libuv's SIGCHLD handling.
    Row("aio_subprocess_run", "async subprocess run of `true`", "subprocess",
        "rate", 1, "/s", (">= 90% of raw posix_spawn+wait",
                          lambda c, p, o: o is not None and c >= 0.9 * o),
        other=[("pthread", "posix_spawnp+waitpid")] + UVLOOP),
    # "Never worse than a raw pipe" is judged with a 5% margin for noise.
    Row("pipe_roundtrip", "Pipe round trip, 16 B, blocking", "pipe", "rate",
        1e3, "k/s", (">= raw pipe (-5%)",
                     lambda c, p, o: o is not None and c >= 0.95 * o),
        other="pipe pair"),
    Row("pipe_roundtrip_spin", "Pipe round trip, 16 B, both spin", "pipe",
        "rate", 1e3, "k/s", (">= 1 M/s and >= raw pipe",
                             lambda c, p, o: c >= 1e6 and o is not None
                             and c >= 0.95 * o),
        other="non-blocking pipe pair"),
    # CPython pays about 44 ms per connection (Nagle's algorithm and
    # delayed acknowledgements); conc's goal is under a millisecond.
    Row("listener_connect", "Client connect + handshake + 1 request, TCP",
        "listener", "rate", 1, "/s", (">= 1000/s (< 1 ms)", at_least(1e3)),
        other="bare TCP sockets, no handshake"),
    Row("listener_roundtrip", "Listener conn round trip, 16 B, TCP",
        "listener", "rate", 1e3, "k/s", None),
    # PERF.md's "Managers": conc's manager process and proxies beside
    # CPython's managers; "pyclient" is an unmodified CPython client
    # against conc's manager; "rawsock" and "rawspin" two raw socket round
    # trips per pair (blocking; both sides spinning up to 20 µs first),
    # the goal's "raw socket round trip" being the best of them.
    Row("manager_dict_unix", "Manager dict set+get, AF_UNIX", "manager",
        "rate", 1e3, "k pairs/s", MANAGER_DICT_GOAL, other=RAW_SOCKET),
    Row("manager_dict_tcp", "Manager dict set+get, TCP", "manager", "rate",
        1e3, "k pairs/s", MANAGER_DICT_GOAL,
        other=[("pyclient", "CPython client, conc manager")] + RAW_SOCKET),
    Row("manager_queue_unix", "Manager Queue put+get, AF_UNIX", "manager",
        "rate", 1e3, "k pairs/s", (">= 10x CPython", MANAGER_10X)),
    Row("manager_connect_tcp", "Manager connect + create dict, TCP",
        "manager", "rate", 1, "/s", (">= 1000/s (< 1 ms)", at_least(1e3)),
        other=[("pyclient", "CPython client, conc manager")]),
    Row("shlock_contended", "Process-shared Lock, 2 processes", "shlock",
        "rate", 1e6, "M incs/s", None,
        other="robust pshared pthread_mutex"),
    Row("mpqueue_small", "Process queue, 64 B messages", "mpqueue", "rate",
        1e6, "M msgs/s", (">= 10 M msgs/s", at_least(10e6))),
    Row("mpqueue_large", "Process queue, 1 MiB messages", "mpqueue", "rate",
        1e9, "GB/s", (">= 40% of memcpy",
                      lambda c, p, o: o is not None and c >= 0.4 * o),
        other="memcpy"),
    Row("executor_thread", "Thread executor, submit+result, batched",
        "executor", "rate", 1e6, "M tasks/s",
        (">= 5 M tasks/s, ahead of GLib and libuv",
         lambda c, p, o: c >= 5e6 and (o is None or c > o)),
        other=[("glib", "GThreadPool"), ("libuv", "uv_queue_work")]),
    Row("executor_process", "Process executor, submit+result, batched",
        "executor", "rate", 1e3, "k tasks/s",
        (">= 500 k tasks/s", at_least(500e3))),
    Row("pool_map_start", "Pool.map(range(20000)) incl. start+join",
        "pool", "time", 1e6, "ms",
        ("<= 5 ms", lambda c, p, o: c <= 5e6)),
    Row("pool_map_1m", "Pool.map of 1M int64 squares", "pool", "rate",
        1e6, "M items/s", (">= 50 M items/s", at_least(50e6))),
    Row("pool_apply_async", "Pool.apply_async with callback", "pool",
        "rate", 1e6, "M tasks/s", (">= 1 M tasks/s", at_least(1e6))),
    Row("pool_fib_speedup", "fib(25..32): 2 workers over 1 (speed-up)",
        "pool", "ratio", 1, "×", (">= 1.9", at_least(1.9))),
    # The raw floor under PERF.md's "Async core" rows: a round trip is two
    # switches, each meant to cost a few ns so that a task switch through
    # the scheduler fits in 20 ns; a fiber's life is meant to fit in half
    # of the 300 ns that creating and awaiting a task may take.
    Row("fiber_pingpong", "Fiber switch round trip (no scheduler)", "fiber",
        "time", 1, "ns", ("<= 10 ns", lambda c, p, o: c <= 10),
        other=[("ucontext", "swapcontext")]),
    Row("fiber_create", "Fiber create+run+exit, pooled stack", "fiber",
        "time", 1, "ns", ("<= 150 ns", lambda c, p, o: c <= 150)),
    # PERF.md's "Async core", beside asyncio on CPython's loop and on
    # uvloop's (Debian's python3-uvloop, run by the twin where installed).
    Row("aio_switch", "Task switch, sleep(0) ping-pong", "aio", "time", 1,
        "ns", ("<= 20 ns", lambda c, p, o: c <= 20), other=UVLOOP),
    Row("aio_call_soon", "call_soon dispatch", "aio", "time", 1, "ns",
        ("<= 50 ns", lambda c, p, o: c <= 50), other=UVLOOP),
    Row("aio_create_await", "Create + await a task (pooled stack)", "aio",
        "time", 1, "ns", ("<= 300 ns", lambda c, p, o: c <= 300),
        other=UVLOOP),
    Row("aio_gather", "gather of 200k tasks", "aio", "rate", 1e6,
        "M tasks/s", (">= 5 M tasks/s", at_least(5e6)), other=UVLOOP),
    # Bytes, lower is better: the ratio says how many times less memory.
    Row("aio_idle_mem", "100k sleeping tasks, resident per task", "aio",
        "time", 1024, "KiB",
        ("<= 12 KiB, <= 1 GiB in all",
         lambda c, p, o: c <= 12 * 1024 and c * 100e3 <= 2 ** 30),
        other=UVLOOP),
    Row("aio_timers", "Timer insert + cancel, 1M armed", "aio", "time", 1,
        "ns", ("<= 200 ns", lambda c, p, o: c <= 200), other=UVLOOP),
    Row("aio_threadsafe", "call_soon_threadsafe from another thread",
        "aio", "rate", 1e6, "M/s", (">= 1 M/s", at_least(1e6)),
        other=UVLOOP),
    Row("aio_lock_wake", "Task waiting on a Lock a thread releases", "aio",
        "time", 1e3, "µs", ("<= 20 µs", lambda c, p, o: c <= 20e3),
        other=UVLOOP),
    Row("aio_queue_wake", "Task waiting on a Queue a thread feeds", "aio",
        "time", 1e3, "µs", ("<= 20 µs", lambda c, p, o: c <= 20e3),
        other=UVLOOP),
    # PERF.md's "Streams": conc's streams beside a hand-written epoll
    # loop (the C column) and asyncio's streams on CPython and uvloop.
    Row("stream_echo_1", "TCP echo 1 KiB, 1 connection", "stream", "rate",
        1e3, "k/s", (">= 90% of raw epoll",
                     lambda c, p, o: o is not None and c >= 0.9 * o),
        other=[("epoll", "raw C epoll")] + UVLOOP),
    Row("stream_echo_100", "TCP echo 1 KiB, 100 connections, 1 loop",
        "stream", "rate", 1e3, "k/s",
        (">= 90% of raw epoll",
         lambda c, p, o: o is not None and c >= 0.9 * o),
        other=[("epoll", "raw C epoll")] + UVLOOP),
    # One loop per core: conc's server group and client loops, epoll
    # threads, asyncio and uvloop in one process per core. PERF.md's goal
    # (>= 1.7x one loop) compares with the row above, which this table
    # cannot; the test here is the 90% of the epoll twin.
    Row("stream_echo_100_cores",
        "TCP echo 1 KiB, 100 connections, 1 loop per core", "stream",
        "rate", 1e3, "k/s",
        (">= 90% of raw epoll",
         lambda c, p, o: o is not None and c >= 0.9 * o),
        other=[("epoll", "raw C epoll")] + UVLOOP),
    # PERF.md's "Scale-out on Redis": conc's executor and workers beside a
    # redis-py queue on the same streams (the CPython column), Celery and
    # RQ (Debian's python3-celery and python3-rq; an empty column where
    # missing), all on a redis-server each program starts on loopback.
    Row("dist_tasks", "Redis: tiny tasks, pipelined submit, 2 workers",
        "dist", "rate", 1e3, "k tasks/s",
        (">= 100 k tasks/s, >= 10x Celery and RQ",
         lambda c, p, o: c >= 100e3 and (o is None or c >= 10 * o)),
        other=REDIS_QUEUES),
    Row("dist_roundtrip", "Redis: one future round trip, p50", "dist",
        "time", 1e3, "µs", ("p50 <= 200 µs", lambda c, p, o: c <= 200e3),
        other=REDIS_QUEUES),
    # PERF.md's "TLS": conc's streams over OpenSSL beside asyncio's ssl.
    Row("tls_echo_1", "TLS echo 1 KiB, 1 connection", "tls", "rate", 1e3,
        "k/s", (">= 5x asyncio", lambda c, p, o: p is not None and c >= 5 * p),
        other=UVLOOP),
    # WebSockets: python websockets (CPython, uvloop) and Node's ws
    # (bench_ws.js) beside conc, conc's raw TCP echo of the same 16 B
    # messages (what the WebSocket layer costs over the stream under it),
    # and conc's client against libwebsockets' server (lws_echo.c). No
    # permessage-deflate in any column. The goals are judged against the
    # raw TCP column and the libwebsockets one (where it was built).
    BaselinesRow(
        "ws_pingpong_1", "WebSocket 16 B ping-pong, 1 connection", "ws",
        "rate", 1e3, "k/s",
        (">= 80% of conc raw TCP, >= libwebsockets",
         lambda c, p, o: o[0] is not None and c >= 0.8 * o[0]
         and (o[1] is None or c >= o[1])),
        other=[("stream", "conc raw TCP"), ("lws", "libwebsockets server"),
               ("node", "node ws")] + UVLOOP),
    BaselinesRow(
        "ws_echo_1000", "WebSocket 16 B echo, 1,000 connections, 1 loop",
        "ws", "rate", 1e3, "k/s",
        (">= 90% of conc raw TCP",
         lambda c, p, o: o[0] is not None and c >= 0.9 * o[0]),
        other=[("stream", "conc raw TCP"), ("lws", "libwebsockets server")]
        + UVLOOP),
    # PERF.md: <= 16 KiB an idle connection, <= 80 KiB with deflate; the
    # rows hold both ends of a connection.
    Row("ws_idle_mem", "WebSocket idle connection, resident (both ends)",
        "ws", "time", 1024, "KiB",
        ("<= 16 KiB an end", lambda c, p, o: c <= 2 * 16 * 1024),
        other=[("node", "node ws")] + UVLOOP),
    Row("ws_idle_mem_deflate", "same, with permessage-deflate", "ws",
        "time", 1024, "KiB",
        ("<= 80 KiB an end", lambda c, p, o: c <= 2 * 80 * 1024),
        other=[("node", "node ws")] + UVLOOP),
]
for r in ROWS:
    if r.goal is None:  # no stated goal: at least beat CPython
        r.goal = ("faster than CPython", faster_than_cpython(r))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build",
                   help="CMake build directory (default: build)")
    p.add_argument("--reps", type=int, default=5,
                   help="repetitions; the table shows medians (default 5)")
    p.add_argument("--smoke", action="store_true",
                   help="run every benchmark once on tiny sizes")
    p.add_argument("--time", type=float, default=None,
                   help="seconds per measurement, passed to the programs")
    p.add_argument("--only", default="",
                   help="run only programs whose name matches this regex")
    a = p.parse_args()
    if a.smoke:
        a.reps = 1
    return a


def programs(args):
    """Yields (name, C binary or None, twin script or None)."""
    names = sorted(f[len("bench_"):-2] for f in os.listdir(HERE)
                   if f.startswith("bench_") and f.endswith(".c"))
    for name in names:
        if args.only and not re.search(args.only, name):
            continue
        exe = os.path.join(args.build, "bench", "bench_" + name)
        twin = os.path.join(HERE, "bench_" + name + ".py")
        yield (name, exe if os.access(exe, os.X_OK) else None,
               twin if os.path.exists(twin) else None)


def run_one(cmd, args, results, infos):
    """Runs one program and files its lines. Returns an error text when it
    crashed, hung or printed no result, else None."""
    if args.smoke:
        cmd = cmd + ["--smoke"]
    elif args.time:
        cmd = cmd + ["--time", str(args.time)]
    # The twins import bench_common; keep bench/ free of __pycache__.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"{' '.join(cmd)}: no answer within {TIMEOUT_S} s"
    found = 0
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "RESULT":
            results.setdefault((f[1], f[2]), []).append(float(f[3]))
            found += 1
        elif len(f) >= 3 and f[0] == "INFO":
            infos[(f[1], f[2])] = " ".join(f[3:])
    if p.returncode != 0 or found == 0:
        how = (f"exit status {p.returncode}" if p.returncode >= 0
               else f"signal {-p.returncode}")
        return f"{' '.join(cmd)}: {how}\n{p.stderr.strip()}"
    return None


def run_all(args):
    """Runs every repetition. Returns the results, the remarks, the error
    texts, the programs not built and the programs that failed."""
    results, infos, failures, missing, crashed = {}, {}, [], [], set()
    progs = list(programs(args))
    for name, exe, twin in progs:
        if exe is None:
            missing.append(name)
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps} ...", file=sys.stderr,
              flush=True)
        for name, exe, twin in progs:
            cmds = ([[exe]] if exe else []) + \
                   ([[sys.executable, twin]] if twin else [])
            # A Node twin (bench_<name>.js) where node is installed.
            js = os.path.join(HERE, "bench_" + name + ".js")
            if os.path.exists(js) and shutil.which("node"):
                cmds.append(["node", js])
            for cmd in cmds:
                err = run_one(cmd, args, results, infos)
                if err:
                    crashed.add(name)
                if err and err not in failures:
                    failures.append(err)
                    print(err, file=sys.stderr, flush=True)
    return results, infos, failures, missing, crashed


def median(results, row, impl):
    v = results.get((row, impl))
    return statistics.median(v) if v else None


def table_rows(args, results, missing, crashed):
    out = []
    for r in ROWS:
        if args.only and not re.search(args.only, r.prog):
            continue
        conc = median(results, r.row, "conc")
        py = median(results, r.row, "cpython")
        others = [(median(results, r.row, impl), name)
                  for impl, name in r.others]
        other = r.best([v for v, _ in others])
        sp = r.speedup(conc, py)
        if r.prog in crashed:
            verdict = "crashed"
        elif conc is None:
            verdict = "not built" if r.prog in missing else "not run"
        elif args.smoke:
            verdict = "(smoke)"
        else:
            verdict = "meets" if r.goal[1](conc, py, other) else "misses"
        out.append([r.label, r.show(py), r.show(conc),
                    f"{sp:.1f}×" if sp else "-",
                    "; ".join(f"{r.show(v)} {name}" for v, name in others
                              if v is not None) or "-",
                    r.goal[0], verdict])
    return out


def print_table(rows):
    head = ["workload", "CPython", "conc", "ratio", "other", "goal",
            "verdict"]
    widths = [max(len(x[i]) for x in rows + [head]) for i in range(7)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in
                                 zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for x in rows:
        print(line(x))


def print_header(args):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print(f"conc benchmarks: {os.cpu_count()} CPUs ({cpu}), "
          f"Python {platform.python_version()}, "
          f"median of {args.reps} run(s)"
          + (", SMOKE RUN: the numbers mean nothing" if args.smoke else ""))
    print("ratio: how many times faster conc is than CPython\n")


def main():
    args = parse_args()
    if not os.path.isdir(os.path.join(args.build, "bench")):
        print(f"{args.build}/bench not found: build with "
              "-DCONC_BUILD_BENCH=ON first", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results, infos, failures, missing, crashed = run_all(args)
    print_header(args)
    print_table(table_rows(args, results, missing, crashed))
    known = {r.row for r in ROWS}
    for (row, impl), v in sorted(results.items()):
        if row not in known:
            print(f"(unlisted row) {row} {impl}: {statistics.median(v):.6g}")
    for (row, impl), text in sorted(infos.items()):
        print(f"note: {row} {impl}: {text}")
    for name in missing:
        print(f"note: bench_{name} is not built in {args.build}")
    print(f"\ntotal time {time.monotonic() - t0:.1f} s", flush=True)
    if failures:
        print(f"{len(failures)} program(s) failed; see above",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
