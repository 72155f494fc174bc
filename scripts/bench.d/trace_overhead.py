"""Recording overhead: wall time of a blk-heavy run (whole-disk read of an 8 MiB disk, write,
flush) with and without --trace, interleaved in the same run, median of 15 each, on an
in-memory disk and on a file-backed one (whose trace also carries the content the run read,
traces/FORMAT.md "Disk content"). Target (issue 6): recording adds at most 20 %.

Disk content size (issue 17): for each blk golden trace, its bytes and the bytes of its disk
content chunks (TDSK); the trace without them is exactly what format 1 wrote (the event
chunks are unchanged), so "before" = bytes - disk content."""
import glob, json, os, re, statistics, subprocess, tempfile, threading, time

BUILD = os.environ.get("BUILD", "build")
OUT = os.environ.get("BENCH_JSON_DIR", BUILD)
VMLAB = os.path.abspath(os.path.join(BUILD, "vmlab"))
BLK = os.path.abspath(os.path.join(BUILD, "guest", "blk.elf"))
N = 15


def run(extra, cwd, block="mem=8M"):
    """Wall time of one run. A blocking wait, not subprocess.run(timeout=...): Python's
    wait with a timeout polls with sleeps doubling up to 50 ms, which rounds a 65 ms run
    up to 114 ms and hid the real recording overhead."""
    cmd = [VMLAB, "run", "--serial", "none", "--block", block, *extra, BLK]
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(300, p.kill)
    watchdog.start()
    rc = p.wait()
    dt = time.perf_counter() - t
    watchdog.cancel()
    if rc != 1:
        raise SystemExit(f"blk run exited {rc}")
    return dt


def disk_content_bytes(path):
    """Bytes of disk content chunks, as `vmlab trace info` reports them (0 if none)."""
    info = subprocess.run([VMLAB, "trace", "info", path], capture_output=True, text=True)
    if info.returncode:
        raise SystemExit(f"trace info {path} failed: {info.stderr.strip()}")
    m = re.search(r"^disk content (\d+) bytes", info.stdout, re.M)
    return int(m.group(1)) if m else 0


def trace_events(path):
    info = subprocess.run([VMLAB, "trace", "info", path], capture_output=True, text=True).stdout
    m = re.search(r"^events (\d+)", info, re.M)
    return m.group(1) if m else None


def main():
    plain, traced, fplain, ftraced = [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "disk.img"), "wb") as f:
            f.write(bytes((i * 13 + (i >> 9) * 7) & 0xff for i in range(1 << 16)) * 128)
        for _ in range(N):
            plain.append(run([], d))
            traced.append(run(["--trace", "t.trace"], d))
            fplain.append(run([], d, "disk.img"))
            ftraced.append(run(["--trace", "f.trace"], d, "disk.img"))
        size = os.path.getsize(os.path.join(d, "t.trace"))
        events = trace_events(os.path.join(d, "t.trace"))
        fsize = os.path.getsize(os.path.join(d, "f.trace"))
        fcontent = disk_content_bytes(os.path.join(d, "f.trace"))
    mp, mt = statistics.median(plain), statistics.median(traced)
    fp, ft = statistics.median(fplain), statistics.median(ftraced)
    overhead, foverhead = (mt - mp) / mp, (ft - fp) / fp
    print(f"{'blk run (8 MiB read + write + flush)':40} {'median ms':>10}")
    print(f"{'without --trace':40} {mp * 1e3:10.1f}")
    print(f"{'with --trace':40} {mt * 1e3:10.1f}")
    print(f"{'file disk, without --trace':40} {fp * 1e3:10.1f}")
    print(f"{'file disk, with --trace':40} {ft * 1e3:10.1f}")
    print(f"recording overhead {overhead:+.1%} (target <= +20%: {'met' if overhead <= 0.20 else 'NOT met'}); "
          f"trace {size / 1e6:.2f} MB" + (f", {events} events" if events else ""))
    print(f"file disk: recording overhead {foverhead:+.1%}; trace {fsize / 1e6:.2f} MB, of which "
          f"{fcontent / 1e6:.2f} MB disk content (the 8 MiB the guest read)")

    golden = {}
    print()
    print(f"{'blk golden trace':28} {'format 1':>10} {'format 2':>10} {'extra':>9}")
    for path in sorted(glob.glob(os.path.join("traces", "golden", "blk-*.trace"))):
        total, content = os.path.getsize(path), disk_content_bytes(path)
        name = os.path.basename(path)[:-len(".trace")]
        golden[name] = {"bytes": total, "disk_content_bytes": content,
                        "format1_bytes": total - content}
        print(f"{name:28} {total - content:10d} {total:10d} {content:+9d}")
    print("(mem= disks need no content; blk-file-64k reads its whole 64 KiB file disk)")
    with open(os.path.join(OUT, "trace_overhead.json"), "w") as f:
        json.dump({"plain_ms": mp * 1e3, "traced_ms": mt * 1e3, "overhead": overhead,
                   "trace_bytes": size,
                   "file_plain_ms": fp * 1e3, "file_traced_ms": ft * 1e3,
                   "file_overhead": foverhead, "file_trace_bytes": fsize,
                   "file_disk_content_bytes": fcontent,
                   "golden_blk_traces": golden}, f, indent=2)


if __name__ == "__main__":
    main()
