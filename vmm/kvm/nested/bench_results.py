"""make bench-kvm, on the host: the figures of vmm/kvm/nested/bench.sh from the nested VM's
console log (a base64 tar.gz of every run's output), parsed as scripts/bench.d/net.py parses
its own runs. Prints the table and the vmlab / QEMU ratios (from the medians of the rounds,
and each round's own: both VMMs ran back to back), writes $BENCH_JSON_DIR/kvm_nested.json
(default $BUILD) and puts the same object into reports/bench.json as results.kvm_nested.
The nested VM is real KVM inside QEMU TCG: its absolute times are the nested VM's (every
exit of the L2 guest goes through the TCG-emulated L1 hypervisor), so only the ratios of
the two VMMs measured there say anything about vmlab.
usage: /usr/bin/python3 bench_results.py CONSOLE_LOG   (exit status 0 when every run ended well)"""
import base64
import io
import json
import os
import re
import sys
import tarfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts", "bench.d"))
import net  # noqa: E402

NOTE = ("real KVM nested in QEMU TCG (make bench-kvm): absolute times are the nested VM's, "
        "not hardware's; compare vmlab with QEMU by the ratios only")
SIZES = ("64", "4096", "65536")


def result_files(log):
    """{file name without .txt: text} of every round the nested VM sent back (one base64
    tar.gz per finished round)."""
    text = open(log, "rb").read().decode(errors="replace").replace("\r", "")
    files = {}
    for m in re.finditer(r"^VMLAB-BENCH-RESULTS-BEGIN (\d+)\n(.*?)^VMLAB-BENCH-RESULTS-END \1$",
                         text, re.M | re.S):
        tar = tarfile.open(fileobj=io.BytesIO(base64.b64decode(m.group(2))), mode="r:gz")
        for t in tar.getmembers():
            if t.isfile():
                name = os.path.basename(t.name)
                files[name[:-4] if name.endswith(".txt") else name] = \
                    tar.extractfile(t).read().decode(errors="replace")
    if not files:
        raise RuntimeError(f"the nested VM sent no results (console in {log})")
    return files


def output(files, name, status=1):
    """A run's output; RuntimeError unless it ended with the expected status."""
    out = files.get(name)
    if out is None:
        raise RuntimeError(f"{name}: no output")
    m = re.search(r"^status (\d+)$", out, re.M)
    if not m or int(m.group(1)) != status:
        raise RuntimeError(f"{name}: {m.group(0) if m else 'no status'}: {out[-300:]}")
    return out


def vsock_round(files, name, r, guest=True):
    """One round of vmlab-bench-peer vsock[-cid] (and vsock_client's own figures when guest)."""
    out = output(files, f"{name}-{r}", 0)
    if not re.search(r"^vm status 1$", out, re.M):
        raise RuntimeError(f"{name}-{r}: vsock_echo did not end with status 1: {out[-300:]}")
    res = {"connect_ns": int(re.search(r"^VSOCK-BENCH connect_ns=(\d+)$", out, re.M).group(1))}
    for m in re.finditer(r"^VSOCK-BENCH size=(\d+) n=(\d+) (.*)$", out, re.M):
        f = dict(kv.split("=") for kv in m.group(3).split())
        res[m.group(1)] = {k: (float(v) if k == "mib_s" else int(v)) for k, v in f.items()}
    if any(s not in res for s in SIZES):
        raise RuntimeError(f"{name} round {r}: missing sizes: {out[-300:]}")
    if guest:
        out = output(files, f"vsock-client-{r}")
        res["guest"] = {}
        for m in re.finditer(r"^RESULT size=(\d+) n=\d+ (.*)$", out, re.M):
            res["guest"][m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+_ns)=(\d+)", m.group(2))}
        if len(res["guest"]) != 3:
            raise RuntimeError(f"vsock-client-{r}: {len(res['guest'])} RESULT lines: {out[-300:]}")
    return res


def median(xs):
    return sorted(xs)[len(xs) // 2]


def main():
    files = result_files(sys.argv[1])
    env = dict(re.findall(r"(\w+) (\d+)", files.get("env", "")))
    planned, count, vsock_n = int(env["rounds"]), int(env["count"]), int(env["vsock_n"])
    # the rounds that came back (all of them unless the nested VM wedged)
    rounds_n = len([r for r in range(1, planned + 1) if f"vsock-client-{r}" in files])
    res = {"note": NOTE, "tsc_khz": int(files["tsc_khz"]), "rounds": rounds_n, "rounds_planned": planned,
           "count": count, "warmup": net.WARMUP, "bulk": int(env["bulk"]), "vsock_n": vsock_n}
    if rounds_n == 0:
        raise RuntimeError(f"no round of {planned} came back")
    if rounds_n < planned:
        print(f"only {rounds_n} of {planned} rounds came back (see the wedge lines above)")
    rounds, errors = {"vmlab-kvm": [], "qemu-kvm": []}, {}
    for r in range(1, rounds_n + 1):
        for name in rounds:
            try:
                rounds[name].append(net.parse(output(files, f"{name}-ping-{r}"),
                                              output(files, f"{name}-udp-{r}"), count))
            except RuntimeError as e:
                errors.setdefault(name, str(e))
    qemu_vsock = files.get("qemu_vsock", "0").strip() == "1"
    vs = {"vmlab-kvm": [], "qemu-kvm": []}
    for r in range(1, rounds_n + 1):
        for name, fname in (("vmlab-kvm", "vsock"), ("qemu-kvm", "qemu-vsock")):
            if name == "qemu-kvm" and not qemu_vsock:
                continue
            try:
                vs[name].append(vsock_round(files, fname, r, name == "vmlab-kvm"))
            except (RuntimeError, AttributeError) as e:
                errors.setdefault(f"{name}-vsock", str(e))
    net_res = {name: net.combine(rs) for name, rs in rounds.items() if len(rs) == rounds_n}
    print(f"net, nested KVM ({NOTE})")
    print(f"{'':<11} {'ping median/p99 ns':>20} {'udp echo median/p99 ns':>24} "
          f"{'udp tx KiB/s':>13} {'udp rx KiB/s':>13}   (median of {rounds_n} rounds)")
    for name in rounds:
        if name not in net_res:
            print(f"{name:<11} failed: {errors.get(name, '?')}")
            continue
        x = net_res[name]
        print(f"{name:<11} {x['ping']['median_ns']:>11}/{x['ping']['p99_ns']:<8} "
              f"{x['udp_echo']['median_ns']:>13}/{x['udp_echo']['p99_ns']:<10} "
              f"{x['udp_tx']['kib_per_s']:>13} {x['udp_rx']['kib_per_s']:>13}")
        for k in ("ping", "udp_echo"):
            each = [y[k]["median_ns"] for y in x["rounds"]]
            print(f"{'':<11} {k} median per round: {min(each)}-{max(each)} ns")
    ratios = {}
    net.compare(net_res, ratios, "vmlab-kvm", "qemu-kvm", "nested_kvm_vmlab_over_qemu",
                "vmlab / QEMU, both on nested KVM", None)
    res["net"] = {"results": net_res, "ratios": ratios}
    print(f"vsock, host <-> guest, vsock_echo.elf: vmlab --cpu kvm over its hybrid socket, QEMU "
          f"microvm -device vhost-vsock-device over AF_VSOCK (median of {rounds_n} rounds of {vsock_n})")
    if not qemu_vsock:
        print("qemu-kvm: not measured: no /dev/vhost-vsock in the nested VM (vhost_vsock did not load)")
    print("%-24s %8s %10s %10s %10s %10s %10s %8s" %
          ("", "size", "min_us", "median_us", "p90_us", "p99_us", "max_us", "MiB/s"))
    vres = {}
    for name, label, pick in (("vmlab-kvm", "vmlab-kvm host-timed", lambda x, s: x[s]),
                              ("qemu-kvm", "qemu-kvm host-timed", lambda x, s: x[s]),
                              ("vmlab-kvm", "vmlab-kvm guest-timed", lambda x, s: x["guest"][s])):
        if len(vs[name]) != rounds_n:
            if name in vs and (name != "qemu-kvm" or qemu_vsock):
                print(f"{label}: failed: {errors.get(name + '-vsock')}")
            continue
        key = label.replace(" ", "_").replace("-", "_")
        v = vres[key] = {}
        if "host" in label:
            conn = [x["connect_ns"] for x in vs[name]]
            v["connect_ns"], v["connect_ns_rounds"] = median(conn), conn
            print("%-24s %8s %10.1f   rounds %.1f-%.1f" % (label, "connect", v["connect_ns"] / 1e3,
                                                         min(conn) / 1e3, max(conn) / 1e3))
        for s in SIZES:
            per = [pick(x, s) for x in vs[name]]
            fig = {k: median([p[k] for p in per]) for k in per[0]}
            fig["median_ns_rounds"] = [p["median_ns"] for p in per]
            v[s] = fig
            print("%-24s %8s %10.1f %10.1f %10.1f %10.1f %10.1f %8s   median per round %.1f-%.1f" %
                  (label, s, fig["min_ns"] / 1e3, fig["median_ns"] / 1e3, fig["p90_ns"] / 1e3,
                   fig["p99_ns"] / 1e3, fig["max_ns"] / 1e3,
                   f"{fig['mib_s']:.2f}" if "mib_s" in fig else "-",
                   min(fig["median_ns_rounds"]) / 1e3, max(fig["median_ns_rounds"]) / 1e3))
    a, b = vres.get("vmlab_kvm_host_timed"), vres.get("qemu_kvm_host_timed")
    if a and b:
        ratios = vres["ratios_vmlab_over_qemu"] = {}
        for s in ("connect",) + SIZES:
            ka = a["connect_ns_rounds"] if s == "connect" else a[s]["median_ns_rounds"]
            kb = b["connect_ns_rounds"] if s == "connect" else b[s]["median_ns_rounds"]
            va = a["connect_ns"] if s == "connect" else a[s]["median_ns"]
            vb = b["connect_ns"] if s == "connect" else b[s]["median_ns"]
            each = [round(x / max(1, y), 3) for x, y in zip(ka, kb)]
            ratios[s] = round(va / max(1, vb), 3)
            ratios[s + "_rounds"] = each
            print(f"vsock vmlab / QEMU, both on nested KVM, {s} median: {ratios[s]}, rounds "
                  f"{min(each)}-{max(each)}")
    if not qemu_vsock:
        vres["qemu_kvm"] = "not measured: no /dev/vhost-vsock in the nested VM"
    res["vsock"] = vres
    res["errors"] = errors
    out_dir = os.environ.get("BENCH_JSON_DIR", os.environ.get("BUILD", "build"))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "kvm_nested.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    bench = os.path.join(ROOT, "reports", "bench.json")
    try:
        with open(bench) as f:
            whole = json.load(f)
    except (OSError, ValueError):
        whole = {"results": {}}
    whole.setdefault("results", {})["kvm_nested"] = res
    with open(bench, "w") as f:
        json.dump(whole, f, indent=2, sort_keys=True)
    print("wrote", os.path.join(out_dir, "kvm_nested.json"), "and results.kvm_nested in reports/bench.json")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, KeyError, ValueError) as e:
        print(f"bench-kvm: {e}")
        sys.exit(1)
