"""The serving core end to end on a live tritonserver: streaming, non-streaming, concurrency,
cancellation, health/metadata/metrics, and malformed requests."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.conftest import Live, grpc_inputs, grpc_stream, http_generate, messages, sse_stream
from tritonkit.chat import ChatFormatter

MODEL = "athene-70b"
SLOW = "athene-70b-slow"
CHAT = messages(("system", "You are terse."), ("user", "Name three rivers in Europe."))


def test_health_metadata_metrics(live: Live) -> None:
    assert httpx.get(f"{live.http_url}/v2/health/live").status_code == 200
    assert httpx.get(f"{live.http_url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{live.http_url}/v2/models/{MODEL}").json()
    inputs = {t["name"]: t for t in meta["inputs"]}
    outputs = {t["name"] for t in meta["outputs"]}
    assert {"text_input", "messages", "max_tokens", "stream", "stop_words"} <= set(inputs)
    assert {"text_output", "finish_reason", "num_input_tokens", "num_output_tokens"} <= outputs
    client = grpcclient.InferenceServerClient(live.grpc_url)
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(f"{MODEL}-ensemble")
    http_generate(live, MODEL, {"text_input": "ping", "max_tokens": 2})
    assert live.metric("nv_inference_request_success", model=MODEL) >= 1


def test_grpc_and_sse_streams_equal_non_streamed_text(live: Live) -> None:
    payload = {"messages": CHAT, "max_tokens": 24}
    whole = http_generate(live, MODEL, payload).json()
    assert whole["finish_reason"] == "length"
    assert whole["num_output_tokens"] == 24
    fmt = ChatFormatter.from_deployment(live.deployments[MODEL])
    n_prompt = len(fmt.encode_messages(fmt.validate_messages(CHAT)))
    assert whole["num_input_tokens"] == n_prompt

    for stream in (grpc_stream(live, MODEL, {**payload, "stream": True}),
                   sse_stream(live, MODEL, {**payload, "stream": True})):
        assert stream.error is None
        assert stream.text == whole["text_output"]
        assert len([c for c in stream.chunks if c]) > 1, "text arrived in one piece, not streamed"
        assert stream.finish_reason == "length"
        assert (stream.num_input_tokens, stream.num_output_tokens) == (n_prompt, 24)


def test_non_streamed_over_grpc_infer_and_stream_false(live: Live) -> None:
    payload = {"text_input": "The quick brown fox", "max_tokens": 12}
    expected = http_generate(live, MODEL, payload).json()["text_output"]
    client = grpcclient.InferenceServerClient(live.grpc_url)
    res = client.infer(f"{MODEL}-unary", grpc_inputs(payload))
    assert res.as_numpy("text_output").reshape(-1)[0].decode() == expected
    assert res.as_numpy("finish_reason").reshape(-1)[0] == b"length"
    one = grpc_stream(live, MODEL, {**payload, "stream": False})
    assert one.chunks == [expected]


def test_ensemble_path_matches_pipeline_text(live: Live) -> None:
    payload = {"text_input": "Hello there", "max_tokens": 10}
    expected = http_generate(live, MODEL, payload).json()["text_output"]
    ens = http_generate(live, f"{MODEL}-ensemble", payload)
    assert ens.status_code == 200, ens.text
    assert ens.json()["text_output"] == expected


def test_eight_concurrent_streams(live: Live) -> None:
    results: dict[int, object] = {}

    def run(i: int) -> None:
        results[i] = grpc_stream(live, MODEL, {
            "messages": messages(("user", f"Story number {i}")), "max_tokens": 20 + i,
            "stream": True, "seed": np.array([[i]], np.uint64),
        })

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 8
    for i, r in results.items():
        assert r.error is None, r.error
        assert r.num_output_tokens == 20 + i and r.finish_reason == "length"
    # batching must not change results: the same request alone gives the same text
    again = grpc_stream(live, MODEL, {"messages": messages(("user", "Story number 3")),
                                       "max_tokens": 23, "stream": True,
                                       "seed": np.array([[3]], np.uint64)})
    assert again.text == results[3].text


def _wait_engine_idle(live: Live, model: str, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.metric("tritonkit_engine_requests_in_flight", model=model) == 0:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{model} still generating {timeout}s after the client went away")


def test_grpc_cancel_stops_engine(live: Live) -> None:
    engine = f"{SLOW}-tensorrt_llm"
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(live.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    client.async_stream_infer(SLOW, grpc_inputs({"text_input": "Count forever", "max_tokens": 1500,
                                                 "stream": True}))
    for _ in range(5):
        _result, error = q.get(timeout=30)
        assert error is None
    assert live.metric("tritonkit_engine_requests_in_flight", model=engine) == 1
    before = live.metric("tritonkit_engine_generated_tokens_total", model=engine)
    client.stop_stream(cancel_requests=True)
    _wait_engine_idle(live, engine)
    stopped_at = live.metric("tritonkit_engine_generated_tokens_total", model=engine)
    assert stopped_at - before < 100, "engine kept generating after the cancel"
    time.sleep(0.3)
    assert live.metric("tritonkit_engine_generated_tokens_total", model=engine) == stopped_at
    _wait_pipeline_released(live)


def _wait_pipeline_released(live: Live) -> None:
    deadline = time.monotonic() + 5
    while live.metric("tritonkit_pipeline_requests_in_flight", model=SLOW) != 0:
        assert time.monotonic() < deadline, "pipeline kept per-request state after the cancel"
        time.sleep(0.05)


def test_http_disconnect_stops_engine(live: Live) -> None:
    engine = f"{SLOW}-tensorrt_llm"
    with httpx.stream("POST", f"{live.http_url}/v2/models/{SLOW}/generate_stream",
                      json={"text_input": "Count forever", "max_tokens": 1500, "stream": True},
                      timeout=30) as r:
        events = 0
        for line in r.iter_lines():
            events += line.startswith("data: ")
            if events >= 5:
                break
    assert live.metric("tritonkit_engine_requests_in_flight", model=engine) <= 1
    _wait_engine_idle(live, engine)
    _wait_pipeline_released(live)


def test_stop_string_cuts_and_never_leaks(live: Live) -> None:
    base = {"text_input": "Tell me a story", "max_tokens": 40}
    full = http_generate(live, MODEL, base).json()["text_output"]
    stop = full[15:19]
    assert stop.strip(), f"pick a visible stop string from {full!r}"
    cut = full[: full.find(stop)]
    whole = http_generate(live, MODEL, {**base, "stop_words": [stop]}).json()
    assert whole["text_output"] == cut and whole["finish_reason"] == "stop"
    for s in (sse_stream(live, MODEL, {**base, "stop_words": [stop], "stream": True}),
              grpc_stream(live, MODEL, {**base, "stop_words": [stop], "stream": True})):
        assert s.text == cut and stop not in s.text and s.finish_reason == "stop"


def test_end_id_stops_with_finish_reason_stop(live: Live) -> None:
    fmt = ChatFormatter.from_deployment(live.deployments[MODEL])
    base = {"text_input": "Once upon a time", "max_tokens": 30}
    ids = fmt.tokenizer.encode(http_generate(live, MODEL, base).json()["text_output"],
                               add_special_tokens=False)
    end = ids[5]
    r = http_generate(live, MODEL, {**base, "end_id": end}).json()
    assert r["finish_reason"] == "stop"
    assert r["num_output_tokens"] < 30


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"messages": "not json", "max_tokens": 4}, "messages"),
        ({"messages": json.dumps([{"role": "wizard", "content": "hi"}]), "max_tokens": 4},
         "messages"),
        ({"text_input": "hi", "max_tokens": 0}, "max_tokens"),
        ({"text_input": "hi", "max_tokens": -5}, "max_tokens"),
        ({"text_input": "hi", "max_tokens": 4, "temperature": -1.0}, "temperature"),
        ({"max_tokens": 4}, "text_input"),
        ({"text_input": "hi " * 3000, "max_tokens": 4}, "text_input"),
        ({"text_input": "hi", "max_tokens": 4095}, "max_tokens"),
    ],
)
def test_malformed_http_requests_are_named(live: Live, payload: dict, field: str) -> None:
    r = http_generate(live, MODEL, payload)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(field), r.json()
    assert http_generate(live, MODEL, {"text_input": "ok", "max_tokens": 2}).status_code == 200


def test_length_errors_state_both_numbers(live: Live) -> None:
    err = http_generate(live, MODEL, {"text_input": "hi", "max_tokens": 4095}).json()["error"]
    assert "4095" in err and "4096" in err
    long_prompt = "hi " * 3000
    n = len(ChatFormatter.from_deployment(live.deployments[MODEL]).encode_text(long_prompt))
    err = http_generate(live, MODEL, {"text_input": long_prompt, "max_tokens": 4}).json()["error"]
    assert f"{n} tokens" in err and "2048" in err


def test_grpc_malformed_dtype_and_missing_input(live: Live) -> None:
    client = grpcclient.InferenceServerClient(live.grpc_url)
    bad = grpc_inputs({"text_input": "hi"})
    t = grpcclient.InferInput("max_tokens", [1, 1], "FP32")
    t.set_data_from_numpy(np.array([[4.0]], np.float32))
    with pytest.raises(InferenceServerException, match="max_tokens"):
        client.infer(f"{MODEL}-unary", [*bad, t])
    missing = grpc_stream(live, MODEL, {"max_tokens": 3})
    assert missing.error is not None and "text_input" in missing.error
    s = grpc_stream(live, MODEL, {"text_input": "hi", "max_tokens": 0})
    assert s.error is not None and "max_tokens" in s.error
    ok = grpc_stream(live, MODEL, {"text_input": "hi", "max_tokens": 3, "stream": True})
    assert ok.error is None and ok.num_output_tokens == 3
