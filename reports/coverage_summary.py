"""Per-directory line/branch/function coverage from an lcov tracefile.

usage: coverage_summary.py LCOV_INFO ROOT OUT_JSON [NOTE]
Prints a table (one row per source directory, plus the total) and writes OUT_JSON, which
make_report.py shows. Files are grouped by their own directory (vmm/kvm/ is not in vmm/)."""
import datetime
import json
import os
import sys

ORDER = ["vmm/", "vmm/kvm/", "sim/", "devices/", "devices/virtio/", "devices/disk/", "traces/"]


def parse(path):
    """SF -> {lines, lines_hit, branches, branches_hit, functions, functions_hit}, recounted
    from the DA/BRDA/FNDA records (the LF/LH summary lines can disagree after merges)."""
    files = {}
    cur = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SF:"):
                cur = files.setdefault(line[3:], {"da": {}, "br": {}, "fn": {}})
            elif cur is None:
                continue
            elif line.startswith("DA:"):
                ln, cnt = line[3:].split(",")[:2]
                cur["da"][ln] = cur["da"].get(ln, 0) + int(cnt)
            elif line.startswith("BRDA:"):
                ln, blk, br, taken = line[5:].split(",")
                k = (ln, blk, br)
                cur["br"][k] = cur["br"].get(k, 0) + (0 if taken == "-" else int(taken))
            elif line.startswith("FNDA:"):
                cnt, name = line[5:].split(",", 1)
                cur["fn"][name] = cur["fn"].get(name, 0) + int(cnt)
            elif line.startswith("FN:"):
                cur["fn"].setdefault(line[3:].split(",", 1)[1], 0)
            elif line == "end_of_record":
                cur = None
    out = {}
    for sf, d in files.items():
        out[sf] = {"lines": len(d["da"]), "lines_hit": sum(1 for v in d["da"].values() if v),
                   "branches": len(d["br"]), "branches_hit": sum(1 for v in d["br"].values() if v),
                   "functions": len(d["fn"]), "functions_hit": sum(1 for v in d["fn"].values() if v)}
    return out


def summarize(files, root):
    dirs = {}
    keys = ("lines", "lines_hit", "branches", "branches_hit", "functions", "functions_hit")
    for sf, c in files.items():
        rel = os.path.relpath(sf, root)
        d = os.path.dirname(rel) + "/" if os.path.dirname(rel) else "./"
        agg = dirs.setdefault(d, dict.fromkeys(keys, 0) | {"dir": d, "files": 0})
        agg["files"] += 1
        for k in keys:
            agg[k] += c[k]
    rows = sorted(dirs.values(), key=lambda a: (ORDER.index(a["dir"]) if a["dir"] in ORDER else 99, a["dir"]))
    total = dict.fromkeys(keys, 0) | {"dir": "total", "files": 0}
    for a in rows:
        for k in keys + ("files",):
            total[k] += a[k]
    return rows, total


def pct(hit, n):
    return f"{100.0 * hit / n:5.1f}%" if n else "    -"


def main(argv):
    info, root, out = argv[1], os.path.abspath(argv[2]), argv[3]
    note = argv[4] if len(argv) > 4 else ""
    rows, total = summarize(parse(info), root)
    print(f"{'directory':18} {'files':>5} {'lines':>13} {'line %':>7} {'branches':>13} {'branch %':>8}")
    for a in rows + [total]:
        print(f"{a['dir']:18} {a['files']:5} {a['lines_hit']:6}/{a['lines']:<6} {pct(a['lines_hit'], a['lines']):>7} "
              f"{a['branches_hit']:6}/{a['branches']:<6} {pct(a['branches_hit'], a['branches']):>8}")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"generated": when, "tests": note, "dirs": rows, "total": total}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
