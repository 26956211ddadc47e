"""The arithmetic of a campaign, on raw samples (dicts of `RequestSample.to_json()`).

Percentiles: `numpy.percentile(values, q)` with linear interpolation (NumPy's default, the same as
Excel's PERCENTILE.INC) over every raw value; no buckets. Formulas: docs/loadtest.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tritonkit.loadtest.shapes import level_at

QUANTILES = (50, 90, 95, 99)
SLO_KEYS = {"ttft_ms": "ttft_s", "tpot_ms": "tpot_s", "e2e_ms": "e2e_s"}


def distribution(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """count, mean, min, max and p50/p90/p95/p99 of the non-None values (None when empty)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    out: dict[str, float | int | None] = {"count": int(v.size)}
    if v.size == 0:
        out.update({"mean": None, "min": None, "max": None, **{f"p{q}": None for q in QUANTILES}})
        return out
    out.update({"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())})
    for q, p in zip(QUANTILES, np.percentile(v, QUANTILES), strict=True):
        out[f"p{q}"] = float(p)
    return out


def meets_slo(s: dict[str, Any], slo: dict[str, float]) -> bool:
    """A request is good if it succeeded and every given SLO holds (TPOT undefined counts as 0)."""
    if not s.get("ok"):
        return False
    for key, limit_ms in slo.items():
        v = s.get(SLO_KEYS[key])
        v = 0.0 if (v is None and key == "tpot_ms") else v
        if v is None or v * 1000.0 > limit_ms:
            return False
    return True


def in_window(samples: Sequence[dict[str, Any]], t_from: float, t_to: float) -> list[dict[str, Any]]:
    """Samples whose request *started* in [t_from, t_to) (wall clock)."""
    return [s for s in samples if t_from <= s["start_wall"] < t_to]


def ms(v: float | None) -> float | None:
    return None if v is None else v * 1000.0


def latency_metrics(samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ok = [s for s in samples if s["ok"]]
    return {
        "ttft_ms": distribution(ms(s["ttft_s"]) for s in ok),
        "itl_ms": distribution(g * 1000.0 for s in ok for g in s["itl_s"]),
        "tpot_ms": distribution(ms(s["tpot_s"]) for s in ok),
        "e2e_ms": distribution(ms(s["e2e_s"]) for s in ok),
        "max_gap_ms": distribution(max(s["itl_s"]) * 1000.0 for s in ok if s["itl_s"]),
        "input_tokens": distribution(s["input_tokens"] for s in ok),
        "output_tokens": distribution(s["output_tokens"] for s in ok),
        "schedule_lag_ms": distribution(ms(s.get("schedule_lag_s")) for s in samples),
    }


def summarize(samples: Sequence[dict[str, Any]], *, t_from: float, t_to: float,
              slo: dict[str, float], target_rate: float | None = None) -> dict[str, Any]:
    """Everything about the requests started in [t_from, t_to): latencies, rates, goodput."""
    w = in_window(samples, t_from, t_to)
    dur = max(t_to - t_from, 1e-9)
    ok = [s for s in w if s["ok"]]
    failed = [s for s in w if not s["ok"]]
    good = [s for s in w if meets_slo(s, slo)]
    out_tokens = sum(s["output_tokens"] or 0 for s in ok)
    in_tokens = sum(s["input_tokens"] or 0 for s in ok)
    osl_acc = [s["output_tokens"] / s["requested_output_tokens"] for s in ok
               if s["output_tokens"] is not None and s["requested_output_tokens"]]
    errors: dict[str, int] = {}
    for s in failed:
        errors[s["error"] or "unknown"] = errors.get(s["error"] or "unknown", 0) + 1
    return {
        "window_s": dur,
        "requests": len(w),
        "completed": len(ok),
        "failed": len(failed),
        "error_rate": len(failed) / len(w) if w else 0.0,
        "errors": errors,
        "request_throughput_rps": len(ok) / dur,
        "output_token_throughput_tps": out_tokens / dur,
        "total_token_throughput_tps": (in_tokens + out_tokens) / dur,
        "achieved_rate_rps": len(w) / dur,
        "target_rate_rps": target_rate,
        "achieved_over_target": (len(w) / dur) / target_rate if target_rate else None,
        "slo": dict(slo),
        "good_requests": len(good),
        "goodput_rps": len(good) / dur,
        "slo_attainment": len(good) / len(w) if w else 0.0,
        "osl_accuracy_mean": float(np.mean(osl_acc)) if osl_acc else None,
        "metrics": latency_metrics(w),
    }


def by_level(samples: Sequence[dict[str, Any]], timeline: list[tuple[float, float, int]],
             started: float, t_from: float, t_to: float) -> list[dict[str, Any]]:
    """Per load level (target users at send time): latency percentiles and throughputs."""
    rows = []
    for level in sorted({u for _, _, u in timeline}):
        segs = [(max(started + a, t_from), min(started + b, t_to)) for a, b, u in timeline
                if u == level]
        dur = sum(max(b - a, 0.0) for a, b in segs)
        if dur <= 0:
            continue
        sel = [s for s in in_window(samples, t_from, t_to)
               if level_at(timeline, s["start_wall"] - started) == level]
        ok = [s for s in sel if s["ok"]]
        m = latency_metrics(sel)
        rows.append({
            "users": level, "window_s": dur, "requests": len(sel), "completed": len(ok),
            "request_throughput_rps": len(ok) / dur,
            "output_token_throughput_tps": sum(s["output_tokens"] or 0 for s in ok) / dur,
            **{f"{k}_{q}": m[k][q] for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
               for q in ("p50", "p90", "p99")},
        })
    return rows


def generator_health(resources: dict[str, dict[str, Any]], t_from: float, t_to: float, *,
                     cpu_limit: float = 80.0, lag_limit_ms: float = 50.0) -> dict[str, Any]:
    """Per load-generator process, over the measurement window: CPU % of one core (mean, max) and
    gevent loop lag (p99, max); the generator may have been the bottleneck if mean CPU >
    `cpu_limit` or lag p99 > `lag_limit_ms`."""
    procs = {}
    healthy = True
    for pid, r in resources.items():
        cpu = distribution(v for t, v in r.get("cpu_percent", []) if t_from <= t <= t_to)
        lag = distribution(v for t, v in r.get("lag_ms", []) if t_from <= t <= t_to)
        ok = (cpu["mean"] or 0.0) <= cpu_limit and (lag["p99"] or 0.0) <= lag_limit_ms
        healthy &= ok
        procs[pid] = {"cpu_mean": cpu["mean"], "cpu_max": cpu["max"], "lag_p99_ms": lag["p99"],
                      "lag_max_ms": lag["max"], "ok": ok}
    return {"processes": procs, "cpu_limit_percent": cpu_limit, "lag_limit_ms": lag_limit_ms,
            "ok": healthy}


def _lookup(summary: dict[str, Any], key: str) -> float:
    if key in summary and isinstance(summary[key], (int, float)):
        return float(summary[key])
    metric, _, stat = key.rpartition("_")
    try:
        v = summary["metrics"][metric][stat]
    except KeyError:
        raise ValueError(f"gate: unknown quantity {key!r} (e.g. ttft_ms_p99, error_rate, "
                         "slo_attainment, goodput_rps)") from None
    return math.nan if v is None else float(v)


def check_gates(summary: dict[str, Any], gates: str, slo_attainment: float) -> list[dict[str, Any]]:
    """Evaluate the SLO gate (attainment >= required, when SLOs are set) and `a<=x,b>=y` gates."""
    results = []
    if summary["slo"]:
        results.append({"gate": f"slo_attainment>={slo_attainment}",
                        "value": summary["slo_attainment"],
                        "passed": summary["slo_attainment"] >= slo_attainment})
    for g in filter(None, (x.strip() for x in gates.split(","))):
        op = "<=" if "<=" in g else ">=" if ">=" in g else None
        if op is None:
            raise ValueError(f"gate: {g!r} needs <= or >=, e.g. ttft_ms_p99<=500")
        key, limit = (x.strip() for x in g.split(op))
        v = _lookup(summary, key)
        passed = (v <= float(limit)) if op == "<=" else (v >= float(limit))
        results.append({"gate": g, "value": v, "passed": bool(passed and not math.isnan(v))})
    return results
