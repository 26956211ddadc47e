"""The SDK against the live server: gRPC and HTTP, sync and asyncio, the same assertions for all four."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tritonkit.clients import (
    AsyncClient,
    Client,
    InvalidRequestError,
    ModelNotFoundError,
    Retry,
    Timeout,
    TimeoutError,
    UnavailableError,
)
from tritonkit.serve import free_port

pytestmark = pytest.mark.live

MODEL = "athene-70b"
SLOW = "athene-70b-slow"
SLOW_ENGINE = "athene-70b-slow-tensorrt_llm"
HELLO = [{"role": "user", "content": "Hello! Tell me about rivers."}]
FLAVOURS = [("grpc", False), ("grpc", True), ("http", False), ("http", True)]
IDS = ["grpc-sync", "grpc-async", "http-sync", "http-async"]


class Flavour:
    """Runs one scenario with a sync or an async client: `run(fn)` where fn(client) is sync or
    async accordingly; helpers read whole streams either way."""

    def __init__(self, live: Any, protocol: str, is_async: bool, **kw: Any) -> None:
        self.url = live.grpc_url if protocol == "grpc" else live.http_url
        self.protocol, self.is_async, self.kw = protocol, is_async, kw

    def run(self, fn: Callable[[Any], Any]) -> Any:
        if not self.is_async:
            with Client(self.url, protocol=self.protocol, **self.kw) as client:
                return fn(client)

        async def main() -> Any:
            async with AsyncClient(self.url, protocol=self.protocol, **self.kw) as client:
                return await fn(client)

        return asyncio.run(main())


def _in_flight(live: Any) -> float:
    return live.metric("tritonkit_engine_requests_in_flight", model=SLOW_ENGINE)


def _wait_drained(live: Any, within: float = 2.0) -> float:
    """Seconds until the slow engine holds no request; fails after `within`."""
    start = time.monotonic()
    while _in_flight(live) > 0:
        if time.monotonic() - start > within:
            pytest.fail(f"the engine still runs {_in_flight(live)} request(s) after {within} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.parametrize(("protocol", "is_async"), FLAVOURS, ids=IDS)
def test_chat_stream_matches_unary(live: Any, protocol: str, is_async: bool) -> None:
    f = Flavour(live, protocol, is_async, model=MODEL)

    def sync(c: Client) -> tuple[Any, list[Any], Any]:
        full = c.chat(HELLO, max_tokens=12)
        with c.stream_chat(HELLO, max_tokens=12) as s:
            chunks = list(s)
        return full, chunks, s

    async def aio(c: AsyncClient) -> tuple[Any, list[Any], Any]:
        full = await c.chat(HELLO, max_tokens=12)
        async with c.stream_chat(HELLO, max_tokens=12) as s:
            chunks = [ch async for ch in s]
        return full, chunks, s

    full, chunks, stream = f.run(aio if is_async else sync)
    assert full.finish_reason == "length" and full.usage.completion_tokens == 12
    assert full.usage.prompt_tokens > 5 and full.text
    assert "".join(ch.delta for ch in chunks) == full.text == stream.text
    assert len(chunks) > 2 and chunks[-1].is_final and not any(c.is_final for c in chunks[:-1])
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage == full.usage
    times = [ch.time for ch in chunks]
    assert times == sorted(times) and times[0] > 0
    assert stream.time_to_first_token is not None and stream.time_to_first_token <= times[-1]


@pytest.mark.parametrize(("protocol", "is_async"), FLAVOURS, ids=IDS)
def test_generate_stop_string_is_cut(live: Any, protocol: str, is_async: bool) -> None:
    f = Flavour(live, protocol, is_async, model=MODEL)

    def sync(c: Client) -> tuple[Any, Any]:
        base = c.generate("Once upon a time", max_tokens=12)
        return base, c.generate("Once upon a time", max_tokens=12, stop=[base.text[8:12]])

    async def aio(c: AsyncClient) -> tuple[Any, Any]:
        base = await c.generate("Once upon a time", max_tokens=12)
        return base, await c.generate("Once upon a time", max_tokens=12,
                                      stop=[base.text[8:12]])

    base, cut = f.run(aio if is_async else sync)
    stop = base.text[8:12]
    assert len(stop) == 4 and base.finish_reason == "length"
    assert cut.finish_reason == "stop"
    assert cut.text == base.text[: base.text.index(stop)]
    assert stop not in cut.text


@pytest.mark.parametrize(("protocol", "is_async"), FLAVOURS, ids=IDS)
def test_typed_errors(live: Any, protocol: str, is_async: bool) -> None:
    f = Flavour(live, protocol, is_async)

    def sync(c: Client) -> list[BaseException]:
        errors = []
        for call in (lambda: c.chat(HELLO, model=MODEL, max_tokens=0),
                     lambda: list(c.stream_chat(HELLO, model=MODEL, temperature=500.0)),
                     lambda: c.generate("x", model="no-such-model")):
            with pytest.raises(InvalidRequestError) as info:
                call()
            errors.append(info.value)
        return errors

    async def aio(c: AsyncClient) -> list[BaseException]:
        errors = []

        async def consume() -> None:
            async for _ in c.stream_chat(HELLO, model=MODEL, temperature=500.0):
                pass

        for make in (lambda: c.chat(HELLO, model=MODEL, max_tokens=0), consume,
                     lambda: c.generate("x", model="no-such-model")):
            with pytest.raises(InvalidRequestError) as info:
                await make()
            errors.append(info.value)
        return errors

    bad_max, bad_temp, unknown = f.run(aio if is_async else sync)
    assert bad_max.field == "max_tokens" and "must be >= 1" in bad_max.message
    assert bad_temp.field == "temperature" and "out of range" in bad_temp.message
    assert isinstance(unknown, ModelNotFoundError) and unknown.field == "model"
    assert "no-such-model" in unknown.message


@pytest.mark.parametrize(("protocol", "is_async"), FLAVOURS, ids=IDS)
def test_models_and_health(live: Any, protocol: str, is_async: bool) -> None:
    f = Flavour(live, protocol, is_async)

    def sync(c: Client) -> tuple[bool, list[Any]]:
        return c.health(), c.models()

    async def aio(c: AsyncClient) -> tuple[bool, list[Any]]:
        return await c.health(), await c.models()

    healthy, models = f.run(aio if is_async else sync)
    assert healthy is True
    assert sorted(m.name for m in models) == sorted(live.deployments)
    slow = next(m for m in models if m.name == SLOW)
    assert slow.catalog_model == "athene-70b" and slow.max_seq_len == 4096


@pytest.mark.parametrize(("protocol", "is_async"), FLAVOURS, ids=IDS)
def test_closing_a_stream_stops_the_engine(live: Any, protocol: str, is_async: bool) -> None:
    f = Flavour(live, protocol, is_async, model=SLOW)
    seen: dict[str, float] = {}

    def sync(c: Client) -> str:
        with c.stream_chat(HELLO, max_tokens=1000) as s:
            for i, _ in enumerate(s):
                if i == 4:
                    seen["in_flight"] = _in_flight(live)
                    break
        return s.text

    async def aio(c: AsyncClient) -> str:
        async with c.stream_chat(HELLO, max_tokens=1000) as s:
            i = 0
            async for _ in s:
                i += 1
                if i == 5:
                    seen["in_flight"] = _in_flight(live)
                    break
        return s.text

    text = f.run(aio if is_async else sync)
    assert seen["in_flight"] == 1  # 1000 tokens at 25 ms each would run for 25 s
    assert text
    _wait_drained(live)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_cancelling_the_task_stops_the_engine(live: Any, protocol: str) -> None:
    url = live.grpc_url if protocol == "grpc" else live.http_url

    async def main() -> None:
        async with AsyncClient(url, protocol=protocol, model=SLOW) as c:

            async def consume() -> None:
                async for _ in c.stream_chat(HELLO, max_tokens=1000):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.5)
            assert _in_flight(live) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    _wait_drained(live)


def test_cancellations_at_any_moment_are_not_swallowed(live: Any) -> None:
    """40 tasks cancelled 0-200 ms after they start, before or between responses: every one
    raises CancelledError (none reads on to a normal end) and the server releases them all.
    Regression: asyncio.wait_for (Python < 3.12) could swallow a cancellation landing with a
    response, and the task then read the stream to its end for nobody."""
    delays = [0, 0.001, 0.005, 0.02, 0.05, 0.2] * 7

    async def one(c: AsyncClient, delay: float) -> str:
        async def consume() -> None:
            async for _ in c.stream_generate("Count to a million", max_tokens=500):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "completed"

    async def main() -> list[str]:
        async with AsyncClient(live.grpc_url, model=SLOW) as c:
            return await asyncio.gather(*(one(c, d) for d in delays[:40]))

    outcomes = asyncio.run(main())
    assert outcomes == ["cancelled"] * 40, outcomes
    _wait_drained(live)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_first_token_timeout_cancels(live: Any, protocol: str) -> None:
    url = live.grpc_url if protocol == "grpc" else live.http_url
    with Client(url, protocol=protocol, model=SLOW) as c, pytest.raises(TimeoutError) as info:
        # the slow engine needs ~25 ms per token: no first token can arrive within 1 ms of the
        # request (over HTTP the deadline may pass while opening, which waits for the first event)
        reply = c.generate("Hello", max_tokens=1000, timeout=Timeout(first_token=0.001))
        print(f"no first_token timeout; the reply: {reply!r}")
    assert info.value.phase == "first_token"
    _wait_drained(live)


def _decode_steps(live: Any) -> float:
    return live.metric("tritonkit_engine_decode_steps_total", model=f"{SLOW}-tensorrt_llm")


# Concurrency is judged by the engine, not the wall clock: 16 streams x 10 tokens served one
# after another take >= 160 decoding steps; sharing steps (continuous batching), far fewer.
SERIAL_STEPS = 16 * 10


def test_sixteen_concurrent_streams_one_async_grpc_client(live: Any) -> None:
    steps0 = _decode_steps(live)

    async def main() -> tuple[list[str], float]:
        async with AsyncClient(live.grpc_url, model=SLOW) as c:

            async def one(i: int) -> str:
                async with c.stream_chat(HELLO, max_tokens=10) as s:
                    async for _ in s:
                        pass
                assert s.finish_reason == "length" and s.usage.completion_tokens == 10
                return s.text

            start = time.monotonic()
            texts = await asyncio.gather(*(one(i) for i in range(16)))
            return texts, time.monotonic() - start

    texts, _elapsed = asyncio.run(main())
    assert len(set(texts)) == 1 and texts[0]  # greedy: the same prompt gives the same text
    steps = _decode_steps(live) - steps0
    assert steps <= SERIAL_STEPS / 2, f"{steps:.0f} decoding steps for 16 streams: not concurrent"


def test_sixteen_concurrent_streams_one_sync_grpc_client(live: Any) -> None:
    steps0 = _decode_steps(live)
    with Client(live.grpc_url, model=SLOW) as c:

        def one(i: int) -> tuple[str, str | None]:
            with c.stream_chat(HELLO, max_tokens=10) as s:
                for _ in s:
                    pass
            return s.text, s.finish_reason

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(16)))
    assert {r[1] for r in results} == {"length"} and len({r[0] for r in results}) == 1
    steps = _decode_steps(live) - steps0
    assert steps <= SERIAL_STEPS / 2, f"{steps:.0f} decoding steps for 16 streams: not concurrent"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unreachable_server_is_unavailable_after_retries(protocol: str) -> None:
    url = f"127.0.0.1:{free_port()}"
    retry = Retry(max_retries=2, initial_backoff=0.05, jitter=0.0)
    with Client(url, protocol=protocol, retry=retry, timeout=2.0) as c:
        assert c.health() is False
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            c.generate("Hi", model=MODEL)
        # two backoffs of 0.05 and 0.1 s happened before giving up
        assert time.monotonic() - start >= 0.15


def test_config_objects_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="first_token"):
        Timeout(first_token=0)
    with pytest.raises(ValueError, match="jitter"):
        Retry(jitter=2)
    backoffs = [Retry(initial_backoff=1, max_backoff=4, jitter=0.5).backoff(n) for n in range(5)]
    assert all(0.5 <= b <= 1 for b in backoffs[:1]) and all(b <= 4 for b in backoffs)
    with pytest.raises(ValueError, match="protocol"):
        Client("localhost:1", protocol="udp")
