"""Stored baselines and the statistics that compare against them.

A metric has a kind (harness/README.md, "Metric kinds"). Deterministic metrics (instructions
retired, exits by kind, and any metric of kind "virtual" or "count" on the software CPU) do not
depend on the machine: harness/baselines/deterministic.json, compared exactly, any difference
reported. Host-time samples do: harness/baselines/<machine class>.json. A host metric regresses
when a permutation test over the repeated runs gives p < 0.01 AND the medians differ by more
than 5 % in the bad direction (the rule Firecracker's A/B tests use). `vmlab-scenarios ab` runs
A and B interleaved, so it compares them pair by pair (compare_paired): load that comes and
goes on a shared machine hits both runs of a pair and cancels out.

Both tests are two-sided and exact where the number of rearrangements is small, so the
smallest p a sample size can give is known before running (min_p_paired, min_p_unpaired) and a
--repeat that can never reach p < 0.01 is refused (smallest_usable)."""
import itertools
import json
import math
import os
import platform
import random
import statistics

P_THRESHOLD = 0.01
MIN_CHANGE = 0.05
PERMUTATIONS = 10000
EXACT_LIMIT = 1 << 16        # enumerate every rearrangement up to this many, else sample


def machine_class():
    """A name for 'this kind of machine': architecture, CPU count and CPU model."""
    model = "unknown-cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    slug = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{platform.machine()}-{os.cpu_count()}cpu-{slug[:40]}"


def permutation_p(a, b, rng=None, n=PERMUTATIONS):
    """Two-sided permutation test on the difference of means: exact (every split of the pooled
    samples once) when there are at most EXACT_LIMIT splits, else n seeded random shuffles."""
    rng = rng or random.Random(0x5eed)
    if not a or not b:
        return 1.0
    observed = abs(statistics.fmean(a) - statistics.fmean(b)) - 1e-12 * (1 + abs(statistics.fmean(a)))
    pool = list(a) + list(b)
    k, total = len(a), sum(a) + sum(b)
    m = len(pool) - k
    if math.comb(len(pool), k) <= EXACT_LIMIT:
        splits = 0
        hits = 0
        for idx in itertools.combinations(range(len(pool)), k):
            s = sum(pool[i] for i in idx)
            splits += 1
            hits += abs(s / k - (total - s) / m) >= observed
        return hits / splits
    hits = 0
    for _ in range(n):
        rng.shuffle(pool)
        if abs(statistics.fmean(pool[:k]) - statistics.fmean(pool[k:])) >= observed:
            hits += 1
    return (hits + 1) / (n + 1)


def min_p_unpaired(m, n):
    """The smallest p permutation_p can give for samples of m and n: only the observed split
    as extreme as it is (1 of comb(m+n, n)), or it and its mirror image when m == n."""
    if m < 1 or n < 1:
        return 1.0
    exact = (2 if m == n else 1) / math.comb(m + n, n)
    return exact if math.comb(m + n, n) <= EXACT_LIMIT else max(exact, 1 / (PERMUTATIONS + 1))


def min_p_paired(n):
    """The smallest p paired_p can give for n pairs: all signs agree, 2 of 2**n sign
    assignments (two-sided)."""
    if n < 1:
        return 1.0
    return 2 / 2 ** n if 1 << n <= EXACT_LIMIT else max(2 / 2 ** n, 1 / (PERMUTATIONS + 1))


def smallest_usable(min_p, limit=1000):
    """The smallest sample count n for which min_p(n) < P_THRESHOLD."""
    for n in range(1, limit):
        if min_p(n) < P_THRESHOLD:
            return n
    return None


def compare(before, after, higher_is_better=False):
    mb, ma = statistics.median(before), statistics.median(after)
    change = (ma - mb) / mb if mb else 0.0
    worse = change < 0 if higher_is_better else change > 0
    p = permutation_p(before, after)
    regressed = worse and abs(change) > MIN_CHANGE and p < P_THRESHOLD
    return {"before_median": mb, "after_median": ma, "change": change, "p": p,
            "regressed": regressed,
            "summary": f"median {mb:.4g} -> {ma:.4g} ({change:+.1%}), p={p:.4f}"}


def paired_p(a, b, rng=None, n=PERMUTATIONS):
    """Two-sided sign-flip permutation test on the per-pair log ratios log(b[i]/a[i]).

    For interleaved A/B runs: a burst of load on the machine slows both runs of a pair, so
    it cancels in their ratio instead of shifting one side's samples. Seeded like
    permutation_p. With k pairs the smallest p is 2/2**k (min_p_paired), so k >= 8 is needed
    for p < 0.01."""
    rng = rng or random.Random(0x5eed)
    d = [math.log(y / x) for x, y in zip(a, b) if x > 0 and y > 0]
    if not d:
        return 1.0
    k = len(d)
    observed = abs(statistics.fmean(d))
    if 1 << k <= EXACT_LIMIT:           # exact: every sign assignment once
        hits = sum(abs(sum(v if (m >> i) & 1 else -v for i, v in enumerate(d))) / k
                   >= observed - 1e-15 for m in range(1 << k))
        return hits / (1 << k)
    hits = sum(abs(statistics.fmean(v if rng.random() < 0.5 else -v for v in d))
               >= observed - 1e-15 for _ in range(n))
    return (hits + 1) / (n + 1)


def compare_paired(a, b, higher_is_better=False):
    """compare() for samples taken in pairs (a[i] and b[i] back to back): the change is the
    median of the per-pair ratios and the test is paired_p."""
    ratios = [y / x for x, y in zip(a, b) if x > 0]
    change = statistics.median(ratios) - 1.0 if ratios else 0.0
    worse = change < 0 if higher_is_better else change > 0
    p = paired_p(a, b)
    mb, ma = statistics.median(a), statistics.median(b)
    return {"before_median": mb, "after_median": ma, "change": change, "p": p,
            "regressed": worse and abs(change) > MIN_CHANGE and p < P_THRESHOLD,
            "summary": f"median {mb:.4g} -> {ma:.4g} (pairs {change:+.1%}), p={p:.4f}"}


def exact_differences(want, got):
    """Deterministic metrics: every metric whose value differs, as 'name: baseline -> now'
    (a metric missing on one side shows as 'absent')."""
    return [f"{k}: {fmt(want.get(k, 'absent'))} -> {fmt(got.get(k, 'absent'))}"
            for k in sorted(set(want) | set(got))
            if want.get(k) != got.get(k)]


def fmt(v):
    """182.0 prints as 182: exact metrics are parsed as floats but are whole numbers."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


class Baselines:
    def __init__(self, directory, mclass=None):
        self.directory = directory
        self.mclass = mclass or machine_class()
        self.det_path = os.path.join(directory, "deterministic.json")
        self.perf_path = os.path.join(directory, f"{self.mclass}.json")
        self.deterministic = self._load(self.det_path)
        self.perf = self._load(self.perf_path)

    @staticmethod
    def _load(path):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def save(self):
        os.makedirs(self.directory, exist_ok=True)
        with open(self.det_path, "w") as f:
            json.dump(self.deterministic, f, indent=1, sort_keys=True)
            f.write("\n")
        if self.perf:
            with open(self.perf_path, "w") as f:
                json.dump(self.perf, f, indent=1, sort_keys=True)
                f.write("\n")
