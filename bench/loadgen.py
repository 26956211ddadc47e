"""Section 7 on the live server: what one Locust process (the `tritonkit loadtest` kit) can drive,
and how its TTFT compares with a measurement that does not go through Locust.

(a) Capacity: a sweep of constant open-loop arrival rates (`--rate R --arrival constant`, one
    Locust process, gRPC, 16-token prompts, 4 pinned output tokens) against `bench-none`
    (`compute: none`). A rate is *sustained* when the generator's gevent loop lag p99 stays under
    the kit's own threshold (50 ms) **and** the achieved rate is >= 95 % of the target with no
    failure. The knee is the highest sustained rate (every rate is run; lag is noisy on a loaded
    machine, so one low rate can fail while a higher one passes). Also the highest achieved
    rate of the sweep, whatever the lag. Floor, same run: the request rate of the same request
    from in-process raw tritonclient threads, closed loop (what the server + a plain client do
    without Locust). Lag floor: how late a plain 100 ms `time.sleep` wakes in an idle thread of
    the bench process during the same Locust run (what the machine alone does to a sleeper).
(b) TTFT: Locust at a moderate constant rate vs the same request at the same constant rate from
    in-process raw tritonclient (same open-loop pacing: a slot every 1/R s, a free worker takes
    it). Triton's per-model counters (`nv_inference_request_duration_us` / `_success`, read before
    and after each run from the metrics port) give the server-side mean *whole-request* time for
    both runs: the pipeline's own first-token time is not exported, and Triton's first-response
    histogram is not reported for Python-backend models, so the server-side figure we can read is
    the request duration (queue + execute of the decoupled BLS model, i.e. up to its final
    response), compared with each client's E2E.
"""

from __future__ import annotations

import json
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import pct, ratio, summary

QUICK = os.environ.get("BENCH_QUICK") == "1"
RATES = (10, 40) if QUICK else (10, 30, 100)
LAST_RATE = 160 if QUICK else 300   # one run, at the very end (see `loadgen`)
SWEEP_REPS = 1 if QUICK else 3
SWEEP_DURATION, SWEEP_WARMUP = (6, 1)
OSL, ISL = 4, 16
TTFT_RATE = 10
TTFT_OSL = 16
TTFT_DURATION, TTFT_WARMUP = (6, 1) if QUICK else (10, 2)
TTFT_REPS = 2 if QUICK else 3
CAP_THREADS, CAP_SECONDS = 16, (3 if QUICK else 5)
PROMPT16 = "The old lighthouse keeper walked slowly along the rocky shore at dawn, watching"


def _metrics(port: int, model: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for name in ("nv_inference_request_duration_us", "nv_inference_request_success"):
        m = re.search(rf'^{name}{{model="{re.escape(model)}",version="1"}} (\S+)$', text, re.M)
        out[name] = float(m.group(1)) if m else float("nan")
    return out


def _server_ms(before: dict, after: dict) -> float:
    n = after["nv_inference_request_success"] - before["nv_inference_request_success"]
    d = after["nv_inference_request_duration_us"] - before["nv_inference_request_duration_us"]
    return d / n / 1e3 if n > 0 else float("nan")


def users_for(rate: float) -> int:
    """The in-flight cap: above rate x E2E (tens of ms here) but not far above it: with 64 users
    at 10 req/s the kit's pacer sent 9 requests in 6 s (all in the first second), a kit issue
    seen while building this section and not investigated here."""
    return max(8, int(rate) // 8)


def _locust(server, model: str, out: Path, rate: float, osl: int, duration: float,
            warmup: float) -> dict:
    exe = Path(sys.executable).with_name("tritonkit")
    cmd = [str(exe), "loadtest", "--url", f"127.0.0.1:{server.ports.grpc}", "--protocol", "grpc",
           "--model", model, "--tokenizer", "athene-70b", "--users", str(users_for(rate)),
           "--rate", str(rate), "--arrival", "constant", "--shape", "constant",
           "--duration", str(duration), "--warmup", str(warmup),
           "--isl", f"fixed:{ISL}", "--osl", f"fixed:{osl}", "--out", str(out)]
    before = _metrics(server.ports.metrics, model)
    lag_floor: list[float] = []
    done = threading.Event()

    def sleeper() -> None:  # the lag floor: how late a plain 100 ms sleep wakes, same window
        while not done.is_set():
            t = time.perf_counter()
            time.sleep(0.1)
            lag_floor.append((time.perf_counter() - t - 0.1) * 1e3)

    th = threading.Thread(target=sleeper, daemon=True)
    th.start()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 180)
    finally:
        done.set()
        th.join()
    after = _metrics(server.ports.metrics, model)
    path = out / "summary.json"
    if not path.exists():
        raise RuntimeError(f"loadtest exit {proc.returncode}: {proc.stderr[-1500:]}")
    s = json.loads(path.read_text())
    gen = next(iter(s["generator"]["processes"].values()), {})
    m = s["metrics"]

    def num(x) -> float:
        return float("nan") if x is None else float(x)

    return {
        "rate": rate, "users": users_for(rate), "exit": proc.returncode,
        "requests": s["requests"], "failed": s["failed"],
        "achieved_rps": s["achieved_rate_rps"],
        "achieved_over_target": num(s["achieved_over_target"]),
        "cpu_mean": num(gen.get("cpu_mean")), "cpu_max": num(gen.get("cpu_max")),
        "lag_p99_ms": num(gen.get("lag_p99_ms")), "lag_limit_ms": s["generator"]["lag_limit_ms"],
        "ttft_p50_ms": num(m["ttft_ms"]["p50"]), "ttft_mean_ms": num(m["ttft_ms"]["mean"]),
        "e2e_mean_ms": num(m["e2e_ms"]["mean"]),
        "schedule_lag_p99_ms": num(m["schedule_lag_ms"]["p99"]),
        "server_request_ms": _server_ms(before, after),
        "lag_floor_p99_ms": pct(lag_floor, 99),
    }


def _sustained(r: dict) -> bool:
    return (r["lag_p99_ms"] <= r["lag_limit_ms"] and r["failed"] == 0
            and r["achieved_over_target"] >= 0.95)


class _RawWorker:
    """One raw tritonclient stream; `call` returns (TTFT s, E2E s) of one streamed request."""

    def __init__(self, url: str, model: str, osl: int) -> None:
        import tritonclient.grpc as grpcclient

        from bench.live import _inputs

        self.q: queue.Queue = queue.Queue()
        self.model = model
        self.payload = {"text_input": PROMPT16, "max_tokens": osl, "min_tokens": osl,
                        "stream": True}
        self._inputs = _inputs
        self.client = grpcclient.InferenceServerClient(url)
        self.client.start_stream(
            callback=lambda result, error: self.q.put((time.perf_counter(), result, error)))

    def call(self) -> tuple[float, float]:
        inputs = self._inputs(self.payload)
        t0 = time.perf_counter()
        self.client.async_stream_infer(self.model, inputs, request_id="r",
                                       enable_empty_final_response=True)
        ttft = float("nan")
        while True:
            t, result, error = self.q.get(timeout=120)
            if error is not None:
                raise RuntimeError(str(error))
            text = result.as_numpy("text_output")
            if ttft != ttft and text is not None and any(bytes(x) for x in text.reshape(-1)):
                ttft = t - t0
            if result.get_response().parameters["triton_final_response"].bool_param:
                return ttft, t - t0

    def close(self) -> None:
        self.client.stop_stream()
        self.client.close()


def _raw_open_loop(server, model: str, rate: float, osl: int, duration: float,
                   warmup: float) -> dict:
    """Constant arrivals at `rate` from raw tritonclient threads, Locust's pacing model."""
    url = f"127.0.0.1:{server.ports.grpc}"
    n_workers = 16
    workers = [_RawWorker(url, model, osl) for _ in range(n_workers)]
    lock = threading.Lock()
    slot = [0]
    samples: list[tuple[float, float, float]] = []
    errors: list[BaseException] = []
    before = _metrics(server.ports.metrics, model)
    t_start = time.perf_counter() + 0.2
    t_end = t_start + duration

    def run(w: _RawWorker) -> None:
        while True:
            with lock:
                k = slot[0]
                slot[0] += 1
            at = t_start + k / rate
            if at >= t_end:
                return
            time.sleep(max(0.0, at - time.perf_counter()))
            try:
                ttft, e2e = w.call()
            except BaseException as exc:
                errors.append(exc)
                return
            samples.append((at - t_start, ttft, e2e))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = _metrics(server.ports.metrics, model)
    for w in workers:
        w.close()
    if errors:
        raise RuntimeError(f"raw open loop: {errors[0]!r}")
    kept = [s for s in samples if s[0] >= warmup]
    ttfts = [s[1] for s in kept]
    return {"requests": len(kept), "ttft_p50_ms": pct(ttfts, 50) * 1e3,
            "ttft_mean_ms": statistics.fmean(ttfts) * 1e3,
            "e2e_mean_ms": statistics.fmean(s[2] for s in kept) * 1e3,
            "server_request_ms": _server_ms(before, after)}


def _raw_capacity(server, model: str) -> float:
    """Closed-loop req/s of the sweep's request from CAP_THREADS in-process raw clients."""
    url = f"127.0.0.1:{server.ports.grpc}"
    workers = [_RawWorker(url, model, OSL) for _ in range(CAP_THREADS)]
    counts = [0] * CAP_THREADS
    t_end = time.perf_counter() + CAP_SECONDS

    def run(i: int) -> None:
        while time.perf_counter() < t_end:
            workers[i].call()
            counts[i] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CAP_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    for w in workers:
        w.close()
    return sum(counts) / dt


def _answers(server, model: str) -> bool:
    """Does the served model still answer a short request within 20 s?"""
    w = _RawWorker(f"127.0.0.1:{server.ports.grpc}", model, OSL)
    try:
        inputs = w._inputs(w.payload)
        w.client.async_stream_infer(model, inputs, request_id="probe",
                                    enable_empty_final_response=True)
        while True:
            _, result, error = w.q.get(timeout=20)
            if error is not None:
                return False
            if result.get_response().parameters["triton_final_response"].bool_param:
                return True
    except queue.Empty:
        return False
    finally:
        w.close()


def loadgen(server, model: str, work: Path) -> dict:
    """(b) first, then the sweep (a), then one run at LAST_RATE: in a development run the
    server stopped answering after a 300 req/s run (the served BLS model's stub hung), so every
    Locust run is followed by a probe and the section stops, keeping what it has, when the
    server no longer answers."""
    _RawWorker(f"127.0.0.1:{server.ports.grpc}", model, OSL).call()  # warm-up
    out: dict = {"server_stopped_answering_after": None}
    # (b) TTFT: Locust vs in-process raw tritonclient at the same rate
    loc, raw = [], []
    for rep in range(TTFT_REPS):
        loc.append(_locust(server, model, work / f"ttft{rep}", TTFT_RATE, TTFT_OSL,
                           TTFT_DURATION, TTFT_WARMUP))
        raw.append(_raw_open_loop(server, model, TTFT_RATE, TTFT_OSL, TTFT_DURATION,
                                  TTFT_WARMUP))

    def col(rows: list[dict], k: str) -> list[float]:
        return [r[k] for r in rows]

    out["ttft"] = {
        "rate": TTFT_RATE, "isl": ISL, "osl": TTFT_OSL, "duration_s": TTFT_DURATION,
        "reps": TTFT_REPS, "locust_runs": loc, "raw_runs": raw,
        "locust_ttft_p50_ms": summary(col(loc, "ttft_p50_ms")),
        "raw_ttft_p50_ms": summary(col(raw, "ttft_p50_ms")),
        "locust_e2e_mean_ms": summary(col(loc, "e2e_mean_ms")),
        "raw_e2e_mean_ms": summary(col(raw, "e2e_mean_ms")),
        "server_request_ms_locust_run": summary(col(loc, "server_request_ms")),
        "server_request_ms_raw_run": summary(col(raw, "server_request_ms")),
        "locust_cpu_mean": summary(col(loc, "cpu_mean")),
        "ttft_p50_locust_over_raw": ratio(col(loc, "ttft_p50_ms"), col(raw, "ttft_p50_ms")),
        "ttft_mean_locust_over_raw": ratio(col(loc, "ttft_mean_ms"), col(raw, "ttft_mean_ms")),
        "e2e_over_server_locust": ratio(col(loc, "e2e_mean_ms"), col(loc, "server_request_ms")),
        "e2e_over_server_raw": ratio(col(raw, "e2e_mean_ms"), col(raw, "server_request_ms")),
    }
    # (a) capacity sweep
    sweeps, knees, caps, knee_cpu, achieved = [], [], [], [], []
    stopped = False
    for rep in range(SWEEP_REPS):
        caps.append(_raw_capacity(server, model))
        rows = []
        for rate in RATES:
            r = _locust(server, model, work / f"sweep{rep}_{rate}", rate, OSL, SWEEP_DURATION,
                        SWEEP_WARMUP)
            r["sustained"] = _sustained(r)
            rows.append(r)
            if not _answers(server, model):
                out["server_stopped_answering_after"] = f"sweep {rep + 1}, {rate} req/s"
                stopped = True
                break
        ok = [r for r in rows if r["sustained"]]
        knees.append(ok[-1]["rate"] if ok else 0.0)
        knee_cpu.append(ok[-1]["cpu_mean"] if ok else float("nan"))
        achieved.append(max(r["achieved_rps"] for r in rows))
        sweeps.append(rows)
        if stopped:
            caps = caps[:len(knees)]
            break
    last = None
    if not stopped:
        last = _locust(server, model, work / "last", LAST_RATE, OSL, SWEEP_DURATION,
                       SWEEP_WARMUP)
        last["sustained"] = _sustained(last)
        if not _answers(server, model):
            out["server_stopped_answering_after"] = f"the {LAST_RATE} req/s run"
    out["capacity"] = {
        "rates": list(RATES), "last_rate": LAST_RATE, "isl": ISL, "osl": OSL,
        "duration_s": SWEEP_DURATION, "warmup_s": SWEEP_WARMUP, "reps": len(sweeps),
        "sweeps": sweeps, "last_run": last, "knee_rps": summary(knees),
        "knee_cpu_percent": summary(knee_cpu),
        "raw_capacity_rps": summary(caps), "knee_over_raw_capacity": ratio(knees, caps),
        "max_achieved_rps": summary(achieved),
        "lag_over_floor_p99": summary([r["lag_p99_ms"] / r["lag_floor_p99_ms"]
                                       for rows in sweeps for r in rows]),
        "max_achieved_over_raw_capacity": ratio(achieved, caps),
    }
    return out
