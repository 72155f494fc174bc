"""Scenario files (scenarios/*.toml): loading and validation.

A scenario names a machine, a guest program, timed actions and what must come out. Every
key is checked: an unknown or mistyped key is an error naming the file and the key, so a
typo never silently turns a check off."""
import os
import tomllib

from . import baselines

BACKENDS = ("sim", "kvm", "qemu")

# key -> (type, default); nested tables listed separately.
MACHINE_KEYS = {
    "mem": (str, "128M"), "seed": (int, 0), "blocks": (list, []), "rng": (bool, False),
    "console": (str, None), "serial_in": (str, None), "max_insns": (int, 4_000_000_000),
    "tsc": (str, None),
    "net": (str, None),
    "inputs": (list, []), "balloon": (bool, False),
}
TSC_MODES = ("virtual", "host")
# A guest is a PVH test program (guest/progs) or a Linux kernel: "newest" is the newest
# /boot/vmlinuz-* (linux-image-amd64, make deps), an initrd path is relative to the build
# directory (kvm/linux-initramfs.cpio.gz is vmm/kvm/linux's busybox initramfs).
GUEST_KEYS = {"program": (str, None), "args": (list, []), "kernel": (str, None),
              "initrd": (str, None), "cmdline": (str, None)}
ACTION_KEYS = {"at_ns": (int, None), "request": (dict, None)}
# [[input]]: evdev events for input device `index` at virtual time `at` ("5ms", "250us",
# "100ns" or an integer of ns); with frame_ns, frames (ending in [0,0,0]) that far apart.
INPUT_KEYS = {"at": (object, None), "index": (int, 0), "events": (list, None),
              "frame_ns": (int, 0)}
TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_time(path, where, v):
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str):
        for unit in sorted(TIME_UNITS, key=len, reverse=True):
            num = v[:-len(unit)]
            if v.endswith(unit) and num.replace(".", "", 1).isdigit():
                return int(round(float(num) * TIME_UNITS[unit]))
    raise ScenarioError(f"{path}: [{where}] at = {v!r} is not a time such as \"5ms\", \"250us\" or ns")
EXPECT_KEYS = {
    "exit_status": (int, 1), "serial_exact": (str, None), "serial_contains": (list, []),
    "serial_regex": (list, []), "serial_absent": (list, []), "golden_trace": (str, None),
    "deterministic": (bool, False), "stderr_regex": (list, []),
}
PERF_KEYS = {"repeat": (int, 5), "metrics": (dict, {})}
# One [perf.metrics.NAME] table: the regex's first group on the serial output is the value.
METRIC_KEYS = {"regex": (str, None), "kind": (str, None), "higher_is_better": (bool, False),
               "judge": (bool, True)}
# virtual: guest time on the software CPU's clock; count: instructions, events, exits. Both are
# deterministic on the software CPU and compared exactly. host: host time, compared with the
# statistics in baselines.py. wall_s and cpu_s (the run's wall and CPU time) are always
# recorded, kind host.
METRIC_KINDS = ("virtual", "count", "host")
TOP_KEYS = {"name", "description", "backends", "timeout_s", "machine", "guest", "actions",
            "expect", "perf", "qemu", "input"}
QEMU_KEYS = {"expect": (dict, {}), "args": (list, None)}


class ScenarioError(Exception):
    pass


# The smallest [perf] repeat whose samples, against a baseline of as many, can reach p < 0.01.
MIN_REPEAT = baselines.smallest_usable(lambda n: baselines.min_p_unpaired(n, n))


def _one_of(path, where, key, value, allowed):
    if value not in allowed:
        raise ScenarioError(f"{path}: [{where}] {key} = {value!r}: expected one of {', '.join(allowed)}")


def _check_table(path, where, table, spec):
    out = {}
    for k, v in table.items():
        if k not in spec:
            raise ScenarioError(f"{path}: [{where}] has unknown key '{k}' (known: {', '.join(sorted(spec))})")
        typ, _ = spec[k]
        if typ is int and isinstance(v, bool) or not isinstance(v, typ):
            raise ScenarioError(f"{path}: [{where}] {k} = {v!r} should be a {typ.__name__}")
        out[k] = v
    for k, (_, default) in spec.items():
        out.setdefault(k, default if not isinstance(default, (list, dict)) else type(default)(default))
    return out


class Scenario:
    def __init__(self, path, data):
        self.path = path
        unknown = set(data) - TOP_KEYS
        if unknown:
            raise ScenarioError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
        self.name = data.get("name") or os.path.splitext(os.path.basename(path))[0]
        self.description = data.get("description", "")
        self.backends = data.get("backends", ["sim"])
        for b in self.backends:
            if b not in BACKENDS:
                raise ScenarioError(f"{path}: backends has '{b}', expected one of {', '.join(BACKENDS)}")
        self.timeout_s = data.get("timeout_s", 120)
        self.machine = _check_table(path, "machine", data.get("machine", {}), MACHINE_KEYS)
        if self.machine["tsc"] is not None:
            _one_of(path, "machine", "tsc", self.machine["tsc"], TSC_MODES)
        self.guest = _check_table(path, "guest", data.get("guest", {}), GUEST_KEYS)
        if bool(self.guest["program"]) == bool(self.guest["kernel"]):
            raise ScenarioError(f"{path}: [guest] needs a program or a kernel (one of them)")
        if not self.guest["kernel"] and (self.guest["initrd"] or self.guest["cmdline"]):
            raise ScenarioError(f"{path}: [guest] initrd and cmdline go with a kernel")
        self.actions = []
        for i, a in enumerate(data.get("actions", [])):
            a = _check_table(path, f"actions[{i}]", a, ACTION_KEYS)
            if a["at_ns"] is None or a["request"] is None:
                raise ScenarioError(f"{path}: actions[{i}] needs at_ns and request")
            self.actions.append(a)
        # [[input]] entries become input requests at their virtual times, like [[actions]].
        for i, e in enumerate(data.get("input", [])):
            e = _check_table(path, f"input[{i}]", e, INPUT_KEYS)
            if e["at"] is None or not e["events"]:
                raise ScenarioError(f"{path}: input[{i}] needs at and events")
            for j, ev in enumerate(e["events"]):
                if not (isinstance(ev, list) and len(ev) == 3 and
                        all(isinstance(x, int) and not isinstance(x, bool) for x in ev)):
                    raise ScenarioError(f"{path}: input[{i}] events[{j}] = {ev!r} should be "
                                        "[type, code, value]")
            req = {"cmd": "input", "index": e["index"], "events": e["events"]}
            if e["frame_ns"]:
                req["frame_ns"] = e["frame_ns"]
            self.actions.append({"at_ns": parse_time(path, f"input[{i}]", e["at"]),
                                 "request": req})
        self.expect = _check_table(path, "expect", data.get("expect", {}), EXPECT_KEYS)
        self.perf = None
        if "perf" in data:
            self._load_perf(path, data["perf"])
        self.qemu = _check_table(path, "qemu", data.get("qemu", {}), QEMU_KEYS)
        qexp = dict(self.expect)
        qexp.update(self.qemu["expect"])
        for k in self.qemu["expect"]:
            if k not in EXPECT_KEYS:
                raise ScenarioError(f"{path}: [qemu.expect] has unknown key '{k}'")
        self.qemu_expect = qexp

    def _load_perf(self, path, table):
        """Sets self.perf, each metric checked; refuses a repeat that cannot reach p < 0.01."""
        perf = _check_table(path, "perf", table, PERF_KEYS)
        metrics = {}
        for name, spec in perf["metrics"].items():
            where = f"perf.metrics.{name}"
            if not isinstance(spec, dict):
                raise ScenarioError(f"{path}: [{where}] = {spec!r} should be a table with regex "
                                    f"and kind (one of {', '.join(METRIC_KINDS)})")
            spec = _check_table(path, where, spec, METRIC_KEYS)
            if spec["regex"] is None:
                raise ScenarioError(f"{path}: [{where}] regex is missing")
            _one_of(path, where, "kind", spec["kind"], METRIC_KINDS)
            metrics[name] = spec
        perf["metrics"] = metrics
        self.perf = perf
        n = perf["repeat"]
        if n < MIN_REPEAT and any(self.judged_metrics(b) for b in self.backends):
            raise ScenarioError(
                f"{path}: [perf] repeat = {n}: against a baseline of as many runs the permutation "
                f"test's smallest p is {baselines.min_p_unpaired(n, n):.3g}, never below "
                f"{baselines.P_THRESHOLD}; the smallest usable repeat is {MIN_REPEAT}")

    def judged_metrics(self, backend):
        """The declared metrics judged statistically on this backend (host kind, judge true)."""
        if not self.perf or backend == "qemu":
            return []
        return sorted(n for n, m in self.perf["metrics"].items()
                      if m["judge"] and self.metric_kind(n, backend) == "host")

    def metric_kind(self, name, backend):
        """virtual and count are deterministic on the software CPU only; elsewhere (KVM) they
        follow the host and are measured like host time."""
        spec = self.perf["metrics"].get(name) if self.perf else None
        kind = spec["kind"] if spec else "host"
        return kind if backend == "sim" else "host"

    def expectations(self, backend):
        return self.qemu_expect if backend == "qemu" else self.expect


def load(path):
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ScenarioError(f"{path}: {e.strerror}") from None
    return Scenario(path, data)


def load_dir(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".toml"):
            out.append(load(os.path.join(directory, name)))
    return out
