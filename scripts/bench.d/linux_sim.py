#!/usr/bin/python3
"""Linux boot-to-reboot on the software CPU vs QEMU TCG, same run (issue 23).

Debian's kernel (newest /boot/vmlinuz-*), the busybox initramfs of vmm/kvm/linux and a
4 MiB virtio-blk disk: /init checksums and writes the disk, reaches the shell prompt, runs
the typed commands (the same as tests/cli/sim_linux.sh) and reboots. Two routes each: the
bzImage, and the vmlinux inside it (scripts/extract-vmlinux.py) entered by its PVH note,
which skips the decompressor (QEMU boots that too: microvm's -kernel takes a PVH ELF). vmlab: `--cpu sim`
(its exit at the i8042 reset); QEMU: `-M microvm -accel tcg -no-reboot`, serial on stdio
with the same typed input, and `tsc_early_khz=` the host rate (QEMU 7.2's TCG fails the
kernel's own TSC calibration and the boot then waits forever; the scenario harness does the
same, harness/vmlab_harness/runner.py). One run each (a boot is tens of seconds). Reports
wall and CPU seconds (CPU: less sensitive to a loaded machine), their ratios, vmlab's guest
instructions per boot and the MIPS they ran at. Writes $BENCH_JSON_DIR/linux_sim.json."""
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "harness"))
from vmlab_harness.runner import host_tsc_khz  # noqa: E402

build = os.environ.get("BUILD", "build")
vmlab = os.path.join(build, "vmlab")
initrd = os.path.join(build, "kvm", "linux-initramfs.cpio.gz")
kernels = sorted(glob.glob("/boot/vmlinuz-*"))
TYPED = "\n" * 8 + "echo VMLAB-LINUX: shell says $((6*7))\nvmlab-poweroff\n"
res = {"what": "Debian kernel + busybox initramfs + virtio-blk, boot to reboot, one run each"}


def disk(path):
    with open(path, "wb") as f:
        f.write((b"vmlab-host-wrote-this\n" * 50000)[:1 << 20])
        f.truncate(4 << 20)


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, stdin=None):
    """wall s, CPU s, status, stdout, stderr"""
    t, c = time.perf_counter(), cpu_s()
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=900)
    return time.perf_counter() - t, cpu_s() - c, p.returncode, \
        p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def booted(out):
    return "VMLAB-LINUX: shell says 42" in out and "vda write read back OK" in out


if not kernels or not os.path.exists(initrd) or not os.access(vmlab, os.X_OK):
    res["skipped"] = "needs /boot/vmlinuz-* (make deps), %s and %s (make test-build)" % (initrd, vmlab)
    print("linux_sim:", res["skipped"])
else:
    kernel = kernels[-1]
    res["kernel"] = os.path.basename(kernel)
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "disk.img")
        vmlinux = os.path.join(tmp, "vmlinux")
        x = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "..", "extract-vmlinux.py"), kernel, vmlinux],
                           stderr=subprocess.PIPE)
        if x.returncode:
            res["pvh_skipped"] = x.stderr.decode(errors="replace").strip()
        routes = [("", kernel)] + ([("_pvh", vmlinux)] if x.returncode == 0 else [])

        for tag, k in routes:
            disk(d)
            wall, cpu, rc, out, err = timed([vmlab, "run", "--cpu", "sim", "--stats", "--mem", "512M",
                                        "--kernel", k, "--initrd", initrd, "--block", d,
                                        "--serial-in", TYPED.replace("\n", "\\n")])
            m = re.search(r"^stats: instructions (\d+)$", err, re.M)
            r = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "exit": rc, "booted": booted(out)}
            if m:
                r["instructions"] = int(m.group(1))
                r["mips"] = round(int(m.group(1)) / wall / 1e6, 1)
                r["mips_cpu"] = round(int(m.group(1)) / cpu / 1e6, 1)
            res["vmlab_sim" + tag] = r
        for tag, k in routes:
            disk(d)
            wall, cpu, rc, out, err = timed(
                ["qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-m", "512", "-no-reboot",
                 "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                 "-drive", f"id=d0,file={d},format=raw,if=none", "-device", "virtio-blk-device,drive=d0",
                 "-kernel", k, "-initrd", initrd, "-append",
                 f"console=ttyS0 reboot=t panic=-1 tsc_early_khz={host_tsc_khz()}"],
                stdin=TYPED.encode())
            res["qemu_tcg" + tag] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "exit": rc,
                                     "booted": booted(out)}
    q = res["qemu_tcg"]
    # The target: each vmlab route against QEMU TCG booting the same bzImage.
    for tag in [t for t, _ in routes]:
        v = res["vmlab_sim" + tag]
        if q["wall_s"] > 0 and q["cpu_s"] > 0:
            res["sim%s_over_qemu_tcg_wall" % tag] = round(v["wall_s"] / q["wall_s"], 2)
            res["sim%s_over_qemu_tcg_cpu" % tag] = round(v["cpu_s"] / q["cpu_s"], 2)
    if "qemu_tcg_pvh" in res and res["qemu_tcg_pvh"]["cpu_s"] > 0:
        v, qp = res["vmlab_sim_pvh"], res["qemu_tcg_pvh"]
        res["sim_pvh_over_qemu_tcg_pvh_wall"] = round(v["wall_s"] / qp["wall_s"], 2)
        res["sim_pvh_over_qemu_tcg_pvh_cpu"] = round(v["cpu_s"] / qp["cpu_s"], 2)
    cols = ["vmlab_sim", "vmlab_sim_pvh", "qemu_tcg", "qemu_tcg_pvh"]
    cols = [c for c in cols if c in res]
    print("Linux boot to reboot: vmlab --cpu sim vs QEMU microvm -accel tcg (same run);")
    print("  bzImage, and _pvh: the vmlinux inside it entered by its PVH note")
    print(f"{'':26}" + "".join(f"{c:>15}" for c in cols))
    for label, key in [("wall s", "wall_s"), ("CPU s", "cpu_s"), ("reached the shell, disk", "booted"),
                       ("guest instructions", "instructions"), ("MIPS (wall)", "mips"),
                       ("MIPS (CPU)", "mips_cpu")]:
        print(f"{label:26}" + "".join(f"{str(res[c].get(key, '-')):>15}" for c in cols))
    print(f"vmlab bzImage / QEMU bzImage: wall {res.get('sim_over_qemu_tcg_wall', '-')}, "
          f"CPU {res.get('sim_over_qemu_tcg_cpu', '-')}; vmlab PVH / QEMU bzImage: wall "
          f"{res.get('sim_pvh_over_qemu_tcg_wall', '-')}, CPU {res.get('sim_pvh_over_qemu_tcg_cpu', '-')}"
          f" (target 1.0); vmlab PVH / QEMU PVH: wall {res.get('sim_pvh_over_qemu_tcg_pvh_wall', '-')}, "
          f"CPU {res.get('sim_pvh_over_qemu_tcg_pvh_cpu', '-')}")
dst = os.environ.get("BENCH_JSON_DIR")
if dst:
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "linux_sim.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    print("wrote", os.path.join(dst, "linux_sim.json"))
sys.exit(0)
