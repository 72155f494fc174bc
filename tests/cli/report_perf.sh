#!/usr/bin/env bash
# make report's performance section with metric kinds (harness/README.md): a virtual-time
# metric is shown against deterministic.json as the same or CHANGED with both values, a host
# latency distribution (min..max per run) is plotted as one distribution with its percentile
# table, in host ns, and a scenario skipped for want of a baseline shows why.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
GEN=${REPORT_GEN:-reports/make_report.py}   # overridable to check that the test can fail
MCLASS=test-machine-class
mkdir -p "$TMP/base" "$TMP/keep/lat-host-sim"
cat >"$TMP/results.json" <<JSON
{"machine_class": "$MCLASS", "results": [
 {"scenario": "lat-virtual", "backend": "sim", "status": "fail",
  "reasons": ["deterministic metrics changed (baseline -> this run): read4k_median_ns: 182 -> 190"],
  "wall_s": 0.02, "exit_status": 1, "metrics": {"instructions": 1258397,
  "perf_kinds": {"wall_s": "host", "cpu_s": "host", "read4k_median_ns": "virtual", "read4k_max_ns": "virtual"},
  "perf_samples": {"wall_s": [0.02], "cpu_s": [0.018], "read4k_median_ns": [190], "read4k_max_ns": [182]}}},
 {"scenario": "lat-host", "backend": "sim", "status": "skip",
  "reasons": ["host-time metrics not judged: no baseline for lat-host/sim on machine class $MCLASS; \`harness/vmlab-scenarios run lat-host --update-baselines\` records one"],
  "wall_s": 0.04, "exit_status": 1, "metrics": {
  "perf_kinds": {"wall_s": "host", "cpu_s": "host", "r_min_ns": "host", "r_median_ns": "host",
                 "r_p90_ns": "host", "r_p99_ns": "host", "r_max_ns": "host"},
  "perf_samples": {"wall_s": [0.04, 0.041, 0.039], "cpu_s": [0.03, 0.031, 0.03],
   "r_min_ns": [950, 960, 940], "r_median_ns": [1560, 1570, 1555], "r_p90_ns": [1610, 1620, 1600],
   "r_p99_ns": [1950, 2010, 1900], "r_max_ns": [25000, 4100000, 61000]}}}
]}
JSON
cat >"$TMP/base/deterministic.json" <<'JSON'
{"lat-virtual/sim": {"instructions": 1258397, "read4k_median_ns": 182, "read4k_max_ns": 182}}
JSON
printf 'RESULT op=read4k n=2000 min_ns=950 median_ns=1560 p90_ns=1610 p99_ns=1950 max_ns=25000 min_t=1 median_t=2 p90_t=3 p99_t=4 max_t=5\n' \
    >"$TMP/keep/lat-host-sim/serial.txt"

out=$("$PY" "$GEN" --results "$TMP/results.json" --baselines "$TMP/base" --keep "$TMP/keep" \
    --bench "$TMP/absent.json" --coverage "$TMP/nocov" --out "$TMP/out" 2>&1); rc=$?
check "generator exits 0 (exit $rc: ${out:0:300})" test $rc -eq 0
page=$TMP/out/index.html
text=$("$PY" -c 'import html,re,sys; print(html.unescape(re.sub(r"<[^>]+>", " ", open(sys.argv[1]).read())))' "$page")
check "changed virtual metric shows baseline and new value" grep -qF "CHANGED: 182 -> 190" <<<"$text"
check "unchanged virtual metric shows as the same" grep -qF "same as baseline" <<<"$text"
check "virtual metric gets no histogram" bash -c "! grep -qF 'perf-lat-virtual_sim-read4k' '$page'"
check "host distribution plotted" test -s "$TMP/out/img/dist-lat-host_sim.png"
check "distribution plot is a PNG" bash -c "head -c 8 '$TMP/out/img/dist-lat-host_sim.png' | grep -q PNG"
check "percentile table gives the spread over runs (p99: 1900 .. 2010)" \
    grep -qE "p99 +r_p99_ns +1900 +1950 +2010" <<<"$text"
check "distribution metrics not drawn again one by one" bash -c "! grep -qF 'perf-lat-host_sim-r_p99_ns' '$page'"
check "wall and CPU time still plotted run by run" grep -qF "perf-lat-host_sim-cpu_s" "$page"
check "skip reason names the command that records a baseline" \
    grep -qF "harness/vmlab-scenarios run lat-host --update-baselines" <<<"$text"
check "guest percentiles of a host-clock run are labelled host ns" grep -qF "host ns (--tsc host)" <<<"$text"
finish
