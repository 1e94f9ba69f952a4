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
programs='s000_thread_loop|seed 000 §5, threading.Thread with a name
s000_balance_nolock|seed 000 §6, shared balance without a lock (races: no GIL)
s000_balance_lock|seed 000 §6, shared balance with threading.Lock
s000_thread_local|seed 000 §7, threading.local
s002_gil_counter|seed 002 §1, the GIL counter without a lock (races: no GIL)
s002_thread_instance|seed 002 §2.1, Thread(target=...)
s002_thread_subclass|seed 002 §2.2, a Thread subclass
s002_shared_variable_lock|seed 002 §3.1, a shared list guarded by an RLock
s002_queue_producer_consumer|seed 002 §3.2, producer and consumers on queue.Queue
s002_rlock_counter|seed 002 §4.1, the counter with an RLock
s002_condition_dialogue|seed 002 §4.2, a Condition dialogue
s002_semaphore|seed 002 §4.3, Semaphore(3) limiting a crawler
s003_thread_run|seed 003, threads left for exit() to join
s003_thread_class|seed 003, a Thread subclass with arguments
s003_thread_join50|seed 003, 50 threads started, then joined
s003_daemon|seed 003, daemon threads are not waited for at exit
s003_lock|seed 003, 50 threads and a Lock
s003_bounded_semaphore|seed 003, BoundedSemaphore(5) and active_count
s003_event_traffic_light|seed 003, Event as a traffic light'

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
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        [ "$rc" -eq 124 ] && echo "demo: $1 timed out after ${limit}s" >&2
        echo "demo: $1 failed (exit status $rc)" >&2
        failed=$((failed + 1))
        failures="$failures $1"
    fi
    echo
}

listed=" "
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
