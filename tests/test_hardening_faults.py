"""Faults: a Python model's stub process killed under load, with `tritonkit serve` supervising.

What Triton 2.51 does by itself (checked): after `X-preprocessing`'s stub is SIGKILLed, streams
already past preprocessing finish normally, every new request fails at once with "Stub process
'X-preprocessing_0_0' is not healthy" (a clear error, no hang), and the stub is NEVER restarted:
`/v2/models/X-preprocessing/ready` still answers 200, so readiness cannot see it. `tritonkit serve`
therefore watches its stubs (tritonkit/serve.py, `lost_stubs`) and restarts tritonserver when one
dies. An SDK client with a retry budget longer than the restart gets its answer: connection
failures / UNAVAILABLE before the first token are retried.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.hardening import (
    MODEL,
    Outcome,
    chat_payload,
    deployment,
    find_stub,
    grpc_stream_outcome,
    logs,
    ready,
    serve_process,
    start_streams,
    wait_for,
    wait_started,
)
from tritonkit.clients import Client, Retry, Timeout


def triton_pid(serve_pid: int) -> int:
    kids = [p for p in psutil.Process(serve_pid).children() if p.name() == "tritonserver"]
    assert len(kids) == 1, kids
    return kids[0].pid


@pytest.mark.live
@pytest.mark.parametrize("victim", [f"{MODEL}-preprocessing"])
def test_stub_killed_under_load_serve_recovers(tmp_path: Path, victim: str) -> None:
    with serve_process(tmp_path, deployment(token_delay_ms=20), exit_timeout_s=10) as served:
        proc, log, http, grpc = served.proc, served.log, served.http, served.grpc
        old = triton_pid(proc.pid)
        outs, _ = start_streams(http, grpc, MODEL, 8, chat_payload(100), timeout=60)
        assert wait_started(outs, 60) == 8
        find_stub(old, victim).kill()
        t0 = time.monotonic()

        # a request right after the kill: a clear error or (already restarted) an answer, no hang
        probe = grpc_stream_outcome(grpc, MODEL, chat_payload(8), Outcome("grpc"), timeout=60)
        print("request right after the kill:", probe)
        assert probe.kind in ("error", "finished"), probe
        if probe.kind == "error":
            assert "not healthy" in probe.error or "unavailable" in probe.error.lower(), probe

        # a request issued right after the kill: the pipeline reports the dead step as
        # `unavailable:` (in-band), the old server exits, the new one loads (connection refused);
        # the SDK retries all of these before the first token, so the request is answered
        answer: dict = {}

        def during_recovery() -> None:
            with Client(grpc, model=MODEL, timeout=Timeout(connect=5, first_token=60),
                        retry=Retry(max_retries=12, initial_backoff=0.5, max_backoff=4)) as c:
                answer["reply"] = c.chat([{"role": "user", "content": "Hi"}], max_tokens=8)

        th = threading.Thread(target=during_recovery, daemon=True)
        th.start()
        wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == "zombie",
                 60, "the old tritonserver to exit", proc, log)
        th.join(120)
        assert "reply" in answer, "the SDK request during recovery did not succeed"
        assert answer["reply"].finish_reason == "length"
        print(f"recovered; SDK request answered {time.monotonic() - t0:.1f}s after the kill")

        deadline = time.monotonic() + 60
        while any(o.kind == "cut" and not o.error for o in outs) and time.monotonic() < deadline:
            time.sleep(0.2)
        for o in outs:
            print(o)
            assert o.kind in ("finished", "error"), f"stream hung or cut silently: {o}"
        new = triton_pid(proc.pid)
        assert new != old and ready(http)
        find_stub(new, victim)  # a fresh stub serves the model again
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, logs(log)
