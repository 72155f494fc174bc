"""The VM manager under load, and the cost of the VM sandbox.
1. The seccomp filter: boot-to-exit of `hello` with and without `vmlab run --sandbox`, in
   alternating rounds in one run (median of 40 each), and their ratio.
2. 50 VMs on the software CPU under one `vmlab virtmgr` on this machine: 50 `vmlab vm run`
   clients started at once, each an `idle` guest (ticks=N, its own disk) that exits by
   itself; start latency (client launched -> "VM N started") distribution, the manager's
   RSS and the VMs' PSS while they run, and that every one reaches its guest's exit.
Every timed run must end as its guest ends; a failure fails the benchmark.
env: BUILD (default build), VMLAB (default $BUILD/vmlab), BENCH_JSON_DIR, VIRTMGR_VMS (50),
VIRTMGR_TICKS (30000)."""
import json, os, shutil, statistics, subprocess, sys, tempfile, threading, time

BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
VMLAB = os.path.abspath(os.environ.get("VMLAB", os.path.join(BUILD, "vmlab")))
HELLO = os.path.abspath(os.path.join(BUILD, "guest", "hello.elf"))
IDLE = os.path.abspath(os.path.join(BUILD, "guest", "idle.elf"))
NVMS = int(os.environ.get("VIRTMGR_VMS", "50"))
TICKS = int(os.environ.get("VIRTMGR_TICKS", "30000"))


def fail(msg):
    print("virtmgr bench: " + msg, file=sys.stderr)
    sys.exit(1)


def boot(sandbox):
    cmd = [VMLAB, "run", "--quiet"] + (["--sandbox"] if sandbox else []) + [HELLO]
    t = time.perf_counter()
    rc = subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    dt = time.perf_counter() - t
    if rc != 1:
        fail(f"{' '.join(cmd)} exited {rc}, not 1 (hello's exit)")
    return dt


def sandbox_cost():
    plain, boxed = [], []
    for _ in range(40):
        plain.append(boot(False))
        boxed.append(boot(True))
    p, b = statistics.median(plain), statistics.median(boxed)
    return {"hello_boot_to_exit_ms": round(p * 1e3, 3),
            "hello_boot_to_exit_sandboxed_ms": round(b * 1e3, 3),
            "sandbox_ratio": round(b / p, 3), "rounds": 40}


def kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def load():
    tmp = tempfile.mkdtemp(prefix="vmlab-virtmgr-bench-")
    sock = os.path.join(tmp, "mgr.sock")
    mgr = subprocess.Popen([VMLAB, "virtmgr", "--quiet", "--socket", sock, "--state-dir",
                            os.path.join(tmp, "state")])
    try:
        for _ in range(600):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        base_rss = kib(f"/proc/{mgr.pid}/status", "VmRSS:")
        cfgs = []
        for i in range(NVMS):
            disk = os.path.join(tmp, f"d{i}.img")
            with open(disk, "wb") as f:
                f.truncate(1 << 20)
            cfg = os.path.join(tmp, f"vm{i}.json")
            with open(cfg, "w") as f:
                json.dump({"name": f"load{i}", "program": IDLE, "args": [f"ticks={TICKS}"],
                           "disks": [{"image": disk, "writable": True}]}, f)
            cfgs.append(cfg)
        starts, ends, procs, lock = [None] * NVMS, [None] * NVMS, [], threading.Lock()

        def watch(i, p, t0):
            for line in p.stderr:
                if " started" in line and starts[i] is None:
                    starts[i] = time.perf_counter() - t0
            ends[i] = p.wait()

        threads = []
        t_all = time.perf_counter()
        for i in range(NVMS):
            t0 = time.perf_counter()
            p = subprocess.Popen([VMLAB, "vm", "run", "--socket", sock, "--console", "/dev/null",
                                  cfgs[i]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
            th = threading.Thread(target=watch, args=(i, p, t0))
            th.start()
            threads.append(th)
            procs.append(p)
        # Memory while they run: the manager, and every VM process alive at that moment.
        peak_live, mgr_rss, vm_pss = 0, 0, []
        deadline = time.time() + 600
        while any(e is None for e in ends) and time.time() < deadline:
            kids = subprocess.run(["pgrep", "-P", str(mgr.pid)], capture_output=True,
                                  text=True).stdout.split()
            if len(kids) > peak_live:
                peak_live = len(kids)
                mgr_rss = kib(f"/proc/{mgr.pid}/status", "VmRSS:")
                vm_pss = [kib(f"/proc/{k}/smaps_rollup", "Pss:") for k in kids]
            time.sleep(0.05)
        for th in threads:
            th.join(timeout=60)
        wall = time.perf_counter() - t_all
        bad = [i for i in range(NVMS) if ends[i] != 1 or starts[i] is None]   # idle: exit 0 -> 1
        if bad:
            fail(f"{len(bad)} of {NVMS} VMs did not start and reach their guest's exit "
                 f"(statuses {[ends[i] for i in bad][:5]})")
        lat = sorted(s * 1e3 for s in starts)
        q = statistics.quantiles(lat, n=20)
        return {"vms": NVMS, "ticks": TICKS, "all_reached_guest_exit": True,
                "wall_s": round(wall, 2),
                "start_latency_ms": {"min": round(lat[0], 2), "p50": round(statistics.median(lat), 2),
                                     "p95": round(q[18], 2), "max": round(lat[-1], 2)},
                "peak_live_vms": peak_live,
                "manager_rss_kib_idle": base_rss, "manager_rss_kib_at_peak": mgr_rss,
                "vm_pss_kib_median": int(statistics.median(vm_pss)) if vm_pss else 0,
                "vm_pss_kib_total_at_peak": sum(vm_pss)}
    finally:
        mgr.terminate()
        try:
            mgr.wait(timeout=60)
        except subprocess.TimeoutExpired:
            mgr.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    for f in (VMLAB, HELLO, IDLE):
        if not os.path.exists(f):
            fail(f"{f} not built")
    res = {"sandbox": sandbox_cost(), "load": load()}
    s, l = res["sandbox"], res["load"]
    print(f"hello boot-to-exit: {s['hello_boot_to_exit_ms']} ms plain, "
          f"{s['hello_boot_to_exit_sandboxed_ms']} ms with --sandbox (x{s['sandbox_ratio']})")
    print(f"{l['vms']} VMs under one manager: start latency p50 {l['start_latency_ms']['p50']} ms, "
          f"p95 {l['start_latency_ms']['p95']} ms, max {l['start_latency_ms']['max']} ms; "
          f"{l['peak_live_vms']} alive at once; manager RSS {l['manager_rss_kib_idle']} -> "
          f"{l['manager_rss_kib_at_peak']} KiB; VM PSS median {l['vm_pss_kib_median']} KiB; "
          f"all reached their guest's exit in {l['wall_s']} s")
    with open(os.path.join(OUT, "virtmgr.json"), "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
