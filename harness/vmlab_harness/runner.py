"""Running one scenario on one backend and checking what came out."""
import codecs
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from . import baselines

QEMU_MACHINE = "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on"
EXIT_REASONS = {2: "bad input (vmlab refused the command line or a file)",
                4: "guest fault", 6: "guest hung (HLT with nothing to wake it)",
                8: "guest hung (instruction limit reached)", 10: "internal error in vmlab"}


class Result:
    def __init__(self, scenario, backend):
        self.scenario = scenario.name
        self.backend = backend
        self.status = "pass"          # pass | fail | skip
        self.reasons = []
        self.wall_s = 0.0
        self.exit_status = None
        self.metrics = {}             # deterministic + perf metrics of this run
        self.artifacts = {}           # name -> path (kept in the work dir when asked)

    def fail(self, why):
        self.status = "fail"
        self.reasons.append(why)

    def to_json(self):
        return {"scenario": self.scenario, "backend": self.backend, "status": self.status,
                "reasons": self.reasons, "wall_s": self.wall_s, "exit_status": self.exit_status,
                "metrics": self.metrics}


class Env:
    """Where the binaries are."""

    def __init__(self, root, build="build", vmlab=None):
        self.root = root
        self.build = os.path.join(root, build) if not os.path.isabs(build) else build
        self.vmlab = vmlab or os.path.join(self.build, "vmlab")
        self.guests = os.path.join(self.build, "guest")

    def program(self, name):
        return os.path.join(self.guests, name + ".elf")

    def kernel(self, name):
        """A kernel path, or "newest": the newest /boot/vmlinuz-* (None if there is none)."""
        if name != "newest":
            return name
        found = sorted(glob.glob("/boot/vmlinuz-*"),
                       key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p)])
        return found[-1] if found else None

    def initrd(self, name):
        return os.path.join(self.build, name) if name else None

    def guest_files(self, sc):
        """The files the guest boots from, or (None, why) when one is missing."""
        g = sc.guest
        if g["program"]:
            prog = self.program(g["program"])
            return ([prog], None) if os.path.exists(prog) else \
                (None, f"guest program {g['program']} not found at {prog}")
        k = self.kernel(g["kernel"])
        if not k or not os.path.exists(k):
            return None, f"kernel {g['kernel']} not found (linux-image-amd64: make deps)"
        files = [k]
        if g["initrd"]:
            i = self.initrd(g["initrd"])
            if not os.path.exists(i):
                return None, f"initrd {i} not built (make test-build)"
            files.append(i)
        return files, None


def _block_spec(spec, workdir, index):
    """'file:SIZE[,opts]' makes a zero-filled file in the work dir; others pass through."""
    if spec.startswith("file:"):
        size, _, rest = spec[5:].partition(",")
        path = os.path.join(workdir, f"disk{index}.img")
        with open(path, "wb") as f:
            f.truncate(_size(size))
        return path + ("," + rest if rest else ""), path
    if spec.startswith("mem="):
        return spec, None
    return spec, spec.split(",")[0]


def _size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip()
    if s[-1:].upper() in units:
        return int(s[:-1], 0) * units[s[-1].upper()]
    return int(s, 0)


def vmlab_command(env, sc, backend, workdir, trace_path=None):
    m = sc.machine
    serial = os.path.join(workdir, "serial.txt")
    # Relative (vmlab runs in the work dir): the path is part of the machine description a
    # trace header records, so it must not differ from run to run.
    cmd = [env.vmlab, "run", "--cpu", backend, "--mem", m["mem"], "--seed", str(m["seed"]),
           "--serial", "serial.txt", "--stats", "--quiet"]
    if backend == "sim":
        cmd += ["--max-insns", str(m["max_insns"])]
        if m["tsc"] is not None:
            cmd += ["--tsc", m["tsc"]]
    if m["serial_in"] is not None:
        cmd += ["--serial-in", m["serial_in"]]
    for i, b in enumerate(m["blocks"]):
        spec, _ = _block_spec(b, workdir, i)
        cmd += ["--block", spec]
    if m["console"] is not None:
        cmd += ["--console", m["console"]]
    if m["rng"]:
        cmd += ["--rng"]
    if m["net"] is not None:
        cmd += ["--net", m["net"]]
    for spec in m["inputs"]:
        cmd += ["--input", spec]
    if m["balloon"]:
        cmd += ["--balloon"]
    for a in sc.actions:
        cmd += ["--at", f"{a['at_ns']}:{json.dumps(a['request'], separators=(',', ':'))}"]
    if trace_path:
        cmd += ["--trace", trace_path]
    g = sc.guest
    if g["kernel"]:
        cmd += ["--kernel", env.kernel(g["kernel"])]
        if g["initrd"]:
            cmd += ["--initrd", env.initrd(g["initrd"])]
        if g["cmdline"]:
            cmd += ["--cmdline", g["cmdline"]]
        return cmd, serial
    cmd += [env.program(g["program"])]
    if g["args"]:
        cmd += ["--"] + [str(a) for a in g["args"]]
    return cmd, serial


def host_tsc_khz():
    """The host CPU clock from /proc/cpuinfo (QEMU TCG's TSC runs at the host's rate)."""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", f.read(), re.M)
        return int(float(m.group(1)) * 1000) if m else 1000000
    except OSError:
        return 1000000


def qemu_command(env, sc, workdir):
    m = sc.machine
    serial = os.path.join(workdir, "serial.txt")
    cmd = ["qemu-system-x86_64", "-M", QEMU_MACHINE, "-accel", "tcg", "-m", m["mem"].rstrip("iB"),
           "-nodefaults", "-no-user-config", "-nographic", "-serial", f"file:{serial}",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-global", "virtio-mmio.force-legacy=false"]
    for i, b in enumerate(m["blocks"]):
        opts = dict(o.partition("=")[::2] for o in b.split(",")[1:] if o)
        if b.startswith("mem="):
            path = os.path.join(workdir, f"disk{i}.img")
            with open(path, "wb") as f:
                f.truncate(_size(b[4:].split(",")[0]))
        else:
            _, path = _block_spec(b, workdir, i)
        ro = ",readonly=on" if "ro" in b.split(",")[1:] else ""
        serial_opt = f",serial={opts['id']}" if opts.get("id") else ""
        cmd += ["-drive", f"id=d{i},file={path},format=raw,if=none{ro}",
                "-device", f"virtio-blk-device,drive=d{i}{serial_opt}"]
    if m["rng"]:
        cmd += ["-device", "virtio-rng-device"]
    if m["net"] is not None:
        if m["net"].split(",")[0] != "user":
            raise ValueError(f"net = {m['net']!r}: only user networking has a QEMU peer here")
        # restricted like vmlab's default: the guest reaches slirp and nothing else
        cmd += ["-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0"]
    # QEMU 7.2's nearest devices: a keyboard, a mouse, and an absolute tablet for touch.
    qemu_input = {"keyboard": "virtio-keyboard-device", "mouse": "virtio-mouse-device",
                  "single-touch": "virtio-tablet-device", "multi-touch": "virtio-tablet-device"}
    for spec in m["inputs"]:
        cmd += ["-device", qemu_input[spec.split(",")[0]]]
    if m["balloon"]:
        cmd += ["-device", "virtio-balloon-device"]
    g = sc.guest
    if g["kernel"]:
        # Linux: QEMU's own microvm defaults, the console and reset vmlab's loader puts on
        # the command line, reboot ends the run. The serial line is QEMU's stdio: run_once
        # feeds it the typed input (vmlab's --serial-in escapes, decoded) and keeps what
        # comes out. QEMU 7.2's TCG fails Linux's TSC calibration (its TSC is the host's,
        # its PIT virtual) and the kernel then waits for a tick forever: the host rate goes
        # on the command line.
        cmd[cmd.index("-M") + 1] = "microvm"
        cmd[cmd.index("-serial") + 1] = "stdio"
        cmd += ["-no-reboot", "-kernel", env.kernel(g["kernel"])]
        if g["initrd"]:
            cmd += ["-initrd", env.initrd(g["initrd"])]
        # reboot=t: with reboot=k the reset went through Linux's udelay-paced retry loop
        # (15-36 s a run under TCG, and once past the scenario's 600 s timeout); a triple
        # fault resets at once (4.9 s a run) and -no-reboot ends QEMU.
        cmd += ["-append", " ".join(["console=ttyS0 reboot=t panic=-1",
                                     f"tsc_early_khz={host_tsc_khz()}"] +
                                    ([g["cmdline"]] if g["cmdline"] else []))]
        return cmd, serial
    args = sc.qemu["args"] if sc.qemu["args"] is not None else g["args"]
    cmd += ["-kernel", env.program(g["program"]), "-append", " ".join(str(a) for a in args)]
    return cmd, serial


STATS_INSNS = re.compile(r"^stats: instructions (\d+)$", re.M)
STATS_EXITS = re.compile(r"^stats: exits (.*)$", re.M)


def parse_stats(stderr):
    out = {}
    m = STATS_INSNS.search(stderr)
    if m:
        out["instructions"] = int(m.group(1))
    m = STATS_EXITS.search(stderr)
    if m:
        for kv in m.group(1).split():
            k, _, v = kv.partition("=")
            out["exits." + k] = int(v)
    return out


def check_output(res, exp, serial, stderr):
    if exp["serial_exact"] is not None and serial != exp["serial_exact"]:
        res.fail(f"serial output differs from serial_exact (got {serial[:200]!r})")
    for s in exp["serial_contains"]:
        if s not in serial:
            res.fail(f"serial output lacks {s!r}")
    for r in exp["serial_regex"]:
        if not re.search(r, serial, re.M):
            res.fail(f"serial output does not match /{r}/")
    for s in exp["serial_absent"]:
        if s in serial:
            res.fail(f"serial output contains {s!r}, which must be absent")
    for r in exp["stderr_regex"]:
        if not re.search(r, stderr, re.M):
            res.fail(f"stderr does not match /{r}/")


def perf_metrics(sc, run):
    """wall_s and cpu_s of every run (kind host), plus the scenario's declared metrics."""
    out = {"wall_s": run.wall_s, "cpu_s": run.cpu_s}
    if not sc.perf:
        return out
    for name, spec in sc.perf["metrics"].items():
        m = re.search(spec["regex"], run.serial, re.M)
        if m:
            text = m.group(1)
            out[name] = int(text) if text.isdigit() else float(text)
    return out


Run = collections.namedtuple("Run", "status serial stderr wall_s cpu_s trace")


def _measured(cmd, cwd, timeout, stdin_bytes=None, stdout_path=None):
    """Runs cmd; returns (status or None after a timeout, stderr, wall s, CPU s). The CPU time
    (user + system, from wait4) is this child's alone, even with other jobs running, and load
    from other processes hardly moves it: the steadier host-time figure on a shared machine.
    stdin_bytes: what the child reads on stdin (else nothing); stdout_path: where its stdout
    goes (else nowhere)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin_bytes is not None:
            inp.write(stdin_bytes)
            inp.seek(0)
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        try:
            t = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=inp if stdin_bytes is not None else subprocess.DEVNULL,
                                 stdout=out, stderr=err, cwd=cwd)
        finally:
            if stdout_path:
                out.close()
        expired = threading.Event()

        def kill():
            expired.set()
            p.kill()
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, wstatus, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(wstatus)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    status = None if expired.is_set() else p.returncode
    return status, stderr, wall, ru.ru_utime + ru.ru_stime


def run_once(env, sc, backend, workdir, record_trace=False, vmlab=None):
    """One run, as a Run."""
    trace = os.path.join(workdir, "run.trace") if record_trace else None
    if backend == "qemu":
        cmd, serial_path = qemu_command(env, sc, workdir)
    else:
        e = env if vmlab is None else Env(env.root, env.build, vmlab)
        cmd, serial_path = vmlab_command(e, sc, backend, workdir, trace)
    # A Linux guest under QEMU: its serial line is QEMU's stdio, fed the typed input
    # (vmlab's --serial-in escapes, decoded) and kept as the serial output.
    stdio_serial = backend == "qemu" and sc.guest["kernel"]
    typed = None
    if stdio_serial:
        typed = codecs.decode(sc.machine["serial_in"] or "", "unicode_escape").encode("latin-1")
    status, stderr, wall, cpu = _measured(cmd, workdir, sc.timeout_s, stdin_bytes=typed,
                                          stdout_path=serial_path if stdio_serial else None)
    try:
        with open(serial_path, errors="replace") as f:
            serial = f.read()
    except OSError:
        serial = ""
    return Run(status, serial, stderr, wall, cpu, trace)


def run_scenario(env, sc, backend, base, keep_dir=None, update=False, repeat=None):
    res = Result(sc, backend)
    files, why = env.guest_files(sc)
    if files is None:
        res.fail(why)
        return res
    workdir = tempfile.mkdtemp(prefix=f"vmlab-{sc.name}-{backend}-")
    try:
        exp = sc.expectations(backend)
        golden = exp["golden_trace"] if backend in ("sim", "kvm") else None
        run = run_once(env, sc, backend, workdir, record_trace=bool(golden))
        status, serial, stderr, wall, trace = run.status, run.serial, run.stderr, run.wall_s, run.trace
        res.wall_s, res.exit_status = wall, status
        if status is None:
            res.fail(f"no exit within {sc.timeout_s} s wall time (VMM hung or guest too slow)")
        elif status < 0:
            res.fail(f"the VMM crashed (signal {-status})")
        elif status != exp["exit_status"]:
            why = EXIT_REASONS.get(status, "")
            res.fail(f"exit status {status}{' (' + why + ')' if why else ''}, expected {exp['exit_status']}"
                     + (f"; stderr: {stderr.strip()[:300]}" if stderr.strip() else ""))
        if "AddressSanitizer" in stderr or "runtime error:" in stderr:
            res.fail("sanitizer report on stderr: " + stderr[:300])
        check_output(res, exp, serial, stderr)
        first = perf_metrics(sc, run)
        if sc.perf and backend != "qemu" and status == exp["exit_status"]:
            for name in sorted(set(sc.perf["metrics"]) - set(first)):
                res.fail(f"metric {name}: /{sc.perf['metrics'][name]['regex']}/ matches nothing "
                         "in the serial output")
        exact = {k: v for k, v in first.items() if sc.metric_kind(k, backend) != "host"}
        if backend != "qemu":
            det = parse_stats(stderr) if exp["deterministic"] else {}
            res.metrics.update(parse_stats(stderr))
            if backend == "sim" and (exp["deterministic"] or exact):
                _check_deterministic(res, sc, base, dict(det, **exact), update)
        if golden and trace and status is not None:
            _check_golden(env, res, sc, golden, trace, update)
        samples = {k: [v] for k, v in first.items()}
        if sc.perf and backend != "qemu" and res.status == "pass":
            n = repeat or sc.perf["repeat"]
            for _ in range(n - 1):
                for k, v in perf_metrics(sc, run_once(env, sc, backend, workdir)).items():
                    samples.setdefault(k, []).append(v)
            _check_repeatable(res, exact, samples)
            _check_perf(res, sc, backend, base, samples, update)
        if sc.perf:
            res.metrics["perf_kinds"] = {k: sc.metric_kind(k, backend) for k in samples}
        res.metrics["perf_samples"] = samples
        if keep_dir:
            dst = os.path.join(keep_dir, f"{sc.name}-{backend}")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(workdir, dst, ignore=shutil.ignore_patterns("*.img"))
            res.artifacts["dir"] = dst
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def _check_deterministic(res, sc, base, det, update):
    """Instructions, exits and the virtual/count perf metrics against deterministic.json:
    the same on every machine, so any difference is reported, with both values."""
    if not det:
        res.fail("no --stats output to compare deterministic metrics with")
        return
    key = f"{sc.name}/sim"
    want = base.deterministic.get(key)
    if update or want is None:
        if update:
            base.deterministic[key] = det
        else:
            res.fail(f"no deterministic baseline for {key} (run with --update-baselines)")
        return
    diffs = baselines.exact_differences(want, det)
    if diffs:
        res.fail("deterministic metrics changed (baseline -> this run): " + "; ".join(diffs[:6]))


def _check_repeatable(res, exact, samples):
    """A metric declared virtual or count must come out the same in every run of one build."""
    for k in sorted(exact):
        vals = samples.get(k, [])
        if len(set(vals)) > 1:
            res.fail(f"{k} is declared deterministic but differs between runs of one build: "
                     + ", ".join(baselines.fmt(v) for v in vals[:8]))


def _check_golden(env, res, sc, golden, trace, update):
    if res.backend != "sim":
        # Golden traces are software-CPU recordings (virtual time). On KVM the device side
        # must still replay clean; tests/cli/kvm_differential.sh compares it with the sim's.
        r = subprocess.run([env.vmlab, "trace", "replay", trace], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            res.fail(f"the {res.backend} trace does not replay clean: "
                     f"{(r.stdout + r.stderr).strip()[:400]}")
        return
    gpath = os.path.join(env.root, golden)
    if update:
        os.makedirs(os.path.dirname(gpath), exist_ok=True)
        shutil.copyfile(trace, gpath)
        return
    if not os.path.exists(gpath):
        res.fail(f"golden trace {golden} missing (run with --update-baselines)")
        return
    r = subprocess.run([env.vmlab, "trace", "replay", gpath], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        res.fail(f"golden trace {golden} does not replay clean: {(r.stdout + r.stderr).strip()[:400]}")
    r = subprocess.run([env.vmlab, "trace", "diff", gpath, trace], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        res.fail(f"this run's trace differs from {golden}: {(r.stdout + r.stderr).strip()[:400]}")


def no_baseline_reason(sc, backend, mclass):
    return (f"host-time metrics not judged: no baseline for {sc.name}/{backend} on machine class "
            f"{mclass}; `harness/vmlab-scenarios run {sc.name} --update-baselines` records one, "
            f"or `harness/vmlab-scenarios ab --rev HEAD~1 {sc.name}` compares with the previous "
            f"revision on this machine")


def _check_perf(res, sc, backend, base, samples, update):
    """Host-time metrics the scenario declares (kind host, judge true) against this machine
    class's stored samples. wall_s and cpu_s are always recorded but only judged in A/B mode:
    against a stored baseline from another day they mostly measure machine load."""
    key = f"{sc.name}/{backend}"
    judged = sc.judged_metrics(backend)
    if update:
        base.perf.setdefault(key, {}).update(
            {m: v for m, v in samples.items() if sc.metric_kind(m, backend) == "host"})
        return
    ref = base.perf.get(key, {})
    missing = [m for m in judged if not ref.get(m)]
    if missing and res.status == "pass":
        res.status = "skip"
        res.reasons.append(no_baseline_reason(sc, backend, base.mclass))
    for metric in judged:
        if metric in missing or not samples.get(metric):
            continue
        spec = sc.perf["metrics"][metric]
        verdict = baselines.compare(ref[metric], samples[metric],
                                    higher_is_better=spec["higher_is_better"])
        res.metrics.setdefault("perf_verdicts", {})[metric] = verdict
        if verdict["regressed"]:
            res.fail(f"{metric} regressed: {verdict['summary']}")
