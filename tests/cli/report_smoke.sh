#!/usr/bin/env bash
# make report's generator (reports/make_report.py) on a small synthetic results file,
# kept work dir, baseline and bench.json: the page names every scenario, its images are
# valid PNG files, every link resolves, the kept trace becomes Chrome trace-event JSON,
# and the optional inputs (bench.json, coverage) degrade to a line saying how to get them.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
GEN=${REPORT_GEN:-reports/make_report.py}   # overridable to check that the test can fail
MCLASS=test-machine-class

mkdir -p "$TMP/keep/perf-blk-latency-sim" "$TMP/keep/boot-hello-sim" "$TMP/base"
cat >"$TMP/results.json" <<JSON
{"machine_class": "$MCLASS", "results": [
 {"scenario": "boot-hello", "backend": "sim", "status": "pass", "reasons": [], "wall_s": 0.25,
  "exit_status": 1, "metrics": {"instructions": 153368, "perf_samples": {"wall_s": [0.25]}}},
 {"scenario": "boot-hello", "backend": "qemu", "status": "pass", "reasons": [], "wall_s": 0.3,
  "exit_status": 1, "metrics": {"perf_samples": {"wall_s": [0.3]}}},
 {"scenario": "fault-<odd>&name", "backend": "sim", "status": "fail", "reasons": ["exit status 4 (guest fault), expected 1"],
  "wall_s": 0.1, "exit_status": 4, "metrics": {"perf_samples": {"wall_s": [0.1]}}},
 {"scenario": "perf-blk-latency", "backend": "sim", "status": "pass", "reasons": [], "wall_s": 0.6,
  "exit_status": 1, "metrics": {"instructions": 2000965, "perf_samples": {
   "wall_s": [0.61, 0.63, 0.6, 0.66, 0.62], "read4k_median_ns": [5100, 5100, 5100, 5100, 5100]},
   "perf_verdicts": {"wall_s": {"before_median": 0.6, "after_median": 0.62, "change": 0.033,
    "p": 0.2, "regressed": false, "summary": "median 0.6 -> 0.62 (+3.3%), p=0.2000"}}}}
]}
JSON
cat >"$TMP/base/$MCLASS.json" <<JSON
{"perf-blk-latency/sim": {"wall_s": [0.58, 0.6, 0.59, 0.61, 0.6], "read4k_median_ns": [5000, 5000, 5000, 5000, 5000]}}
JSON
printf 'hello\nRESULT op=read4k n=2000 min_ns=4000 median_ns=5100 p90_ns=6000 p99_ns=9000 max_ns=20000 min_t=1 median_t=2 p90_t=3 p99_t=4 max_t=5 req_per_s=190000\n' \
    >"$TMP/keep/perf-blk-latency-sim/serial.txt"
echo "hello, world" >"$TMP/keep/boot-hello-sim/serial.txt"
cp traces/golden/boot-hello.trace "$TMP/keep/boot-hello-sim/run.trace"
cat >"$TMP/bench.json" <<'JSON'
{"machine": {"nproc": 2, "kernel": "6.1"}, "results": {
 "boot": {"vmlab_sim_boot_ms": {"median": 3.1, "min": 2.9, "n": 15},
          "qemu_tcg_boot_ms": {"median": 36.0, "min": 34.0, "n": 15}, "vmlab_over_qemu": 0.086},
 "guest_virtio": {"host_tsc_khz": 2000000, "errors": {}, "results": {
   "vmlab": {"getid": {"min_ns": 300, "median_ns": 400, "p90_ns": 500, "p99_ns": 900, "max_ns": 3000, "n": 10000, "wall_ns_per_req": 800},
             "read4k": {"min_ns": 900, "median_ns": 1000, "p90_ns": 1200, "p99_ns": 2000, "max_ns": 9000, "n": 10000, "wall_ns_per_req": 2500}},
   "qemu": {"getid": {"min_ns": 500, "median_ns": 630, "p90_ns": 700, "p99_ns": 1500, "max_ns": 9000, "n": 10000, "wall_ns_per_req": 1200},
            "read4k": {"min_ns": 20000, "median_ns": 24000, "p90_ns": 30000, "p99_ns": 50000, "max_ns": 90000, "n": 10000, "wall_ns_per_req": 26000}}}},
 "sim": {"loop_mips": 610.5}}}
JSON

run_gen() { "$PY" "$GEN" --results "$TMP/results.json" --baselines "$TMP/base" --vmlab "$VMLAB" \
    --coverage "$TMP/nocov" "$@"; }

out=$(run_gen --keep "$TMP/keep" --bench "$TMP/bench.json" --out "$TMP/out" 2>&1); rc=$?
check "generator exits 0 (exit $rc: ${out:0:300})" test $rc -eq 0
page=$TMP/out/index.html
check "index.html written" test -s "$page"
for sc in boot-hello perf-blk-latency 'fault-&lt;odd&gt;&amp;name' read4k_median_ns; do
    check "page names $sc" grep -qF "$sc" "$page"
done
check "failure reason shown" grep -qF "exit status 4 (guest fault), expected 1" "$page"
check "baseline median shown for the perf scenario" grep -qF "5000" "$page"

# Every src/href that is not an absolute URL or an anchor must resolve to a file; images
# must be PNG (magic + IHDR) or SVG; exported traces must be trace-event JSON.
"$PY" - "$page" >"$TMP/links.txt" 2>&1 <<'PY'
import html.parser, json, os, sys
page = sys.argv[1]; base = os.path.dirname(page)
class P(html.parser.HTMLParser):
    refs = []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append((tag, v))
p = P(); p.feed(open(page).read())
bad, imgs, traces = [], 0, 0
for tag, ref in p.refs:
    if ref.startswith(("#", "http://", "https://")):
        continue
    path = os.path.join(base, ref)
    if not os.path.isfile(path):
        bad.append(f"{ref}: missing"); continue
    data = open(path, "rb").read()
    if tag == "img":
        imgs += 1
        if not ((data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR") or b"<svg" in data[:500]):
            bad.append(f"{ref}: not PNG/SVG")
    if ref.startswith("traces/"):
        traces += 1
        try:
            j = json.loads(data)
            ev = j["traceEvents"] if isinstance(j, dict) else j
            if not ev: bad.append(f"{ref}: no events")
        except Exception as e:
            bad.append(f"{ref}: {e}")
print(f"refs={len(p.refs)} imgs={imgs} traces={traces}")
for b in bad: print("BAD", b)
PY
check "links resolve, images are PNG/SVG, traces are JSON ($(head -c 300 "$TMP/links.txt" | tr '\n' ' '))" \
    bash -c "grep -q '^refs=' '$TMP/links.txt' && ! grep -q '^BAD' '$TMP/links.txt'"
nimg=$(sed -nE 's/.*imgs=([0-9]+).*/\1/p' "$TMP/links.txt")
check "at least 5 plots (perf x2, guest percentiles, boot, blk): $nimg" test "${nimg:-0}" -ge 5
check "boot-hello trace exported and linked" grep -qF 'href="traces/boot-hello-sim.json"' "$page"
check "page points at ui.perfetto.dev" grep -qF "ui.perfetto.dev" "$page"
check "serial log linked" grep -qF 'href="artifacts/perf-blk-latency-sim/serial.txt"' "$page"
check "coverage section says how to get it" grep -qF "make coverage" "$page"
check "QEMU boot figure plotted" grep -qF "img/bench-boot.png" "$page"

# No bench.json, no kept dir: still a page, saying how to get the missing parts.
out=$(run_gen --bench "$TMP/absent.json" --out "$TMP/out2" 2>&1); rc=$?
check "generator without bench.json/keep exits 0 (exit $rc: ${out:0:200})" test $rc -eq 0
check "missing bench.json: says make bench" grep -qF "make bench" "$TMP/out2/index.html"
check "missing keep dir: says there are no traces" grep -qF "No traces" "$TMP/out2/index.html"

# bench.json without QEMU figures
"$PY" -c "
import json,sys; b=json.load(open(sys.argv[1])); r=b['results']
del r['boot']['qemu_tcg_boot_ms'], r['boot']['vmlab_over_qemu'], r['guest_virtio']['results']['qemu']
json.dump(b, open(sys.argv[2],'w'))" "$TMP/bench.json" "$TMP/bench-noqemu.json"
out=$(run_gen --bench "$TMP/bench-noqemu.json" --out "$TMP/out3" 2>&1); rc=$?
check "generator with vmlab-only bench.json exits 0 (exit $rc: ${out:0:300})" test $rc -eq 0
check "absent QEMU figures are said so" grep -qF "QEMU boot figure absent" "$TMP/out3/index.html"

# A coverage summary is shown when present
mkdir -p "$TMP/cov"
cat >"$TMP/cov/summary.json" <<'JSON'
{"generated": "now", "tests": "3 passed, 0 failed", "total": {"dir": "total", "files": 2, "lines": 20, "lines_hit": 10, "branches": 8, "branches_hit": 2, "functions": 4, "functions_hit": 3},
 "dirs": [{"dir": "devices/virtio/", "files": 2, "lines": 20, "lines_hit": 10, "branches": 8, "branches_hit": 2, "functions": 4, "functions_hit": 3}]}
JSON
out=$("$PY" "$GEN" --results "$TMP/results.json" --coverage "$TMP/cov" --bench "$TMP/absent.json" --out "$TMP/out4" 2>&1)
check "coverage row with line and branch % shown" \
    bash -c "grep -qF 'devices/virtio/' '$TMP/out4/index.html' && grep -qF '>50.0<' '$TMP/out4/index.html' && grep -qF '>25.0<' '$TMP/out4/index.html'"

# A file that is not a results file is refused with a message, not a traceback.
echo '[1,2]' >"$TMP/bad.json"
out=$("$PY" "$GEN" --results "$TMP/bad.json" --out "$TMP/out5" 2>&1); rc=$?
check "non-results file refused (exit $rc: ${out:0:200})" \
    bash -c "[ $rc -ne 0 ] && grep -q 'not a vmlab-scenarios results file' <<<'$out' && ! grep -q Traceback <<<'$out'"
finish
