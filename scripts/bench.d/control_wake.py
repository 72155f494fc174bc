"""Control-socket round trips against a running VM (issue 19): on KVM a request wakes the
vCPU loop through the control server's epoll set (vmm/kvm/README.md, "Clock, timers,
kicks"), where it used to wait for the 4 ms poll; on the software CPU it is served at the
deterministic poll points, as before. The guest is idle.elf ticking once every ~1.6 s
(mostly halted, as a VM waiting for work is). Per backend, host wall time of
  conn: connect, {"cmd":"stats"}, read the answer, close (what `vmlab stats` does)
  same: the same request N times on one connection
  cli:  the `vmlab stats SOCKET` command itself (process start included)
  input: one event written on an `--input multi-touch,path=SOCKET` source -> the input
         guest's line for it on the console (its printing included)
with min/median/p90/p99/max. CONTROL_VMLABS="base=PATH,new=PATH" compares builds instead:
rounds alternate between them (A B B A ...), so both see the same machine load.
Every VM must answer `stop` and exit 0. Writes $BENCH_JSON_DIR/control_wake.json.
env: BUILD, VMLAB (default $BUILD/vmlab), N (default 200), ROUNDS (default 4)."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest", "virtio"))
from bench_stats import summary_ns  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
VMLAB = os.environ.get("VMLAB", os.path.join(BUILD, "vmlab"))
IDLE = os.path.join(BUILD, "guest", "idle.elf")
INPUT = os.path.join(BUILD, "guest", "input.elf")
N = int(os.environ.get("N", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "4"))
REQ = b'{"cmd":"stats"}\n'


def fail(msg):
    sys.exit("control_wake: %s: benchmark failed" % msg)


def answer(s):
    got = b""
    while not got.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            fail("the VM closed the control connection without an answer")
        got += d
    if b'"ok":true' not in got:
        fail("stats answered %r" % got[:200])


def start(vmlab, cpu, tmp, tag):
    sock = os.path.join(tmp, "%s-%s.sock" % (tag, cpu))
    vm = subprocess.Popen([vmlab, "run", "--quiet", "--cpu", cpu, "--socket", sock,
                           "--block", "mem=1M", IDLE, "--", "count=100000000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(400):
        if os.path.exists(sock):
            return vm, sock
        if vm.poll() is not None:
            break
        time.sleep(0.025)
    vm.kill()
    fail("%s on %s: no control socket (%s)" % (vmlab, cpu, vm.communicate()[1].strip()))


def stop(vm, vmlab, sock, cpu):
    subprocess.run([vmlab, "stop", sock], capture_output=True, timeout=60)
    try:
        rc = vm.wait(timeout=60)
    except subprocess.TimeoutExpired:
        vm.kill()
        fail("%s on %s: still running after stop" % (vmlab, cpu))
    if rc != 0:
        fail("%s on %s: exit %d after stop: %s" % (vmlab, cpu, rc, vm.stderr.read()[-300:]))


def measure(vmlab, cpu, tmp, tag, n):
    vm, sock = start(vmlab, cpu, tmp, tag)
    res = {"conn": [], "same": [], "cli": []}
    try:
        for _ in range(n):
            t = time.perf_counter_ns()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(sock)
            s.sendall(REQ)
            answer(s)
            s.close()
            res["conn"].append(time.perf_counter_ns() - t)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(sock)
        for _ in range(n):
            t = time.perf_counter_ns()
            s.sendall(REQ)
            answer(s)
            res["same"].append(time.perf_counter_ns() - t)
        s.close()
        for _ in range(max(1, n // 4)):
            t = time.perf_counter_ns()
            r = subprocess.run([vmlab, "stats", sock], capture_output=True, timeout=30)
            res["cli"].append(time.perf_counter_ns() - t)
            if r.returncode != 0:
                fail("vmlab stats exited %d: %s" % (r.returncode, r.stderr[-200:]))
    finally:
        stop(vm, vmlab, sock, cpu)
    return res


def input_events(vmlab, cpu, tmp, tag, n):
    """Host write of one event on the input source -> the guest's "event" line."""
    path = os.path.join(tmp, "%s-%s-input.sock" % (tag, cpu))
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    lsock.settimeout(30)
    # KVM: the guest halts between events (the device interrupts it); the software CPU
    # calls a guest halted with nothing armed hung, so it polls there.
    vm = subprocess.Popen([vmlab, "run", "--quiet", "--cpu", cpu, "--input",
                           "multi-touch,path=" + path, INPUT, "--", "n=%d" % n,
                           "mode=irq" if cpu == "kvm" else "mode=poll"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    xs = []
    try:
        c, _ = lsock.accept()
        for line in vm.stdout:
            if line.startswith("input: ready"):
                break
        for i in range(n):
            t = time.perf_counter_ns()
            c.sendall(b"\0" * 8)                         # EV_SYN SYN_REPORT
            for line in vm.stdout:
                if re.match(r"input: event %d " % i, line):
                    xs.append(time.perf_counter_ns() - t)
                    break
            else:
                fail("%s on %s: event %d never reached the guest" % (vmlab, cpu, i))
        rc = vm.wait(timeout=60)
        c.close()
    finally:
        lsock.close()
        os.unlink(path)
        if vm.poll() is None:
            vm.kill()
            vm.wait()
    if rc != 1:
        fail("%s on %s: the input guest exited %d: %s" % (vmlab, cpu, rc, vm.stderr.read()[-300:]))
    return xs


def kvm_opens(vmlab):
    r = subprocess.run([vmlab, "run", "--cpu", "kvm", os.path.join(BUILD, "guest", "hello.elf")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode == 1, r.stderr.strip()


def main():
    builds = [tuple(x.split("=", 1)) for x in os.environ.get("CONTROL_VMLABS", "").split(",")
              if x] or [("vmlab", VMLAB)]
    ok, why = kvm_opens(builds[0][1])
    cpus = ["kvm", "sim"] if ok else ["sim"]
    results = {} if ok else {"kvm_skipped": why}
    if not ok:
        print("kvm: not measured: %s" % why)
    raw = {(tag, cpu): {"conn": [], "same": [], "cli": [], "input": []}
           for tag, _ in builds for cpu in cpus}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(ROUNDS):
            order = builds if r % 2 == 0 else builds[::-1]
            for cpu in cpus:
                for tag, vmlab in order:
                    got = measure(vmlab, cpu, tmp, tag, max(1, N // ROUNDS))
                    for k, xs in got.items():
                        raw[(tag, cpu)][k] += xs
                    raw[(tag, cpu)]["input"] += input_events(vmlab, cpu, tmp, tag,
                                                             max(1, N // ROUNDS // 4))
    print("%-8s %-4s %-5s %10s %10s %10s %10s %10s" %
          ("build", "cpu", "mode", "min_us", "median_us", "p90_us", "p99_us", "max_us"))
    for (tag, cpu), modes in raw.items():
        for mode, xs in modes.items():
            s = summary_ns(xs)
            results.setdefault(tag, {}).setdefault(cpu, {})[mode] = s
            print("%-8s %-4s %-5s %10.1f %10.1f %10.1f %10.1f %10.1f" %
                  (tag, cpu, mode, s["min_ns"] / 1e3, s["median_ns"] / 1e3, s["p90_ns"] / 1e3,
                   s["p99_ns"] / 1e3, s["max_ns"] / 1e3))
    if len(builds) == 2:
        (a, _), (b, _) = builds
        for cpu in cpus:
            for mode in ("conn", "same", "cli", "input"):
                ratio = (results[b][cpu][mode]["median_ns"] /
                         results[a][cpu][mode]["median_ns"])
                results.setdefault("median_%s_over_%s" % (b, a), {}).setdefault(cpu, {})[
                    mode] = round(ratio, 3)
                print("%s %s median %s/%s: %.3f" % (cpu, mode, b, a, ratio))
    with open(os.path.join(OUT, "control_wake.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
