"""Twin of bench_dist.c: tiny tasks through Redis and one round trip, with
redis-py (the cpython column: a task queue on Redis Streams written the
way conc's wire format works, batched as a careful Python author would),
then with Celery and RQ (the other columns), all against one redis-server
this script starts on a free loopback port, without persistence, and
stops after. Each stack gets two workers.

Celery and RQ come from Debian (python3-celery, python3-rq, under
/usr/bin/python3, which this script re-runs itself under when the Python
running it lacks redis-py); where one is missing its column stays empty.
"""
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_common  # noqa: E402

WORKERS = 2
SERVER_START_S = 10.0
ROUNDTRIPS, ROUNDTRIPS_SMOKE = 2000, 20
SUBMIT_BATCH = 1000  # XADDs per pipeline
READ_BATCH = 100     # entries per XREADGROUP


def reexec_under_debian_python():
    """Runs this script under Debian's Python when this one lacks redis-py
    (Debian's python3-redis installs there). Returns False when none has
    it."""
    deb = bench_common.DEBIAN_PYTHON
    if (not os.path.exists(deb)
            or os.path.realpath(deb) == os.path.realpath(sys.executable)):
        return False
    p = subprocess.run([deb, os.path.abspath(__file__)] + sys.argv[1:])
    raise SystemExit(p.returncode)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A redis-server on a free loopback port, without persistence."""

    def __init__(self):
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.dir = tempfile.mkdtemp(prefix="conc-bench-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        end = time.monotonic() + SERVER_START_S
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- redis-py: the queue by hand, on conc's stream layout ----------------

TASKS, DONE, GROUP = "{conc:pybench}:tasks", "{conc:pybench}:done", "workers"


def square(x):
    return x * x


def stream_worker(url, name, stop):
    import redis
    r = redis.Redis.from_url(url)
    while not stop.is_set():
        got = r.xreadgroup(GROUP, name, {TASKS: ">"}, count=READ_BATCH,
                           block=100)
        if not got:
            continue
        p = r.pipeline(transaction=False)
        ids = []
        for entry, f in got[0][1]:
            v = square(int(f[b"arg"]))
            tid = f[b"id"].decode()
            p.set("{conc:pybench}:res:" + tid, v, nx=True, px=86400000)
            p.xadd(DONE, {"id": tid, "r": v})
            ids.append(entry)
        p.xack(TASKS, GROUP, *ids)
        p.xdel(TASKS, *ids)
        p.execute()


class StreamQueue:
    def __init__(self, url):
        import redis
        self.r = redis.Redis.from_url(url)
        self.r.delete(TASKS, DONE)
        self.r.xgroup_create(TASKS, GROUP, id="0", mkstream=True)
        self.last = "0-0"
        self.seq = 0
        self.stop = multiprocessing.Event()
        self.procs = [multiprocessing.Process(
            target=stream_worker, args=(url, "w%d" % i, self.stop))
            for i in range(WORKERS)]
        for p in self.procs:
            p.start()

    def submit(self, n):
        for lo in range(0, n, SUBMIT_BATCH):
            p = self.r.pipeline(transaction=False)
            for i in range(lo, min(n, lo + SUBMIT_BATCH)):
                self.seq += 1
                p.xadd(TASKS, {"id": "s:%d" % self.seq, "fn": "square",
                               "arg": i})
            p.execute()

    def collect(self, n):
        got = 0
        while got < n:
            reply = self.r.xread({DONE: self.last}, count=1000, block=5000)
            for _, entries in reply:
                got += len(entries)
                self.last = entries[-1][0]

    def run_tasks(self, n):
        t0 = bench_common.now()
        self.submit(n)
        self.collect(n)
        return bench_common.now() - t0, n

    def roundtrip(self, i):
        self.submit(1)
        self.collect(1)

    def close(self):
        self.stop.set()
        for p in self.procs:
            p.join()


def p50_row(opts, name, impl, roundtrip, n):
    n = ROUNDTRIPS_SMOKE if opts.smoke else n
    lat = []
    for i in range(n):
        t0 = bench_common.now()
        roundtrip(i)
        lat.append(bench_common.now() - t0)
    lat.sort()
    print("RESULT %s %s %.6g ns" % (name, impl, lat[n // 2] * 1e9),
          flush=True)
    print("INFO %s %s p99 %.0f us over %d round trips"
          % (name, impl, lat[n * 99 // 100] * 1e6, n), flush=True)


def measure_redis_py(opts, url):
    q = StreamQueue(url)
    try:
        bench_common.row(opts, "dist_tasks", q.run_tasks, True, 200)
        p50_row(opts, "dist_roundtrip", "cpython", q.roundtrip, ROUNDTRIPS)
    finally:
        q.close()


def measure_other(opts, url, module, package):
    """Celery's or RQ's rows (bench_dist_celery.py, bench_dist_rq.py), or
    an INFO line when the package is missing."""
    try:
        twin = __import__(module)
    except ImportError:
        print("INFO dist_tasks %s not installed (Debian's %s): no column"
              % (module.split("_")[-1], package), flush=True)
        return
    import redis
    redis.Redis.from_url(url).flushall()
    twin.measure(opts, url, p50_row)


def main():
    try:
        import redis  # noqa: F401
    except ImportError:
        if not reexec_under_debian_python():
            print("INFO dist_tasks cpython redis-py not installed (Debian's "
                  "python3-redis)", flush=True)
            return
    opts = bench_common.parse()
    server = Server()
    try:
        measure_redis_py(opts, server.url)
        measure_other(opts, server.url, "bench_dist_celery", "python3-celery")
        measure_other(opts, server.url, "bench_dist_rq", "python3-rq")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
