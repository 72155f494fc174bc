#!/usr/bin/env bash
# `make bench`: runs every benchmark, prints their tables, merges their figures into
# reports/bench.json. Ratios are computed from figures measured in this same run.
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
export BENCH_JSON_DIR=$BUILD/bench-json
rm -rf "$BENCH_JSON_DIR"; mkdir -p "$BENCH_JSON_DIR" reports
status=0
for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b") =="
    "$b" || { echo "$(basename "$b") failed"; status=1; }
    echo
done
for s in scripts/bench.d/*.sh scripts/bench.d/*.py; do
    [ -f "$s" ] || continue
    echo "== $(basename "$s") =="
    case "$s" in
        *.py) /usr/bin/python3 "$s" || { echo "$s failed"; status=1; } ;;
        *) bash "$s" || { echo "$s failed"; status=1; } ;;
    esac
    echo
done
/usr/bin/python3 - "$BENCH_JSON_DIR" reports/bench.json <<'PY'
import json, os, sys, platform
src, dst = sys.argv[1], sys.argv[2]
out = {"machine": {"nproc": os.cpu_count(), "kernel": platform.release()}, "results": {}}
for name in sorted(os.listdir(src)):
    if name.endswith(".json"):
        with open(os.path.join(src, name)) as f:
            try:
                out["results"][name[:-5]] = json.load(f)
            except ValueError as e:
                out["results"][name[:-5]] = {"error": str(e)}
with open(dst, "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
print("wrote", dst, "with", ", ".join(sorted(out["results"])) or "nothing")
PY
exit $status
