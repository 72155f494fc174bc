"""virtio-vsock latency (issue 19): host <-> guest round trips through Firecracker's hybrid
Unix socket against the vsock_echo guest, on the software CPU and on KVM (where /dev/kvm
opens), in one run. Per backend: connect time (CONNECT line to OK reply), and for 64 B,
4 KiB and 64 KiB messages min/median/p90/p99/max of N round trips (host wall time, each
message echoed back in full) and the throughput they give (both directions counted).
Then the guest side: the vsock_client guest connects to an echo server at PATH_5000 and
times the same round trips with its TSC, which on the software CPU is virtual time (the
host socket is served at the VMM's poll points, so these figures step with that interval;
on KVM a readable host socket wakes the vCPU loop at once, vmm/kvm/README.md).
QEMU's vhost-vsock-device needs the host's vhost_vsock module (/dev/vhost-vsock): where it
is absent the output says so and no QEMU figure is made up.
Every run must end as vsock_echo ends (status 1: guest exit 0 after its connection).
Writes $BENCH_JSON_DIR/vsock.json. env: BUILD, VMLAB (default $BUILD/vmlab), N (default 200)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest", "virtio"))
import vsock_peer  # noqa: E402
from bench_stats import summary_ns  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
VMLAB = os.environ.get("VMLAB", os.path.join(BUILD, "vmlab"))
ECHO = os.path.join(BUILD, "guest", "vsock_echo.elf")
CLIENT = os.path.join(BUILD, "guest", "vsock_client.elf")
N = int(os.environ.get("N", "200"))


def kvm_opens():
    r = subprocess.run([VMLAB, "run", "--cpu", "kvm", os.path.join(BUILD, "guest", "hello.elf")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode == 1, r.stderr.strip()


def measure(cpu, tmp):
    sock = os.path.join(tmp, cpu + ".sock")
    serial = os.path.join(tmp, cpu + ".serial")
    vm = subprocess.Popen([VMLAB, "run", "--cpu", cpu, "--serial", serial,
                           "--vsock", "cid=3,uds=" + sock, ECHO, "--", "conns=1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if os.path.exists(serial) and "listening" in open(serial).read():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("%s: the guest never listened" % cpu)
        t = time.perf_counter_ns()
        s, _ = vsock_peer.handshake(sock)
        res = {"connect_ns": time.perf_counter_ns() - t, "sizes": {}}
        for size in (64, 4096, 65536):
            msg = os.urandom(size)
            vsock_peer.echo(s, msg)
            xs = []
            for _ in range(N):
                t = time.perf_counter_ns()
                if vsock_peer.echo(s, msg) != msg:
                    raise RuntimeError("%s: echo differs at %d bytes" % (cpu, size))
                xs.append(time.perf_counter_ns() - t)
            res["sizes"][str(size)] = dict(
                summary_ns(xs),
                throughput_mib_s=round(2 * size * N / (sum(xs) / 1e9) / 2**20, 2))
        s.close()
        rc = vm.wait(timeout=120)
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
    if rc != 1:
        raise RuntimeError("%s: vsock_echo ended with status %d: %s" % (cpu, rc, vm.stderr.read()))
    return res


def guest_side(cpu, tmp):
    """vsock_client's own figures (guest TSC: virtual time on sim)."""
    sock = os.path.join(tmp, cpu + "-client.sock")
    lsock = vsock_peer.echo_server(sock + "_5000")
    try:
        r = subprocess.run([VMLAB, "run", "--cpu", cpu, "--vsock", "cid=3,uds=" + sock, CLIENT,
                            "--", "n=%d" % N], capture_output=True, text=True, timeout=600)
    finally:
        lsock.close()
    if r.returncode != 1:
        raise RuntimeError("%s: vsock_client ended with status %d: %s" %
                           (cpu, r.returncode, r.stdout[-300:] + r.stderr[-300:]))
    out = {}
    for m in re.finditer(r"^RESULT size=(\d+) n=\d+ (.*)$", r.stdout, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+_ns)=(\d+)", m.group(2))}
    if len(out) != 3:
        raise RuntimeError("%s: vsock_client printed %d RESULT lines" % (cpu, len(out)))
    return out


def main():
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sim"] = measure("sim", tmp)
        results["sim_guest_virtual"] = guest_side("sim", tmp)
        ok, why = kvm_opens()
        if ok:
            results["kvm"] = measure("kvm", tmp)
            results["kvm_guest"] = guest_side("kvm", tmp)
        else:
            results["kvm_skipped"] = why
            print("kvm: not measured: %s" % why)
    qemu = "/dev/vhost-vsock"
    if os.path.exists(qemu):
        results["qemu"] = "not measured: the QEMU peer run is not implemented yet"
    else:
        results["qemu"] = "not measured: %s is absent (the host's vhost_vsock module is not " \
                          "loaded), so QEMU's vhost-vsock-device cannot run here" % qemu
    print(results["qemu"])
    print("%-4s %-8s %10s %10s %10s %10s %10s %10s" %
          ("cpu", "size", "min_us", "median_us", "p90_us", "p99_us", "max_us", "MiB/s"))
    for cpu in ("sim", "kvm"):
        if cpu not in results:
            continue
        r = results[cpu]
        print("%-4s %-8s %10.1f" % (cpu, "connect", r["connect_ns"] / 1e3))
        for size, x in r["sizes"].items():
            print("%-4s %-8s %10.1f %10.1f %10.1f %10.1f %10.1f %10.2f" %
                  (cpu, size, x["min_ns"] / 1e3, x["median_ns"] / 1e3, x["p90_ns"] / 1e3,
                   x["p99_ns"] / 1e3, x["max_ns"] / 1e3, x["throughput_mib_s"]))
    print("guest-measured round trips (vsock_client; sim: virtual time):")
    for key in ("sim_guest_virtual", "kvm_guest"):
        for size, x in results.get(key, {}).items():
            print("%-18s %-6s %10.1f %10.1f %10.1f %10.1f %10.1f" %
                  (key, size, x["min_ns"] / 1e3, x["median_ns"] / 1e3, x["p90_ns"] / 1e3,
                   x["p99_ns"] / 1e3, x["max_ns"] / 1e3))
    if "kvm" in results:
        for size in results["sim"]["sizes"]:
            results.setdefault("kvm_over_sim_median", {})[size] = round(
                results["kvm"]["sizes"][size]["median_ns"] /
                results["sim"]["sizes"][size]["median_ns"], 3)
        print("median kvm/sim:", results["kvm_over_sim_median"])
    with open(os.path.join(OUT, "vsock.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
