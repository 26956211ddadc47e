"""Run every benchmark section and write bench/results.json and bench/RESULTS.md.

    .venv/bin/python -m bench.run [--sections detok,preproc,overhead,streaming,batching,sdk,loadgen]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import sys
import time
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import render

HERE = Path(__file__).resolve().parent
ALL = ("detok", "preproc", "overhead", "streaming", "batching", "sdk", "loadgen")
LIVE = ("overhead", "streaming", "batching", "sdk", "loadgen")


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "absent"

    from tritonkit.runtime import TRITON_VERSION

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "triton": TRITON_VERSION,
        "tritonclient": ver("tritonclient"),
        "numpy": ver("numpy"),
        "tokenizers": ver("tokenizers"),
        "transformers": ver("transformers"),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": os.environ.get("BENCH_QUICK") == "1",
        "loadavg_start": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sections", default=",".join(ALL))
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    # The server's admin APIs (statistics, ...) need a key; the SDK and the gateway read it from
    # the environment. A fresh one per run, set before any server starts.
    os.environ.setdefault("TRITONKIT_ADMIN_KEY", secrets.token_urlsafe(24))
    results: dict = {"machine": machine(), "sections": {}, "durations_s": {}}
    t_all = time.perf_counter()
    for name in ("detok", "preproc"):
        if name in sections:
            t0 = time.perf_counter()
            mod = __import__(f"bench.{name}", fromlist=["run"])
            results["sections"][name] = mod.run()
            results["durations_s"][name] = round(time.perf_counter() - t0, 1)
            print(f"{name}: {results['durations_s'][name]}s", flush=True)
    live_sections = [s for s in LIVE if s in sections]
    if live_sections:
        from bench import live

        t0 = time.perf_counter()
        results["sections"].update(live.run(live_sections, log=lambda s: print(s, flush=True)))
        results["durations_s"]["live"] = round(time.perf_counter() - t0, 1)
    results["loadavg_end"] = round(os.getloadavg()[0], 2)
    results["durations_s"]["total"] = round(time.perf_counter() - t_all, 1)
    out = Path(args.out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "RESULTS.md").write_text(render(results))
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'} "
          f"({results['durations_s']['total']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
