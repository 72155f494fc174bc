"""vmlab-scenarios: run scenarios, compare with baselines, A/B two revisions."""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

from . import baselines, junit, runner, scenario


def kvm_available():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
        return True, ""
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"


def shard_of(name, n):
    """Deterministic on every machine: a CRC of the name, not Python's salted hash()."""
    return zlib.crc32(name.encode()) % n


def select(all_scenarios, names, shard):
    chosen = all_scenarios
    if names:
        by_name = {s.name: s for s in all_scenarios}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise scenario.ScenarioError(f"unknown scenario(s): {', '.join(missing)}")
        chosen = [by_name[n] for n in names]
    if shard:
        k, n = shard
        chosen = [s for s in chosen if shard_of(s.name, n) == k - 1]
    return chosen


def parse_shard(text):
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard '{text}': expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard '{text}': need 1 <= K <= N")
    return k, n


def cmd_run(args, root):
    env = runner.Env(root, args.build, args.vmlab)
    scs = select(scenario.load_dir(args.dir), args.names, args.shard)
    base = baselines.Baselines(args.baselines)
    have_kvm, why = kvm_available()
    jobs = []
    results = []
    for sc in scs:
        for b in sc.backends:
            if args.backend and b != args.backend:
                continue
            skip_why = None
            if b == "kvm" and not have_kvm:
                skip_why = f"KVM unavailable ({why})"
            elif b == "kvm" and sc.guest["kernel"] and os.path.isdir("/sys/module/kvm_pvm") \
                    and os.environ.get("KVM_LINUX") != "1":
                # as tests/cli/kvm_linux.sh: kvm-pvm emulates such a guest instruction by
                # instruction, a boot takes far beyond any budget
                skip_why = "/dev/kvm is kvm-pvm (a Linux boot is too slow; KVM_LINUX=1 forces it)"
            if skip_why:
                r = runner.Result(sc, b)
                r.status = "skip"
                r.reasons.append(skip_why)
                results.append(r)
                print(f"SKIP {sc.name:28} {b:5} {r.reasons[0]}", flush=True)
                continue
            if b == "qemu" and not shutil.which("qemu-system-x86_64"):
                r = runner.Result(sc, b)
                r.fail("qemu-system-x86_64 not installed (make deps installs it)")
                results.append(r)
                continue
            jobs.append((sc, b))
    if args.repeat is not None and args.repeat < 1:
        raise scenario.ScenarioError(f"--repeat {args.repeat}: expected 1 or more runs")
    for sc, b in jobs:
        check_run_repeat(sc, b, base, args.repeat, args.update_baselines)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(runner.run_scenario, env, sc, b, base, args.keep,
                            args.update_baselines, args.repeat): (sc, b) for sc, b in jobs}
        for f in concurrent.futures.as_completed(futs):
            sc, b = futs[f]
            try:
                r = f.result()
            except Exception as e:     # a harness bug must not hide the other results
                r = runner.Result(sc, b)
                r.fail(f"harness error: {e!r}")
            results.append(r)
            if r.status == "skip":
                print(f"SKIP {r.scenario:28} {r.backend:5} {r.reasons[0]}", flush=True)
                continue
            line = f"{r.status.upper():4} {r.scenario:28} {r.backend:5} {r.wall_s:7.2f}s"
            if r.reasons:
                line += "  " + r.reasons[0][:160]
            print(line, flush=True)
    results.sort(key=lambda r: (r.scenario, r.backend))
    if args.update_baselines:
        base.save()
        print(f"baselines updated: {base.det_path}" + (f", {base.perf_path}" if base.perf else ""))
    print()
    print(f"{'scenario':28} {'backend':7} {'result':6} {'wall s':>7}  detail")
    for r in results:
        print(f"{r.scenario:28} {r.backend:7} {r.status:6} {r.wall_s:7.2f}  {'; '.join(r.reasons)[:100]}")
    if args.junit:
        junit.write(args.junit, results)
    if args.results:
        with open(args.results, "w") as f:
            json.dump({"machine_class": base.mclass, "results": [r.to_json() for r in results]}, f, indent=1)
    npass = sum(r.status == "pass" for r in results)
    nfail = sum(r.status == "fail" for r in results)
    nskip = sum(r.status == "skip" for r in results)
    print(f"scenarios: {npass} passed, {nfail} failed" + (f", {nskip} skipped" if nskip else "")
          + f" ({time.perf_counter() - t0:.1f} s)")
    return 1 if nfail else 0


def check_run_repeat(sc, backend, base, repeat, update):
    """Refuse a repeat count whose samples can never give p < 0.01 against the stored
    baseline (or, when recording one, against a baseline of as many runs)."""
    judged = sc.judged_metrics(backend)
    if not judged:
        return
    n = repeat or sc.perf["repeat"]
    ref = base.perf.get(f"{sc.name}/{backend}", {})
    sizes = [n] if update else [len(ref[m]) for m in judged if ref.get(m)]
    if not sizes:
        return
    m = min(sizes)
    if baselines.min_p_unpaired(m, n) < baselines.P_THRESHOLD:
        return
    usable = baselines.smallest_usable(
        (lambda k: baselines.min_p_unpaired(k, k)) if update else
        (lambda k: baselines.min_p_unpaired(m, k)))
    what = "--repeat" if repeat else f"{sc.path}: [perf] repeat ="
    raise scenario.ScenarioError(
        f"{what} {n}: {sc.name}/{backend}'s permutation test against a baseline of "
        f"{m} runs has a smallest p of {baselines.min_p_unpaired(m, n):.3g}, never below "
        f"{baselines.P_THRESHOLD}; the smallest usable value is {usable}")


def git(root, *args):
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)


def build_rev(root, build, rev):
    """vmlab as of revision REV, built in a temporary git worktree under BUILD/ab/ and kept as
    BUILD/ab/<commit>.vmlab, so a second A/B run against the same commit builds nothing."""
    r = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if r.returncode != 0:
        raise scenario.ScenarioError(f"--rev '{rev}': not a commit in {root}")
    commit = r.stdout.strip()
    abdir = os.path.join(build, "ab")
    binary = os.path.join(abdir, f"{commit}.vmlab")
    if os.path.exists(binary):
        print(f"A: {rev} = {commit[:12]}, built before: {binary}", flush=True)
        return binary
    os.makedirs(abdir, exist_ok=True)
    tree = os.path.join(abdir, commit)
    log = os.path.join(abdir, f"{commit}.log")
    print(f"A: building {rev} = {commit[:12]} in {tree} (log {log}) ...", flush=True)
    git(root, "worktree", "remove", "--force", tree)
    shutil.rmtree(tree, ignore_errors=True)
    r = git(root, "worktree", "add", "--detach", tree, commit)
    if r.returncode != 0:
        raise scenario.ScenarioError(f"--rev '{rev}': git worktree add failed: {r.stderr.strip()}")
    try:
        with open(log, "w") as f:
            p = subprocess.run(["make", "-C", tree, "-j2", "build/vmlab"], stdout=f,
                               stderr=subprocess.STDOUT)
        if p.returncode != 0:
            raise scenario.ScenarioError(f"--rev '{rev}': make build/vmlab failed (exit "
                                         f"{p.returncode}), see {log}")
        shutil.copyfile(os.path.join(tree, "build", "vmlab"), binary + ".tmp")
        os.chmod(binary + ".tmp", 0o755)
        os.replace(binary + ".tmp", binary)
    finally:
        git(root, "worktree", "remove", "--force", tree)
        shutil.rmtree(tree, ignore_errors=True)
    return binary


def ab_binaries(args, root):
    """(A, B): A is --vmlab-a or revision --rev built here; B is --vmlab-b, revision --rev-b,
    or this tree's own build (what `make` built from the working tree)."""
    build = os.path.join(root, args.build) if not os.path.isabs(args.build) else args.build
    if args.vmlab_a:
        a = args.vmlab_a
        print(f"A: {a}", flush=True)
    else:
        a = build_rev(root, build, args.rev)
    if args.vmlab_b:
        b = args.vmlab_b
        print(f"B: {b}", flush=True)
    elif args.rev_b:
        b = build_rev(root, build, args.rev_b)
    else:
        b = args.vmlab or os.path.join(build, "vmlab")
        if not os.access(b, os.X_OK):
            raise scenario.ScenarioError(f"B: {b} is missing: run make first (B is this tree's build)")
        print(f"B: this tree's build {b}", flush=True)
    return a, b


def ab_samples(env, sc, binaries, pairs, work):
    """Interleaved runs, the order alternating from pair to pair (A B, B A, ...) so that
    whatever favours the first or second run of a pair (caches, a load burst's edge) falls on
    both sides. Returns {side: {metric: [values]}} or raises with the run that failed."""
    samples = {"a": {}, "b": {}}
    for i in range(pairs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            run = runner.run_once(env, sc, "sim", work, vmlab=binaries[side])
            if run.status != sc.expect["exit_status"]:
                raise scenario.ScenarioError(
                    f"{sc.name}: {side.upper()} run {i + 1} ({binaries[side]}) exited {run.status}, "
                    f"expected {sc.expect['exit_status']}: {run.stderr.strip()[:200]}")
            for k, v in runner.perf_metrics(sc, run).items():
                samples[side].setdefault(k, []).append(v)
    return samples


def ab_verdict(sc, metric, a, b):
    """(summary, flag, bad): exact comparison for deterministic metrics, the paired test for
    host-time ones."""
    spec = sc.perf["metrics"].get(metric, {})
    hib = bool(spec.get("higher_is_better"))
    if not a or len(a) != len(b):
        return (f"{len(a)} values from A, {len(b)} from B: the regex missed some runs",
                "MISSING", True)
    if sc.metric_kind(metric, "sim") != "host":
        if len(set(a)) > 1 or len(set(b)) > 1:
            return (f"varies within one build: A {sorted(set(a))[:4]}, B {sorted(set(b))[:4]}",
                    "NOT DETERMINISTIC", True)
        va, vb = a[0], b[0]
        if va == vb:
            return f"exact {baselines.fmt(va)} (same)", "ok", False
        worse = vb < va if hib else vb > va
        change = f" ({(vb - va) / va:+.1%})" if va else ""
        return (f"exact {baselines.fmt(va)} -> {baselines.fmt(vb)}{change}",
                "REGRESSED" if worse else "changed", worse)
    v = baselines.compare_paired(a, b, hib)
    if not spec.get("judge", True):
        return v["summary"], "reported", False
    return v["summary"], "REGRESSED" if v["regressed"] else "ok", v["regressed"]


def cmd_ab(args, root):
    if baselines.min_p_paired(args.repeat) >= baselines.P_THRESHOLD:
        raise scenario.ScenarioError(
            f"ab --repeat {args.repeat}: the paired sign-flip test on {args.repeat} pairs has a "
            f"smallest two-sided p of 2/2^{args.repeat} = {baselines.min_p_paired(args.repeat):.3g}, "
            f"never below {baselines.P_THRESHOLD}; use --repeat "
            f"{baselines.smallest_usable(baselines.min_p_paired)} or more")
    scs = [s for s in select(scenario.load_dir(args.dir), args.names, None) if s.perf]
    if not scs:
        raise scenario.ScenarioError("no scenario with a [perf] section selected")
    a, b = ab_binaries(args, root)
    env = runner.Env(root, args.build)
    worst = False
    with tempfile.TemporaryDirectory(prefix="vmlab-ab-") as tmp:
        for sc in scs:
            samples = ab_samples(env, sc, {"a": a, "b": b}, args.repeat, tempfile.mkdtemp(dir=tmp))
            for metric in sorted(set(samples["a"]) | set(samples["b"])):
                summary, flag, bad = ab_verdict(sc, metric, samples["a"].get(metric, []),
                                                samples["b"].get(metric, []))
                print(f"{sc.name:24} {metric:20} {summary:52} {flag}", flush=True)
                worst |= bad
    print(f"ab: {'B is worse than A' if worst else 'no regression'} "
          f"({args.repeat} interleaved pairs per scenario)")
    return 1 if worst else 0


def main(argv=None):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    p = argparse.ArgumentParser(prog="vmlab-scenarios", description=__doc__)
    p.add_argument("--dir", default=os.path.join(root, "scenarios"), help="scenario directory")
    p.add_argument("--build", default=os.environ.get("BUILD", "build"), help="build directory")
    p.add_argument("--vmlab", default=os.environ.get("VMLAB_SCENARIO_BIN"), help="vmlab binary")
    p.add_argument("--baselines", default=os.path.join(root, "harness", "baselines"))
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run scenarios")
    r.add_argument("names", nargs="*")
    r.add_argument("--backend", choices=scenario.BACKENDS)
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    r.add_argument("--shard", type=parse_shard)
    r.add_argument("--junit")
    r.add_argument("--results", help="write results as JSON (make report reads it)")
    r.add_argument("--keep", help="copy each scenario's work dir (serial, trace) here")
    r.add_argument("--repeat", type=int, help="runs per perf scenario (default: its own)")
    r.add_argument("--update-baselines", action="store_true")
    a = sub.add_parser("ab", help="compare two builds' performance on this machine, interleaved",
                       description="Runs each [perf] scenario with build A and build B in "
                       "alternating pairs and compares them: deterministic metrics exactly, "
                       "host-time metrics with a paired sign-flip test (p < 0.01 and a median "
                       "pair ratio more than 5 % worse flags a regression). Exit 0: no "
                       "regression; 1: B is worse; 2: bad usage or a run failed.")
    a.add_argument("names", nargs="*", help="scenarios (default: every one with [perf])")
    a.add_argument("--rev", default="HEAD~1",
                   help="A: this git revision, built under BUILD/ab/ (default HEAD~1)")
    a.add_argument("--rev-b", help="B: this git revision instead of this tree's build")
    a.add_argument("--repeat", type=int, default=20, help="interleaved pairs per scenario "
                   "(default 20; at least 8, or p < 0.01 is out of reach)")
    a.add_argument("--vmlab-a", help="use this binary for A instead of building --rev")
    a.add_argument("--vmlab-b", help="use this binary for B instead of this tree's build")
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            return cmd_run(args, root)
        return cmd_ab(args, root)
    except scenario.ScenarioError as e:
        print(f"vmlab-scenarios: {e}", file=sys.stderr)
        return 2
