"""Reads the per-stage timestamps of a build with -DCONC_DIST_TRACE=ON
(src/dist/trace.h) and prints, for each pair of successive stages of a
task's round trip, the median and 90th percentile of the time between
them, over the tasks that passed every stage once.

    cmake -S . -B build-trace -DCONC_DIST_TRACE=ON && cmake --build build-trace
    CONC_DIST_TRACE=/tmp/t.log build-trace/bench/bench_dist
    python3 bench/dist_trace.py /tmp/t.log
"""
import collections
import sys

# The stages in the order a task passes them: the submitter appends its
# XADD, a worker reads the entry (and checks its result key), runs it,
# sends its result, the submitter's watcher reads the notice and completes
# the future, and the caller has its result (bench_dist's round trips
# write "woke" without a task id: it goes to the task completed last).
STAGES = ["submit", "read", "run", "ran", "send", "notice", "done", "woke"]


def main(path):
    times = collections.defaultdict(dict)
    last_done = None
    with open(path) as f:
        lines = [line.split() for line in f]
    lines = sorted((p for p in lines if len(p) == 3), key=lambda p: int(p[0]))
    for parts in lines:
        ns, stage, task = int(parts[0]), parts[1], parts[2]
        if stage == "woke":
            if last_done is None:
                continue
            task, last_done = last_done, None
        elif stage == "done":
            last_done = task
        if stage in times[task]:
            times[task][stage] = None  # passed twice: not a clean one
        else:
            times[task][stage] = ns
    full = [t for t in times.values()
            if all(t.get(s) is not None for s in STAGES)]
    if not full:  # not bench_dist's round trips: no "woke"
        STAGES.pop()
        full = [t for t in times.values()
                if all(t.get(s) is not None for s in STAGES)]
    print("%d tasks traced, %d through every stage once" %
          (len(times), len(full)))
    if not full:
        return
    for a, b in list(zip(STAGES, STAGES[1:])) + [("submit", STAGES[-1])]:
        d = sorted(t[b] - t[a] for t in full)
        print("%-8s -> %-8s p50 %7.1f us  p90 %7.1f us" %
              (a, b, d[len(d) // 2] / 1e3, d[len(d) * 9 // 10] / 1e3))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
