"""Sections 3-5 on a live tritonserver: pipeline overhead, streaming cost, engine batching;
the same server serves sections 6 (`bench/sdk.py`) and 7 (`bench/loadgen.py`).

One server serves the rendered tritonkit repository (deployment `bench-none`, `reference.compute:
none`, and `bench-model`, `compute: model`) and, as a second `--model-repository`, the no-op floor
models of `bench/noop_repo.py`. All requests go over gRPC `stream_infer` (decoupled models refuse
unary `infer`), with the real `tritonclient`.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import pct, ratio, summary
from bench.noop_repo import write as write_noop_repo
from tritonkit.deployment import parse_deployment
from tritonkit.serve import Ports, TritonServer

NONE = "bench-none"
MODEL = "bench-model"
LIMITS = {"max_input_len": 2048, "max_seq_len": 4096, "default_max_tokens": 64}
QUICK = os.environ.get("BENCH_QUICK") == "1"

LAT_REPS, LAT_N, LAT_WARM = (3, 10, 3) if QUICK else (5, 40, 10)
STREAM_TOKENS = 256 if QUICK else 2048
STREAM_REPS = 2 if QUICK else 3
CONC = 16
BATCH_LEVELS = (1, 4, 16)
BATCH_TOKENS = 32 if QUICK else 64
BATCH_REPS = 2 if QUICK else 3


# ---- client helpers (small copies of tests/conftest.py's) ---------------------------------------
def _inputs(payload: dict) -> list:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import np_to_triton_dtype

    out = []
    for name, value in payload.items():
        if isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, bool):
            arr = np.array([[value]], np.bool_)
        elif isinstance(value, int):
            arr = np.array([[value]], np.int32)
        elif isinstance(value, str):
            arr = np.array([[value.encode()]], dtype=object)
        else:
            raise TypeError(value)
        t = grpcclient.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        t.set_data_from_numpy(arr)
        out.append(t)
    return out


class Stream:
    """One gRPC bidirectional stream; `call` sends a request and collects its responses."""

    def __init__(self, url: str) -> None:
        import tritonclient.grpc as grpcclient

        self.q: queue.Queue = queue.Queue()
        self.client = grpcclient.InferenceServerClient(url)
        self.client.start_stream(callback=lambda result, error: self.q.put((result, error)))

    def call(self, model: str, inputs: list, decoupled: bool, count=None,
             timeout: float = 120, cumulative: bool = False) -> int:
        """Send one request, wait for its final response; returns the summed `count(result)`
        (the largest, when `count` is cumulative like the pipeline's `num_output_tokens`)."""
        self.client.async_stream_infer(model, inputs, request_id="b",
                                       enable_empty_final_response=decoupled)
        total = 0
        while True:
            result, error = self.q.get(timeout=timeout)
            if error is not None:
                raise RuntimeError(f"{model}: {error}")
            if count is not None:
                c = count(result)
                total = max(total, c) if cumulative else total + c
            if not decoupled:
                return total
            if result.get_response().parameters["triton_final_response"].bool_param:
                return total

    def close(self) -> None:
        self.client.stop_stream()
        self.client.close()


def _ids_count(result) -> int:
    arr = result.as_numpy("output_ids")
    return 0 if arr is None else int(arr.size)


def _pipeline_count(result) -> int:
    arr = result.as_numpy("num_output_tokens")
    return 0 if arr is None else int(arr.reshape(-1)[0])


# ---- 3. pipeline overhead -------------------------------------------------------------------------
def _latencies(url: str, model: str, payload: dict, decoupled: bool) -> dict:
    s = Stream(url)
    try:
        for _ in range(LAT_WARM):
            s.call(model, _inputs(payload), decoupled)
        med, p99 = [], []
        for _ in range(LAT_REPS):
            lat = []
            for _ in range(LAT_N):
                inputs = _inputs(payload)
                t0 = time.perf_counter()
                s.call(model, inputs, decoupled)
                lat.append(time.perf_counter() - t0)
            med.append(pct(lat, 50))
            p99.append(pct(lat, 99))
        return {"median_s": med, "p99_s": p99}
    finally:
        s.close()


def overhead(url: str) -> dict:
    short = {"text_input": "Hello there", "max_tokens": 8}
    runs = {
        "a_noop_single": ("noop_single", short, False),
        "b_noop_ensemble": ("noop_ensemble", short, False),
        "c_pipeline_bls": (NONE, {**short, "stream": False}, True),
        "c_pipeline_ensemble": (f"{NONE}-ensemble", {**short, "stream": False}, True),
    }
    raw = {k: _latencies(url, *v) for k, v in runs.items()}
    out: dict = {"requests_per_rep": LAT_N, "reps": LAT_REPS, "max_tokens": 8,
                 "latency": {k: {m: summary(v) for m, v in r.items()} for k, r in raw.items()}}
    pairs = {"b_over_a": ("b_noop_ensemble", "a_noop_single"),
             "c_bls_over_b": ("c_pipeline_bls", "b_noop_ensemble"),
             "c_ensemble_over_b": ("c_pipeline_ensemble", "b_noop_ensemble")}
    out["ratios"] = {
        f"{name}_{m}": ratio(raw[n][m], raw[d][m])
        for name, (n, d) in pairs.items() for m in ("median_s", "p99_s")
    }
    return out


# ---- 4./5. streaming throughput -------------------------------------------------------------------
def _engine_payload(n_out: int) -> dict:
    ids = np.arange(100, 116, dtype=np.int32).reshape(1, -1)
    return {"input_ids": ids, "input_lengths": np.array([[ids.shape[1]]], np.int32),
            "request_output_len": np.array([[n_out]], np.int32),
            "streaming": np.array([[True]], np.bool_)}


def _throughput(url: str, model: str, payload: dict, count, n_streams: int) -> tuple[float, int]:
    """Aggregate tokens/s of n_streams concurrent streamed requests (one client each)."""
    streams = [Stream(url) for _ in range(n_streams)]
    totals = [0] * n_streams
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_streams + 1)

    def worker(i: int) -> None:
        inputs = _inputs(payload)
        barrier.wait()
        try:
            totals[i] = streams[i].call(model, inputs, True, count,
                                        cumulative=count is _pipeline_count)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_streams)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    for s in streams:
        s.close()
    if errors:
        raise errors[0]
    return sum(totals) / dt, sum(totals)


def streaming(url: str) -> dict:
    pipe = {"text_input": "Hello there", "max_tokens": STREAM_TOKENS, "stream": True}
    eng = _engine_payload(STREAM_TOKENS)
    out: dict = {"tokens_per_stream": STREAM_TOKENS, "reps": STREAM_REPS, "levels": {}}
    _throughput(url, NONE, {**pipe, "max_tokens": 32}, _pipeline_count, 1)  # warm-up
    for n in (1, CONC):
        p_tps, e_tps, p_tok, e_tok = [], [], [], []
        for _ in range(STREAM_REPS):
            tps, tok = _throughput(url, f"{NONE}-tensorrt_llm", eng, _ids_count, n)
            e_tps.append(tps)
            e_tok.append(tok)
            tps, tok = _throughput(url, NONE, pipe, _pipeline_count, n)
            p_tps.append(tps)
            p_tok.append(tok)
        out["levels"][str(n)] = {
            "engine_tokens_per_s": summary(e_tps), "pipeline_tokens_per_s": summary(p_tps),
            "engine_tokens": e_tok, "pipeline_tokens": p_tok,
            "engine_over_pipeline": ratio(e_tps, p_tps),
        }
    return out


def batching(url: str) -> dict:
    eng = _engine_payload(BATCH_TOKENS)
    model = f"{MODEL}-tensorrt_llm"
    _throughput(url, model, eng, _ids_count, 1)  # warm-up
    tps: dict[int, list[float]] = {n: [] for n in BATCH_LEVELS}
    for _ in range(BATCH_REPS):
        for n in BATCH_LEVELS:
            tps[n].append(_throughput(url, model, eng, _ids_count, n)[0])
    return {"tokens_per_stream": BATCH_TOKENS, "reps": BATCH_REPS,
            "tokens_per_s": {str(n): summary(v) for n, v in tps.items()},
            "ratios_to_1": {str(n): ratio(tps[n], tps[1]) for n in BATCH_LEVELS}}


def run(sections=("overhead", "streaming", "batching", "sdk", "loadgen"), log=print) -> dict:
    deps = [
        parse_deployment({"model": "athene-70b", "name": NONE, "limits": LIMITS,
                          "reference": {"compute": "none"}}, source="bench"),
        parse_deployment({"model": "athene-70b", "name": MODEL, "limits": LIMITS},
                         source="bench"),
    ]
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="tritonkit-bench-") as tmp:
        work = Path(tmp)
        noop = write_noop_repo(work / "noop")
        server = TritonServer(deps, Ports.free(), repo_dir=work / "repo",
                              log_path=work / "triton.log", exit_timeout_s=5,
                              extra_args=[f"--model-repository={noop}"])
        t0 = time.perf_counter()
        with server:
            log(f"server ready in {time.perf_counter() - t0:.1f}s")
            url = f"127.0.0.1:{server.ports.grpc}"
            fns = {"overhead": overhead, "streaming": streaming, "batching": batching}
            for name in sections:
                t1 = time.perf_counter()
                try:
                    if name == "sdk":
                        from bench.sdk import sdk

                        out[name] = sdk(server, NONE, work)
                    elif name == "loadgen":
                        from bench.loadgen import loadgen

                        out[name] = loadgen(server, NONE, work)
                    else:
                        out[name] = fns[name](url)
                except Exception as exc:
                    out[name] = {"error": repr(exc)}
                    log(server.log_tail(30))
                log(f"{name}: {time.perf_counter() - t1:.1f}s")
    return out
