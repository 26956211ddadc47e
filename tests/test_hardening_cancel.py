"""Hardening, cancellation (issue 9 item 2): storms of streams cancelled at random points.

Against `athene-70b-slow` (25 ms per decoding step, batch 16), each stream is cancelled after a
random number of responses (0 = right after the request is sent), one of four ways:

- ``grpc_cancel``: tritonclient gRPC `stop_stream(cancel_requests=True)`;
- ``sse_disconnect``: HTTP `generate_stream`, the connection closed mid-stream;
- ``gateway_disconnect``: the OpenAI gateway's streaming response, the connection closed;
- ``sdk_close``: the tritonkit SDK's `Stream.close()` on a gRPC stream iterator.

After each wave the server's own metrics must show everything released: the engine and pipeline
in-flight gauges back to 0 and `tritonkit_engine_generated_tokens_total` no longer growing. The
gateway has no gauge of its own; every request it holds is a pipeline and an engine request, so
those two gauges measure it too.

Size: ~200 streams in four waves by default; `TRITONKIT_CANCEL_STREAMS=<n>` for soak runs.

If the pipeline's stub process crashes meanwhile (a Triton 2.51 Python-backend bug, seen in
a third to half of the storms on the 2-core machine; docs/reliability.md), the failure is reported
as an expected failure naming that crash (tests/conftest.py, `pytest_runtest_makereport`), found
in Triton's log. Without a crash, a request still held or a stream that failed is a plain failure.
"""

from __future__ import annotations

import json
import os
import queue
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import tritonclient.grpc as grpcclient

from tests.conftest import Live, grpc_inputs

# this module's own server (`live`) and gateway, not the session's: tests/hardening.py
from tests.hardening import module_gateway, module_live  # noqa: F401
from tritonkit.clients import Client

pytestmark = pytest.mark.live

SLOW = "athene-70b-slow"
ENGINE = f"{SLOW}-tensorrt_llm"
STREAMS = int(os.environ.get("TRITONKIT_CANCEL_STREAMS", "200"))
WAVE = 50
MAX_BATCH = 16  # limits.max_batch_size of the live deployments (default)
PROMPT = "Count from one to a million, one number per line."
MAX_TOKENS = 2000  # never reached: every stream is cancelled after at most MAX_EVENTS responses
MAX_EVENTS = 12
TIMEOUT = 60.0
#: Engine steps a cancel may take to reach the engine: <= 1 step until the pipeline, which looks
#: at `is_cancelled()` after each engine response, notices; the step running when the `stop`
#: arrives still completes (1); plus 1 for the few ms the cancel needs to cross client -> Triton ->
#: pipeline thread (a 25 ms step is far longer, so it can straddle at most one step boundary).
STEPS_TO_STOP = 3


# ---- the four ways to cancel (each: start a stream, read `events` responses, cancel) ----------
def _start_grpc_stream(live: Live) -> tuple[grpcclient.InferenceServerClient, queue.Queue]:
    """A tritonclient gRPC stream with one long generation on it; responses land in the queue."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(live.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    client.async_stream_infer(SLOW, grpc_inputs({"text_input": PROMPT, "stream": True,
                                                 "max_tokens": MAX_TOKENS}))
    return client, q


def _grpc_cancel(live: Live, gateway: str, events: int) -> None:
    client, q = _start_grpc_stream(live)
    try:
        for _ in range(events):
            _result, error = q.get(timeout=TIMEOUT)
            assert error is None, error
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()


def _sse_lines(r: httpx.Response, events: int) -> None:
    assert r.status_code == 200, r.read()
    if events == 0:
        return
    seen = 0
    for line in r.iter_lines():
        if line.startswith("data: "):
            assert "error" not in json.loads(line[6:]), line
            seen += 1
            if seen >= events:
                return


def _sse_disconnect(live: Live, gateway: str, events: int) -> None:
    with httpx.stream("POST", f"{live.http_url}/v2/models/{SLOW}/generate_stream",
                      json={"text_input": PROMPT, "max_tokens": MAX_TOKENS, "stream": True},
                      timeout=TIMEOUT) as r:
        _sse_lines(r, events)


def _gateway_disconnect(live: Live, gateway: str, events: int) -> None:
    with httpx.stream("POST", f"{gateway}/completions", timeout=TIMEOUT,
                      json={"model": SLOW, "prompt": PROMPT, "max_tokens": MAX_TOKENS,
                            "stream": True}) as r:
        _sse_lines(r, events)


def _sdk_close(live: Live, gateway: str, events: int) -> None:
    with Client(live.grpc_url, model=SLOW) as client:
        stream = client.stream_generate(PROMPT, max_tokens=MAX_TOKENS)
        try:
            for i, _chunk in enumerate(stream):
                if i + 1 >= events:
                    break
        finally:
            stream.close()


WAYS: dict[str, Callable[[Live, str, int], None]] = {
    "grpc_cancel": _grpc_cancel,
    "sse_disconnect": _sse_disconnect,
    "gateway_disconnect": _gateway_disconnect,
    "sdk_close": _sdk_close,
}


# ---- server-side truth ------------------------------------------------------------------------
def _tokens(live: Live) -> float:
    return live.metric("tritonkit_engine_generated_tokens_total", model=ENGINE)


def _wait_released(live: Live, timeout: float = 15.0) -> float:
    """Wait until the engine and the pipeline hold no request; returns the seconds it took.
    A crashed stub's gauges freeze: that failure is reported as the upstream crash (conftest)."""
    start = time.monotonic()
    while True:
        engine = live.metric("tritonkit_engine_requests_in_flight", model=ENGINE)
        pipeline = live.metric("tritonkit_pipeline_requests_in_flight", model=SLOW)
        if engine == 0 and pipeline == 0:
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            raise AssertionError(
                f"{timeout}s after the last cancel: engine holds {engine}, pipeline {pipeline}")
        time.sleep(0.02)


def _assert_tokens_stopped(live: Live) -> None:
    """No token is generated once everything is released (8 steps of 25 ms later)."""
    settled = _tokens(live)
    time.sleep(0.2)
    assert _tokens(live) == settled, "the engine still generates after every stream was cancelled"


# ---- tests ------------------------------------------------------------------------------------
def test_single_cancel_stops_engine_within_steps(live: Live) -> None:
    """One stream alone in the engine (1 token per step): tokens generated after the cancel is
    issued <= STEPS_TO_STOP. The count is read from the engine's counter just before the cancel,
    so the time that read takes is inside the bound, not outside it."""
    _wait_released(live)
    after_cancel: list[int] = []
    for _ in range(5):
        client, q = _start_grpc_stream(live)
        for _ in range(random.randint(2, 8)):
            _result, error = q.get(timeout=TIMEOUT)
            assert error is None, error
        at_cancel = _tokens(live)
        client.stop_stream(cancel_requests=True)
        client.close()
        _wait_released(live)
        after_cancel.append(int(_tokens(live) - at_cancel))
    print(f"tokens generated after the cancel (5 single streams): {after_cancel}")
    # one straggler is allowed for a loaded 2-core machine (a thread descheduled for a step);
    # the median must be within the bound and none may run on (>2x)
    assert statistics.median(after_cancel) <= STEPS_TO_STOP, after_cancel
    assert max(after_cancel) <= 2 * STEPS_TO_STOP, after_cancel
    _assert_tokens_stopped(live)


def test_cancellation_storm(live: Live, gateway: str) -> None:
    """STREAMS streams in waves of WAVE, each cancelled one of four ways after 0..MAX_EVENTS
    responses; after each wave everything is released and the engine stops within a few steps
    of the last cancel (at most MAX_BATCH sequences, each <= STEPS_TO_STOP tokens)."""
    rng = random.Random(9)
    plan = [(name, rng.randint(0, MAX_EVENTS)) for name in WAYS for _ in range(STREAMS // 4)]
    rng.shuffle(plan)
    failures: list[str] = []
    done: dict[str, int] = dict.fromkeys(WAYS, 0)
    tail_tokens: list[int] = []
    release_s: list[float] = []
    start_tokens = _tokens(live)

    def one(name: str, events: int) -> None:
        try:
            WAYS[name](live, gateway, events)
            done[name] += 1
        except Exception as exc:
            failures.append(f"{name} after {events} responses: {exc!r}")

    t0 = time.monotonic()
    for w in range(0, len(plan), WAVE):
        with ThreadPoolExecutor(max_workers=WAVE) as pool:
            for name, events in plan[w:w + WAVE]:
                pool.submit(one, name, events)
        at_last_cancel = _tokens(live)  # every worker of the wave has cancelled by now
        release_s.append(_wait_released(live))
        tail_tokens.append(int(_tokens(live) - at_last_cancel))
        _assert_tokens_stopped(live)
    elapsed = time.monotonic() - t0
    print(f"{len(plan)} streams in {elapsed:.1f}s ({done}); tokens "
          f"{int(_tokens(live) - start_tokens)}; tokens after each wave's last cancel "
          f"{tail_tokens}; released {[round(s, 2) for s in release_s]}s after it")
    assert not failures, failures[:5]
    assert sum(done.values()) == len(plan)
    assert max(tail_tokens) <= MAX_BATCH * STEPS_TO_STOP, tail_tokens
    # and the server still serves a full stream afterwards
    with Client(live.grpc_url, model=SLOW) as client:
        reply = client.generate("Hello", max_tokens=3)
    assert reply.finish_reason == "length" and reply.usage.completion_tokens == 3
