"""Writes the vmlab lab report: one static HTML page (no JavaScript) with PNG plots beside it.

Sections: scenario table (from a `vmlab-scenarios run --results` file), perf samples of the
[perf] scenarios against the stored baseline of this machine class, latency percentiles the
guests printed, benchmark figures from reports/bench.json (vmlab vs QEMU), trace timelines
(kept run.trace exported to Chrome trace-event JSON for ui.perfetto.dev) and the lcov
coverage summary that `make coverage` leaves in $(BUILD)/coverage/summary.json.
Every input but the results file is optional: a missing one gets a line saying how to get it.

usage: make_report.py --results FILE [--keep DIR] [--bench FILE] [--baselines DIR]
                      [--coverage DIR] [--vmlab BIN] [--out DIR]
Standard library + Debian's python3-matplotlib; run with /usr/bin/python3."""
import argparse
import datetime
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after use("Agg"): no display needed)
import matplotlib.ticker  # noqa: E402

NOW_COLOR, BASE_COLOR, QEMU_COLOR = "#1f77b4", "#aaaaaa", "#d62728"
PCTS = ("min", "median", "p90", "p99", "max")
RESULT_LINE = re.compile(r"^RESULT (.*)$", re.M)

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pass td.st { background: #d9f2d9; } tr.fail td.st { background: #f8d0d0; }
tr.skip td.st { background: #eeeeee; }
.muted { color: #777; } .reason { font-size: 0.85em; max-width: 45em; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def esc(x):
    return html.escape(str(x), quote=True)


def load_json(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(v):
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return esc(v)


def safe_name(s):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", s)


def parse_result_lines(text):
    """The guests' `RESULT k=v ...` lines (latency guest: op, n, <pct>_ns, <pct>_t, req_per_s)."""
    out = []
    for m in RESULT_LINE.finditer(text):
        d = {}
        for kv in m.group(1).split():
            k, sep, v = kv.partition("=")
            if sep:
                d[k] = v
        out.append(d)
    return out


class Report:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.parts = []
        self.images = []

    # -- helpers ---------------------------------------------------------------------------
    def add(self, s):
        self.parts.append(s)

    def save_fig(self, fig, name):
        rel = os.path.join("img", safe_name(name) + ".png")
        os.makedirs(os.path.join(self.out, "img"), exist_ok=True)
        fig.savefig(os.path.join(self.out, rel), dpi=100, bbox_inches="tight")
        plt.close(fig)
        self.images.append(rel)
        return rel

    def img(self, rel, alt):
        self.add(f'<p><img src="{esc(rel)}" alt="{esc(alt)}"></p>')

    # -- scenarios -------------------------------------------------------------------------
    def kept_dirs(self, results):
        """(scenario, backend) -> kept work dir (vmlab-scenarios --keep names them NAME-BACKEND)."""
        keep = self.args.keep
        found = {}
        if not keep or not os.path.isdir(keep):
            return found
        for r in results:
            d = os.path.join(keep, f"{r['scenario']}-{r['backend']}")
            if os.path.isdir(d):
                found[(r["scenario"], r["backend"])] = d
        return found

    def copy_artifacts(self, kept):
        """Serial logs and exported traces beside the report, so every link is relative."""
        links = {}
        for (sc, b), d in sorted(kept.items()):
            tag = safe_name(f"{sc}-{b}")
            entry = links.setdefault((sc, b), {})
            serial = os.path.join(d, "serial.txt")
            if os.path.exists(serial):
                rel = os.path.join("artifacts", tag, "serial.txt")
                os.makedirs(os.path.join(self.out, "artifacts", tag), exist_ok=True)
                shutil.copyfile(serial, os.path.join(self.out, rel))
                entry["serial"] = rel
                with open(serial, errors="replace") as f:
                    entry["result_lines"] = parse_result_lines(f.read())
            trace = os.path.join(d, "run.trace")
            if os.path.exists(trace):
                entry["trace"] = self.export_trace(trace, tag)
        return links

    def export_trace(self, trace, tag):
        """Returns (relative json path or None, note)."""
        vmlab = self.args.vmlab
        if not vmlab or not os.access(vmlab, os.X_OK):
            return None, f"not exported: no vmlab binary at {vmlab}"
        rel = os.path.join("traces", tag + ".json")
        os.makedirs(os.path.join(self.out, "traces"), exist_ok=True)
        try:
            p = subprocess.run([vmlab, "trace", "export", "--format", "chrome", trace, "-o",
                                os.path.join(self.out, rel)], capture_output=True, text=True,
                               timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"export failed: {e}"
        if p.returncode != 0 or not os.path.exists(os.path.join(self.out, rel)):
            return None, f"export failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[:200]}"
        path = os.path.join(self.out, rel)
        try:
            with open(path) as f:
                j = json.load(f)
            ev = j.get("traceEvents", []) if isinstance(j, dict) else j
            n = sum(1 for e in ev if isinstance(e, dict) and e.get("ph") != "M")
        except (OSError, ValueError) as e:
            return None, f"export wrote invalid JSON: {e}"
        return rel, f"{n} events, {os.path.getsize(path):,} bytes"

    def scenario_section(self, data, links):
        results = data["results"]
        n = {s: sum(r["status"] == s for r in results) for s in ("pass", "fail", "skip")}
        self.add("<h2 id='scenarios'>Scenarios</h2>")
        self.add(f"<p>{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped "
                 f"({len(results)} runs; machine class <code>{esc(data.get('machine_class', '?'))}</code>; "
                 f"results file <code>{esc(self.args.results)}</code>).</p>")
        self.add("<table><tr><th>scenario</th><th>backend</th><th>result</th><th>wall s</th>"
                 "<th>exit</th><th>instructions</th><th>artifacts</th><th>detail</th></tr>")
        for r in results:
            m = r.get("metrics", {})
            lk = links.get((r["scenario"], r["backend"]), {})
            arts = []
            if "serial" in lk:
                arts.append(f'<a href="{esc(lk["serial"])}">serial</a>')
            if "trace" in lk and lk["trace"][0]:
                arts.append(f'<a href="{esc(lk["trace"][0])}">trace</a>')
            ins = m.get("instructions")
            self.add(f"<tr class='{esc(r['status'])}'><td>{esc(r['scenario'])}</td>"
                     f"<td>{esc(r['backend'])}</td><td class='st'>{esc(r['status'])}</td>"
                     f"<td class='num'>{r.get('wall_s', 0):.2f}</td>"
                     f"<td class='num'>{esc(r.get('exit_status'))}</td>"
                     f"<td class='num'>{'' if ins is None else f'{ins:,}'}</td>"
                     f"<td>{' '.join(arts)}</td>"
                     f"<td class='reason'>{'<br>'.join(esc(x) for x in r.get('reasons', []))}</td></tr>")
        self.add("</table>")
        self.wall_plot(results)

    def wall_plot(self, results):
        """Wall time of each scenario on each backend (one run each; the sim and QEMU rows of
        one scenario boot the same guest ELF, so their bars compare the two VMMs)."""
        names = sorted({r["scenario"] for r in results})
        backends = sorted({r["backend"] for r in results})
        if not names:
            return
        colors = {"sim": NOW_COLOR, "qemu": QEMU_COLOR, "kvm": "#2ca02c"}
        h = 0.8 / len(backends)
        fig, ax = plt.subplots(figsize=(8, 1 + 0.32 * len(names) * max(1, len(backends) / 1.5)))
        by = {(r["scenario"], r["backend"]): r for r in results}
        for i, b in enumerate(backends):
            ys = [j + i * h for j in range(len(names))]
            ws = [by[(n, b)]["wall_s"] if (n, b) in by and by[(n, b)]["status"] != "skip" else 0 for n in names]
            ax.barh(ys, ws, h, label=b, color=colors.get(b, "#999999"))
        ax.set_yticks([j + h * (len(backends) - 1) / 2 for j in range(len(names))], names)
        ax.invert_yaxis()
        ax.set_xlabel("wall seconds (one run; lower is better)")
        ax.set_title("scenario wall time by backend")
        ax.legend(fontsize=8)
        self.img(self.save_fig(fig, "scenario-wall"), "scenario wall time")

    # -- perf against baseline -------------------------------------------------------------
    def perf_section(self, data, links):
        self.add("<h2 id='perf'>Performance against baseline</h2>")
        mclass = data.get("machine_class", "")
        bpath = os.path.join(self.args.baselines, f"{mclass}.json") if self.args.baselines else None
        base = load_json(bpath) or {}
        det = load_json(os.path.join(self.args.baselines, "deterministic.json")) if self.args.baselines else None
        det = det or {}
        self.add(f"<p>Host-time baseline: <code>{esc(bpath)}</code> "
                 + ("" if base else "<b>(none for this machine class yet: host-time samples are shown "
                    "unjudged; record one with <code>harness/vmlab-scenarios run NAME --update-baselines"
                    "</code>, or compare builds on this machine with <code>harness/vmlab-scenarios ab "
                    "--rev HEAD~1</code>)</b>")
                 + ". Virtual-time and count metrics are deterministic on the software CPU and compared "
                 "exactly with <code>deterministic.json</code>; a host-time metric regresses when a "
                 "permutation test gives p &lt; 0.01 and the median moved more than 5 % the wrong way.</p>")
        perf = [r for r in data["results"] if self._is_perf(r, base)]
        if not perf:
            self.add("<p class='muted'>No [perf] scenario in these results.</p>")
        for r in perf:
            key = f"{r['scenario']}/{r['backend']}"
            samples = r["metrics"]["perf_samples"]
            kinds = r["metrics"].get("perf_kinds", {})
            ref = base.get(key, {})
            verdicts = r["metrics"].get("perf_verdicts", {})
            self.add(f"<h3>{esc(key)}</h3><table><tr><th>metric</th><th>kind</th><th>runs</th>"
                     "<th>median now</th><th>baseline</th><th>verdict</th></tr>")
            for metric in sorted(samples):
                now = samples[metric]
                if not now:
                    continue
                kind = kinds.get(metric, "host")
                if kind != "host":
                    want = det.get(key, {}).get(metric)
                    verdict = ("no deterministic baseline" if want is None else
                               "same as baseline" if all(v == want for v in now) else
                               f"CHANGED: {fmt(want)} -> {', '.join(fmt(v) for v in sorted(set(now)))}")
                    b_cell = "-" if want is None else fmt(want)
                else:
                    b = ref.get(metric, [])
                    v = verdicts.get(metric)
                    if v:
                        verdict = ("REGRESSED: " if v["regressed"] else "") + v["summary"]
                    elif r["status"] == "fail":
                        verdict = "not judged: the scenario failed (perf runs repeat only when it passes)"
                    else:
                        verdict = "no baseline" if not b else "recorded, not judged"
                    b_cell = f"median {fmt(statistics.median(b))} (n={len(b)})" if b else "-"
                self.add(f"<tr><td>{esc(metric)}</td><td>{esc(kind)}</td><td class='num'>{len(now)}</td>"
                         f"<td class='num'>{fmt(statistics.median(now))}</td>"
                         f"<td class='num'>{b_cell}</td><td>{esc(verdict)}</td></tr>")
            self.add("</table>")
            if r["status"] == "skip":
                self.add(f"<p class='reason'>{esc('; '.join(r.get('reasons', [])))}</p>")
            dist = distribution_metrics(samples, kinds)
            if dist:
                self.img(self.plot_distribution(key, dist, samples, ref), f"{key} distribution")
            for metric in sorted(samples):
                if samples[metric] and kinds.get(metric, "host") == "host" and metric not in dist.values():
                    rel = self.plot_samples(key, metric, samples[metric], ref.get(metric, []))
                    self.img(rel, f"{key} {metric}")
            rl = links.get((r["scenario"], r["backend"]), {}).get("result_lines", [])
            if rl:
                clock = {kinds.get(m) for m in samples if "median" in m} - {None}
                self.guest_percentiles(key, rl, "host" if clock == {"host"} else None)

    def plot_distribution(self, key, dist, samples, ref):
        """Host-time latency distribution (min/median/p90/p99/max per run): one line per run,
        the baseline's runs in grey behind them, and the spread of each percentile over the runs
        in a table beside it."""
        pcts = [p for p in PCTS if p in dist]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        nruns = min(len(samples[dist[p]]) for p in pcts)
        nbase = min((len(ref.get(dist[p], [])) for p in pcts), default=0)
        for i in range(nbase):
            ax.plot(pcts, [ref[dist[p]][i] for p in pcts], "-", color=BASE_COLOR, alpha=0.5,
                    label=f"baseline runs (n={nbase})" if i == 0 else None)
        for i in range(nruns):
            ax.plot(pcts, [samples[dist[p]][i] for p in pcts], "o-", color=NOW_COLOR, alpha=0.5,
                    ms=3, label=f"this run's repeats (n={nruns})" if i == 0 else None)
        ax.set_yscale("log")
        unit = dist["median"].rsplit("_", 1)[-1]
        ax.set_ylabel(f"host time per request ({unit if unit in ('ns', 'us', 'ms', 's') else '?'})")
        ax.set_title(f"{key}: latency distribution per run")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        self.add("<table><tr><th>percentile</th><th>metric</th><th>min over runs</th>"
                 "<th>median over runs</th><th>max over runs</th></tr>")
        for p in pcts:
            v = samples[dist[p]]
            self.add(f"<tr><td>{p}</td><td>{esc(dist[p])}</td><td class='num'>{fmt(min(v))}</td>"
                     f"<td class='num'>{fmt(statistics.median(v))}</td><td class='num'>{fmt(max(v))}</td></tr>")
        self.add("</table>")
        return self.save_fig(fig, f"dist-{key}")

    @staticmethod
    def _is_perf(r, base):
        s = r.get("metrics", {}).get("perf_samples", {})
        return (any(k not in ("wall_s", "cpu_s") for k in s) or any(len(v) > 1 for v in s.values())
                or f"{r['scenario']}/{r['backend']}" in base)

    def plot_samples(self, key, metric, now, base):
        """Left: histogram of this run's samples over the baseline's. Right: run by run,
        with the baseline median and its interquartile band (drift within a run shows here)."""
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
        allv = list(now) + list(base)
        lo, hi = min(allv), max(allv)
        if lo == hi:
            lo, hi = lo - 0.5 * (abs(lo) or 1) * 0.02, hi + 0.5 * (abs(hi) or 1) * 0.02
        if lo > 0 and hi / lo > 5:     # one slow outlier must not squash the rest into one bin
            bins = [lo * (hi / lo) ** (i / 30) for i in range(30)] + [hi]
            ax1.set_xscale("log")
            ax1.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax1.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        else:
            bins = [lo + (hi - lo) * i / 20 for i in range(21)]
        if base:
            ax1.hist(base, bins=bins, color=BASE_COLOR, alpha=0.8, label=f"baseline (n={len(base)})")
        ax1.hist(now, bins=bins, color=NOW_COLOR, alpha=0.7, label=f"this run (n={len(now)})")
        ax1.set_xlabel(metric)
        ax1.set_ylabel("runs")
        ax1.set_title("distribution")
        ax1.legend(fontsize=8)
        ax2.plot(range(1, len(now) + 1), now, "o-", color=NOW_COLOR, label="this run")
        if base:
            mb = statistics.median(base)
            ax2.axhline(mb, color="k", ls="--", lw=1, label=f"baseline median {mb:.4g}")
            if len(base) >= 4:
                q1, _, q3 = statistics.quantiles(base, n=4, method="inclusive")
                ax2.axhspan(q1, q3, color=BASE_COLOR, alpha=0.3, label="baseline interquartile")
            else:
                ax2.axhspan(min(base), max(base), color=BASE_COLOR, alpha=0.3, label="baseline min-max")
        ax2.set_xlabel("run")
        ax2.set_xticks(range(1, len(now) + 1, max(1, len(now) // 10)))
        ax2.set_ylabel(metric)
        ax2.set_title("run by run")
        ax2.legend(fontsize=8)
        fig.suptitle(f"{key}: {metric}", y=1.04)
        return self.save_fig(fig, f"perf-{key}-{metric}")

    def guest_percentiles(self, key, lines, clock=None):
        """What the guest measured itself (one request at a time): percentile profile. clock
        "host": the guest read the host TSC (--tsc host); otherwise the software CPU's guest
        clock is virtual."""
        rows = [d for d in lines if any(f"{p}_ns" in d or f"{p}_t" in d for p in PCTS)]
        if not rows:
            return
        unit = "ns" if all("median_ns" in d for d in rows) else "t"
        ns = ("host ns (--tsc host)" if clock == "host" else
              "virtual ns, software CPU clock" if key.endswith("/sim") else "ns")
        self.add(f"<p>Guest-measured latency profile (units: {ns if unit == 'ns' else 'TSC ticks'}"
                 ", from the kept serial log of the first run):</p><table><tr><th>op</th><th>n</th>"
                 + "".join(f"<th>{p}</th>" for p in PCTS) + "<th>req/s</th></tr>")
        fig, ax = plt.subplots(figsize=(6, 3))
        for d in rows:
            vals = [int(d.get(f"{p}_{unit}", 0)) for p in PCTS]
            self.add(f"<tr><td>{esc(d.get('op', '?'))}</td><td class='num'>{esc(d.get('n', ''))}</td>"
                     + "".join(f"<td class='num'>{v:,}</td>" for v in vals)
                     + f"<td class='num'>{esc(d.get('req_per_s', '-'))}</td></tr>")
            ax.plot(PCTS, vals, "o-", label=d.get("op", "?"))
        self.add("</table>")
        ax.set_ylabel(f"latency ({unit})")
        ax.set_yscale("log")
        ax.set_title(f"{key}: guest-measured latency percentiles")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        self.img(self.save_fig(fig, f"pct-{key}"), f"{key} percentiles")

    # -- benchmarks --------------------------------------------------------------------------
    def bench_section(self):
        self.add("<h2 id='bench'>Benchmarks (vmlab vs QEMU)</h2>")
        bench = load_json(self.args.bench)
        if not bench:
            self.add(f"<p class='muted'>No benchmark figures (<code>{esc(self.args.bench)}</code> is absent): "
                     "run <code>make bench</code>, then <code>make report</code> again.</p>")
            return
        res = bench.get("results", {})
        m = bench.get("machine", {})
        self.add(f"<p>From <code>{esc(self.args.bench)}</code> (machine: {esc(m.get('nproc', '?'))} CPUs, "
                 f"kernel {esc(m.get('kernel', '?'))}).</p>")
        self.boot_plot(res.get("boot", {}))
        self.blk_plot(res.get("guest_virtio", {}))
        flat = []
        flatten("", res, flat)
        self.add(f"<details><summary>All {len(flat)} figures in bench.json</summary>"
                 "<table><tr><th>figure</th><th>value</th></tr>")
        for k, v in flat:
            self.add(f"<tr><td>{esc(k)}</td><td class='num'>{fmt(v)}</td></tr>")
        self.add("</table></details>")

    def boot_plot(self, boot):
        vm = boot.get("vmlab_sim_boot_ms")
        if not vm:
            self.add("<p class='muted'>No boot-to-exit figures (scripts/bench.d/boot.py) in bench.json.</p>")
            return
        names, med, mins, colors = ["vmlab --cpu sim"], [vm["median"]], [vm["min"]], [NOW_COLOR]
        q = boot.get("qemu_tcg_boot_ms")
        if q:
            names.append("QEMU microvm TCG")
            med.append(q["median"])
            mins.append(q["min"])
            colors.append(QEMU_COLOR)
        fig, ax = plt.subplots(figsize=(6, 2.2 + 0.3 * len(names)))
        ax.barh(names, med, color=colors)
        ax.plot(mins, names, "k|", ms=14, label="min")
        for i, v in enumerate(med):
            ax.text(v, i, f" {v:.1f} ms", va="center", fontsize=9)
        ax.set_xlabel("boot-to-exit of the hello guest, median ms (lower is better)")
        ax.set_xlim(0, max(med) * 1.3)
        ax.legend(fontsize=8, loc="lower right")
        ratio = boot.get("vmlab_over_qemu")
        ax.set_title("boot-to-exit" + (f": vmlab/QEMU = {ratio:.3f} (target <= 0.1)" if ratio else
                                        " (no QEMU figure in bench.json)"))
        self.img(self.save_fig(fig, "bench-boot"), "boot-to-exit")
        if not q:
            self.add("<p class='muted'>QEMU boot figure absent (qemu-system-x86_64 was not installed when "
                     "<code>make bench</code> ran).</p>")

    def blk_plot(self, gv):
        r = gv.get("results", {})
        if not r:
            self.add("<p class='muted'>No virtio-blk round-trip figures (guest/virtio/bench_latency.py) "
                     "in bench.json.</p>")
            return
        vmms = [v for v in ("vmlab", "qemu") if v in r]
        ops = sorted({op for v in vmms for op in r[v]})
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
        width = 0.8 / len(vmms)
        for i, vmm in enumerate(vmms):
            xs = [j + i * width for j in range(len(ops))]
            ys = [r[vmm].get(op, {}).get("wall_ns_per_req", 0) / 1000 for op in ops]
            ax1.bar(xs, ys, width, label=vmm, color=NOW_COLOR if vmm == "vmlab" else QEMU_COLOR)
            for x, y in zip(xs, ys):
                ax1.text(x, y, f"{y:.1f}", ha="center", va="bottom", fontsize=8)
        ax1.set_xticks([j + width * (len(vmms) - 1) / 2 for j in range(len(ops))], ops)
        ax1.set_ylabel("host wall µs per request")
        ax1.set_title("round trip, host wall time (lower is better)")
        ax1.legend(fontsize=8)
        markers = "o^sDv"
        for vmm in vmms:
            for k, op in enumerate(ops):
                d = r[vmm].get(op, {})
                ys = [d.get(f"{p}_ns") for p in PCTS]
                if all(y is not None for y in ys):   # same figures would hide each other: offset
                    ax2.plot([i + 0.08 * k for i in range(len(PCTS))], [y / 1000 for y in ys],
                             ls="-" if vmm == "vmlab" else "--", marker=markers[k % len(markers)],
                             label=f"{vmm} {op}", color=NOW_COLOR if vmm == "vmlab" else QEMU_COLOR,
                             alpha=1.0 if k == 0 else 0.6)
        ax2.set_xticks(range(len(PCTS)), PCTS)
        ax2.set_yscale("log")
        ax2.set_ylabel("guest-measured µs (log)")
        ax2.set_title("guest-measured percentiles")
        ax2.legend(fontsize=7)
        ax2.grid(True, which="both", alpha=0.3)
        self.img(self.save_fig(fig, "bench-blk"), "virtio-blk round trips")
        self.add("<p>Guest-measured ns: vmlab's are virtual time on the software CPU; QEMU's are host TSC "
                 "ticks converted with the measured host TSC rate. Host wall time per request is comparable "
                 "across VMMs.</p>")
        if "qemu" not in r:
            self.add("<p class='muted'>QEMU round-trip figures absent from bench.json.</p>")
        for k, v in sorted(gv.get("errors", {}).items()):
            self.add(f"<p>{esc(k)} failed: {esc(v)}</p>")

    # -- traces --------------------------------------------------------------------------------
    def trace_section(self, links):
        self.add("<h2 id='traces'>Trace timelines</h2>")
        rows = [(k, v["trace"]) for k, v in sorted(links.items()) if "trace" in v]
        if not rows:
            why = ("no kept work dir had a run.trace" if self.args.keep else
                   "no --keep directory was given (make report without RESULTS= keeps them)")
            self.add(f"<p class='muted'>No traces: {esc(why)}. Scenarios with a golden trace record one.</p>")
            return
        self.add("<p>Each scenario run that records a trace (those with a golden trace) exported to "
                 "Chrome trace-event JSON: open in <a href='https://ui.perfetto.dev'>ui.perfetto.dev</a> "
                 "(Open trace file) or chrome://tracing.</p><table><tr><th>run</th><th>timeline</th></tr>")
        for (sc, b), (rel, note) in rows:
            cell = f'<a href="{esc(rel)}">{esc(os.path.basename(rel))}</a> ({esc(note)})' if rel else esc(note)
            self.add(f"<tr><td>{esc(sc)}/{esc(b)}</td><td>{cell}</td></tr>")
        self.add("</table>")

    # -- coverage ------------------------------------------------------------------------------
    def coverage_section(self):
        self.add("<h2 id='coverage'>Coverage</h2>")
        summ = load_json(os.path.join(self.args.coverage, "summary.json")) if self.args.coverage else None
        if not summ:
            self.add("<p class='muted'>No coverage data (<code>"
                     f"{esc(os.path.join(self.args.coverage or '$(BUILD)/coverage', 'summary.json'))}"
                     "</code> is absent). Run <code>make coverage</code> (gcc --coverage build, unit + CLI "
                     "tests + scenarios, lcov with branch coverage), then <code>make report</code> again.</p>")
            return
        html_index = os.path.join(self.out, "coverage", "index.html")
        link = ' Full lcov report: <a href="coverage/index.html">coverage/index.html</a>.' \
            if os.path.exists(html_index) else ""
        self.add(f"<p>From <code>{esc(self.args.coverage)}/summary.json</code>, "
                 f"{esc(summ.get('generated', ''))}.{link} {esc(summ.get('tests', ''))}</p>")
        self.add("<table><tr><th>directory</th><th>files</th><th>lines</th><th>line %</th>"
                 "<th>branches</th><th>branch %</th><th>functions %</th></tr>")
        for d in summ["dirs"] + [summ["total"]]:
            self.add(f"<tr><td>{esc(d['dir'])}</td><td class='num'>{d['files']}</td>"
                     f"<td class='num'>{d['lines_hit']}/{d['lines']}</td><td class='num'>{pct(d['lines_hit'], d['lines'])}</td>"
                     f"<td class='num'>{d['branches_hit']}/{d['branches']}</td>"
                     f"<td class='num'>{pct(d['branches_hit'], d['branches'])}</td>"
                     f"<td class='num'>{pct(d['functions_hit'], d['functions'])}</td></tr>")
        self.add("</table>")

    # -- page ------------------------------------------------------------------------------------
    def write(self):
        data = load_json(self.args.results)
        if data is None:
            raise SystemExit(f"make_report: results file {self.args.results!r} not found "
                             "(harness/vmlab-scenarios run --results FILE writes one)")
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise SystemExit(f"make_report: {self.args.results}: not a vmlab-scenarios results file "
                             "(want an object with a 'results' list)")
        os.makedirs(self.out, exist_ok=True)
        for sub in ("img", "traces", "artifacts"):
            shutil.rmtree(os.path.join(self.out, sub), ignore_errors=True)
        links = self.copy_artifacts(self.kept_dirs(data["results"]))
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.add(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>vmlab report</title>"
                 f"<style>{CSS}</style></head><body><h1>vmlab report</h1>"
                 f"<p class='muted'>Generated {when} by reports/make_report.py.</p>"
                 "<p><a href='#scenarios'>Scenarios</a> · <a href='#perf'>Performance</a> · "
                 "<a href='#bench'>Benchmarks</a> · <a href='#traces'>Traces</a> · "
                 "<a href='#coverage'>Coverage</a></p>")
        self.scenario_section(data, links)
        self.perf_section(data, links)
        self.bench_section()
        self.trace_section(links)
        self.coverage_section()
        self.add("</body></html>\n")
        path = os.path.join(self.out, "index.html")
        with open(path, "w") as f:
            f.write("\n".join(self.parts))
        return path


def distribution_metrics(samples, kinds):
    """{percentile: metric} for host metrics named like read4k_p99_ns (PREFIX_<pct>_UNIT), when
    at least min, median and max are there: those are plotted as one distribution."""
    found = {}
    for m in samples:
        if kinds.get(m, "host") != "host":
            continue
        for p in PCTS:
            if re.search(rf"(^|_){p}(_[a-z]+)?$", m) and m not in ("wall_s", "cpu_s"):
                found.setdefault(p, m)
    return found if {"min", "median", "max"} <= set(found) and kinds else {}


def pct(hit, total):
    return f"{100.0 * hit / total:.1f}" if total else "-"


def flatten(prefix, obj, out):
    if isinstance(obj, dict):
        for k in sorted(obj):
            flatten(f"{prefix}.{k}" if prefix else str(k), obj[k], out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.append((prefix, obj))


def main(argv=None):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True, help="vmlab-scenarios run --results file")
    p.add_argument("--keep", help="vmlab-scenarios run --keep directory (serial logs, traces)")
    p.add_argument("--bench", default=os.path.join(root, "reports", "bench.json"))
    p.add_argument("--baselines", default=os.path.join(root, "harness", "baselines"))
    p.add_argument("--coverage", help="directory with make coverage's summary.json")
    p.add_argument("--vmlab", help="vmlab binary used to export traces")
    p.add_argument("--out", default=os.path.join(root, "reports", "out"))
    args = p.parse_args(argv)
    path = Report(args).write()
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
