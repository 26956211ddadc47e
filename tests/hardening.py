"""Helpers for the hardening tests (soak, shutdown, faults): own servers, stream outcomes, RSS.

Each hardening module starts its OWN tritonserver (these tests kill or drain servers; the shared
`live` server must not be disturbed). Streams are classified from what the client actually saw:

- ``finished``: a final response carrying a non-empty ``finish_reason``;
- ``error``: an explicit error (gRPC error status / in-band SSE ``error`` event / HTTP != 200);
- ``cut``: the stream ended with neither (a silent cut: always a failure).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.conftest import (
    Live,
    grpc_inputs,
    live_deployments,
    live_server,
    messages,
    run_gateway,
    watch_server_log,
)
from tritonkit.deployment import Deployment, parse_deployment
from tritonkit.serve import Ports, TritonServer

MODEL = "athene-70b"


def deployment(name: str = MODEL, token_delay_ms: float = 0.0, max_batch: int = 16) -> Deployment:
    """A small athene-70b deployment for one test module's own server."""
    return parse_deployment(
        {
            "model": MODEL,
            "name": name,
            "limits": {"max_input_len": 1024, "max_seq_len": 2048, "default_max_tokens": 64,
                       "max_batch_size": max_batch},
            "reference": {"token_delay_ms": token_delay_ms, "max_batch_size": max_batch},
        },
        source=f"hardening:{name}",
    )


@contextmanager
def own_server(tmp: Path, deps: list[Deployment], exit_timeout_s: int = 30,
               ) -> Iterator[TritonServer]:
    """A tritonserver of our own on free ports; stopped (or already dead) at the end."""
    server = TritonServer(deps, Ports.free(), repo_dir=tmp / "repo", log_path=tmp / "triton.log",
                          exit_timeout_s=exit_timeout_s)
    watch_server_log(tmp / "triton.log")
    server.start()
    try:
        server.wait_ready(timeout_s=300)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", name="live")
def module_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A module's own server (not the session's), for modules that import it: hostile traffic
    must not be able to leave a wedged engine behind for the tests that come after it."""
    with live_server(tmp_path_factory.mktemp("triton-hardening"),
                     live_deployments("athene-70b", "athene-70b-slow")) as server:
        yield server


@pytest.fixture(scope="module", name="gateway")
def module_gateway(live: Live) -> Iterator[str]:
    """The gateway in a thread on a free port, in front of the module's `live`."""
    with run_gateway(live.grpc_url) as url:
        yield url


def ready(http: str) -> bool:
    try:
        return httpx.get(f"{http}/v2/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(pred, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        assert proc.poll() is None, f"serve exited while waiting for {what}:\n{logs(log)}"
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}:\n{logs(log)}")


def triton_log(serve_log: Path) -> Path:
    """The tritonserver log of a `serve_process` (`--repo X` writes X.log)."""
    return serve_log.with_name("repo.log")


def logs(serve_log: Path, chars: int = 3000) -> str:
    """The tail of `serve`'s output and of the tritonserver log beside it."""
    parts = [f"--- {p.name}:\n{p.read_text(errors='replace')[-chars:]}"
             for p in (serve_log, triton_log(serve_log)) if p.exists()]
    return "\n".join(parts)


@dataclass
class ServeProcess:
    """`tritonkit serve` running in a subprocess (its output in `log`)."""

    proc: subprocess.Popen
    ports: Ports
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"


@contextmanager
def serve_process(tmp: Path, dep: Deployment, exit_timeout_s: int) -> Iterator[ServeProcess]:
    """`tritonkit serve -d dep.yaml` on free ports, repository in `tmp/repo`, ready; killed at
    the end if the test left it running."""
    (tmp / "dep.yaml").write_text(
        yaml.safe_dump(dep.model_dump(mode="json", exclude_unset=True)))
    ports = Ports.free()
    log = tmp / "serve.log"
    watch_server_log(triton_log(log))
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tritonkit.cli", "serve", "-d", str(tmp / "dep.yaml"),
             "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
             "--metrics-port", str(ports.metrics), "--repo", str(tmp / "repo"),
             "--exit-timeout", str(exit_timeout_s)],
            stdout=fh, stderr=subprocess.STDOUT)
    served = ServeProcess(proc, ports, log)
    try:
        wait_for(lambda: ready(served.http), 300, "ready", proc, log)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def http_url(server: TritonServer) -> str:
    return f"http://127.0.0.1:{server.ports.http}"


def grpc_url(server: TritonServer) -> str:
    return f"127.0.0.1:{server.ports.grpc}"


def model_ready(server: TritonServer, model: str) -> bool:
    try:
        return httpx.get(f"{http_url(server)}/v2/models/{model}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def chat_payload(max_tokens: int, text: str = "Tell me a long story about the sea.") -> dict:
    return {"messages": messages(("user", text)), "max_tokens": max_tokens,
            "min_tokens": max_tokens, "stream": True}


# ---- stream outcomes --------------------------------------------------------------------------
@dataclass
class Outcome:
    protocol: str
    kind: str = "cut"  # finished | error | cut
    finish_reason: str = ""
    error: str = ""
    chunks: int = 0
    tokens: int = 0
    started: threading.Event = field(default_factory=threading.Event)

    def __str__(self) -> str:
        return (f"{self.protocol}:{self.kind}(reason={self.finish_reason!r}, chunks={self.chunks}, "
                f"error={self.error[:120]!r})")


def grpc_stream_outcome(url: str, model: str, payload: dict, out: Outcome,
                        timeout: float = 120) -> Outcome:
    """One gRPC stream; `out.kind` tells how it ended (see the module docstring)."""
    import tritonclient.grpc as grpcclient

    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    try:
        client.start_stream(callback=lambda result, error: q.put((result, error)))
        client.async_stream_infer(model, grpc_inputs(payload), enable_empty_final_response=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result, error = q.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if error is not None:
                out.kind, out.error = "error", str(error)
                return out
            text = result.as_numpy("text_output")
            if text is not None:
                out.chunks += 1
                out.started.set()
                out.finish_reason = result.as_numpy("finish_reason").reshape(-1)[0].decode()
                out.tokens = int(result.as_numpy("num_output_tokens").reshape(-1)[0])
            if result.get_response().parameters["triton_final_response"].bool_param:
                out.kind = "finished" if out.finish_reason else "cut"
                return out
        out.kind, out.error = "cut", "no final response before the deadline"
        return out
    except Exception as exc:  # raised by the client library: still explicit
        out.kind, out.error = "error", f"{type(exc).__name__}: {exc}"
        return out
    finally:
        try:
            # cancel only what is unfinished: see docs/reliability.md, "cancel after the final"
            client.stop_stream(cancel_requests=out.kind != "finished")
            client.close()
        except Exception:
            pass


def sse_stream_outcome(url: str, model: str, payload: dict, out: Outcome,
                       timeout: float = 120) -> Outcome:
    """One HTTP generate_stream (SSE); a body that ends without a final event or error is a cut."""
    try:
        with httpx.stream("POST", f"{url}/v2/models/{model}/generate_stream", json=payload,
                          timeout=timeout) as r:
            if r.status_code != 200:
                out.kind, out.error = "error", f"HTTP {r.status_code}: {r.read()[:200]!r}"
                return out
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    out.kind, out.error = "error", str(event["error"])
                    return out
                out.chunks += 1
                out.started.set()
                out.finish_reason = event.get("finish_reason", "")
                out.tokens = int(event.get("num_output_tokens", 0))
                if out.finish_reason:
                    out.kind = "finished"
                    return out
        out.kind, out.error = "cut", "SSE body ended without a final event or an error"
    except httpx.TransportError as exc:
        out.kind, out.error = "cut", f"transport: {type(exc).__name__}: {exc}"
    return out


def start_streams(url_http: str, url_grpc: str, model: str, n: int, payload: dict,
                  timeout: float = 120) -> tuple[list[Outcome], list[threading.Thread]]:
    """n streams on threads, alternating gRPC and SSE."""
    outs: list[Outcome] = []
    threads: list[threading.Thread] = []
    for i in range(n):
        if i % 2 == 0:
            o = Outcome("grpc")
            t = threading.Thread(target=grpc_stream_outcome,
                                 args=(url_grpc, model, payload, o, timeout), daemon=True)
        else:
            o = Outcome("sse")
            t = threading.Thread(target=sse_stream_outcome,
                                 args=(url_http, model, payload, o, timeout), daemon=True)
        outs.append(o)
        threads.append(t)
        t.start()
    return outs, threads


def wait_started(outs: list[Outcome], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    for o in outs:
        o.started.wait(max(0.0, deadline - time.monotonic()))
    return sum(o.started.is_set() for o in outs)


# ---- server processes -------------------------------------------------------------------------
def server_tree(pid: int) -> list[psutil.Process]:
    """tritonserver and its triton_python_backend_stub children."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss(pid: int) -> int:
    total = 0
    for p in server_tree(pid):
        with suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def find_stub(pid: int, model_folder: str) -> psutil.Process:
    """The Python-backend stub serving `<repo>/<model_folder>/1/model.py` under server `pid`."""
    for p in server_tree(pid)[1:]:
        try:
            cmd = p.cmdline()
        except psutil.NoSuchProcess:
            continue
        if any(a.endswith(f"/{model_folder}/1/model.py") for a in cmd):
            return p
    raise LookupError(f"no triton_python_backend_stub for {model_folder} under pid {pid}")
