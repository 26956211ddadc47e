"""gRPC streaming user: tritonclient `start_stream` + `async_stream_infer` under gevent.

`tritonkit.loadtest.gevent_setup` must have run before tritonclient was imported (the locustfile
does it first). Each user keeps one client and one open bidirectional stream; responses are
timestamped in the stream callback, the moment tritonclient hands them over.
"""

from __future__ import annotations

import json
import time
import uuid

import gevent.queue
import numpy as np

# isort: off
import tritonkit.loadtest.gevent_setup  # noqa: F401  (must precede tritonclient)
import tritonclient.grpc as grpcclient
# isort: on
from tritonkit.loadtest.metrics import StreamTimer
from tritonkit.loadtest.users import LLMUser, StreamFailure
from tritonkit.loadtest.workloads import ChatRequest


def _input(name: str, arr: np.ndarray, dtype: str) -> grpcclient.InferInput:
    t = grpcclient.InferInput(name, list(arr.shape), dtype)
    t.set_data_from_numpy(arr)
    return t


def triton_inputs(req: ChatRequest) -> list[grpcclient.InferInput]:
    msgs = np.array([[json.dumps(req.messages).encode()]], dtype=object)
    out = [
        _input("messages", msgs, "BYTES"),
        _input("max_tokens", np.array([[req.max_tokens]], np.int32), "INT32"),
        _input("stream", np.array([[True]], np.bool_), "BOOL"),
    ]
    if req.min_tokens:
        out.append(_input("min_tokens", np.array([[req.min_tokens]], np.int32), "INT32"))
    return out


def _scalar(result: grpcclient.InferResult, name: str) -> object | None:
    arr = result.as_numpy(name)
    if arr is None or arr.size == 0:
        return None
    v = arr.reshape(-1)[0]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class TritonGrpcUser(LLMUser):
    """Streams the served model over gRPC; `host` is `HOST:PORT` (a `grpc://` prefix is allowed)."""

    abstract = True
    protocol = "grpc"

    def on_start(self) -> None:
        super().on_start()
        self._url = self.host.removeprefix("grpc://")
        self._client: grpcclient.InferenceServerClient | None = None
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._in_flight = False  # a request sent on the stream and not yet finished

    def _open(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            q = self._queue = gevent.queue.Queue()
            self._client = grpcclient.InferenceServerClient(self._url)
            self._client.start_stream(
                callback=lambda result, error: q.put((result, error, time.perf_counter()))
            )
        return self._client

    def _reset(self, cancel: bool) -> None:
        if self._client is not None:
            try:
                self._client.stop_stream(cancel_requests=cancel)
                self._client.close()
            except Exception:
                pass
            self._client = None
        self._in_flight = False

    def on_stop(self) -> None:
        # cancel only a running request: see docs/reliability.md, "Cancel after the final"
        self._reset(cancel=self._in_flight)

    def stream(self, req: ChatRequest, timer: StreamTimer) -> str:
        client = self._open()
        rid = uuid.uuid4().hex
        timer.t0 = time.perf_counter()
        client.async_stream_infer(self.model, triton_inputs(req), request_id=rid,
                                  enable_empty_final_response=True)
        self._in_flight = True
        parts: list[str] = []
        deadline = timer.t0 + self.campaign.options.timeout_s
        s = timer.sample
        while True:
            try:
                result, error, at = self._queue.get(timeout=max(deadline - time.perf_counter(), 0))
            except gevent.queue.Empty:
                self._reset(cancel=True)
                raise StreamFailure(f"timeout after {self.campaign.options.timeout_s:g}s") from None
            if error is not None:
                self._reset(cancel=True)
                raise StreamFailure(f"grpc: {error}")
            text = _scalar(result, "text_output")
            if text is not None:
                parts.append(str(text))
                timer.chunk(str(text), at)
                s.finish_reason = str(_scalar(result, "finish_reason") or "") or s.finish_reason
                n_in, n_out = _scalar(result, "num_input_tokens"), _scalar(result, "num_output_tokens")
                s.input_tokens = int(n_in) if n_in is not None else s.input_tokens
                s.output_tokens = int(n_out) if n_out is not None else s.output_tokens
            if result.get_response().parameters["triton_final_response"].bool_param:
                self._in_flight = False
                timer.finish(at)
                break
        if s.finish_reason == "cancelled":
            raise StreamFailure("server cancelled the request")
        return "".join(parts)
