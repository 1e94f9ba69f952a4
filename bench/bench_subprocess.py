"""CPython twin of bench_subprocess.c: subprocess.run(['true']), one run
after the other."""
import subprocess

import bench_common as bc


def run_true(n):
    run = subprocess.run
    t0 = bc.now()
    for _ in range(n):
        if run(["true"]).returncode != 0:
            raise SystemExit("true failed")
    return bc.now() - t0, n


def main():
    opts = bc.parse()
    bc.row(opts, "subprocess_run", run_true, True, 5)


if __name__ == "__main__":
    main()
