"""gRPC transports over tritonclient: sync (`tritonclient.grpc`) and asyncio (`tritonclient.grpc.aio`).

Every generation is its own `ModelStreamInfer` call on the client's one channel (HTTP/2 streams
multiplexed on one connection), so many run at once and cancelling one call cancels exactly that
request on the server. Non-streaming requests use the same call with `stream=false`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient

from tritonkit.clients._base import Endpoint, Event, decode_infer_result, to_numpy
from tritonkit.clients._config import Timeout
from tritonkit.clients._exceptions import _from_message, map_error

__all__ = ["AsyncGrpcTransport", "GrpcTransport"]

_END = object()


def _infer_inputs(values: Mapping[str, Any]) -> list[grpcclient.InferInput]:
    out = []
    for name, value in values.items():
        arr, wire = to_numpy(name, value)
        t = grpcclient.InferInput(name, list(arr.shape), wire)
        t.set_data_from_numpy(arr)
        out.append(t)
    return out


def _decode(response: Any) -> tuple[Event | None, bool]:
    """A ModelStreamInferResponse -> (event or None, is the final response)."""
    if response.error_message:
        raise _from_message(response.error_message)
    infer = response.infer_response
    final = infer.parameters["triton_final_response"].bool_param
    return decode_infer_result(grpcclient.InferResult(infer)), final


def _client_kwargs(ep: Endpoint) -> dict[str, Any]:
    kw: dict[str, Any] = {"url": ep.host_port, "ssl": ep.ssl}
    if ep.root_certificates:
        kw["root_certificates"] = ep.root_certificates
    return kw


class _Pump:
    """Reads a blocking iterator on a thread so the consumer can wait with a timeout."""

    def __init__(self, source: Iterator[Event], cancel: Any) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self._cancel = cancel
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _run(self, source: Iterator[Event]) -> None:
        try:
            for event in source:
                self._q.put(event)
            self._q.put(_END)
        except BaseException as exc:  # delivered to the consumer, mapped there
            self._q.put(exc)

    def next(self, wait: float | None) -> Event | None:
        """The next event, None at the end; raises queue.Empty after `wait` seconds."""
        item = self._q.get(timeout=wait)
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise map_error(item) from (None if item is map_error(item) else item)
        return item

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._cancel()

    def finish(self, wait: float) -> None:
        """After the final response: let the reader reach the call's end instead of cancelling
        it (docs/reliability.md, "Cancel after the final"); cancel only if it takes > `wait` s."""
        self._thread.join(wait)
        if self._thread.is_alive():
            self.cancel()


class GrpcTransport:
    """Blocking gRPC: health and models via tritonclient, generations via the stream stub."""

    def __init__(self, ep: Endpoint, headers: Mapping[str, str]) -> None:
        self._client = grpcclient.InferenceServerClient(**_client_kwargs(ep))
        self._headers = {k.lower(): v for k, v in headers.items()}

    def health(self, timeout: Timeout) -> bool:
        try:
            return bool(self._client.is_server_ready(headers=self._headers,
                                                     client_timeout=timeout.connect))
        except Exception as exc:
            raise map_error(exc) from exc

    def index(self, timeout: Timeout) -> list[dict[str, Any]]:
        try:
            idx = self._client.get_model_repository_index(
                headers=self._headers, as_json=True, client_timeout=timeout.connect)
            return list(idx.get("models", []))
        except Exception as exc:
            raise map_error(exc) from exc

    def config(self, name: str, timeout: Timeout) -> dict[str, Any]:
        try:
            return self._client.get_model_config(
                name, headers=self._headers, as_json=True, client_timeout=timeout.connect
            )["config"]
        except Exception as exc:
            raise map_error(exc) from exc

    def open(self, model: str, values: Mapping[str, Any], request_id: str,
             timeout: Timeout) -> _Pump:
        from tritonclient.grpc._utils import _get_inference_request

        request = _get_inference_request(
            model_name=model, inputs=_infer_inputs(values), model_version="",
            request_id=request_id, outputs=None, sequence_id=0, sequence_start=False,
            sequence_end=False, priority=0, timeout=None, parameters=None,
        )
        call = self._client._client_stub.ModelStreamInfer(
            iter([request]), metadata=tuple(self._headers.items()), timeout=timeout.total
        )

        def events() -> Iterator[Event]:
            final = False
            for response in call:
                if final:  # nothing follows the final response but the RPC's end
                    continue
                event, final = _decode(response)
                if event is not None:
                    yield event
            # Read to the end of the RPC (the server ends it right after the final response)
            # rather than dropping the call: a call dropped before its status arrives is
            # cancelled, and a cancel that races the final response can leave the model
            # unable to unload in Triton 2.51 (docs/reliability.md, "Cancel after the final").

        return _Pump(events(), call.cancel)

    def close(self) -> None:
        self._client.close()


class _AsyncCall:
    def __init__(self, responses: Any) -> None:
        self._responses = responses
        self._it = responses.__aiter__()
        self._finished = False

    async def next(self) -> Event | None:
        while not self._finished:
            try:
                result, error = await self._it.__anext__()
            except StopAsyncIteration:
                return None
            except Exception as exc:
                raise map_error(exc) from exc
            if error is not None:
                raise map_error(error) from None
            response = result.get_response()
            self._finished = response.parameters["triton_final_response"].bool_param
            event = decode_infer_result(result)
            if event is not None:
                return event
        return None

    async def cancel(self) -> None:
        self._responses.cancel()

    async def drain(self) -> None:
        """Read a finished call to its end (the server closes it right after the final)."""
        with contextlib.suppress(StopAsyncIteration):
            while True:
                await self._it.__anext__()


class AsyncGrpcTransport:
    """asyncio gRPC over `tritonclient.grpc.aio`: one channel, one call per generation."""

    def __init__(self, ep: Endpoint, headers: Mapping[str, str]) -> None:
        self._client = aiogrpcclient.InferenceServerClient(**_client_kwargs(ep))
        self._headers = {k.lower(): v for k, v in headers.items()}

    async def health(self, timeout: Timeout) -> bool:
        try:
            return bool(await self._client.is_server_ready(headers=self._headers,
                                                           client_timeout=timeout.connect))
        except Exception as exc:
            raise map_error(exc) from exc

    async def index(self, timeout: Timeout) -> list[dict[str, Any]]:
        try:
            idx = await self._client.get_model_repository_index(
                headers=self._headers, as_json=True, client_timeout=timeout.connect)
            return list(idx.get("models", []))
        except Exception as exc:
            raise map_error(exc) from exc

    async def config(self, name: str, timeout: Timeout) -> dict[str, Any]:
        try:
            cfg = await self._client.get_model_config(
                name, headers=self._headers, as_json=True, client_timeout=timeout.connect)
            return cfg["config"]
        except Exception as exc:
            raise map_error(exc) from exc

    async def open(self, model: str, values: Mapping[str, Any], request_id: str,
                   timeout: Timeout) -> _AsyncCall:
        inputs = _infer_inputs(values)

        async def one() -> AsyncIterator[dict[str, Any]]:
            yield {"model_name": model, "inputs": inputs, "request_id": request_id,
                   "parameters": None}

        try:
            responses = self._client.stream_infer(one(), stream_timeout=timeout.total,
                                                  headers=self._headers)
        except Exception as exc:
            raise map_error(exc) from exc
        return _AsyncCall(responses)

    async def close(self) -> None:
        await self._client.close()
