#!/usr/bin/python3
"""A worker in Python for a C master (examples/dist_master.c): serves the
queue "seed000" through the wire format of docs/scale-out.md, with
python3-redis. It runs "square_text" tasks; a task it does not know fails
with CONC_ENOENT, as a C worker's would. Ctrl-C stops it.

REDIS_URL (default redis://127.0.0.1:6379) and REDIS_PASSWORD as for the
C examples; RECLAIM_IDLE (seconds, default 2) as dist_worker.c sets it."""
import os
import socket
import time

import redis

QUEUE = "seed000"
TASKS, GROUP = "{conc:%s}:tasks" % QUEUE, "workers"
CONC_ENOENT = -2
FINISH = """
local won = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if won then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'r', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
if won then return 1 end
return 0
"""


def square_text(arg):
    n = int(arg)
    print("Run task %d * %d..." % (n, n), flush=True)
    time.sleep(1)
    return ("%d * %d = %d" % (n, n, n * n)).encode()


TASKS_BY_NAME = {b"square_text": square_text}


def handle(r, entry, f):
    key = lambda suffix: "{conc:%s}:%s" % (QUEUE, suffix)
    res = key("res:" + f[b"id"].decode())
    if r.exists(res):  # cancelled, or finished by another worker
        r.xack(TASKS, GROUP, entry)
        r.xdel(TASKS, entry)
        return
    fn = TASKS_BY_NAME.get(f[b"fn"])
    if fn is None:
        value = b"e%d no task named %s on a Python worker" % (CONC_ENOENT,
                                                               f[b"fn"])
    else:
        try:
            value = b"o" + fn(f.get(b"arg", b""))
        except Exception as e:  # a failure travels as ValueError's code
            value = b"e-10005 " + repr(e).encode()
    r.eval(FINISH, 3, res, key("done:" + f[b"sub"].decode()), TASKS,
           value, f[b"ttl"], f[b"id"], entry, GROUP)


def main():
    r = redis.Redis.from_url(os.environ.get("REDIS_URL",
                                            "redis://127.0.0.1:6379"),
                             password=os.environ.get("REDIS_PASSWORD"))
    me = "py-%s-%d" % (socket.gethostname(), os.getpid())
    idle_ms = int(float(os.environ.get("RECLAIM_IDLE", "2")) * 1000)
    try:
        r.xgroup_create(TASKS, GROUP, id="0", mkstream=True)
    except redis.ResponseError:  # BUSYGROUP: it exists
        pass
    try:
        while True:
            # Dead workers' tasks first, then new ones.
            _, claimed, *_ = r.xautoclaim(TASKS, GROUP, me, idle_ms, "0-0",
                                          count=8)
            got = r.xreadgroup(GROUP, me, {TASKS: ">"}, count=1, block=500)
            for entry, fields in claimed + (got[0][1] if got else []):
                if fields:
                    handle(r, entry, fields)
    except KeyboardInterrupt:
        print("Worker Exit.")


if __name__ == "__main__":
    main()
