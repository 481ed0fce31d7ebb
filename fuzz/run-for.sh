#!/bin/sh
# Fuzz one target for a total wall-clock time, restarting libFuzzer after an out-of-memory or
# timeout report (automerge 0.12.0 has inputs that allocate gigabytes; see README.md) and stopping
# at the first real crash. One process at a time, niced.
#
#   ./run-for.sh TARGET SECONDS [extra libFuzzer flags...]
#
# Logs: logs/TARGET.run-N.log (one per libFuzzer run); artifacts as usual in artifacts/TARGET/.
set -u
target=$1; total=$2; shift 2
cd "$(dirname "$0")"
mkdir -p logs "artifacts/$target" "corpus/$target"
RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz build -O "$target" || exit 1
start=$(date +%s)
run=0
while :; do
    left=$((total - ($(date +%s) - start)))
    [ "$left" -gt 0 ] || break
    run=$((run + 1))
    crashes_before=$(ls "artifacts/$target" | grep -c '^crash-')
    RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run -O "$target" -- \
        -max_total_time="$left" -max_len=65536 -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=256 \
        -print_final_stats=1 "$@" > "logs/$target.run-$run.log" 2>&1
    status=$?
    echo "run $run: exit $status after $(( $(date +%s) - start ))s"
    crashes_after=$(ls "artifacts/$target" | grep -c '^crash-')
    if [ "$crashes_after" -gt "$crashes_before" ]; then
        echo "crash found, stopping (see artifacts/$target)"
        exit 1
    fi
    [ "$status" -eq 0 ] && break
done
echo "done: $run run(s), $(( $(date +%s) - start ))s"
