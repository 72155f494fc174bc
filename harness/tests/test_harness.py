"""The harness's own tests: failures are reported as failures, with their reason, and the
A/B statistics flag a slowed build but not an unchanged one."""
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

from vmlab_harness import baselines, cli, scenario  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
VMLAB = os.path.join(ROOT, BUILD, "vmlab")


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    if mode:
        os.chmod(path, mode)


class ScenarioRuns(unittest.TestCase):
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
        import json
        with open(results) as f:
            return rc, {(r["scenario"], r["backend"]): r for r in json.load(f)["results"]}

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

    def test_hung_guest_is_a_failure_with_reason(self):
        write(os.path.join(self.dir, "hang.toml"), """
            [machine]
            max_insns = 5000000
            [guest]
            program = "fault"
            args = ["mode=loop"]
        """)
        rc, res = self.run_cli()
        self.assertEqual(rc, 1)
        self.assertIn("instruction limit", res[("hang", "sim")]["reasons"][0])

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


@unittest.skipUnless(os.path.exists(VMLAB), "needs build/vmlab")
class ABMode(unittest.TestCase):
    """A deliberately slowed build (VMLAB_TEST_DELAY_US) is flagged; the same build is not."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.dir = os.path.join(self.tmp, "scenarios")
        os.mkdir(self.dir)
        write(os.path.join(self.dir, "quick.toml"), """
            [guest]
            program = "hello"
            [perf]
            repeat = 8
        """)
        self.slow = os.path.join(self.tmp, "slow-vmlab")
        write(self.slow, f"#!/bin/sh\nVMLAB_TEST_DELAY_US=40000 exec {VMLAB} \"$@\"\n", mode=0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def ab(self, b):
        return cli.main(["--dir", self.dir, "--build", os.path.join(ROOT, BUILD), "ab", "A", "B",
                         "--repeat", "8", "--vmlab-a", VMLAB, "--vmlab-b", b])

    def test_slowed_build_flagged(self):
        self.assertEqual(self.ab(self.slow), 1)

    def test_same_build_not_flagged(self):
        self.assertEqual(self.ab(VMLAB), 0)


if __name__ == "__main__":
    unittest.main()
