"""virtio-input latency and virtio-balloon memory (issue 20).

Input, virtual time (software CPU): injection -> guest read per event, from `--at` taps
(11 events each) and a 60 Hz swipe (one 5-event frame every 16.67 ms), the guest's
`input` program stamping each event it reads with its TSC (the virtual clock).
Input, host time: `vmlab input SOCKET tap` against a running guest, on the software CPU
and on KVM: the client's round trip (send -> the VM's answer, the events are then in guest
memory) and send -> the guest's "event" line on the serial console (includes printing it).
Balloon: host RSS of a guest that touched 256 MiB, then after `vmlab balloon 200M --wait`.
Every run must end as the guest program ends; a failed subject fails the benchmark.
env: BUILD (default build), VMLAB (default $BUILD/vmlab), BENCH_JSON_DIR."""
import json, os, re, statistics, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "guest", "virtio"))
from bench_stats import pct  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
VMLAB = os.environ.get("VMLAB", os.path.join(BUILD, "vmlab"))
INPUT = os.path.join(BUILD, "guest", "input.elf")
BALLOON = os.path.join(BUILD, "guest", "balloon.elf")
TAP = [[3, 47, 0], [3, 57, 1], [3, 53, 100], [3, 54, 200], [3, 0, 100], [3, 1, 200],
       [1, 330, 1], [0, 0, 0], [3, 57, -1], [1, 330, 0], [0, 0, 0]]
FRAME_NS = 16666666
TAPS, SWIPE_FRAMES, HOST_TAPS = 50, 60, 40
EVENT = re.compile(r"^input: event (\d+) type=\d+ code=\d+ value=-?\d+ ns=(\d+)$", re.M)


def summary(xs, scale=1.0):
    return {"min": min(xs) * scale, "median": statistics.median(xs) * scale,
            "p99": pct(xs, 99) * scale, "n": len(xs)}


def fail(msg):
    sys.exit(f"input_balloon: {msg}: benchmark failed")


def virtual_latency():
    ats, starts = [], []     # per event: injection time
    for i in range(TAPS):
        t = 5_000_000 + i * 20_000_000
        ats += ["--at", f"{t}:" + json.dumps({"cmd": "input", "index": 0, "events": TAP},
                                             separators=(",", ":"))]
        starts += [t] * len(TAP)
    t0 = 5_000_000 + TAPS * 20_000_000
    swipe = []
    for k in range(SWIPE_FRAMES):
        swipe += [[3, 53, k], [3, 54, k], [3, 0, k], [3, 1, k], [0, 0, 0]]
        starts += [t0 + k * FRAME_NS] * 5
    ats += ["--at", f"{t0}:" + json.dumps({"cmd": "input", "index": 0, "frame_ns": FRAME_NS,
                                           "events": swipe}, separators=(",", ":"))]
    r = subprocess.run([VMLAB, "run", "--quiet", "--input", "multi-touch"] + ats +
                       [INPUT, "--", f"n={len(starts)}"], capture_output=True, text=True,
                       timeout=600)
    got = EVENT.findall(r.stdout)
    if r.returncode != 1 or len(got) != len(starts):
        fail(f"input guest exited {r.returncode} with {len(got)} of {len(starts)} events")
    lat = [int(ns) - starts[int(i)] for i, ns in got]
    ntap = TAPS * len(TAP)
    # The first event of each tap / frame: the path itself, without the guest's printing
    # of the events before it in the same batch.
    first = [lat[i] for i in range(0, ntap, len(TAP))]
    return summary(lat[:ntap]), summary(lat[ntap:]), summary(first)


def host_latency(cpu):
    sock = os.path.join(OUT, f"input-{cpu}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    args = [VMLAB, "run", "--quiet", "--cpu", cpu, "--input", "multi-touch", "--socket", sock,
            INPUT, "--", f"n={HOST_TAPS * len(TAP)}",
            # KVM serves the socket when the vCPU exits: the guest halts between events.
            # The software CPU calls a guest halted with no timer armed hung: it spins.
            "mode=irq" if cpu == "kvm" else "mode=poll"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = {}
    ready = threading.Event()

    def reader():
        for line in p.stdout:
            if line.startswith("input: ready"):
                ready.set()
            m = EVENT.match(line.strip())
            if m and int(m.group(1)) % len(TAP) == 0:
                seen[int(m.group(1)) // len(TAP)] = time.perf_counter()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    if not ready.wait(120):
        p.kill()
        fail(f"input guest on {cpu} never became ready")
    rtt, to_guest = [], []
    for i in range(HOST_TAPS):
        t = time.perf_counter()
        r = subprocess.run([VMLAB, "input", sock, "tap", "100", "200"], capture_output=True,
                           text=True, timeout=30)
        rtt.append(time.perf_counter() - t)
        if r.returncode != 0:
            p.kill()
            fail(f"vmlab input on {cpu} exited {r.returncode}: {r.stderr.strip()}")
        deadline = time.perf_counter() + 30
        while i not in seen and time.perf_counter() < deadline:
            time.sleep(0.0002)
        if i not in seen:
            p.kill()
            fail(f"tap {i} never reached the guest on {cpu}")
        to_guest.append(seen[i] - t)
    if p.wait(60) != 1:
        fail(f"input guest on {cpu} did not end as it should")
    return summary(rtt, 1e6), summary(to_guest, 1e6)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def balloon_rss(cpu):
    sock = os.path.join(OUT, f"balloon-{cpu}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([VMLAB, "run", "--quiet", "--cpu", cpu, "--mem", "512M", "--balloon",
                          "--socket", sock, BALLOON, "--", "mem_mb=256", "rounds=1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if "deflate_on_oom" in line:
            break
    else:
        fail(f"balloon guest on {cpu} never started its driver")
    before = rss_mib(p.pid)
    t = time.perf_counter()
    r = subprocess.run([VMLAB, "balloon", "200M", sock, "--wait", "--timeout", "120"],
                       capture_output=True, text=True, timeout=180)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        p.kill()
        fail(f"vmlab balloon 200M --wait on {cpu} exited {r.returncode}: {r.stderr.strip()}")
    after = rss_mib(p.pid)
    rest = p.stdout.read()
    if p.wait(120) != 1 or "51200 of 51200 inflated pages read zero" not in rest:
        fail(f"balloon guest on {cpu} did not end as it should")
    return {"rss_touched_mib": before, "rss_after_inflate_mib": after,
            "rss_drop_mib": before - after, "inflate_200m_s": dt}


def main():
    for f in (VMLAB, INPUT, BALLOON):
        if not os.path.exists(f):
            fail(f"{f} not built")
    res = {}
    tap, swipe, first = virtual_latency()
    res["virtual_tap_ns"], res["virtual_swipe60hz_ns"] = tap, swipe
    res["virtual_tap_first_event_ns"] = first
    print(f"{'injection -> guest read':40} {'min':>10} {'median':>10} {'p99':>10}")
    print(f"{'virtual ns, tap (sim, %d events)' % tap['n']:40} {tap['min']:10.0f} {tap['median']:10.0f} {tap['p99']:10.0f}")
    print(f"{'virtual ns, 60 Hz swipe (sim, %d events)' % swipe['n']:40} {swipe['min']:10.0f} {swipe['median']:10.0f} {swipe['p99']:10.0f}")
    print(f"{'virtual ns, first event of a tap (sim)':40} {first['min']:10.0f} {first['median']:10.0f} {first['p99']:10.0f}")
    cpus = ["sim"] + (["kvm"] if os.access("/dev/kvm", os.R_OK | os.W_OK) else [])
    for cpu in cpus:
        rtt, guest = host_latency(cpu)
        res[f"host_{cpu}_tap_rtt_us"], res[f"host_{cpu}_tap_to_guest_us"] = rtt, guest
        print(f"{'host us, tap client round trip (%s)' % cpu:40} {rtt['min']:10.0f} {rtt['median']:10.0f} {rtt['p99']:10.0f}")
        print(f"{'host us, tap -> guest line (%s)' % cpu:40} {guest['min']:10.0f} {guest['median']:10.0f} {guest['p99']:10.0f}")
    for cpu in cpus:
        b = balloon_rss(cpu)
        res[f"balloon_{cpu}"] = b
        print(f"balloon ({cpu}): RSS {b['rss_touched_mib']:.0f} MiB after touching 256 MiB, "
              f"{b['rss_after_inflate_mib']:.0f} MiB after inflating 200 MiB "
              f"(drop {b['rss_drop_mib']:.0f} MiB, {b['inflate_200m_s']:.2f} s)")
    with open(os.path.join(OUT, "input_balloon.json"), "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
