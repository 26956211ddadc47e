"""The OpenAI-compatible gateway, driven by the official `openai` package, against the live server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import run_gateway
from tritonkit.clients.gateway_app import create_app
from tritonkit.serve import free_port

pytestmark = pytest.mark.live

MODEL = "athene-70b"
SLOW = "athene-70b-slow"
KEY = "sk-test-key"
HELLO = [{"role": "user", "content": "Hello! Tell me about rivers."}]
EXAMPLES = Path(__file__).resolve().parent.parent / "clients" / "examples"


@pytest.fixture(scope="module")
def gateway(live: Any) -> Iterator[str]:
    """The gateway in a thread on a free port (tests/conftest.py: run_gateway)."""
    with run_gateway(live.grpc_url, api_keys=[KEY]) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key=KEY, max_retries=0)


def _drained(live: Any, within: float = 2.0) -> None:
    start = time.monotonic()
    while live.metric("tritonkit_engine_requests_in_flight",
                      model="athene-70b-slow-tensorrt_llm") > 0:
        assert time.monotonic() - start < within, "the engine still runs after the disconnect"
        time.sleep(0.05)


def test_models_lists_served_pipelines_only(client: openai.OpenAI, live: Any) -> None:
    ids = sorted(m.id for m in client.models.list())
    assert ids == sorted(live.deployments)
    assert not any(i.endswith(("-unary", "-ensemble", "-tensorrt_llm")) for i in ids)


def test_chat_unary_and_stream_agree(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10)
    choice = full.choices[0]
    assert choice.finish_reason == "length" and choice.message.role == "assistant"
    assert full.usage.completion_tokens == 10 and full.usage.prompt_tokens > 5
    assert full.usage.total_tokens == full.usage.prompt_tokens + 10

    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=10, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4,
                                                 stream=True))
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "length"


def test_completions_unary_and_stream(client: openai.OpenAI) -> None:
    full = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8)
    assert full.choices[0].finish_reason == "length" and full.usage.completion_tokens == 8
    chunks = list(client.completions.create(model=MODEL, prompt="Once upon a time",
                                            max_tokens=8, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == full.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_n_choices_fan_out_with_distinct_seeds(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, n=2, seed=7)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens == 16
    assert r.choices[0].message.content != r.choices[1].message.content  # seeds 7 and 8
    again = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, n=2,
                                           seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, n=2,
                                                 seed=7, stream=True))
    for i in (0, 1):
        text = "".join(c.choices[0].delta.content or "" for c in chunks
                       if c.choices and c.choices[0].index == i)
        assert text == r.choices[i].message.content


def test_stop_and_max_completion_tokens(client: openai.OpenAI) -> None:
    base = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=12)
    text = base.choices[0].text
    stop = text[8:12]
    cut = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=12,
                                    stop=stop)
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[: text.index(stop)]
    chat = client.chat.completions.create(model=MODEL, messages=HELLO,
                                          max_completion_tokens=3)
    assert chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens == 3


def test_errors_are_openai_shaped(client: openai.OpenAI, gateway: str) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert nf.value.body["param"] == "model" and nf.value.body["code"] == "model_not_found"

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=HELLO, temperature=5)
    assert bad.value.body["param"] == "temperature"

    # refused by Triton itself (prompt + max_tokens beyond the context), streaming or not
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as ctx:
            client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=100_000,
                                           stream=stream)
        assert ctx.value.body["param"] == "max_tokens"
        assert "4096" in ctx.value.body["message"]

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway, api_key="wrong", max_retries=0).models.list()


def test_unavailable_triton_is_503() -> None:
    app = create_app(f"127.0.0.1:{free_port()}")
    from fastapi.testclient import TestClient

    with TestClient(app) as tc:
        r = tc.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable_error"


def test_stream_disconnect_cancels_triton_request(gateway: str, live: Any) -> None:
    body = {"model": SLOW, "messages": HELLO, "max_tokens": 1000, "stream": True}
    running = False
    with httpx.stream("POST", f"{gateway}/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as r:
        deadline = time.monotonic() + 3
        for line in r.iter_lines():
            assert "error" not in line
            running = live.metric("tritonkit_engine_requests_in_flight",
                                  model="athene-70b-slow-tensorrt_llm") == 1
            if running or time.monotonic() > deadline:
                break
    assert running  # 1000 tokens at 25 ms would run 25 s
    _drained(live)


def test_unary_disconnect_cancels_triton_request(gateway: str, live: Any) -> None:
    body = {"model": SLOW, "messages": HELLO, "max_tokens": 1000}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway}/chat/completions", json=body,
                   headers={"Authorization": f"Bearer {KEY}"}, timeout=httpx.Timeout(5, read=0.5))
    _drained(live)


def test_openai_example_runs(gateway: str) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "openai_gateway.py"), gateway, KEY, MODEL],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "length" in out.stdout
