"""Shared fixtures: one live tritonserver for the session, serving every catalog deployment.

The server runs the real Triton 2.51 (from the nvidia-pytriton wheel) on free ports with the CPU
reference engine; tests talk to it with the real tritonclient, httpx and tokenizers.

Served models (see `LIVE_DEPLOYMENTS`): the five catalog models under their catalog names, and
`athene-70b-slow` (same model, 25 ms per decoding step) for cancellation and timing tests, and
`my-llama-3.1-8b`, a checkpoint folder with its own chat template and no catalog entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.checkpoints import make_llama31_checkpoint
from tritonkit.catalog import model_names
from tritonkit.deployment import Deployment, parse_deployment
from tritonkit.serve import Ports, TritonServer

REPO = Path(__file__).resolve().parent.parent
# The live server restricts its admin APIs behind this key (tritonkit/security.py); the SDK and a
# gateway started from the tests read the same variable. Set before any server starts.
ADMIN_KEY = os.environ.setdefault("TRITONKIT_ADMIN_KEY", "tritonkit-test-admin-key")

CHECKPOINT_MODEL = "my-llama-3.1-8b"
LIVE_DEPLOYMENTS: dict[str, dict] = {
    **{
        name: {"model": name, "limits": {"max_input_len": 2048, "max_seq_len": 4096,
                                         "default_max_tokens": 64}}
        for name in model_names()
    },
    "athene-70b-slow": {
        "model": "athene-70b",
        "name": "athene-70b-slow",
        "limits": {"max_input_len": 2048, "max_seq_len": 4096, "default_max_tokens": 64},
        "reference": {"token_delay_ms": 25},
    },
}


#: How long a test server may take to load its models.
LOAD_TIMEOUT_S = float(os.environ.get("TRITONKIT_TEST_LOAD_TIMEOUT", 300))
#: What Python's faulthandler prints when a stub process crashes.
STUB_CRASH = "Fatal Python error"
UPSTREAM_STUB_CRASH = (
    "a Python-backend stub of the server crashed during this test: Triton 2.51's stub builds the "
    "numpy arrays of BLS responses without holding the GIL (fixed in later python_backend "
    "releases, which take the GIL there), so heap corruption can kill the pipeline's stub under "
    "any load; see the server log and docs/reliability.md. The server is restarted for the next "
    "test, as `tritonkit serve` does in production")


def stub_crashes_in(log: Path | None) -> int:
    """How many stub crashes a tritonserver log shows."""
    return log.read_text(errors="replace").count(STUB_CRASH) if log and log.exists() else 0


@dataclass
class Live:
    """Where the session's server listens, and the deployments it serves."""

    server: TritonServer
    deployments: dict[str, Deployment]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.server.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server.ports.metrics}/metrics"

    def stub_crashes(self) -> int:
        """Python-backend stub crashes so far (faulthandler, on in every tritonkit model)."""
        return stub_crashes_in(self.server.log_path)

    def recover(self) -> None:
        """Restart the server (same ports) if a stub or tritonserver died, as `serve` does."""
        p = self.server.process
        if (p is not None and p.poll() is not None) or self.server.lost_stubs():
            self.server.restart(timeout_s=LOAD_TIMEOUT_S)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus metric's samples whose labels include `labels`."""
        text = httpx.get(self.metrics_url, timeout=10).text
        total, found = 0.0, False
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            lab = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(lab.get(k) == v for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        if not found:
            raise KeyError(f"metric {name}{labels} not exported")
        return total


@contextlib.contextmanager
def live_server(work: Path, deps: dict[str, Deployment]) -> Iterator[Live]:
    """A tritonserver serving `deps` (served name -> deployment) until the block ends."""
    server = TritonServer(list(deps.values()), Ports.free(), repo_dir=work / "repo",
                          log_path=work / "triton.log", exit_timeout_s=5)
    server.start()
    try:
        server.wait_ready(timeout_s=LOAD_TIMEOUT_S)
        yield Live(server, deps)
    finally:
        server.stop()


def live_deployments(*names: str) -> dict[str, Deployment]:
    """Some of `LIVE_DEPLOYMENTS`, parsed."""
    return {k: parse_deployment(LIVE_DEPLOYMENTS[k], source=f"test:{k}") for k in names}


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    deps = live_deployments(*LIVE_DEPLOYMENTS)
    work = tmp_path_factory.mktemp("triton")
    # a model with no catalog entry, served from its checkpoint folder (tests/checkpoints.py)
    ckpt = make_llama31_checkpoint(work / CHECKPOINT_MODEL)
    deps[CHECKPOINT_MODEL] = parse_deployment(
        {"checkpoint_dir": str(ckpt), "limits": LIVE_DEPLOYMENTS["athene-70b"]["limits"]},
        source=f"test:{CHECKPOINT_MODEL}",
    )
    with live_server(work, deps) as server:
        yield server


#: Logs of the servers a test started itself (`watch_server_log`), checked for stub crashes.
_WATCHED_LOGS: list[Path] = []


def watch_server_log(path: Path) -> None:
    """A test's own server: a failure while one of its stubs crashed is reported as the crash."""
    _WATCHED_LOGS.append(Path(path))


def _crashed_in_own_servers() -> bool:
    return any(stub_crashes_in(p) for p in _WATCHED_LOGS)


@pytest.fixture(autouse=True)
def _stub_crash_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """For tests on a live server: start on a healthy one (restarted if a stub died) and note
    the crash count, so that a failure caused by the upstream stub crash is reported as such."""
    _WATCHED_LOGS.clear()
    if "live" in request.fixturenames:
        live = request.getfixturevalue("live")
        live.recover()
        request.node._tk_live = (live, live.stub_crashes())
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A live test that failed while a stub crashed (Triton 2.51 bug): an expected failure
    naming the crash, not a failure of the code under test. Without a crash, it stays failed."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    seen = getattr(item, "_tk_live", None)
    if (seen is not None and seen[0].stub_crashes() > seen[1]) or _crashed_in_own_servers():
        report.outcome = "skipped"
        report.wasxfail = UPSTREAM_STUB_CRASH


# ---- small client helpers used across tests ----------------------------------------------------
def grpc_inputs(payload: dict) -> list:
    """tritonclient gRPC InferInputs from a dict of python values (batch dimension added)."""
    import tritonclient.grpc as grpcclient

    out = []
    for name, value in payload.items():
        arr = _array(value)
        t = grpcclient.InferInput(name, list(arr.shape), _dtype(arr))
        t.set_data_from_numpy(arr)
        out.append(t)
    return out


def _array(value: object) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, bool):
        return np.array([[value]], np.bool_)
    if isinstance(value, int):
        return np.array([[value]], np.int32)
    if isinstance(value, float):
        return np.array([[value]], np.float32)
    if isinstance(value, str):
        return np.array([[value.encode()]], dtype=object)
    if isinstance(value, list):
        return np.array([[v.encode() for v in value]], dtype=object)
    raise TypeError(value)


def _dtype(arr: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return np_to_triton_dtype(arr.dtype)


def messages(*turns: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "content": c} for r, c in turns])


@dataclass
class StreamResult:
    chunks: list[str]
    finish_reason: str
    num_input_tokens: int
    num_output_tokens: int
    error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def grpc_stream(live: Live, model: str, payload: dict, timeout: float = 120) -> StreamResult:
    """One streamed request over gRPC `async_stream_infer`; collects every response."""
    import queue

    import tritonclient.grpc as grpcclient

    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(live.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        client.async_stream_infer(model, grpc_inputs(payload), request_id="t",
                                  enable_empty_final_response=True)
        res = StreamResult([], "", 0, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result, error = q.get(timeout=timeout)
            if error is not None:
                res.error = str(error)
                return res
            resp = result.get_response()
            if result.as_numpy("text_output") is not None:
                res.chunks.append(result.as_numpy("text_output").reshape(-1)[0].decode())
                res.finish_reason = result.as_numpy("finish_reason").reshape(-1)[0].decode()
                res.num_input_tokens = int(result.as_numpy("num_input_tokens").reshape(-1)[0])
                res.num_output_tokens = int(result.as_numpy("num_output_tokens").reshape(-1)[0])
            if resp.parameters["triton_final_response"].bool_param:
                return res
        raise TimeoutError("stream did not finish")
    finally:
        client.stop_stream()
        client.close()


def sse_stream(live: Live, model: str, payload: dict, timeout: float = 120) -> StreamResult:
    """One streamed request over HTTP `generate_stream` (Server-Sent Events)."""
    res = StreamResult([], "", 0, 0)
    with httpx.stream("POST", f"{live.http_url}/v2/models/{model}/generate_stream",
                      json=payload, timeout=timeout) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                res.error = event["error"]
                break
            res.chunks.append(event["text_output"])
            res.finish_reason = event["finish_reason"]
            res.num_input_tokens = event["num_input_tokens"]
            res.num_output_tokens = event["num_output_tokens"]
    return res


def http_generate(live: Live, model: str, payload: dict) -> httpx.Response:
    return httpx.post(f"{live.http_url}/v2/models/{model}/generate", json=payload, timeout=120)


@contextlib.contextmanager
def run_gateway(triton_grpc_url: str, api_keys: Sequence[str] = ()) -> Iterator[str]:
    """The OpenAI gateway in a thread on a free port; yields its `/v1` base URL."""
    import uvicorn

    from tritonkit.clients.gateway_app import create_app
    from tritonkit.serve import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(triton_grpc_url, api_keys=api_keys),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "gateway did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)

