"""Celery's half of bench_dist.py: the same tiny task and round trip with
Celery (Debian's python3-celery) on the redis-server bench_dist.py started:
Redis as broker and result backend, one worker of two prefork processes,
JSON payloads. Imported by bench_dist.py (measure), and by the worker it
starts (`celery -A bench_dist_celery worker`), which finds the server in
BENCH_REDIS_URL."""
import gc
import os
import subprocess
import sys

from celery import Celery, group

import bench_common

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
READY_TIMEOUT_S = 60
WAIT_S = 120

app = Celery("bench_dist_celery", broker=URL, backend=URL)
app.conf.update(task_serializer="json", result_serializer="json",
                accept_content=["json"], worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)


@app.task
def square(x):
    return x * x


def start_worker(url):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, BENCH_REDIS_URL=url,
               PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_dist_celery", "worker",
         "--concurrency", "2", "--pool", "prefork", "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--loglevel", "warning"],
        cwd=here, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(opts, url, p50_row):
    app.conf.broker_url = app.conf.result_backend = url
    worker = start_worker(url)
    try:
        # The first task waits for the worker to come up.
        assert square.delay(3).get(timeout=READY_TIMEOUT_S) == 9

        def run_tasks(n):
            t0 = bench_common.now()
            res = group(square.s(i) for i in range(n)).apply_async()
            res.get(timeout=WAIT_S)
            secs = bench_common.now() - t0
            res.forget()
            return secs, n

        bench_common.row(opts, "dist_tasks", run_tasks, True, 20,
                         impl="celery")
        p50_row(opts, "dist_roundtrip", "celery",
                lambda i: square.delay(i).get(timeout=WAIT_S), 200)
    finally:
        # Results' finalizers talk to the server: run them while it is up.
        gc.collect()
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
