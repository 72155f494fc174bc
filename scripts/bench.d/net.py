"""virtio-net ping round trip of the `net` guest (guest/progs/net.c): ICMP echo to the
user-mode network's gateway, from the guest's TSC reading before the transmit notify to
its reading when the reply is in the receive ring. One run, same guest ELF, on:
  - vmlab on the software CPU, --net user (libslirp), --tsc host: the guest's TSC is the
    host's, so the round trip is host time, as under QEMU TCG;
  - vmlab on KVM (host TSC natively) where /dev/kvm opens;
  - QEMU microvm TCG, -netdev user,restrict=on (libslirp too), tsc_khz= on the cmdline.
Median and p99 of COUNT pings each (the first WARMUP dropped); the issue's target is the
sim median <= 0.5 x QEMU TCG's. Writes $BENCH_JSON_DIR/net.json.
env: BUILD (default build), VMLAB (default $BUILD/vmlab), COUNT (default 1000)."""
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
ELF = os.path.join(BUILD, "guest", "net.elf")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
COUNT = int(os.environ.get("COUNT", "1000"))
WARMUP = 10


def qemu_cmd(args):
    return ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
            "-accel", "tcg", "-m", "128", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-global", "virtio-mmio.force-legacy=false",
            "-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0",
            "-kernel", ELF, "-append", " ".join(args)]


def rtts(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=600)
    out = r.stdout.decode(errors="replace")
    got = [int(x) for x in re.findall(r"^net: ping \S+ seq=\d+ ttl=\d+ bytes=64 rtt=(\d+) ns$", out, re.M)]
    if r.returncode != 1 or len(got) != COUNT:
        raise RuntimeError(f"exit {r.returncode}, {len(got)} of {COUNT} round trips: {out[-300:]}")
    return sorted(got[WARMUP:])


def pct(v, p):
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def main():
    if not os.path.exists(ELF) or not os.path.exists(VMLAB):
        print(f"net: {ELF} or {VMLAB} not built")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        khz = host_tsc_khz(tmp)
    args = [f"count={COUNT}"]
    runs = {"vmlab-sim": [VMLAB, "run", "--tsc", "host", "--net", "user", ELF, "--"] + args,
            "qemu-tcg": qemu_cmd(args + [f"tsc_khz={khz}"])}
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        runs["vmlab-kvm"] = [VMLAB, "run", "--cpu", "kvm", "--net", "user", ELF, "--"] + args
    results, errors = {}, {}
    print(f"{'ping gateway':<14} {'median ns':>10} {'p99 ns':>10} {'n':>6}")
    for name, cmd in runs.items():
        try:
            v = rtts(cmd)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            errors[name] = str(e)
            print(f"{name:<14} failed: {e}")
            continue
        results[name] = {"median_ns": pct(v, 50), "p99_ns": pct(v, 99), "n": len(v)}
        print(f"{name:<14} {pct(v, 50):>10} {pct(v, 99):>10} {len(v):>6}")
    ratios = {}
    if "vmlab-sim" in results and "qemu-tcg" in results:
        ratios["sim_over_qemu_tcg_median"] = round(results["vmlab-sim"]["median_ns"] /
                                                   results["qemu-tcg"]["median_ns"], 3)
        met = ratios["sim_over_qemu_tcg_median"] <= 0.5
        print(f"vmlab sim / QEMU TCG median: {ratios['sim_over_qemu_tcg_median']} "
              f"(target <= 0.5: {'met' if met else 'not met'})")
    with open(os.path.join(OUT, "net.json"), "w") as f:
        json.dump({"host_tsc_khz": khz, "count": COUNT, "warmup": WARMUP, "results": results,
                   "errors": errors, "ratios": ratios}, f, indent=2, sort_keys=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
