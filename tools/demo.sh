#!/bin/sh
# Runs the C twins of the seeds' programs, in the seeds' order, each under a
# header line, and prints how many passed. Usage: tools/demo.sh DIR, where DIR
# holds the built examples (build/examples). Exits non-zero if any example
# fails, hangs past its time limit, or is missing.
set -u

dir=${1:-build/examples}
limit=${CONC_DEMO_TIMEOUT:-60} # seconds allowed to each example

if [ ! -d "$dir" ]; then
    echo "demo: no such directory: $dir" >&2
    exit 2
fi

# name|what it shows, in the order of the seeds.
programs='s000_fork|seed 000 §2, os.fork, the parent and child pids
s000_process_args|seed 000 §2, Process(target=run_process, args=("test",))
s000_pool_apply_async|seed 000 §2, Pool(4) and apply_async, then close and join
s000_subprocess_call|seed 000 §3, subprocess.call (uname -s for nslookup)
s000_subprocess_communicate|seed 000 §3, Popen.communicate (tr for nslookup)
s000_queue_write_read|seed 000 §4, a Queue between a writer and a reader
s000_thread_loop|seed 000 §5, threading.Thread with a name
s000_balance_nolock|seed 000 §6, shared balance without a lock (races: no GIL)
s000_balance_lock|seed 000 §6, shared balance with threading.Lock
s000_thread_local|seed 000 §7, threading.local
s001_pool_map|seed 001 §5, Pool.map, and a pool against a process per task
s001_pool_apply|seed 001 §5, Pool.apply: one task after another
s001_pool_apply_async|seed 001 §5, Pool.apply_async, then get after join
s001_pool_apply_vs_async|seed 001 §5, apply_async and apply; apply, apply_async and map timed
s001_pool_tcp_echo|seed 001 §5, a TCP echo server whose connections Pool(4) serves, with its clients
s001_pool_callback|seed 001 §5, a callback runs in the parent
s001_pool_callback_file|seed 001 §5, workers fetch pages, a callback writes one file
s001_pool_crawler|seed 001 §5, a crawler: workers fetch, a callback parses
s001_pool_no_callback|seed 001 §5, results collected after join, no callback
s001_process_class|seed 001 §6, a Process subclass with its own run
s001_process_join10|seed 001 §6, ten processes started, then joined
s001_file_append|seed 001 §6, ten processes appending to one file
s001_daemon|seed 001 §6, a daemon process ends with the main process
s001_lock_work|seed 001 §6, a process Lock makes the work serial
s001_ticket|seed 001 §6, grabbing tickets without and with a process Lock
s001_queue_basic|seed 001 §6, Queue(3) methods and a queue shared by children
s001_queue_inout|seed 001 §6, ten writers and ten readers on Queue(3)
s001_producer_consumer|seed 001 §6, producers and consumers with end messages
s001_joinable_queue|seed 001 §6, JoinableQueue with daemon consumers
s001_semaphore_ktv|seed 001 §6, Semaphore(4) for the KTV rooms
s001_event_traffic_light|seed 001 §6, a process-shared Event as traffic light
s002_gil_counter|seed 002 §1, the GIL counter without a lock (races: no GIL)
s002_thread_instance|seed 002 §2.1, Thread(target=...)
s002_thread_subclass|seed 002 §2.2, a Thread subclass
s002_shared_variable_lock|seed 002 §3.1, a shared list guarded by an RLock
s002_queue_producer_consumer|seed 002 §3.2, producer and consumers on queue.Queue
s002_rlock_counter|seed 002 §4.1, the counter with an RLock
s002_condition_dialogue|seed 002 §4.2, a Condition dialogue
s002_semaphore|seed 002 §4.3, Semaphore(3) limiting a crawler
s002_executor_done_cancel|seed 002 §5.1, ThreadPoolExecutor submit, done, cancel, result
s002_as_completed|seed 002 §5.2.1, as_completed
s002_executor_map|seed 002 §5.2.2, Executor.map yields in input order
s002_wait_first_completed|seed 002 §5.3, wait(FIRST_COMPLETED)
s002_fib_threads_processes|seed 002 §6.1, fib on threads and processes: both scale in C
s002_io_threads_processes|seed 002 §6.2, sleeping tasks on threads and processes
s002_fork|seed 002 §6.3, os.fork
s002_process_pid|seed 002 §6.4, multiprocessing.Process and its pid
s002_pool_apply_async|seed 002 §6.5, Pool(cpu_count()).apply_async
s002_imap|seed 002 §6.6, Pool.imap and imap_unordered
s002_queue|seed 002 §6.7.1, multiprocessing.Queue between two processes
s002_manager_queue_pool|seed 002 §6.7.1, a Manager().Queue(10) used from Pool(2)
s002_pipe|seed 002 §6.7.2, Pipe between two processes
s002_manager_dict|seed 002 §6.7.3, a Manager().dict() filled by two processes
s003_thread_run|seed 003, threads left for exit() to join
s003_thread_class|seed 003, a Thread subclass with arguments
s003_thread_join50|seed 003, 50 threads started, then joined
s003_daemon|seed 003, daemon threads are not waited for at exit
s003_lock|seed 003, 50 threads and a Lock
s003_bounded_semaphore|seed 003, BoundedSemaphore(5) and active_count
s003_event_traffic_light|seed 003, Event as a traffic light
s003_process_run10|seed 003, ten processes, each with a thread
s003_queue_list|seed 003, a Queue carries data between processes
s003_pool_callback|seed 003, Pool(5).apply_async with a callback in the parent
s003_process_lock|seed 003, 100 processes and a process Lock
s003_manager_dict_list|seed 003, the dict and list of a manager shared with ten processes
s003_pipe|seed 003, a Pipe used both ways
s004_pool_map|seed 004 §1, Pool(8).map over range(5)
s004_map_async|seed 004 §1, map_async over range(20000), and 20000 apply_async
s004_callback_file|seed 004 §1, a callback writes every result to one file
s004_threadpool_map|seed 004 §2, ThreadPool(5).map
s004_executor_map_fetch|seed 004 §3, Executor.map over a generator of URLs
s004_add_done_callback|seed 004 §3, add_done_callback with a failing task
s004_asyncio_task|seed 004 §4, a task run to completion, and its result
s004_asyncio_callback|seed 004 §4, a done callback reads the result of the task
s004_asyncio_wait|seed 004 §4, three tasks under asyncio.wait, then their results
s004_asyncio_callbacks_collect|seed 004 §4, done callbacks collect three results
pool_progress_bar|a terminal progress bar driven by conc_map_opts.progress
aio_demo|seed 004 §4, coroutines await a process executor, a thread executor and a queue fed by threads; the watchdog catches a busy coroutine
aio_subprocess_pipeline|seq | grep | wc wired by coroutines through subprocess streams, and producers read at once by communicate
aio_tcp_echo|seed 001 §5, the pool TCP echo server as an asyncio server: six clients served at once by one thread
aio_crawler|seed 001 §5, the crawler pipeline with coroutines fetching from a local HTTP server on the same loop
aio_echo_every_core|an echo server run by one loop per core on one port (SO_REUSEPORT), stopped as one'

# `timeout` guards against an example that hangs; without it, run as is.
if command -v timeout >/dev/null 2>&1; then
    runner="timeout $limit"
else
    runner=""
fi

passed=0
failed=0
failures=""

run_one() { # name description
    echo "=== $1: $2 ==="
    if [ ! -x "$dir/$1" ]; then
        echo "demo: $dir/$1 is missing" >&2
        rc=127
    else
        $runner "$dir/$1"
        rc=$?
    fi
    [ "$rc" -eq 124 ] && echo "demo: $1 timed out after ${limit}s" >&2
    tally "$1" "$rc"
    echo
}

tally() { # name exit-status: counts a pass or a failure
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
    else
        echo "demo: $1 failed (exit status $2)" >&2
        failed=$((failed + 1))
        failures="$failures $1"
    fi
}

# Sends SIGTERM to a background program, gives it the time limit to exit,
# then SIGKILL; returns its exit status. (Not `timeout`, which would pass
# the SIGTERM on as a death by signal: the program's own handler must see
# it and exit 0.)
stop_within() { # pid
    kill -TERM "$1" 2>/dev/null
    waited=0
    while kill -0 "$1" 2>/dev/null && [ "$waited" -lt "$((limit * 10))" ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1"
}

# Seed 000 §9's master in the background and its worker, over TCP on
# CONC_DEMO_PORT (default: a port from this shell's pid); the worker starts
# once the master has put its tasks. Both must exit 0.
run_pair() {
    master=s000_task_master
    worker=s000_task_worker
    port=${CONC_DEMO_PORT:-$((20000 + $$ % 20000))}
    echo "=== $master + $worker: seed 000 §9, a manager's queues over TCP ==="
    if [ ! -x "$dir/$master" ] || [ ! -x "$dir/$worker" ]; then
        echo "demo: $dir/$master or $dir/$worker is missing" >&2
        failed=$((failed + 1))
        failures="$failures $master"
        echo
        return
    fi
    log=$(mktemp)
    $runner "$dir/$master" "$port" >"$log" 2>&1 &
    mpid=$!
    waited=0
    # Polls the master's output, up to the time limit, for its ready line.
    while ! grep -q "Try get results" "$log" && kill -0 "$mpid" 2>/dev/null &&
        [ "$waited" -lt "$((limit * 10))" ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    $runner "$dir/$worker" 127.0.0.1 "$port"
    wrc=$?
    wait "$mpid"
    mrc=$?
    cat "$log"
    rm -f "$log"
    tally "$master" "$mrc"
    tally "$worker" "$wrc"
    echo
}

# The Redis twins of seed 000 §9: a redis-server of their own on a free
# loopback port (CONC_DEMO_REDIS_PORT, default one from this shell's pid),
# a worker in the background, the master in front; once the master has all
# its results the worker is stopped with SIGTERM. Both must exit 0.
run_dist() {
    master=dist_master
    worker=dist_worker
    [ -x "$dir/$master" ] || return 0 # built only where hiredis is
    echo "=== $master + $worker: seed 000 §9 over Redis ==="
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "demo: redis-server is missing (make deps installs it)" >&2
        failed=$((failed + 1))
        failures="$failures $master"
        return
    fi
    rport=${CONC_DEMO_REDIS_PORT:-$((40000 + $$ % 20000))}
    rdir=$(mktemp -d)
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$rdir" \
        --save "" --appendonly no --daemonize no >"$rdir/log" 2>&1 &
    rpid=$!
    waited=0
    while ! redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG &&
        [ "$waited" -lt 100 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    export REDIS_URL="redis://127.0.0.1:$rport"
    wlog=$(mktemp)
    # Not under `timeout`, which would pass our SIGTERM on as a death by
    # signal: the worker's own handler must see it and exit 0. Bounded by
    # hand instead.
    "$dir/$worker" >"$wlog" 2>&1 &
    wpid=$!
    $runner "$dir/$master"
    mrc=$?
    stop_within "$wpid"
    wrc=$?
    unset REDIS_URL
    cat "$wlog"
    rm -f "$wlog"
    kill -TERM "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    rm -rf "$rdir"
    tally "$master" "$mrc"
    tally "$worker" "$wrc"
    echo
}

# The WebSocket echo server in the background on a free port (it prints
# "listening on PORT" first), the client sending three messages to it, then
# SIGTERM to the server, which closes with 1001 and exits 0. Both must
# exit 0, and the client must print the three messages back.
run_ws() {
    server=ws_echo_server
    client=ws_client
    echo "=== $server + $client: seed 004 §6, a WebSocket echo server and its client ==="
    slog=$(mktemp)
    "$dir/$server" 0 >"$slog" 2>&1 &
    spid=$!
    waited=0
    while ! grep -q '^listening on ' "$slog" && [ "$waited" -lt 100 ] &&
        kill -0 "$spid" 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
    done
    wport=$(sed -n 's/^listening on //p' "$slog")
    cout=$($runner "$dir/$client" "ws://127.0.0.1:$wport/" hello conc websockets)
    crc=$?
    echo "$cout"
    [ "$crc" -eq 0 ] && [ "$cout" != "hello${newline}conc${newline}websockets" ] &&
        crc=1
    stop_within "$spid"
    src=$?
    cat "$slog"
    rm -f "$slog"
    tally "$client" "$crc"
    tally "$server" "$src"
    echo
}

listed=" s000_task_master s000_task_worker dist_master dist_worker ws_echo_server ws_client "
newline='
'
old_ifs=$IFS
IFS=$newline
for line in $programs; do
    IFS=$old_ifs
    name=${line%%|*}
    listed="$listed$name "
    run_one "$name" "${line#*|}"
done
IFS=$old_ifs
run_pair
run_dist
run_ws

# Examples not in the list above (added later) run afterwards, by name.
for path in "$dir"/*; do
    name=${path##*/}
    if [ ! -f "$path" ] || [ ! -x "$path" ]; then
        continue
    fi
    case "$listed" in
    *" $name "*) continue ;;
    esac
    run_one "$name" "an example of the seeds"
done

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
    echo "failed:$failures"
    exit 1
fi
