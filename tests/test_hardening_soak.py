"""Soak: a Locust campaign at ~80 % of measured capacity, on a server of this module's own.

Capacity is measured first, in the same run: a closed-loop campaign with as many users as the
engine's batch (`max_batch_size`) keeps every batch slot busy, so its request throughput is the
saturation throughput (more users would only queue). The soak then runs open loop (constant
arrivals, see ARRIVAL) at 0.8 x that rate for TRITONKIT_SOAK_S seconds (60 in `make test`, 600
under `make soak`).

Checks: zero failed requests; RSS of tritonserver + all its Python stubs grows < 10 % from the end
of warm-up to the end; p50/p90 TPOT of the last third of the measured window (warm-up excluded)
within +-25 % of the first third.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.hardening import MODEL, deployment, grpc_url, own_server, tree_rss

SOAK_S = float(os.environ.get("TRITONKIT_SOAK_S", 60))
MAX_BATCH = 8
OSL = 32
#: Constant arrivals, so that every third of the soak offers the same load. Seeded Poisson
#: arrivals made the first third burstier than the last in every run (the same sequence each
#: time): its TPOT p90 was 18-22 % higher, a property of the schedule, not of the server.
ARRIVAL = "constant"


def campaign(url: str, out: Path, *, users: int, duration: float, warmup: float,
             rate: float = 0.0) -> dict:
    cmd = [sys.executable, "-m", "tritonkit.cli", "loadtest", "--scenario", "chat-short",
           "--url", url, "--protocol", "grpc", "--model", MODEL, "--users", str(users),
           "--duration", str(duration), "--warmup", str(warmup), "--osl", f"fixed:{OSL}",
           "--out", str(out)]
    if rate:
        cmd += ["--rate", f"{rate:.3f}", "--arrival", ARRIVAL]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 180)
    assert (out / "summary.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.ndjson").read_text().splitlines()]


def tpot_ms(s: dict) -> float:
    return 1000 * (s["e2e_s"] - s["ttft_s"]) / (s["output_tokens"] - 1)


class RssSampler(threading.Thread):
    """Samples the server tree's RSS every second: (monotonic time, bytes)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.points, self.done = pid, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.points.append((time.monotonic(), tree_rss(self.pid)))


@pytest.mark.live
@pytest.mark.slow
def test_soak_at_80_percent_of_capacity(tmp_path: Path) -> None:
    dep = deployment(token_delay_ms=10, max_batch=MAX_BATCH)
    with own_server(tmp_path, [dep]) as server:
        url = grpc_url(server)
        cap = campaign(url, tmp_path / "capacity", users=MAX_BATCH, duration=10, warmup=2)
        assert cap["failed"] == 0, cap["errors"]
        capacity = cap["request_throughput_rps"]
        rate = 0.8 * capacity
        sampler = RssSampler(server.process.pid)
        t0 = time.monotonic()
        sampler.start()
        warmup = max(5.0, SOAK_S / 6)
        soak = campaign(url, tmp_path / "soak", users=2 * MAX_BATCH, duration=SOAK_S,
                        warmup=warmup, rate=rate)
        sampler.done.set()
        sampler.join()
        assert server.process.poll() is None, "server died during the soak"

    # samples.ndjson holds every request, the warm-up's too: measure after it, as the summary does
    ok = [s for s in samples(tmp_path / "soak") if s["ok"] and s["start_wall"] >= soak["window_start"]]
    print(f"capacity {capacity:.2f} req/s (closed loop, {MAX_BATCH} users = batch); soak rate "
          f"{rate:.2f} req/s, achieved {soak['achieved_rate_rps']:.2f}; {soak['requests']} "
          f"requests, {soak['failed']} failed")
    assert soak["failed"] == 0 and soak["requests"] > 0, soak["errors"]
    assert soak["achieved_over_target"] > 0.7, "the generator did not offer the planned load"

    base = [b for t, b in sampler.points if t - t0 >= warmup + 2]
    assert len(base) >= 10, "too few RSS samples"
    growth = (base[-1] - base[0]) / base[0]
    print(f"RSS after warm-up {base[0] / 2**20:.0f} MiB, end {base[-1] / 2**20:.0f} MiB, "
          f"growth {100 * growth:+.1f} %")
    assert growth < 0.10

    start = min(s["start_wall"] for s in ok)
    end = max(s["start_wall"] for s in ok)
    third = (end - start) / 3
    first = [tpot_ms(s) for s in ok if s["start_wall"] < start + third]
    last = [tpot_ms(s) for s in ok if s["start_wall"] >= end - third]
    for q in (50, 90):
        a, b = np.percentile(first, q), np.percentile(last, q)
        print(f"TPOT p{q}: first third {a:.1f} ms, last third {b:.1f} ms ({100 * (b / a - 1):+.0f} %)")
        assert 0.75 * a <= b <= 1.25 * a, f"TPOT p{q} drifted: {a:.1f} -> {b:.1f} ms"
