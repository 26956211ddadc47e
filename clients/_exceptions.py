"""The SDK's exceptions, and the one place foreign errors become them.

    TritonKitError                  anything the SDK raises on purpose (`.message`, `.code`)
    ├── InvalidRequestError         the server refused the request (`.field` names the input)
    │   └── ModelNotFoundError      no such served model (`.field == "model"`)
    ├── UnavailableError            cannot connect, UNAVAILABLE, HTTP 429/502/503/504
    ├── TimeoutError                connect, first_token, between_tokens or total (`.phase`)
    ├── CancelledError              the request was cancelled before it finished
    ├── ServerError                 the server failed (INTERNAL, HTTP 500) or answered nonsense
    └── StreamClosedError           a closed stream was iterated again (misuse)

tritonclient's `InferenceServerException`, `grpc.RpcError`, httpx errors and Triton's JSON error
bodies are translated by :func:`map_error` only; raw foreign errors never leave the SDK. Errors
inside a stream raise the same classes as errors before it.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

__all__ = [
    "CancelledError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "ServerError",
    "StreamClosedError",
    "TimeoutError",
    "TritonKitError",
    "UnavailableError",
    "map_error",
    "map_http_error",
]


class TritonKitError(Exception):
    """Base class: `message` is the server's (or transport's) text, `code` its status if any."""

    def __init__(self, message: str, *, code: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidRequestError(TritonKitError):
    """The server refused the request; `field` names the offending input (or "request")."""

    def __init__(self, message: str, *, field: str = "request", code: str | int | None = None):
        super().__init__(message, code=code)
        self.field = field


class ModelNotFoundError(InvalidRequestError):
    def __init__(self, message: str, *, code: str | int | None = None) -> None:
        super().__init__(message, field="model", code=code)


class UnavailableError(TritonKitError):
    """The server cannot be reached or is not serving; safe to retry before the first token."""


class TimeoutError(TritonKitError, builtins.TimeoutError):
    """A deadline passed; `phase` is connect, first_token, between_tokens or total."""

    def __init__(self, message: str, *, phase: str, code: str | int | None = None) -> None:
        super().__init__(message, code=code)
        self.phase = phase


class CancelledError(TritonKitError):
    """The request was cancelled (by the server, or by this client closing the stream)."""


class ServerError(TritonKitError):
    """The server failed, or answered with something the SDK does not understand."""


class StreamClosedError(TritonKitError, RuntimeError):
    """A stream was iterated after it was closed."""


# ---- mapping: the one place foreign errors are translated ------------------------------------
_FIELD = re.compile(r"^(?:\[request id: [^\]]*\] )?([A-Za-z_][A-Za-z0-9_]*): ")
_UNKNOWN_MODEL = re.compile(r"unknown model|model '.*' is not found|is not found", re.I)
#: A known model that is loading or unloading (server starting or stopping): transient.
_NOT_LOADED = re.compile(r"has no available versions|is not ready|not healthy|^unavailable:", re.I)
_TRITON_INPUT = re.compile(r"input '([A-Za-z_][A-Za-z0-9_]*)'")


def _invalid(message: str, code: str | int | None) -> TritonKitError:
    if _NOT_LOADED.search(message):
        return UnavailableError(message, code=code)
    if _UNKNOWN_MODEL.search(message):
        return ModelNotFoundError(message, code=code)
    m = _FIELD.match(message) or _TRITON_INPUT.search(message)
    return InvalidRequestError(message, field=m.group(1) if m else "request", code=code)


def _from_message(message: str, code: str | int | None = None) -> TritonKitError:
    """An error that arrived in-band (stream error_message, SSE `{"error": ...}`). In-band errors
    carry no status code: the pipeline marks server-side failures `unavailable:` (retryable)."""
    return _invalid(message, code)


def map_http_error(status: int, message: str) -> TritonKitError:
    """A Triton HTTP error response (status + its `{"error": ...}` text)."""
    if _NOT_LOADED.search(message):
        return UnavailableError(message, code=status)
    if status == 404 or (status == 400 and _UNKNOWN_MODEL.search(message)):
        return ModelNotFoundError(message, code=status)
    if status in (429, 502, 503, 504):
        return UnavailableError(message, code=status)
    if status == 408:
        return TimeoutError(message, phase="total", code=status)
    if 400 <= status < 500:
        return _invalid(message, status)
    return ServerError(message, code=status)


def _from_grpc(exc: Any) -> TritonKitError:
    import grpc

    status = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    details = details or str(status)
    name = status.name if status is not None else None
    if status == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError(details, code=name)
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TimeoutError(details, phase="total", code=name)
    if status == grpc.StatusCode.CANCELLED:
        return CancelledError(details, code=name)
    if status == grpc.StatusCode.NOT_FOUND:
        return ModelNotFoundError(details, code=name)
    if status in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                  grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED):
        return _invalid(details, name)
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return UnavailableError(details, code=name)
    return ServerError(details, code=name)


def _from_triton(exc: Any) -> TritonKitError:
    """tritonclient's InferenceServerException (status is a gRPC code name, an HTTP status or None)."""
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    status = exc.status() if callable(getattr(exc, "status", None)) else None
    status = str(status) if status is not None else None
    if status and status.startswith("StatusCode."):
        status = status.split(".", 1)[1]
    if status == "UNAVAILABLE" or "failed to connect" in message.lower():
        return UnavailableError(message, code=status)
    if status == "DEADLINE_EXCEEDED" or "deadline exceeded" in message.lower():
        return TimeoutError(message, phase="total", code=status)
    if status == "CANCELLED":
        return CancelledError(message, code=status)
    if status and status.isdigit():
        return map_http_error(int(status), message)
    if status in (None, "INVALID_ARGUMENT", "NOT_FOUND", "400", "FAILED_PRECONDITION"):
        return _invalid(message, status)
    return ServerError(message, code=status)


def map_error(exc: BaseException) -> BaseException:
    """Translate a tritonclient, gRPC, httpx or socket error into the SDK's tree.

    SDK errors and anything that is not a transport error (e.g. asyncio's own
    CancelledError, KeyboardInterrupt) are returned unchanged.
    """
    if isinstance(exc, TritonKitError):
        return exc
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            return _from_grpc(exc)
    except ImportError:  # pragma: no cover - grpc ships with tritonclient[grpc]
        pass
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        return _from_triton(exc)
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return TimeoutError(f"connect timed out: {exc}", phase="connect")
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"timed out: {exc}", phase="between_tokens")
    if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, ConnectionError)):
        return UnavailableError(f"cannot reach the server: {exc}")
    if isinstance(exc, httpx.HTTPError):
        return UnavailableError(str(exc))
    return exc
