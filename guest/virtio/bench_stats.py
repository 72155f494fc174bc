"""Percentiles of the host-side benchmarks (scripts/bench.d/*.py), one rule for all: the
sample at rank round(p/100 * (n-1)) of the sorted values."""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def summary_ns(xs):
    """n, min, median, p90, p99 and max of a list of durations in ns."""
    return {"n": len(xs), "min_ns": min(xs), "median_ns": pct(xs, 50), "p90_ns": pct(xs, 90),
            "p99_ns": pct(xs, 99), "max_ns": max(xs)}
