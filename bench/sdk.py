"""Section 6 on the live server: the tritonkit SDK and the OpenAI gateway vs raw tritonclient.

The same workload four ways: `SDK_CONC` concurrent streamed generations of `SDK_TOKENS` tokens of
the served pipeline `bench-none` (`reference.compute: none`), prompt `PROMPT`, one client per
stream (thread):

- floor: raw `tritonclient.grpc` bidirectional stream (`text_input`, `max_tokens`, `stream`);
- the SDK `tritonkit.clients.Client`, gRPC and HTTP (`stream_generate`);
- the OpenAI gateway (`tritonkit gateway`, its own process, SDK over gRPC to Triton) with the
  official `openai` package (`completions.create(stream=True)`).

Every client connects before the clock starts (raw: `start_stream`; SDK: `health()`; openai:
`models.list()`). Per stream: time to the first chunk with text (TTFC) and the tokens delivered
(the server's count:
`num_output_tokens`, the SDK's `usage`, OpenAI `usage.completion_tokens`). No output is pinned
(the gateway has no `min_tokens`), so a random stop id may end a stream early; throughput is
delivered tokens / wall time of the whole batch. The order of the four paths rotates per
repetition.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.common import ratio, summary

QUICK = os.environ.get("BENCH_QUICK") == "1"
SDK_CONC = 8
SDK_TOKENS = 128 if QUICK else 512
SDK_REPS = 2 if QUICK else 3
PROMPT = "Write a long story about a lighthouse keeper and the sea."
PATHS = ("raw_grpc", "sdk_grpc", "sdk_http", "gateway_openai")


def _raw_inputs(payload: dict) -> list:
    from bench.live import _inputs

    return _inputs(payload)


def _raw(ctx: dict) -> tuple[float | None, int]:
    """One streamed request over a fresh raw tritonclient stream: (TTFC s, tokens)."""
    import tritonclient.grpc as grpcclient

    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(ctx["grpc"])
    client.start_stream(callback=lambda result, error: q.put((time.perf_counter(), result, error)))
    inputs = _raw_inputs({"text_input": PROMPT, "max_tokens": SDK_TOKENS, "stream": True})
    ctx["barrier"].wait()
    t0 = time.perf_counter()
    client.async_stream_infer(ctx["model"], inputs, request_id="r",
                              enable_empty_final_response=True)
    ttfc, tokens = None, 0
    try:
        while True:
            t, result, error = q.get(timeout=300)
            if error is not None:
                raise RuntimeError(str(error))
            text = result.as_numpy("text_output")
            if ttfc is None and text is not None and any(bytes(x) for x in text.reshape(-1)):
                ttfc = t - t0
            n = result.as_numpy("num_output_tokens")
            if n is not None:
                tokens = max(tokens, int(n.reshape(-1)[0]))
            if result.get_response().parameters["triton_final_response"].bool_param:
                return ttfc, tokens
    finally:
        client.stop_stream()
        client.close()


def _sdk(ctx: dict, protocol: str) -> tuple[float | None, int]:
    from tritonkit.clients import Client

    url = ctx["grpc"] if protocol == "grpc" else ctx["http"]
    with Client(url, protocol=protocol, model=ctx["model"]) as client:
        client.health()  # connect before the clock starts, as the raw stream does
        ctx["barrier"].wait()
        t0 = time.perf_counter()
        ttfc = None
        with client.stream_generate(PROMPT, max_tokens=SDK_TOKENS) as stream:
            for chunk in stream:
                if ttfc is None and chunk.delta:
                    ttfc = time.perf_counter() - t0
        return ttfc, stream.usage.completion_tokens


def _openai(ctx: dict) -> tuple[float | None, int]:
    from openai import OpenAI

    client = OpenAI(base_url=ctx["gateway"], api_key="bench", max_retries=0, timeout=300)
    try:
        client.models.list()  # connect before the clock starts, as the raw stream does
        ctx["barrier"].wait()
        t0 = time.perf_counter()
        ttfc, tokens = None, 0
        resp = client.completions.create(model=ctx["model"], prompt=PROMPT, max_tokens=SDK_TOKENS,
                                         stream=True, stream_options={"include_usage": True})
        for ev in resp:
            if ttfc is None and ev.choices and ev.choices[0].text:
                ttfc = time.perf_counter() - t0
            if ev.usage is not None:
                tokens = ev.usage.completion_tokens
        return ttfc, tokens
    finally:
        client.close()


FNS = {"raw_grpc": _raw, "sdk_grpc": lambda c: _sdk(c, "grpc"),
       "sdk_http": lambda c: _sdk(c, "http"), "gateway_openai": _openai}


def _batch(ctx: dict, path: str) -> dict:
    """SDK_CONC concurrent streams of one path; aggregate tok/s and the median TTFC."""
    ctx = {**ctx, "barrier": threading.Barrier(SDK_CONC + 1)}
    res: list = [None] * SDK_CONC
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            res[i] = FNS[path](ctx)
        except BaseException as exc:  # reported after join
            errors.append(exc)
            with contextlib.suppress(threading.BrokenBarrierError):
                ctx["barrier"].abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(SDK_CONC)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ctx["barrier"].wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{path}: {errors[0]!r}")
    tokens = sum(r[1] for r in res)
    ttfcs = [r[0] for r in res if r[0] is not None]
    return {"tokens_per_s": tokens / dt, "tokens": tokens,
            "ttfc_s": statistics.median(ttfcs) if ttfcs else float("nan")}


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gateway(triton_grpc: str, log_path: Path):
    """`tritonkit gateway` in its own process (as deployed), until /health answers 200."""
    port = _free_port()
    exe = Path(sys.executable).with_name("tritonkit")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else
           ["-m", "tritonkit.cli"]), "gateway", "--triton", triton_grpc, "--port", str(port),
           "--log-level", "warning"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sdk(server, model: str, work: Path) -> dict:
    ctx = {"grpc": f"127.0.0.1:{server.ports.grpc}", "http": f"127.0.0.1:{server.ports.http}",
           "model": model}
    with gateway(ctx["grpc"], work / "gateway.log") as gw:
        ctx["gateway"] = gw
        for path in PATHS:  # warm-up: one small batch each (connections, imports, JIT)
            _batch(ctx, path)
        raw: dict[str, list[dict]] = {p: [] for p in PATHS}
        for rep in range(SDK_REPS):
            order = PATHS[rep % len(PATHS):] + PATHS[:rep % len(PATHS)]
            for path in order:
                raw[path].append(_batch(ctx, path))
    tps = {p: [r["tokens_per_s"] for r in v] for p, v in raw.items()}
    ttfc = {p: [r["ttfc_s"] for r in v] for p, v in raw.items()}
    out: dict = {
        "streams": SDK_CONC, "max_tokens": SDK_TOKENS, "reps": SDK_REPS, "prompt": PROMPT,
        "tokens": {p: [r["tokens"] for r in v] for p, v in raw.items()},
        "tokens_per_s": {p: summary(v) for p, v in tps.items()},
        "ttfc_s": {p: summary(v) for p, v in ttfc.items()},
        "tps_over_raw": {p: ratio(tps[p], tps["raw_grpc"]) for p in PATHS[1:]},
        "ttfc_over_raw": {p: ratio(ttfc[p], ttfc["raw_grpc"]) for p in PATHS[1:]},
    }
    if any(np.isnan(x) for v in ttfc.values() for x in v):
        out["note"] = "a batch had no stream with text (TTFC nan)"
    return out
