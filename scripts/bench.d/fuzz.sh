#!/usr/bin/env bash
# Fuzz benchmark (issue #10): executions per second and edge coverage of every libFuzzer
# target, one at a time (single core, ASan/UBSan on), each started from a private copy of
# its checked-in corpus for FUZZ_BENCH_TIME seconds (default 10; the issue's figure is 30).
# Prints a table; writes $BENCH_JSON_DIR/fuzz.json. Goals: virtqueue targets >= 50000
# exec/s, every target >= 5000 exec/s (reported as pass/fail, not enforced: the machine
# may be shared). FUZZ_BENCH_TARGETS="a b" limits the run to those targets.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
secs=${FUZZ_BENCH_TIME:-10}
out=${BENCH_JSON_DIR:-$BUILD/bench-json}
mkdir -p "$out"
make -k --no-print-directory BUILD="$BUILD" fuzz >"$BUILD/fuzz-build.log" 2>&1 ||
    echo "fuzz bench: some fuzz targets did not build (see $BUILD/fuzz-build.log)"
targets=${FUZZ_BENCH_TARGETS:-$(ls fuzz/fuzz_*.c | sed -E 's|fuzz/fuzz_(.*)\.c|\1|')}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '%-16s %10s %12s %8s %8s %s\n' target exec/s exec/cpu-s cov goal status
json="{\"seconds_per_target\": $secs, \"load_average\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"targets\": {"
sep=""
for t in $targets; do
    if [ ! -x "$BUILD/fuzz/$t" ]; then
        printf '%-16s %s\n' "$t" "not built"; continue
    fi
    mkdir -p "$tmp/$t" "$tmp/art-$t"
    cp fuzz/corpus/"$t"/* "$tmp/$t"/ 2>/dev/null
    maxlen=4096
    case $t in trace|pcap) maxlen=65536 ;; loader_pvh) maxlen=131072 ;;
               gpt|virtio_mmio|split_vq|packed_vq|qcow2) maxlen=20000 ;; esac
    log=$tmp/$t.log
    # CPU seconds used, so the rate can also be given per CPU second (the machine may be
    # shared: wall-clock exec/s then understates what one free core does).
    TIMEFORMAT='%U %S'
    # -seed: the same mutation sequence on every run, so two runs differ only by the code.
    { time "$BUILD/fuzz/$t" -seed=1 -max_total_time="$secs" -print_final_stats=1 -max_len=$maxlen \
        -close_fd_mask=1 -artifact_prefix="$tmp/art-$t/" "$tmp/$t" >"$log" 2>&1; } 2>"$tmp/$t.time"
    rc=$(grep -c 'ERROR: libFuzzer\|SUMMARY: ' "$log")
    if [ "$rc" -ne 0 ]; then    # keep the evidence: the log and the crashing input
        mkdir -p "$BUILD/fuzz-bench-crashes"
        cp "$log" "$tmp/art-$t"/* "$BUILD/fuzz-bench-crashes/" 2>/dev/null
        echo "$t: crashed during the benchmark; log and input in $BUILD/fuzz-bench-crashes/"
    fi
    cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/$t.time")
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    runs=${runs:-0}
    eps_cpu=$(awk -v r="$runs" -v c="$cpu" 'BEGIN { printf "%d", (c > 0) ? r / c : 0 }')
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
    # A crash ends the run before the final stats: take the last progress line's rate.
    [ -n "$eps" ] || eps=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    eps=${eps:-0}; cov=${cov:-0}
    case $t in split_vq|packed_vq) goal=50000 ;; *) goal=5000 ;; esac
    status=ok; [ "$eps" -ge "$goal" ] || status=below
    [ "$eps_cpu" -ge "$goal" ] || status="$status,below-per-cpu-s"
    [ "$rc" -eq 0 ] || status="$status,crashed"
    printf '%-16s %10s %12s %8s %8s %s\n' "$t" "$eps" "$eps_cpu" "$cov" "$goal" "$status"
    json+="$sep\"$t\": {\"exec_per_sec\": $eps, \"exec_per_cpu_sec\": $eps_cpu, \"runs\": $runs, \"cpu_sec\": $cpu, \"edge_cov\": $cov, \"goal_exec_per_sec\": $goal, \"meets_goal\": $([ "$eps" -ge "$goal" ] && echo true || echo false), \"meets_goal_per_cpu_sec\": $([ "$eps_cpu" -ge "$goal" ] && echo true || echo false), \"crashed\": $([ "$rc" -eq 0 ] && echo false || echo true)}"
    sep=", "
done
json+="}}"
echo "$json" >"$out/fuzz.json"
echo "wrote $out/fuzz.json"
