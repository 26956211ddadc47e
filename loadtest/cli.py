"""`tritonkit loadtest`: run a named scenario headless with Locust, then print the report summary.

Runs `python -m locust -f loadtest/locustfile.py --headless ...` as a subprocess (Locust must own
its process: gevent monkey-patching) and exits with its code: 0 pass, 3 an SLO gate failed, 2 no
request completed, other non-zero = Locust/setup failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from tritonkit.loadtest.scenarios import SCENARIOS

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
app = typer.Typer(help="Locust load tests for a tritonkit deployment.", no_args_is_help=True)


def locust_command(*, scenario: str, url: str, protocol: str, model: str, tokenizer: str,
                   users: int | None, rate: float, arrival: str, duration: float, warmup: float,
                   shape: str, sweep: str, isl: str, osl: str, dataset: str, seed: int,
                   slo_ttft_ms: float, slo_tpot_ms: float, slo_e2e_ms: float,
                   slo_attainment: float, gate: str, processes: int, out: Path) -> list[str]:
    """The Locust command line for these options."""
    sc = SCENARIOS[scenario]
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
           "--host", url, "-u", str(users or sc.users), "--stop-timeout", "0",
           "--tk-scenario", scenario, "--tk-protocol", protocol, "--tk-model", model,
           "--tk-tokenizer", tokenizer or model, "--tk-arrival", arrival, "--tk-seed", str(seed),
           "--tk-rate", str(rate), "--tk-out", str(out), "--tk-slo-ttft-ms", str(slo_ttft_ms),
           "--tk-slo-tpot-ms", str(slo_tpot_ms), "--tk-slo-e2e-ms", str(slo_e2e_ms),
           "--tk-slo-attainment", str(slo_attainment),
           "--csv", str(out / "locust"), "--html", str(out / "locust.html")]
    for flag, value in (("--tk-duration", duration), ("--tk-warmup", warmup),
                        ("--tk-shape", shape), ("--tk-sweep", sweep), ("--tk-isl", isl),
                        ("--tk-osl", osl), ("--tk-dataset", dataset), ("--tk-gate", gate)):
        if value not in ("", None) and not (flag == "--tk-warmup" and value < 0):
            cmd += [flag, str(value)]
    if processes:
        cmd += ["--processes", str(processes)]
    return cmd


def print_summary(out: Path, console: Console) -> None:
    s = json.loads((out / "summary.json").read_text())
    t = Table(title=f"{s['run']['options']['scenario']}: {s['completed']}/{s['requests']} ok, "
                    f"{s['output_token_throughput_tps']:.1f} output tok/s, "
                    f"{s['request_throughput_rps']:.2f} req/s")
    for col in ("metric", "p50", "p90", "p95", "p99", "max"):
        t.add_column(col, justify="right")
    for name in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        d = s["metrics"][name]
        t.add_row(name, *("–" if d[q] is None else f"{d[q]:.1f}"
                          for q in ("p50", "p90", "p95", "p99", "max")))
    console.print(t)
    for g in s["gates"]:
        console.print(f"[{'green' if g['passed'] else 'red'}]{'PASS' if g['passed'] else 'FAIL'}"
                      f"[/] {g['gate']} (value {g['value']:.4g})")
    if not s["generator"]["ok"]:
        console.print("[yellow]load generator may be the bottleneck:[/] "
                      f"{s['generator']['processes']}")
    console.print(f"report: {out / 'report.html'}")


@app.command("run")
def loadtest(
    scenario: str = typer.Option("chat-short", help=f"one of: {', '.join(SCENARIOS)}"),
    url: str = typer.Option(..., help="grpc: HOST:PORT; http/openai: http://HOST:PORT"),
    protocol: str = typer.Option("grpc", help="grpc | http | openai"),
    model: str = typer.Option(..., help="served model (Triton) or OpenAI model name"),
    tokenizer: str = typer.Option("", help="catalog model or tokenizer folder (default: --model)"),
    users: int | None = typer.Option(None, help="concurrent users (closed loop) / in-flight cap"),
    rate: float = typer.Option(0.0, help="open loop: target requests/s (0 = closed loop)"),
    arrival: str = typer.Option("poisson", help="open-loop arrivals: poisson | constant"),
    duration: float = typer.Option(0.0, help="run length in s (default: the scenario's)"),
    warmup: float = typer.Option(-1.0, help="s excluded at the start (default: the scenario's)"),
    shape: str = typer.Option("", help="constant | step | spike | sweep (default: scenario's)"),
    sweep: str = typer.Option("", help="sweep levels, e.g. 1,2,4,8"),
    isl: str = typer.Option("", help="input tokens: fixed:N | uniform:LO:HI | normal:MEAN:SD"),
    osl: str = typer.Option("", help="output tokens (same forms)"),
    dataset: str = typer.Option("", help="JSONL prompts file"),
    seed: int = typer.Option(0),
    slo_ttft_ms: float = typer.Option(0.0, help="SLO: TTFT <= this (ms)"),
    slo_tpot_ms: float = typer.Option(0.0, help="SLO: TPOT <= this (ms)"),
    slo_e2e_ms: float = typer.Option(0.0, help="SLO: E2E <= this (ms)"),
    slo_attainment: float = typer.Option(0.95, help="gate: fraction of requests meeting all SLOs"),
    gate: str = typer.Option("", help="extra gates, e.g. 'ttft_ms_p99<=500,error_rate<=0.01'"),
    processes: int = typer.Option(0, help="Locust --processes (0 = one process)"),
    out_dir: str = typer.Option("loadtest-results", "--out", help="output folder"),
) -> None:
    """Run a load-test campaign and write JSON/CSV/PNG/HTML results to OUT."""
    console = Console()
    out = Path(out_dir)
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown {scenario!r}; choose one of {', '.join(SCENARIOS)}",
                                 param_hint="--scenario")
    if protocol not in ("grpc", "http", "openai"):
        raise typer.BadParameter(f"{protocol!r}; choose grpc, http or openai",
                                 param_hint="--protocol")
    out.mkdir(parents=True, exist_ok=True)
    cmd = locust_command(scenario=scenario, url=url, protocol=protocol, model=model,
                         tokenizer=tokenizer, users=users, rate=rate, arrival=arrival,
                         duration=duration, warmup=warmup, shape=shape, sweep=sweep, isl=isl,
                         osl=osl, dataset=dataset, seed=seed, slo_ttft_ms=slo_ttft_ms,
                         slo_tpot_ms=slo_tpot_ms, slo_e2e_ms=slo_e2e_ms,
                         slo_attainment=slo_attainment, gate=gate, processes=processes, out=out)
    with console.status(f"running {scenario} against {url} ({protocol})"):
        proc = subprocess.run(cmd, capture_output=True, text=True)
    (out / "locust.log").write_text(proc.stdout + proc.stderr)
    if (out / "summary.json").is_file():
        print_summary(out, console)
    else:
        console.print(f"[red]no report written; Locust said:[/]\n{proc.stderr[-3000:]}")
    raise typer.Exit(proc.returncode)


@app.command("scenarios")
def scenarios() -> None:
    """List the named scenarios."""
    for s in SCENARIOS.values():
        typer.echo(f"{s.name:14} {s.description}  (isl {s.isl}, osl {s.osl}, users {s.users}, "
                   f"shape {s.shape})")


if __name__ == "__main__":
    app()
