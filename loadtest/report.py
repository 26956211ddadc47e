"""Campaign results: summary JSON/CSV, per-request CSV, per-level CSV, PNG plots, one-page HTML,
and the exit code of the SLO gates (0 pass, 3 a gate failed, 2 no request completed)."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

from tritonkit.loadtest import plots
from tritonkit.loadtest.stats import by_level, check_gates, generator_health, summarize

EXIT_GATE_FAILED = 3
EXIT_NO_DATA = 2
SAMPLE_FIELDS = ("start_wall", "protocol", "model", "worker", "ok", "error", "ttft_s", "tpot_s",
                 "e2e_s", "input_tokens", "output_tokens", "requested_output_tokens",
                 "prompt_tokens_client", "chunks", "finish_reason", "schedule_lag_s", "users", "turn")


def load_samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_summary(run: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    o = run["options"]
    started = run.get("started") or min((s["start_wall"] for s in samples), default=0.0)
    first = min((s["start_wall"] for s in samples), default=started)
    # warm-up counts from the first request sent (workers may still be preparing at `started`)
    t_from, t_to = max(started, first) + o["warmup_s"], run["stopped"]
    summary = summarize(samples, t_from=t_from, t_to=t_to, slo=o["slo"],
                        target_rate=o["rate"] or None)
    summary["window_start"] = t_from
    summary["warmup_excluded"] = sum(1 for s in samples if s["start_wall"] < t_from)
    summary["levels"] = by_level(samples, [tuple(x) for x in run["timeline"]], started,
                                 t_from, t_to)
    summary["generator"] = generator_health(run.get("resources", {}), t_from, t_to)
    summary["gates"] = check_gates(summary, o.get("gate", ""), o.get("slo_attainment", 0.95))
    summary["passed"] = all(g["passed"] for g in summary["gates"])
    summary["run"] = {k: v for k, v in run.items() if k != "resources"}
    return summary


def exit_code(summary: dict[str, Any]) -> int:
    if summary["completed"] == 0:
        return EXIT_NO_DATA
    return 0 if summary["passed"] else EXIT_GATE_FAILED


def write_csv(summary: dict[str, Any], samples: list[dict[str, Any]], out: Path) -> None:
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "count", "mean", "min", "p50", "p90", "p95", "p99", "max"])
        for name, d in summary["metrics"].items():
            w.writerow([name, *(d[k] for k in ("count", "mean", "min", "p50", "p90", "p95", "p99",
                                                "max"))])
        for k in ("request_throughput_rps", "output_token_throughput_tps", "goodput_rps",
                  "slo_attainment", "achieved_rate_rps", "target_rate_rps", "error_rate"):
            w.writerow([k, "", summary[k]])
    with (out / "samples.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*SAMPLE_FIELDS, "itl_s"], extrasaction="ignore")
        w.writeheader()
        for s in samples:
            w.writerow({**s, "itl_s": " ".join(f"{g:.6f}" for g in s["itl_s"])})
    if summary["levels"]:
        with (out / "levels.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(summary["levels"][0]))
            w.writeheader()
            w.writerows(summary["levels"])


def write_plots(summary: dict[str, Any], samples: list[dict[str, Any]], out: Path) -> list[Path]:
    t_from = summary["window_start"]
    ok = [s for s in samples if s["ok"] and s["start_wall"] >= t_from]
    return [
        plots.latency_vs_load(summary["levels"], out / "latency_vs_load.png"),
        plots.throughput_vs_concurrency(summary["levels"], out / "throughput_vs_concurrency.png"),
        plots.distributions([s["ttft_s"] * 1e3 for s in ok],
                            [s["tpot_s"] * 1e3 for s in ok if s["tpot_s"] is not None],
                            [g * 1e3 for s in ok for g in s["itl_s"]],
                            out / "distributions.png"),
    ]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
    return html.escape(str(v))


def write_html(summary: dict[str, Any], pngs: list[Path], out: Path) -> Path:
    o = summary["run"]["options"]
    rows = "".join(
        f"<tr><th>{k}</th>" + "".join(f"<td>{_fmt(d[q])}</td>" for q in
                                     ("count", "mean", "p50", "p90", "p95", "p99", "max")) + "</tr>"
        for k, d in summary["metrics"].items())
    kv = [("scenario", o["scenario"]), ("protocol", o["protocol"]), ("model", o["model"]),
          ("host", summary["run"].get("host")), ("shape", o["shape"]), ("users", o["users"]),
          ("target rate (req/s)", o["rate"] or None), ("warm-up excluded (s)", o["warmup_s"]),
          ("window (s)", summary["window_s"]), ("requests / failed",
                                                f"{summary['requests']} / {summary['failed']}"),
          ("request throughput (req/s)", summary["request_throughput_rps"]),
          ("output tokens/s", summary["output_token_throughput_tps"]),
          ("achieved rate (req/s)", summary["achieved_rate_rps"]),
          ("achieved / target", summary["achieved_over_target"]),
          ("SLO", json.dumps(summary["slo"])), ("goodput (req/s)", summary["goodput_rps"]),
          ("SLO attainment", summary["slo_attainment"]),
          ("generator healthy", summary["generator"]["ok"])]
    info = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in kv)
    gates = "".join(f"<li>{'PASS' if g['passed'] else 'FAIL'}: {html.escape(g['gate'])} "
                    f"(value {_fmt(g['value'])})</li>" for g in summary["gates"]) or "<li>none</li>"
    errors = "".join(f"<li>{n} × {html.escape(e)}</li>" for e, n in summary["errors"].items())
    imgs = "".join(f'<img alt="{p.stem}" src="data:image/png;base64,'
                   f'{base64.b64encode(p.read_bytes()).decode()}">' for p in pngs)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tritonkit load test</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}}table{{border-collapse:collapse;
margin-bottom:1em}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}img{{max-width:100%}}
</style></head><body><h1>tritonkit load test: {html.escape(o['scenario'])}
({'PASS' if summary['passed'] else 'FAIL'})</h1><table>{info}</table>
<h2>Gates</h2><ul>{gates}</ul><h2>Per-request metrics (exact percentiles)</h2>
<table><tr><th>metric</th><th>n</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th>
<th>max</th></tr>{rows}</table><h2>Failures</h2><ul>{errors or '<li>none</li>'}</ul>{imgs}
<p>Definitions: docs/loadtest.md.</p></body></html>"""
    (out / "report.html").write_text(page, "utf-8")
    return out / "report.html"


def write_report(out: Path, run: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    summary = build_summary(run, samples)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_csv(summary, samples, out)
    write_html(summary, write_plots(summary, samples, out), out)
    return summary


def write_campaign(out: Path, run: dict[str, Any], samples: list[dict[str, Any]]) -> int:
    """Write raw samples, run metadata and the report to `out`; return the gate exit code."""
    out.mkdir(parents=True, exist_ok=True)
    samples = sorted(samples, key=lambda s: s["start_wall"])
    with (out / "samples.ndjson").open("w") as f:
        f.writelines(json.dumps(s) + "\n" for s in samples)
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str))
    return exit_code(write_report(out, run, samples))
