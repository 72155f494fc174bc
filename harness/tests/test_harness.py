"""The harness's own tests: failures are reported as failures, with their reason, and the
A/B statistics flag a slowed build but not an unchanged one."""
import contextlib
import io
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "harness"))

from vmlab_harness import baselines, cli, runner, scenario  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
VMLAB = os.path.join(ROOT, BUILD, "vmlab")
TESTDELAY = os.path.join(ROOT, BUILD, "testdelay", "vmlab")


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    if mode:
        os.chmod(path, mode)


class HarnessCase(unittest.TestCase):
    """A scenario directory and a baseline directory of the test's own."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.dir = os.path.join(self.tmp, "scenarios")
        os.mkdir(self.dir)
        self.base = os.path.join(self.tmp, "baselines")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_cli(self, *extra, vmlab=None):
        argv = ["--dir", self.dir, "--baselines", self.base, "--build", os.path.join(ROOT, BUILD)]
        if vmlab:
            argv += ["--vmlab", vmlab]
        results = os.path.join(self.tmp, "results.json")
        rc = cli.main(argv + ["run", "--jobs", "2", "--results", results] + list(extra))
        with open(results) as f:
            return rc, {(r["scenario"], r["backend"]): r for r in json.load(f)["results"]}


class ScenarioRuns(HarnessCase):
    """Failures are reported as failures, with their reason."""

    def test_good_scenario_passes(self):
        write(os.path.join(self.dir, "ok.toml"), """
            [guest]
            program = "hello"
            [expect]
            serial_contains = ["hello from vmlab guest"]
        """)
        rc, res = self.run_cli()
        self.assertEqual(rc, 0)
        self.assertEqual(res[("ok", "sim")]["status"], "pass")

    def test_wrong_expected_output_fails_the_run(self):
        write(os.path.join(self.dir, "wrong.toml"), """
            [guest]
            program = "hello"
            [expect]
            serial_contains = ["goodbye from vmlab guest"]
        """)
        rc, res = self.run_cli()
        self.assertEqual(rc, 1)
        r = res[("wrong", "sim")]
        self.assertEqual(r["status"], "fail")
        self.assertIn("lacks 'goodbye from vmlab guest'", r["reasons"][0])

    def run_looping_guest(self, max_insns, header=""):
        """A guest that never exits: stopped by the instruction limit or the scenario's timeout."""
        write(os.path.join(self.dir, "loop.toml"), header + f"""
            [machine]
            max_insns = {max_insns}
            [guest]
            program = "fault"
            args = ["mode=loop"]
        """)
        rc, res = self.run_cli()
        return rc, res[("loop", "sim")]["reasons"][0]

    def test_hung_guest_is_a_failure_with_reason(self):
        rc, reason = self.run_looping_guest(5000000)
        self.assertEqual(rc, 1)
        self.assertIn("instruction limit", reason)

    def test_vmm_past_its_timeout_is_killed_and_failed(self):
        rc, reason = self.run_looping_guest(10 ** 12, header="timeout_s = 1\n")
        self.assertEqual(rc, 1)
        self.assertIn("no exit within 1 s wall time", reason)

    def test_missing_guest_program(self):
        write(os.path.join(self.dir, "missing.toml"), """
            [guest]
            program = "no-such-program"
        """)
        rc, res = self.run_cli()
        self.assertEqual(rc, 1)
        self.assertIn("not found", res[("missing", "sim")]["reasons"][0])

    def test_crashed_vmm(self):
        fake = os.path.join(self.tmp, "crashing-vmlab")
        write(fake, "#!/bin/sh\nkill -SEGV $$\n", mode=0o755)
        write(os.path.join(self.dir, "crash.toml"), """
            [guest]
            program = "hello"
        """)
        rc, res = self.run_cli(vmlab=fake)
        self.assertEqual(rc, 1)
        self.assertIn("crashed (signal 11)", res[("crash", "sim")]["reasons"][0])

    def test_unknown_key_is_an_error(self):
        write(os.path.join(self.dir, "typo.toml"), """
            [guest]
            program = "hello"
            [expect]
            serial_contain = ["x"]
        """)
        with self.assertRaisesRegex(scenario.ScenarioError, "unknown key 'serial_contain'"):
            scenario.load_dir(self.dir)

    def test_shards_partition_the_set(self):
        names = [f"s{i}" for i in range(40)]
        seen = []
        for k in range(1, 5):
            seen += [n for n in names if cli.shard_of(n, 4) == k - 1]
        self.assertEqual(sorted(seen), sorted(names))
        self.assertEqual(cli.shard_of("boot-hello", 7), cli.shard_of("boot-hello", 7))


class Statistics(unittest.TestCase):
    def test_slowdown_flagged_and_same_not(self):
        rng = random.Random(1)
        a = [100 + rng.gauss(0, 2) for _ in range(10)]
        slow = [115 + rng.gauss(0, 2) for _ in range(10)]
        same = [100 + rng.gauss(0, 2) for _ in range(10)]
        self.assertTrue(baselines.compare(a, slow)["regressed"])
        self.assertFalse(baselines.compare(a, same)["regressed"])

    def test_small_change_not_flagged_even_if_significant(self):
        a = [100.0 + 0.01 * i for i in range(20)]
        b = [103.0 + 0.01 * i for i in range(20)]        # 3 %: below the 5 % bar
        v = baselines.compare(a, b)
        self.assertLess(v["p"], 0.01)
        self.assertFalse(v["regressed"])

    def test_false_positive_rate_over_20_aa_runs(self):
        rng = random.Random(7)
        flagged = 0
        for _ in range(20):
            a = [50 + rng.gauss(0, 5) for _ in range(8)]
            b = [50 + rng.gauss(0, 5) for _ in range(8)]
            flagged += baselines.compare(a, b)["regressed"]
        print(f"\nA/A false positives: {flagged}/20", file=sys.stderr)
        self.assertLessEqual(flagged, 1)

    def test_paired_sees_slowdown_through_load_that_hides_it_unpaired(self):
        # Load changes from pair to pair (50..150), B is 10 % slower than the A run before it.
        rng = random.Random(3)
        base = [rng.uniform(50, 150) for _ in range(10)]
        a = [x * (1 + rng.gauss(0, 0.01)) for x in base]
        b = [x * (1.10 + rng.gauss(0, 0.01)) for x in base]
        self.assertFalse(baselines.compare(a, b)["regressed"])
        v = baselines.compare_paired(a, b)
        self.assertTrue(v["regressed"], v["summary"])
        self.assertAlmostEqual(v["change"], 0.10, delta=0.02)

    def test_paired_false_positive_rate_over_20_aa_runs_under_load(self):
        rng = random.Random(11)
        flagged = 0
        for _ in range(20):
            base = [rng.uniform(2, 6) for _ in range(8)]
            a = [x * (1 + rng.gauss(0, 0.05)) for x in base]
            b = [x * (1 + rng.gauss(0, 0.05)) for x in base]
            flagged += baselines.compare_paired(a, b)["regressed"]
        self.assertLessEqual(flagged, 1)

    def test_paired_p_needs_every_pair_to_agree_with_8_pairs(self):
        a = [1.0] * 8
        self.assertAlmostEqual(baselines.paired_p(a, [1.2] * 8), 2 / 256)
        self.assertGreater(baselines.paired_p(a, [1.2] * 7 + [0.9]), 0.01)


class MetricKinds(HarnessCase):
    """Deterministic metrics are compared exactly; host-time ones statistically, and only
    against a baseline that exists: without one the run is a counted skip saying how to get one."""

    LATENCY = """
        [machine]
        blocks = ["mem=1M"]
        [guest]
        program = "latency"
        args = ["n=200"]
        [perf]
        repeat = 5
        [perf.metrics.median_ns]
        regex = 'RESULT .*median_ns=(\\d+)'
        kind = "{kind}"
    """

    def test_virtual_metric_compared_exactly_with_both_values_named(self):
        write(os.path.join(self.dir, "lat.toml"), self.LATENCY.format(kind="virtual"))
        rc, res = self.run_cli("--update-baselines")
        self.assertEqual(rc, 0)
        with open(os.path.join(self.base, "deterministic.json")) as f:
            stored = json.load(f)["lat/sim"]
        got = stored["median_ns"]
        self.assertIsInstance(got, int)
        rc, res = self.run_cli()
        self.assertEqual((rc, res[("lat", "sim")]["status"]), (0, "pass"))
        stored["median_ns"] = got - 1          # one virtual ns off: a difference, not noise
        with open(os.path.join(self.base, "deterministic.json"), "w") as f:
            json.dump({"lat/sim": stored}, f)
        rc, res = self.run_cli()
        self.assertEqual(rc, 1)
        self.assertIn(f"median_ns: {got - 1} -> {got}", res[("lat", "sim")]["reasons"][0])
        self.assertNotIn("perf_verdicts", res[("lat", "sim")]["metrics"])

    def test_host_metric_without_baseline_is_a_counted_skip_naming_the_command(self):
        write(os.path.join(self.dir, "lat.toml"), self.LATENCY.format(kind="host").replace(
            "[machine]", '[machine]\ntsc = "host"'))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc, res = self.run_cli()
        r = res[("lat", "sim")]
        self.assertEqual((rc, r["status"]), (0, "skip"))
        self.assertIn("harness/vmlab-scenarios run lat --update-baselines", r["reasons"][0])
        self.assertIn("harness/vmlab-scenarios ab --rev HEAD~1 lat", r["reasons"][0])
        self.assertRegex(out.getvalue(), r"(?m)^SKIP lat +sim +host-time metrics not judged")
        self.assertRegex(out.getvalue(), r"(?m)^scenarios: 0 passed, 0 failed, 1 skipped")
        self.assertEqual(len(r["metrics"]["perf_samples"]["median_ns"]), 5)
        # With a baseline recorded, the same scenario is judged (a verdict, no skip).
        self.assertEqual(self.run_cli("--update-baselines")[0], 0)
        rc, res = self.run_cli()
        self.assertIn("median_ns", res[("lat", "sim")]["metrics"]["perf_verdicts"])
        self.assertNotEqual(res[("lat", "sim")]["status"], "skip")

    def test_repeat_that_cannot_reach_p_001_is_refused(self):
        write(os.path.join(self.dir, "lat.toml"), self.LATENCY.format(kind="host"))
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = cli.main(["--dir", self.dir, "--baselines", self.base, "run", "--repeat", "4",
                           "--update-baselines"])
        self.assertEqual(rc, 2)
        self.assertIn("--repeat 4", err.getvalue())
        self.assertIn("smallest usable value is 5", err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.base, "deterministic.json")))
        write(os.path.join(self.dir, "lat.toml"), self.LATENCY.format(kind="host").replace(
            "repeat = 5", "repeat = 4"))
        with self.assertRaisesRegex(scenario.ScenarioError, "smallest usable repeat is 5"):
            scenario.load_dir(self.dir)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = cli.main(["--dir", self.dir, "ab", "--repeat", "7", "--vmlab-a", VMLAB,
                           "--vmlab-b", VMLAB])
        self.assertEqual(rc, 2)
        self.assertIn("2/2^7 = 0.0156", err.getvalue())
        self.assertIn("use --repeat 8 or more", err.getvalue())

    def test_metric_needs_a_kind(self):
        write(os.path.join(self.dir, "old.toml"), """
            [guest]
            program = "hello"
            [perf]
            metrics = { x = 'x=(\\d+)' }
        """)
        with self.assertRaisesRegex(scenario.ScenarioError, r"perf.metrics.x.*regex and kind"):
            scenario.load_dir(self.dir)
        write(os.path.join(self.dir, "old.toml"), self.LATENCY.format(kind="seconds"))
        with self.assertRaisesRegex(scenario.ScenarioError, "kind = 'seconds': expected one of"):
            scenario.load_dir(self.dir)


class SmallestP(unittest.TestCase):
    """The refusals above quote these; they are what the tests in baselines.py can give."""

    def test_paired(self):
        self.assertAlmostEqual(baselines.paired_p([1.0] * 8, [1.2] * 8), baselines.min_p_paired(8))
        self.assertAlmostEqual(baselines.paired_p([1.0] * 7, [1.2] * 7), 2 / 128)
        self.assertEqual(baselines.smallest_usable(baselines.min_p_paired), 8)

    def test_unpaired_exact(self):
        self.assertAlmostEqual(baselines.permutation_p([1.0] * 5, [2.0] * 5),
                               baselines.min_p_unpaired(5, 5))
        self.assertAlmostEqual(baselines.permutation_p([1.0, 1.1, 0.9, 1.0, 1.05], [2.0] * 4),
                               baselines.min_p_unpaired(5, 4))
        self.assertGreaterEqual(baselines.permutation_p([1.0] * 4, [2.0] * 4), 0.01)
        self.assertEqual(scenario.MIN_REPEAT, 5)


class ABVerdicts(unittest.TestCase):
    """ab's comparison of one metric, on made-up samples."""

    def setUp(self):
        self.sc = scenario.Scenario("x.toml", {"guest": {"program": "hello"}, "perf": {"metrics": {
            "v": {"regex": "v=(\\d+)", "kind": "virtual"},
            "c": {"regex": "c=(\\d+)", "kind": "count", "higher_is_better": True},
            "noisy": {"regex": "n=(\\d+)", "kind": "host", "judge": False}}}})

    def test_exact_metrics(self):
        self.assertEqual(cli.ab_verdict(self.sc, "v", [182] * 8, [182] * 8)[1:], ("ok", False))
        summary, flag, bad = cli.ab_verdict(self.sc, "v", [182] * 8, [190] * 8)
        self.assertEqual((summary, flag, bad), ("exact 182 -> 190 (+4.4%)", "REGRESSED", True))
        self.assertEqual(cli.ab_verdict(self.sc, "v", [182] * 8, [180] * 8)[1:], ("changed", False))
        self.assertEqual(cli.ab_verdict(self.sc, "c", [100] * 8, [90] * 8)[1:], ("REGRESSED", True))
        self.assertEqual(cli.ab_verdict(self.sc, "v", [182] * 7 + [183], [182] * 8)[1:],
                         ("NOT DETERMINISTIC", True))
        self.assertEqual(cli.ab_verdict(self.sc, "v", [182] * 8, [182] * 7)[1:], ("MISSING", True))

    def test_host_metrics(self):
        self.assertEqual(cli.ab_verdict(self.sc, "wall_s", [1.0] * 8, [1.2] * 8)[1:],
                         ("REGRESSED", True))
        self.assertEqual(cli.ab_verdict(self.sc, "noisy", [1.0] * 8, [1.2] * 8)[1:],
                         ("reported", False))


class ABMode(unittest.TestCase):
    """`vmlab-scenarios ab` on this machine with no stored baseline: a build slowed by 10 % of
    the scenario's run time here (VMLAB_TEST_DELAY_US in the test build; the run time is the
    least CPU time of five runs, what the run costs without other load) is flagged, the same
    build is not, in at least 9 of 10 tries. A and B are the same binary through two equal
    wrapper scripts, so nothing but the delay differs."""
    PAIRS = 20
    AA_RUNS = 10

    def setUp(self):
        self.assertTrue(os.access(TESTDELAY, os.X_OK),
                        f"{TESTDELAY} is missing: `make test-build` (part of make test) builds it")
        self.tmp = tempfile.mkdtemp()
        self.dir = os.path.join(self.tmp, "scenarios")
        os.mkdir(self.dir)
        write(os.path.join(self.dir, "blk.toml"), """
            [machine]
            blocks = ["mem=8M"]
            [guest]
            program = "latency"
            args = ["n=4000"]
            [perf]
        """)
        self.a = self.wrapper("a", 0)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def wrapper(self, name, delay_us):
        path = os.path.join(self.tmp, f"vmlab-{name}")
        write(path, f"#!/bin/sh\nVMLAB_TEST_DELAY_US={delay_us} exec {TESTDELAY} \"$@\"\n",
              mode=0o755)
        return path

    def ab(self, b):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli.main(["--dir", self.dir, "--build", os.path.join(ROOT, BUILD), "ab",
                           "--repeat", str(self.PAIRS), "--vmlab-a", self.a, "--vmlab-b", b])
        return rc, out.getvalue()

    def test_slowed_build_flagged(self):
        sc = scenario.load_dir(self.dir)[0]
        env = runner.Env(ROOT, BUILD)
        work = tempfile.mkdtemp(dir=self.tmp)
        run_s = min(runner.run_once(env, sc, "sim", work, vmlab=self.a).cpu_s for _ in range(5))
        delay_us = round(run_s * 0.10 * 1e6)
        rc, out = self.ab(self.wrapper("b", delay_us))
        print(f"\nslowed by {delay_us} us (10 % of {run_s * 1000:.1f} ms):\n{out}", file=sys.stderr)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"(?m)^blk +cpu_s .*REGRESSED$")

    def test_same_build_not_flagged(self):
        flagged = []
        for _ in range(self.AA_RUNS):
            rc, out = self.ab(self.wrapper("b", 0))
            self.assertIn(rc, (0, 1), out)
            if rc:
                flagged.append(out)
        print(f"\nA/A with {self.PAIRS} pairs: {len(flagged)}/{self.AA_RUNS} flagged", file=sys.stderr)
        self.assertLessEqual(len(flagged), 1, "\n".join(flagged))


class ABRevisionBuild(unittest.TestCase):
    """`ab --rev REV` builds REV in a temporary git worktree under BUILD/ab/ and keeps the
    binary per commit; shown on a small repository whose `make build/vmlab` writes a script."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.repo = os.path.join(self.tmp, "repo")
        os.mkdir(self.repo)
        self.git("init", "-q")
        self.commits = [self.commit(f"version {i}") for i in (1, 2)]
        self.build = os.path.join(self.repo, "build")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def git(self, *args):
        return subprocess.run(["git", "-C", self.repo, "-c", "user.name=t", "-c", "user.email=t@t",
                               *args], check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, text):
        write(os.path.join(self.repo, "Makefile"),
              f"build/vmlab:\n\tmkdir -p build && printf '#!/bin/sh\\necho {text}\\n' >$@\n")
        self.git("add", "Makefile")
        self.git("commit", "-qm", text)
        return self.git("rev-parse", "HEAD")

    def test_builds_the_revision_once_and_leaves_no_worktree(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            binary = cli.build_rev(self.repo, self.build, "HEAD~1")
        self.assertEqual(binary, os.path.join(self.build, "ab", self.commits[0] + ".vmlab"))
        self.assertEqual(subprocess.run([binary], capture_output=True, text=True).stdout, "version 1\n")
        self.assertEqual(len(self.git("worktree", "list").splitlines()), 1)
        with contextlib.redirect_stdout(out):
            self.assertEqual(cli.build_rev(self.repo, self.build, self.commits[0]), binary)
        self.assertIn("built before", out.getvalue())

    def test_unknown_revision_and_failed_build_are_errors(self):
        with self.assertRaisesRegex(scenario.ScenarioError, "--rev 'no-such-rev': not a commit"):
            cli.build_rev(self.repo, self.build, "no-such-rev")
        write(os.path.join(self.repo, "Makefile"), "build/vmlab:\n\tfalse\n")
        self.git("commit", "-qam", "broken")
        with contextlib.redirect_stdout(io.StringIO()), \
                self.assertRaisesRegex(scenario.ScenarioError, r"make build/vmlab failed .*see .*\.log"):
            cli.build_rev(self.repo, self.build, "HEAD")
        self.assertEqual(len(self.git("worktree", "list").splitlines()), 1)


class ReleaseBinary(unittest.TestCase):
    """The delay knob exists only in the test build: the release binary ignores the variable."""

    def run_hello(self, binary, value):
        env = dict(os.environ, VMLAB_TEST_DELAY_US=value)
        return subprocess.run([binary, "run", "--serial", "stdio", os.path.join(ROOT, BUILD, "guest",
                               "hello.elf")], env=env, capture_output=True, text=True, timeout=60)

    def test_release_ignores_delay_variable(self):
        p = self.run_hello(VMLAB, "not-a-number")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("hello from vmlab guest", p.stdout)
        with open(VMLAB, "rb") as f:
            self.assertNotIn(b"VMLAB_TEST_DELAY_US", f.read())

    def test_test_build_honours_it(self):
        p = self.run_hello(TESTDELAY, "not-a-number")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "vmlab: VMLAB_TEST_DELAY_US 'not-a-number': expected "
                                   "microseconds, 0..60000000\n")
        self.assertEqual(self.run_hello(TESTDELAY, "1000").returncode, 1)


if __name__ == "__main__":
    unittest.main()
