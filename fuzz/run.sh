#!/bin/sh
# Runs every fuzz target of a build (default build-fuzz) for FUZZ_SECONDS
# seconds each (default 20), starting from its seed corpus in
# fuzz/corpus/<name>/. New inputs go to <build>/fuzz/work/<name>/corpus,
# never into the source tree. Every target runs; the script fails if any
# found a crash, a leak, undefined behaviour or a timeout, and prints the
# end of its log and where the input that caused it was saved.
set -eu
build=${1:-build-fuzz}
src=$(cd "$(dirname "$0")" && pwd)
secs=${FUZZ_SECONDS:-20}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=""
found=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    found=1
    name=${bin##*/fuzz_}
    work="$build/fuzz/work/$name"
    mkdir -p "$work/corpus" "$work/artifacts"
    seeds=""
    [ -d "$src/corpus/$name" ] && seeds="$src/corpus/$name"
    printf 'fuzz %-14s %ss ... ' "$name" "$secs"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" $seeds \
        >"$work/log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
        echo "ok ($runs runs)"
    else
        echo "FAILED"
        tail -n 60 "$work/log"
        echo "fuzz: $name failed; its input is in $work/artifacts/"
        failed="$failed $name"
    fi
done
[ "$found" = 1 ] || { echo "fuzz: no targets in $build/fuzz"; exit 1; }
[ -z "$failed" ] || { echo "fuzz: failed:$failed"; exit 1; }
