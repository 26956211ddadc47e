"""Shutdown: SIGTERM with 50 streams in flight (gRPC and SSE mixed, 20 ms per step).

Each stream must finish (final response with a finish_reason) or end with an explicit error;
a stream that just stops is a silent cut and fails the test. The process must exit 0.

The clients here close a finished gRPC stream without cancelling it, as tritonkit's SDK does.
A client that cancels a stream just as its final response arrives can leave the served model
unable to unload in Triton 2.51 (docs/reliability.md, "Cancel after the final"); the check then
fails with the log line that shows it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.hardening import (
    MODEL,
    Outcome,
    chat_payload,
    deployment,
    own_server,
    serve_process,
    start_streams,
    triton_log,
    wait_started,
)
from tritonkit.clients import AsyncClient, Client

STREAMS = 50
EXIT_TIMEOUT_S = 25
SDK_CHATS = 30
UNLOAD_HANG = "live models and 0 in-flight non-inference requests"


def check_streams(outs: list[Outcome]) -> None:
    print(Counter((o.protocol, o.kind, o.finish_reason) for o in outs))
    cut = [str(o) for o in outs if o.kind == "cut"]
    assert not cut, f"{len(cut)} streams cut silently: {cut[:5]}"
    for o in outs:
        if o.kind == "finished":
            assert o.finish_reason in ("length", "stop", "cancelled"), o


def check_exit(code: int, log: str) -> None:
    hint = f"\n(Triton could not unload a model: {UNLOAD_HANG!r})" if UNLOAD_HANG in log else ""
    assert code == 0, log[-3000:] + hint


def launch_streams(http: str, grpc: str) -> list[Outcome]:
    outs, _threads = start_streams(http, grpc, MODEL, STREAMS, chat_payload(60), timeout=90)
    started = wait_started(outs, 90)
    assert started == STREAMS, f"only {started} of {STREAMS} streams started"
    return outs


def join(outs: list[Outcome], threads_timeout: float = 90) -> None:
    deadline = time.monotonic() + threads_timeout
    while any(o.kind == "cut" and not o.error for o in outs) and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.live
def test_sigterm_tritonserver_drains_streams(tmp_path: Path) -> None:
    dep = deployment(token_delay_ms=20, max_batch=64)
    with own_server(tmp_path, [dep], exit_timeout_s=EXIT_TIMEOUT_S) as server:
        outs = launch_streams(f"http://127.0.0.1:{server.ports.http}",
                              f"127.0.0.1:{server.ports.grpc}")
        t0 = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(EXIT_TIMEOUT_S + 30)
        print(f"tritonserver exited {code} after {time.monotonic() - t0:.1f}s")
        join(outs)
        check_streams(outs)
        check_exit(code, Path(server.log_path).read_text(errors="replace"))


@pytest.mark.live
def test_sigterm_tritonkit_serve_forwards_and_drains(tmp_path: Path) -> None:
    with serve_process(tmp_path, deployment(token_delay_ms=20, max_batch=64),
                       exit_timeout_s=EXIT_TIMEOUT_S) as served:
        proc, log = served.proc, served.log
        outs = launch_streams(served.http, served.grpc)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(EXIT_TIMEOUT_S + 40)
        join(outs)
        check_streams(outs)
        check_exit(code, log.read_text(errors="replace")
                   + triton_log(log).read_text(errors="replace"))


@pytest.mark.live
def test_sdk_clients_close_finished_calls_without_cancelling(tmp_path: Path) -> None:
    """Regression: the SDK used to drop (sync) or abandon (asyncio) a gRPC call after its final
    response; closing the client then cancelled it, and Triton 2.51 could no longer unload the
    model: with the old SDK this test failed 3 runs of 3, with the fix it passed 6 of 6."""
    with own_server(tmp_path, [deployment()], exit_timeout_s=5) as server:
        url = f"127.0.0.1:{server.ports.grpc}"
        hi = [{"role": "user", "content": "Hi"}]
        for _ in range(SDK_CHATS):  # a fresh client each time: closed right after the answer
            with Client(url, model=MODEL) as c:
                assert c.chat(hi, max_tokens=4).finish_reason == "length"

        async def fresh_async_clients() -> None:
            for _ in range(SDK_CHATS):
                async with AsyncClient(url, model=MODEL) as c:
                    assert (await c.chat(hi, max_tokens=4)).finish_reason == "length"

        asyncio.run(fresh_async_clients())
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(30)
        check_exit(code, Path(server.log_path).read_text(errors="replace"))
