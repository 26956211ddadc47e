"""Statistics and timing helpers shared by the benchmark sections."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def pct(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict:
    """Median of the repetitions with p25-p75 and min-max spread."""
    return {
        "median": statistics.median(values),
        "p25": pct(values, 25),
        "p75": pct(values, 75),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "reps": list(values),
    }


def ratio(num: Sequence[float], den: Sequence[float]) -> dict:
    """Ratio per paired repetition (same rep index), summarised."""
    return summary([a / b for a, b in zip(num, den, strict=True)])


def time_per_call(fn: Callable[[], object], min_time_s: float = 0.2) -> float:
    """Seconds per call of fn, looping until min_time_s has passed."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time_s:
            return dt / n


def fmt(s: dict, unit: str = "", digits: int = 3) -> str:
    """`median (p25-p75)` for a summary."""
    return (f"{s['median']:.{digits}g}{unit} "
            f"(p25–p75 {s['p25']:.{digits}g}–{s['p75']:.{digits}g}, "
            f"min–max {s['min']:.{digits}g}–{s['max']:.{digits}g})")
