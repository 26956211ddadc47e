"""Unit tests of the load-test arithmetic on hand-made samples (no server)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tritonkit.loadtest.metrics import RequestSample, tpot_s
from tritonkit.loadtest.shapes import SpikePlan, SweepPlan, level_at, make_plan
from tritonkit.loadtest.stats import check_gates, distribution, meets_slo, summarize
from tritonkit.loadtest.workloads import LengthDist, WorkloadError


def sample(start: float, ttft: float, e2e: float, n_out: int, ok: bool = True, **kw) -> dict:
    s = RequestSample("grpc", "m", start, ok=ok, ttft_s=ttft, e2e_s=e2e, output_tokens=n_out,
                      input_tokens=10, requested_output_tokens=n_out, **kw)
    return s.to_json()


def test_tpot_formula() -> None:
    assert tpot_s(1.0, 0.1, 10) == pytest.approx(0.1)  # (1.0 - 0.1) / 9
    assert tpot_s(1.0, 0.1, 1) is None
    assert sample(0, 0.2, 0.5, 4)["tpot_s"] == pytest.approx(0.1)


def test_percentiles_exact_linear_interpolation() -> None:
    d = distribution([1, 2, 3, 4, None, 5, 6, 7, 8, 9, 10])
    assert d["count"] == 10
    assert d["p50"] == pytest.approx(5.5)
    assert d["p90"] == pytest.approx(9.1)  # 1 + 0.9 * 9
    assert d["p99"] == pytest.approx(9.91)
    assert d["max"] == 10 and d["min"] == 1
    # no bucketing: a 3-significant-digit value survives (Locust would report 150 for 147)
    assert distribution([147.0])["p99"] == 147.0
    vals = np.random.default_rng(0).exponential(100, 1001)
    assert distribution(vals)["p95"] == pytest.approx(np.sort(vals)[950])
    assert distribution([])["p50"] is None


def test_slo_membership_and_goodput() -> None:
    good = sample(100.0, 0.1, 1.0, 10)  # tpot 0.1 s
    slow_ttft = sample(100.5, 0.6, 1.5, 10)
    failed = sample(101.0, 0.1, 1.0, 10, ok=False, error="boom")
    one_token = sample(101.5, 0.1, 0.1, 1)  # TPOT undefined: counts as 0 for goodput
    slo = {"ttft_ms": 500, "tpot_ms": 150}
    assert meets_slo(good, slo) and meets_slo(one_token, slo)
    assert not meets_slo(slow_ttft, slo) and not meets_slo(failed, slo)
    warm = sample(99.0, 5.0, 9.0, 10)  # started before the window: excluded
    s = summarize([warm, good, slow_ttft, failed, one_token], t_from=100.0, t_to=102.0, slo=slo,
                  target_rate=4.0)
    assert s["requests"] == 4 and s["completed"] == 3 and s["failed"] == 1
    assert s["good_requests"] == 2
    assert s["goodput_rps"] == pytest.approx(2 / 2.0)
    assert s["slo_attainment"] == pytest.approx(2 / 4)
    assert s["request_throughput_rps"] == pytest.approx(3 / 2.0)
    assert s["output_token_throughput_tps"] == pytest.approx(21 / 2.0)
    assert s["achieved_rate_rps"] == pytest.approx(2.0)
    assert s["achieved_over_target"] == pytest.approx(0.5)
    assert s["errors"] == {"boom": 1}
    assert s["metrics"]["ttft_ms"]["max"] == pytest.approx(600.0)  # the warm-up 5 s is not here


def test_itl_pooled_and_max_gap() -> None:
    a = sample(0, 0.1, 0.4, 4, itl_s=[0.1, 0.1, 0.1])
    b = sample(0, 0.1, 0.5, 3, itl_s=[0.1, 0.3])
    s = summarize([a, b], t_from=0, t_to=1, slo={})
    assert s["metrics"]["itl_ms"]["count"] == 5
    assert s["metrics"]["itl_ms"]["p50"] == pytest.approx(100.0)
    assert s["metrics"]["max_gap_ms"]["max"] == pytest.approx(300.0)
    assert s["metrics"]["tpot_ms"]["p50"] == pytest.approx(150.0)  # (100 + 200) / 2


def test_gates() -> None:
    s = summarize([sample(0, 0.1, 1.0, 10)], t_from=0, t_to=1, slo={"ttft_ms": 50})
    res = check_gates(s, "ttft_ms_p99<=200,error_rate<=0", 0.95)
    assert [g["passed"] for g in res] == [False, True, True]
    with pytest.raises(ValueError, match="needs <= or >="):
        check_gates(s, "ttft_ms_p99<200", 0.95)
    with pytest.raises(ValueError, match="unknown quantity"):
        check_gates(s, "nope_p99<=1", 0.95)


def test_length_distributions() -> None:
    rng = random.Random(1)
    assert LengthDist.parse("fixed:7").sample(rng) == 7
    u = [LengthDist.parse("uniform:10:20").sample(rng) for _ in range(500)]
    assert min(u) == 10 and max(u) == 20
    n = [LengthDist.parse("normal:100:10").sample(rng) for _ in range(2000)]
    assert abs(np.mean(n) - 100) < 1.5 and abs(np.std(n) - 10) < 1.5
    for bad in ("normal:5", "gauss:1:2", "uniform:9:3", "fixed:0"):
        with pytest.raises(WorkloadError):
            LengthDist.parse(bad)


def test_plans_and_levels() -> None:
    sp = SpikePlan(10.0, base=2, peak=16, spike_at_s=4.0, spike_s=2.0)
    assert [sp.users_at(t) for t in (0, 3.9, 4.0, 5.9, 6.0)] == [2, 2, 16, 16, 2]
    assert sp.at(10.0) is None
    tl = SweepPlan(8.0, levels=(1, 2, 4, 8), hold_s=2.0).timeline()
    assert [u for *_, u in tl] == [1, 2, 4, 8]
    assert level_at(tl, 3.0) == 2 and level_at(tl, 7.99) == 8
    assert [u for *_, u in make_plan("sweep", 8, 8.0).timeline()] == [1, 2, 4, 8]
    with pytest.raises(ValueError, match="shape"):
        make_plan("zigzag", 1, 1.0)
