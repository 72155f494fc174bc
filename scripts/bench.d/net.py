"""virtio-net through user-mode networking (libslirp on both VMMs), measured by the guest
programs themselves, one run, same guest ELFs, on:
  - vmlab on the software CPU, --net user, --tsc host: the guest's TSC is the host's, so
    every figure is host time, as under QEMU TCG;
  - QEMU microvm TCG, -netdev user, modern virtio-mmio, tsc_khz= on the command line;
  - where /dev/kvm opens, vmlab on KVM (host TSC natively) and QEMU microvm -accel kvm, the
    columns named after the kind of KVM: "kvm", or "kvm-pvm" for a /dev/kvm that is
    kvm-pvm (it opens but runs guest code slowly: about 1 ms a ping for either VMM, so these
    columns take KVM_COUNT round trips and KVM_BULK datagrams, and compare the two VMMs on
    that machine only, never with the software CPU).
Figures:
  - ping: net.elf's ICMP echo to the gateway 10.0.2.2 (slirp answers it itself), from the
    guest's TSC before the transmit notify to the reply in the receive ring; median, p99;
  - udp echo: udp.elf's 64-byte UDP echo round trip to guest/virtio/udp_peer.py on the host's
    127.0.0.1 (reached as 10.0.2.2:PORT, restrict=off); median, p99;
  - udp tx / rx: 1472-byte datagrams to / from the same peer in windows of 16, each window
    counted by the other side (KiB/s of what arrived, guest TSC).
COUNT round trips each (the first WARMUP dropped), in ROUNDS rounds that alternate the
VMMs (this machine is shared: load comes and goes); each figure is the median of its
rounds' figures, the rounds are kept in the JSON. The issue's target: round-trip medians
of vmlab sim <= 0.5 x QEMU TCG's. The 1-minute load average before and after is printed
and kept: QEMU TCG's round trips are mostly wakeups of its sleeping threads, which are
cheap on a busy machine (two CPU hogs on 2 cores: ping 37 -> 11 us, UDP echo 57 -> 24 us)
while vmlab's spinning helper gains nothing, so the ratios are only comparable between
runs at similar load. Writes $BENCH_JSON_DIR/net.json.
env: BUILD (default build), VMLAB (default $BUILD/vmlab), COUNT (default 1000),
     BULK (datagrams each way, default 4000), ROUNDS (default 5), KVM_COUNT and KVM_BULK
     (default COUNT and BULK on KVM, 200 and 200 on kvm-pvm)."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest", "virtio"))
from bench_latency import host_tsc_khz  # noqa: E402  (the same TSC probe as the blk bench)

BUILD = os.environ.get("BUILD", "build")
VMLAB = os.environ.get("VMLAB", os.path.join(BUILD, "vmlab"))
NET_ELF = os.path.join(BUILD, "guest", "net.elf")
UDP_ELF = os.path.join(BUILD, "guest", "udp.elf")
PEER = os.path.join(os.path.dirname(__file__), "..", "..", "guest", "virtio", "udp_peer.py")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
COUNT = int(os.environ.get("COUNT", "1000"))
BULK = int(os.environ.get("BULK", "4000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
WARMUP = 10


def qemu_cmd(elf, args, restrict, accel="tcg"):
    return ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
            "-accel", accel, "-m", "128", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-global", "virtio-mmio.force-legacy=false",
            "-netdev", f"user,id=n0,restrict={restrict}", "-device", "virtio-net-device,netdev=n0",
            "-kernel", elf, "-append", " ".join(args)]


def kvm_kind():
    """"kvm", "kvm-pvm", or None where /dev/kvm does not open."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return None
    return "kvm-pvm" if os.path.isdir("/sys/module/kvm_pvm") else "kvm"


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=600)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 1 or "net: done" not in out:
        raise RuntimeError(f"exit {r.returncode}: {out[-300:]}")
    return out


def dist(out, pattern, count):
    v = [int(x) for x in re.findall(pattern, out, re.M)]
    if len(v) != count:
        raise RuntimeError(f"{len(v)} of {count} round trips")
    v = sorted(v[WARMUP:])
    return {"median_ns": pct(v, 50), "p99_ns": pct(v, 99), "n": len(v)}


def pct(v, p):
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def measure(ping_cmd, udp_cmd, count):
    return parse(run(ping_cmd), run(udp_cmd), count)


def parse(ping_out, udp_out, count):
    """The figures of one round from net.elf's and udp.elf's output (also used by make
    bench-kvm's vmm/kvm/nested/bench_results.py on the nested VM's outputs)."""
    res = {"ping": dist(ping_out, r"^net: ping \S+ seq=\d+ ttl=\d+ bytes=64 rtt=(\d+) ns$", count)}
    out = udp_out
    res["udp_echo"] = dist(out, r"^net: udp echo \S+ seq=\d+ bytes=64 rtt=(\d+) ns$", count)
    for d, what in (("tx", "host got"), ("rx", "")):
        m = re.search(rf"^net: udp {d} (\d+) datagrams of 1472 bytes: (?:{what} )?(\d+)(?: arrived)? in (\d+) ns, "
                      r"(\d+) KiB/s$", out, re.M)
        if not m:
            raise RuntimeError(f"no udp {d} line")
        res[f"udp_{d}"] = {"kib_per_s": int(m.group(4)), "datagrams": int(m.group(2)), "ns": int(m.group(3))}
    return res


def combine(rounds):
    """Each figure: the median of the rounds' figures; the rounds themselves alongside."""
    out = {"rounds": rounds}
    for k in ("ping", "udp_echo", "udp_tx", "udp_rx"):
        out[k] = {f: sorted(r[k][f] for r in rounds)[len(rounds) // 2] for f in rounds[0][k]}
    return out


def compare(results, ratios, a, b, key, label, target):
    """Ratios a / b of the medians (round trips) and of the throughputs, from the medians of
    the rounds and, alongside, each round's own (a's round i over b's round i: both ran
    back to back)."""
    if a not in results or b not in results:
        return
    ra, rb = results[a], results[b]
    pairs = list(zip(ra["rounds"], rb["rounds"]))
    for k, f in (("ping", "median_ns"), ("udp_echo", "median_ns"), ("udp_tx", "kib_per_s"), ("udp_rx", "kib_per_s")):
        what = "median" if f == "median_ns" else "throughput"
        name = f"{key}_{k}_{what}"
        ratios[name] = round(ra[k][f] / max(1, rb[k][f]), 3)
        each = [round(x[k][f] / max(1, y[k][f]), 3) for x, y in pairs]
        ratios[name + "_rounds"] = each
        verdict = ""
        if target is not None and what == "median":
            verdict = f" (target <= {target}: {'met' if ratios[name] <= target else 'not met'})"
        print(f"{label} {k} {what}: {ratios[name]}{verdict}, rounds {min(each)}-{max(each)}")


def main():
    for f in (NET_ELF, UDP_ELF, VMLAB):
        if not os.path.exists(f):
            print(f"net: {f} not built")
            return 1
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        khz = host_tsc_khz(tmp)
    peer = subprocess.Popen(["/usr/bin/python3", "-u", PEER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(peer.stdout.readline().split()[-1])
        def args(count, bulk):
            return ([f"count={count}"],
                    [f"port={port}", f"count={count}", "size=64", f"tx={bulk}", f"rx={bulk}"])
        ping, udp = args(COUNT, BULK)
        tsc = [f"tsc_khz={khz}"]
        # name: (ping command, udp command, round trips)
        runs = {"vmlab-sim": ([VMLAB, "run", "--tsc", "host", "--net", "user", NET_ELF, "--"] + ping,
                              [VMLAB, "run", "--tsc", "host", "--net", "user,restrict=off", UDP_ELF, "--"] + udp,
                              COUNT),
                "qemu-tcg": (qemu_cmd(NET_ELF, ping + tsc, "on"), qemu_cmd(UDP_ELF, udp + tsc, "off"), COUNT)}
        skipped = {}
        kind = kvm_kind()
        if kind:
            slow = kind == "kvm-pvm"
            kcount = int(os.environ.get("KVM_COUNT", "200" if slow else str(COUNT)))
            kping, kudp = args(kcount, int(os.environ.get("KVM_BULK", "200" if slow else str(BULK))))
            runs[f"vmlab-{kind}"] = ([VMLAB, "run", "--cpu", "kvm", "--net", "user", NET_ELF, "--"] + kping,
                                     [VMLAB, "run", "--cpu", "kvm", "--net", "user,restrict=off", UDP_ELF, "--"]
                                     + kudp, kcount)
            runs[f"qemu-{kind}"] = (qemu_cmd(NET_ELF, kping + tsc, "on", "kvm"),
                                    qemu_cmd(UDP_ELF, kudp + tsc, "off", "kvm"), kcount)
        else:
            skipped["vmlab-kvm"] = skipped["qemu-kvm"] = "/dev/kvm does not open"
        rounds, errors = {name: [] for name in runs}, {}
        for _ in range(ROUNDS):
            for name, (pc, uc, count) in runs.items():
                if name in errors:
                    continue
                try:
                    rounds[name].append(measure(pc, uc, count))
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    errors[name] = str(e)
        results = {name: combine(r) for name, r in rounds.items() if r and name not in errors}
        print(f"{'':<13} {'ping median/p99 ns':>20} {'udp echo median/p99 ns':>24} "
              f"{'udp tx KiB/s':>13} {'udp rx KiB/s':>13}   (median of {ROUNDS} rounds)")
        for name in runs:
            if name in errors:
                print(f"{name:<13} failed: {errors[name]}")
                continue
            r = results[name]
            print(f"{name:<13} {r['ping']['median_ns']:>11}/{r['ping']['p99_ns']:<8} "
                  f"{r['udp_echo']['median_ns']:>13}/{r['udp_echo']['p99_ns']:<10} "
                  f"{r['udp_tx']['kib_per_s']:>13} {r['udp_rx']['kib_per_s']:>13}")
        for name, why in skipped.items():
            print(f"{name:<13} skipped: {why}")
    finally:
        peer.kill()
        peer.wait()
    load_after = round(os.getloadavg()[0], 2)
    print(f"load average (1 min): {load_before} before, {load_after} after")
    ratios = {}
    compare(results, ratios, "vmlab-sim", "qemu-tcg", "sim_over_qemu_tcg", "vmlab sim / QEMU TCG", 0.5)
    if kind:
        compare(results, ratios, f"vmlab-{kind}", f"qemu-{kind}", f"{kind.replace('-', '_')}_vmlab_over_qemu",
                f"vmlab / QEMU, both on {kind}", None)
    with open(os.path.join(OUT, "net.json"), "w") as f:
        json.dump({"host_tsc_khz": khz, "count": COUNT, "warmup": WARMUP, "bulk": BULK, "kvm": kind,
                   "loadavg_before": load_before, "loadavg_after": load_after,
                   "results": results, "errors": errors, "skipped": skipped, "ratios": ratios},
                  f, indent=2, sort_keys=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
