#!/usr/bin/env bash
# vmlab on KVM vs QEMU microvm with -accel kvm, same guest programs, same run:
#  - boot-to-exit wall time of guest/progs/hello (best and median of $RUNS runs each)
#  - guest-visible virtio-blk round trips (latency.elf op=getid / op=read4k, medians the
#    guest measures with RDTSC)
# Prints a table; writes $BENCH_JSON_DIR/kvm.json when BENCH_JSON_DIR is set.
# On this machine kind /dev/kvm is nested (the host is itself a microVM): these are nested
# figures, not real-hardware ones, and the table says so.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
exec /usr/bin/python3 - "$BUILD" <<'PY'
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time

build = sys.argv[1]
vmlab = os.path.join(build, "vmlab")
hello = os.path.join(build, "guest", "hello.elf")
lat = os.path.join(build, "guest", "latency.elf")
RUNS = int(os.environ.get("RUNS", "5"))
N = int(os.environ.get("LAT_N", "2000"))
NOTE = "nested KVM (this host is itself a microVM): not real-hardware figures"

def kvm_opens():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False

def qemu(elf, args, disk=None):
    cmd = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on",
           "-accel", "kvm", "-m", "128", "-nodefaults", "-no-user-config", "-nographic",
           "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-global", "virtio-mmio.force-legacy=false"]
    if disk:
        cmd += ["-drive", f"id=d0,file={disk},format=raw,if=none", "-device", "virtio-blk-device,drive=d0"]
    return cmd + ["-kernel", elf, "-append", " ".join(args)]

def vm(elf, args, disk=None):
    return [vmlab, "run", "--cpu", "kvm"] + (["--block", disk] if disk else []) + [elf, "--"] + args

def run(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    dt = time.perf_counter() - t
    out = r.stdout.decode(errors="replace")
    if r.returncode != 1:
        raise RuntimeError(f"{os.path.basename(cmd[0])} exited {r.returncode}: {out[-200:]}")
    return dt, out

def tsc_khz(tmp):
    # QEMU's guest needs the TSC rate on its command line; vmlab passes it in the FDT.
    src, exe = os.path.join(tmp, "t.c"), os.path.join(tmp, "t")
    open(src, "w").write('#include <stdio.h>\n#include <time.h>\n#include <x86intrin.h>\n'
        'int main(void){struct timespec a,b;clock_gettime(CLOCK_MONOTONIC,&a);unsigned long long t0=__rdtsc();'
        'do clock_gettime(CLOCK_MONOTONIC,&b);while((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec)<2e8);'
        'unsigned long long t1=__rdtsc();printf("%llu\\n",(t1-t0)*1000000ULL/(unsigned long long)((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec)));}')
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True, capture_output=True)
    return int(subprocess.run([exe], check=True, capture_output=True).stdout)

res = {"note": NOTE, "runs": RUNS}
if not kvm_opens():
    print("bench_kvm: /dev/kvm does not open here: nothing to measure")
    res["skipped"] = "/dev/kvm does not open"
else:
    with tempfile.TemporaryDirectory() as tmp:
        khz = tsc_khz(tmp)
        disk = os.path.join(tmp, "d.img")
        with open(disk, "wb") as f:
            f.truncate(4 << 20)
        for name, mk in (("vmlab_kvm", vm), ("qemu_kvm", qemu)):
            r = {}
            try:
                times = [run(mk(hello, []))[0] for _ in range(RUNS)]
                r["boot_to_exit_ms_min"] = round(min(times) * 1e3, 1)
                r["boot_to_exit_ms_median"] = round(statistics.median(times) * 1e3, 1)
                for op in ("getid", "read4k"):
                    args = [f"op={op}", f"n={N}"] + ([f"tsc_khz={khz}"] if name == "qemu_kvm" else [])
                    _, out = run(mk(lat, args, disk))
                    m = re.search(r"^RESULT .*$", out, re.M)
                    f = dict(kv.split("=", 1) for kv in m.group(0).split()[1:])
                    r[f"{op}_median_ns"] = int(f.get("median_ns", 0))
                    r[f"{op}_p99_ns"] = int(f.get("p99_ns", 0))
            except (RuntimeError, subprocess.TimeoutExpired, AttributeError) as e:
                r["error"] = str(e)[:200]
            res[name] = r
    res["host_tsc_khz"] = khz
    print(f"KVM backend vs QEMU microvm -accel kvm ({NOTE})")
    print(f"{'':24}{'vmlab-kvm':>14}{'qemu-kvm':>14}")
    for k, label in (("boot_to_exit_ms_min", "boot-to-exit min ms"), ("boot_to_exit_ms_median", "boot-to-exit median ms"),
                     ("getid_median_ns", "GET_ID median ns"), ("read4k_median_ns", "4K read median ns")):
        print(f"{label:24}{res['vmlab_kvm'].get(k, '-')!s:>14}{res['qemu_kvm'].get(k, '-')!s:>14}")
    for name in ("vmlab_kvm", "qemu_kvm"):
        if "error" in res[name]:
            print(f"{name}: {res[name]['error']}")
d = os.environ.get("BENCH_JSON_DIR")
if d:
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "kvm.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    print("wrote", os.path.join(d, "kvm.json"))
PY
