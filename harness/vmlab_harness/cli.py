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


def build_rev(root, rev, dest):
    subprocess.run(["git", "-C", root, "worktree", "add", "--detach", dest, rev], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["make", "-C", dest, "-j2", "build/vmlab", "guests"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(dest, "build", "vmlab")


def cmd_ab(args, root):
    scs = [s for s in select(scenario.load_dir(args.dir), args.names, None) if s.perf]
    if not scs:
        print("no scenario with a [perf] section selected", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="vmlab-ab-")
    try:
        if args.vmlab_a and args.vmlab_b:
            va, vb = args.vmlab_a, args.vmlab_b
            env = runner.Env(root, args.build)
        else:
            va = build_rev(root, args.rev_a, os.path.join(tmp, "a"))
            vb = build_rev(root, args.rev_b, os.path.join(tmp, "b"))
            env = runner.Env(os.path.join(tmp, "a"), "build")
        worst = 0
        for sc in scs:
            samples = {"a": {}, "b": {}}
            work = tempfile.mkdtemp(dir=tmp)
            for i in range(args.repeat):            # interleaved: A B A B ...
                for side, binary in (("a", va), ("b", vb)):
                    st, serial, _, wall, _ = runner.run_once(env, sc, "sim", work, vmlab=binary)
                    if st != sc.expect["exit_status"]:
                        print(f"{sc.name}: {side} run {i} exited {st}", file=sys.stderr)
                        return 2
                    for k, v in runner.perf_metrics(sc, serial, wall).items():
                        samples[side].setdefault(k, []).append(v)
            for metric in sorted(samples["a"]):
                spec = sc.perf["metrics"].get(metric)
                hib = isinstance(spec, dict) and bool(spec.get("higher_is_better"))
                v = baselines.compare_paired(samples["a"][metric], samples["b"].get(metric, []),
                                             hib)
                flag = "REGRESSED" if v["regressed"] else "ok"
                print(f"{sc.name:24} {metric:20} {v['summary']:48} {flag}")
                worst |= v["regressed"]
        return 1 if worst else 0
    finally:
        if not (args.vmlab_a and args.vmlab_b):
            for side in ("a", "b"):
                subprocess.run(["git", "-C", root, "worktree", "remove", "--force",
                                os.path.join(tmp, side)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


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
    a = sub.add_parser("ab", help="compare two revisions' performance, interleaved")
    a.add_argument("rev_a")
    a.add_argument("rev_b")
    a.add_argument("names", nargs="*")
    a.add_argument("--repeat", type=int, default=10)
    a.add_argument("--vmlab-a", help="use this binary for A instead of building rev_a")
    a.add_argument("--vmlab-b", help="use this binary for B instead of building rev_b")
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            return cmd_run(args, root)
        return cmd_ab(args, root)
    except scenario.ScenarioError as e:
        print(f"vmlab-scenarios: {e}", file=sys.stderr)
        return 2
