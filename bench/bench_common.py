"""What every CPython twin shares: the command line, calibration and output.

The twins measure the same workloads as the C programs beside them, with
CPython's own modules, and print the same lines for bench/run.py:
    RESULT <row> cpython <value> <unit>
where unit is "ns" (nanoseconds per operation) or "per_s" (operations per
second). As in the C programs, n is calibrated so that one measurement lasts
about --time seconds (calibration doubles as warm-up), and the measurement
is split into slices whose times are summed.

Usage of every twin: bench_x.py [--smoke] [--time SECONDS] [--iters N].
"""
import argparse
import os
import threading
import time

SLICES = 3


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true",
                   help="run each row once on a tiny size")
    p.add_argument("--time", type=float, default=0.3,
                   help="seconds per row (default 0.3)")
    p.add_argument("--iters", type=int, default=0,
                   help="fixed operation count instead of calibrating")
    return p.parse_args()


SERVER_CPU, CLIENT_CPU = 0, 1
_allowed = None  # the CPUs this program could use at its first place()


def place(nth):
    """Moves this process (and what it forks later) to the nth CPU it could
    use at the first call, as bench_place does in the C programs (bench_common.h says why
    request-reply rows place their two sides). False when there are fewer
    than two CPUs to choose from."""
    global _allowed
    if _allowed is None:
        _allowed = sorted(os.sched_getaffinity(0))
    cpus = _allowed
    if len(cpus) < 2:
        return False
    os.sched_setaffinity(0, {cpus[nth]})
    return True


def calibrate(run, slice_s):
    """Grows n from 1 until run(n) lasts a quarter of slice_s, then scales
    it to last about slice_s."""
    n = 1
    while True:
        t, _ = run(n)
        if t >= slice_s / 4:
            return max(1, int(n * slice_s / max(t, 1e-9)))
        n *= 8 if t < slice_s / 100 else 2


def row(opts, name, run, per_second, smoke_n, impl="cpython"):
    """Measures one row: run(n) performs n operations (or fewer) and returns
    (seconds, operations done). Prints one RESULT line for `impl` (another
    Python stack, such as uvloop, measured by the same twin)."""
    slices = 1 if opts.smoke else SLICES
    if opts.smoke:
        n = smoke_n
    elif opts.iters:
        n = max(1, opts.iters // slices)
    else:
        n = calibrate(run, opts.time / slices)
    secs = 0.0
    ops = 0
    for _ in range(slices):
        t, done = run(n)
        secs += t
        ops += done
    if per_second:
        print(f"RESULT {name} {impl} {ops / secs:.6g} per_s", flush=True)
    else:
        print(f"RESULT {name} {impl} {secs * 1e9 / ops:.6g} ns", flush=True)


def start_pair(helper):
    """Starts helper(barrier) in a thread; returns the thread and the
    barrier that both sides pass to start the clock together."""
    barrier = threading.Barrier(2)
    t = threading.Thread(target=helper, args=(barrier,))
    t.start()
    return t, barrier


now = time.perf_counter


# ---- asyncio twins, measured under CPython's loop and under uvloop -------

# Debian's Python, where Debian's python3-uvloop installs.
DEBIAN_PYTHON = "/usr/bin/python3"


def _uvloop_elsewhere(script):
    """Runs the uvloop half of `script` under Debian's Python when this one
    lacks uvloop; passes its lines through. Returns False when none has
    it."""
    import os
    import subprocess
    import sys
    if (not os.path.exists(DEBIAN_PYTHON)
            or os.path.realpath(DEBIAN_PYTHON)
            == os.path.realpath(sys.executable)):
        return False
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import uvloop"],
                           capture_output=True)
    if probe.returncode != 0:
        return False
    args = [a for a in sys.argv[1:] if a != "--uvloop-only"]
    p = subprocess.run([DEBIAN_PYTHON, os.path.abspath(script),
                        "--uvloop-only"] + args, stdout=subprocess.PIPE,
                       text=True)
    sys.stdout.write(p.stdout)
    sys.stdout.flush()
    if p.returncode != 0:
        raise SystemExit(f"{DEBIAN_PYTHON} {script} --uvloop-only: "
                         f"exit status {p.returncode}")
    return True


def asyncio_twin(script, measure, first_row):
    """The main of an asyncio twin: measure(opts, new_loop, impl) under
    asyncio's own loop, then under uvloop (here, or under Debian's Python
    if only it has uvloop); `first_row` names the row an INFO line about a
    missing uvloop is attached to."""
    import asyncio
    import sys
    uvloop_only = "--uvloop-only" in sys.argv
    if uvloop_only:
        sys.argv.remove("--uvloop-only")
    opts = parse()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if not uvloop_only:
        measure(opts, asyncio.new_event_loop, "cpython")
    if uvloop is not None:
        measure(opts, uvloop.new_event_loop, "uvloop")
    elif not uvloop_only and not _uvloop_elsewhere(script):
        print(f"INFO {first_row} uvloop not installed "
              "(Debian's python3-uvloop): no uvloop column", flush=True)
