"""HTTP transports: health and models via tritonclient.http (sync and aio), generations via httpx.

tritonclient's HTTP client has no generate extension and no streaming, so generations go to
Triton's `/v2/models/<m>/generate_stream` as Server-Sent Events, always streamed (see `_body`).
Closing the response closes the connection, which cancels the request on the server.
"""

from __future__ import annotations

import json
import ssl as _ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient

from tritonkit.clients._base import Endpoint, Event, decode_json_event, to_json
from tritonkit.clients._config import Timeout
from tritonkit.clients._exceptions import (
    TimeoutError,
    _from_message,
    map_error,
    map_http_error,
)
from tritonkit.clients._grpc import _Pump

__all__ = ["AsyncHttpTransport", "HttpTransport"]


def _httpx_timeout(t: Timeout) -> httpx.Timeout:
    """Triton sends the response headers with the first event: until then, `first_token`."""
    first = min((v for v in (t.first_token, t.total) if v is not None), default=None)
    return httpx.Timeout(connect=t.connect, read=first, write=t.connect, pool=t.connect)


def _after_headers(request: httpx.Request, t: Timeout) -> None:
    """Relax the read timeout once streaming began (the stream reader enforces the exact
    between-token and total deadlines; httpcore reads this dict on every read)."""
    reads = [v for v in (t.between_tokens, t.total) if v is not None]
    request.extensions["timeout"]["read"] = max(reads) + 1 if reads else None


def _first_token_timeout(exc: httpx.ReadTimeout, t: Timeout) -> TimeoutError:
    return TimeoutError(f"no response within {t.first_token} s (first_token timeout): {exc}",
                        phase="first_token")


def _verify(ep: Endpoint) -> bool | _ssl.SSLContext:
    if ep.root_certificates:
        return _ssl.create_default_context(cafile=ep.root_certificates)
    return True


def _triton_kwargs(ep: Endpoint) -> dict[str, Any]:
    kw: dict[str, Any] = {"url": ep.host_port, "ssl": ep.ssl}
    if ep.ssl and ep.root_certificates:
        kw["ssl_context_factory"] = lambda: _ssl.create_default_context(
            cafile=ep.root_certificates)
    return kw


def _body(request_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Always ask Triton to stream: over HTTP, a request that sends nothing until it is done is
    not cancelled when the connection closes (the engine would run on). The deltas concatenate
    to the non-streamed text, so non-streaming calls lose nothing."""
    return {"id": request_id, **to_json(values), "stream": True}


def _events(lines: Iterator[str]) -> Iterator[Event]:
    for line in lines:
        if line.startswith("data:"):
            yield _parse(line)


def _parse(line: str) -> Event:
    obj = json.loads(line[5:].strip())
    if "error" in obj:
        raise _from_message(str(obj["error"]))
    return decode_json_event(obj)


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    for candidate in (text, text.removeprefix("data:").strip()):
        try:
            return str(json.loads(candidate)["error"])
        except (ValueError, KeyError, TypeError):
            continue
    return text or "no error message"


class HttpTransport:
    """Blocking HTTP."""

    def __init__(self, ep: Endpoint, headers: Mapping[str, str]) -> None:
        self._ep = ep
        self._headers = dict(headers)
        self._triton = httpclient.InferenceServerClient(**_triton_kwargs(ep))
        self._http = httpx.Client(base_url=ep.http_base, headers=self._headers,
                                  verify=_verify(ep), timeout=None)

    def health(self, timeout: Timeout) -> bool:
        try:
            return bool(self._triton.is_server_ready(headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    def index(self, timeout: Timeout) -> list[dict[str, Any]]:
        try:
            return list(self._triton.get_model_repository_index(headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    def config(self, name: str, timeout: Timeout) -> dict[str, Any]:
        try:
            return dict(self._triton.get_model_config(name, headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    def open(self, model: str, values: Mapping[str, Any], request_id: str,
             timeout: Timeout) -> _Pump:
        body = _body(request_id, values)
        try:
            request = self._http.build_request(
                "POST", f"/v2/models/{model}/generate_stream", json=body,
                timeout=_httpx_timeout(timeout))
            response = self._http.send(request, stream=True)
        except httpx.ReadTimeout as exc:
            raise _first_token_timeout(exc, timeout) from None
        except Exception as exc:
            raise map_error(exc) from exc
        if response.status_code != 200:
            message = _error_text(response.read())
            response.close()
            raise map_http_error(response.status_code, message)
        _after_headers(request, timeout)

        def events() -> Iterator[Event]:
            try:
                yield from _events(response.iter_lines())
            finally:
                response.close()

        return _Pump(events(), response.close)

    def close(self) -> None:
        self._http.close()
        self._triton.close()


class _AsyncSSE:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self) -> Event | None:
        try:
            async for line in self._lines:
                if line.startswith("data:"):
                    return _parse(line)
        except Exception as exc:
            raise map_error(exc) from exc
        return None

    async def cancel(self) -> None:
        await self._response.aclose()

    async def drain(self) -> None:
        """Read a finished body to its end, then close it."""
        async for _ in self._lines:
            pass
        await self._response.aclose()


class AsyncHttpTransport:
    """asyncio HTTP: tritonclient.http.aio (aiohttp) for control, httpx.AsyncClient for SSE."""

    def __init__(self, ep: Endpoint, headers: Mapping[str, str]) -> None:
        self._ep = ep
        self._headers = dict(headers)
        self._triton: Any = None  # created lazily: aiohttp wants a running loop
        self._http = httpx.AsyncClient(base_url=ep.http_base, headers=self._headers,
                                       verify=_verify(ep), timeout=None)

    def _control(self) -> Any:
        if self._triton is None:
            self._triton = aiohttpclient.InferenceServerClient(**_triton_kwargs(self._ep))
        return self._triton

    async def health(self, timeout: Timeout) -> bool:
        try:
            return bool(await self._control().is_server_ready(headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    async def index(self, timeout: Timeout) -> list[dict[str, Any]]:
        try:
            return list(await self._control().get_model_repository_index(headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    async def config(self, name: str, timeout: Timeout) -> dict[str, Any]:
        try:
            return dict(await self._control().get_model_config(name, headers=self._headers))
        except Exception as exc:
            raise map_error(exc) from exc

    async def open(self, model: str, values: Mapping[str, Any], request_id: str,
                   timeout: Timeout) -> _AsyncSSE:
        body = _body(request_id, values)
        try:
            request = self._http.build_request(
                "POST", f"/v2/models/{model}/generate_stream", json=body,
                timeout=_httpx_timeout(timeout))
            response = await self._http.send(request, stream=True)
        except httpx.ReadTimeout as exc:
            raise _first_token_timeout(exc, timeout) from None
        except Exception as exc:
            raise map_error(exc) from exc
        if response.status_code != 200:
            message = _error_text(await response.aread())
            await response.aclose()
            raise map_http_error(response.status_code, message)
        _after_headers(request, timeout)
        return _AsyncSSE(response)

    async def close(self) -> None:
        await self._http.aclose()
        if self._triton is not None:
            await self._triton.close()
