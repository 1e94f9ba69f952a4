"""RQ's half of bench_dist.py: the same tiny task and round trip with RQ
(Debian's python3-rq) on the redis-server bench_dist.py started: two
`rq worker` processes of RQ's default kind, which forks a work horse per
job, as RQ is deployed by default; jobs enqueued with enqueue_many (one
pipeline). RQ 1.13 has no blocking wait for a result: the submitter polls
the jobs, as RQ's users do."""
import os
import subprocess
import sys
import time

import bench_common

QUEUE = "bench"
POLL_S = 0.001
WAIT_S = 120


def square(x):
    return x * x


def start_workers(url, n):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ,
               PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return [subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--url", url, "--path",
         here, "--quiet", QUEUE], cwd=here, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n)]


def wait_all(conn, jobs):
    from rq.job import Job
    ids = [j.id for j in jobs]
    end = time.monotonic() + WAIT_S
    while ids:
        left = []
        for j in Job.fetch_many(ids, connection=conn):
            if j is None or j.get_status(refresh=False) not in ("finished",
                                                                "failed"):
                left.append(j.id if j else None)
        ids = [i for i in left if i]
        if ids:
            if time.monotonic() > end:
                raise TimeoutError("RQ jobs not done in time")
            time.sleep(POLL_S)


def measure(opts, url, p50_row):
    from redis import Redis
    from rq import Queue
    conn = Redis.from_url(url)
    q = Queue(QUEUE, connection=conn)
    workers = start_workers(url, 2)
    try:
        wait_all(conn, [q.enqueue(square, 3)])  # the workers are up

        def run_tasks(n):
            t0 = bench_common.now()
            jobs = q.enqueue_many([Queue.prepare_data(square, (i,))
                                   for i in range(n)])
            wait_all(conn, jobs)
            return bench_common.now() - t0, n

        bench_common.row(opts, "dist_tasks", run_tasks, True, 20, impl="rq")
        p50_row(opts, "dist_roundtrip", "rq",
                lambda i: wait_all(conn, [q.enqueue(square, i)]), 100)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
