"""What both clients share: endpoint parsing, request building, response decoding, model filtering.

Tensor names and dtypes come from the served model's contract (`tritonkit.contract`), written
here once for gRPC, HTTP, sync and asyncio.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonkit.clients._config import DEFAULT_RETRY, DEFAULT_TIMEOUT, Retry, Timeout
from tritonkit.clients._exceptions import (
    InvalidRequestError,
    ServerError,
    TritonKitError,
    UnavailableError,
)
from tritonkit.clients._types import Chunk, Completion, ModelInfo, Usage
from tritonkit.contract import pipeline_inputs
from tritonkit.security import admin_headers

__all__ = ["BaseClient", "Endpoint", "Event", "StreamState"]

#: Contract dtype -> (numpy dtype, Triton wire dtype).
_DTYPES: dict[str, tuple[Any, str]] = {
    "TYPE_STRING": (object, "BYTES"),
    "TYPE_INT32": (np.int32, "INT32"),
    "TYPE_UINT64": (np.uint64, "UINT64"),
    "TYPE_FP32": (np.float32, "FP32"),
    "TYPE_BOOL": (np.bool_, "BOOL"),
}
_INPUTS = {t.name: t for t in pipeline_inputs()}
#: Composing models of a deployment (model_repository/render.py); never offered as chat models.
STEP_SUFFIXES = ("-unary", "-ensemble", "-preprocessing", "-tensorrt_llm", "-postprocessing")

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    """One decoded response of the served model."""

    text: str
    finish_reason: str  # "" until the final response
    num_input_tokens: int
    num_output_tokens: int


@dataclass(frozen=True)
class Endpoint:
    """Where the server listens, parsed once from the user's URL."""

    protocol: str  # "grpc" | "http"
    host_port: str  # host:port, no scheme
    ssl: bool
    root_certificates: str | None = None

    @classmethod
    def parse(cls, url: str, protocol: str, ssl: bool | str | None) -> Endpoint:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "", url
        if scheme not in ("", "http", "https", "grpc", "grpcs"):
            raise ValueError(f"url scheme {scheme!r} is not one of http, https, grpc, grpcs")
        rest = rest.rstrip("/")
        secure = scheme in ("https", "grpcs") or bool(ssl)
        if ":" not in rest:
            default = {"grpc": 8001, "http": 8000}[protocol]
            rest = f"{rest}:{443 if secure and protocol == 'http' else default}"
        certs = ssl if isinstance(ssl, str) else None
        return cls(protocol, rest, secure, certs)

    @property
    def http_base(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host_port}"


def build_inputs(
    *,
    prompt: str | None = None,
    messages: Sequence[Message] | None = None,
    stream: bool,
    max_tokens: int | None = None,
    stop: str | Sequence[str] | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The served model's inputs as python values (None = not sent, so the server's default)."""
    values: dict[str, Any] = {}
    if messages is not None:
        values["messages"] = json.dumps(list(messages), ensure_ascii=False)
    elif prompt is not None:
        values["text_input"] = prompt
    else:
        raise InvalidRequestError("text_input: a request needs a prompt or messages",
                                  field="text_input")
    values["stream"] = stream
    if isinstance(stop, str):
        stop = [stop]
    optional = {"max_tokens": max_tokens, "stop_words": list(stop) if stop else None,
                "temperature": temperature, "top_p": top_p, "top_k": top_k, "seed": seed}
    values.update({k: v for k, v in optional.items() if v is not None})
    for name, value in (extra or {}).items():
        if name not in _INPUTS:
            raise InvalidRequestError(f"{name}: not an input of the served model", field=name)
        values[name] = value
    return values


def to_numpy(name: str, value: Any) -> tuple[np.ndarray, str]:
    """One input as a [1, ...] array of the contract's dtype, and its Triton wire dtype."""
    spec = _INPUTS[name]
    np_dtype, wire = _DTYPES[spec.data_type]
    if spec.data_type == "TYPE_STRING":
        items = value if isinstance(value, (list, tuple)) else [value]
        arr = np.array([[str(v).encode("utf-8") for v in items]], dtype=object)
    else:
        arr = np.array([[value]], dtype=np_dtype)
    return arr, wire


def to_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """The body of Triton's HTTP generate endpoints (keys are input names)."""
    return dict(values)


def decode_json_event(obj: Mapping[str, Any]) -> Event:
    try:
        return Event(str(obj["text_output"]), str(obj.get("finish_reason", "")),
                     int(obj.get("num_input_tokens", 0)), int(obj.get("num_output_tokens", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(f"unexpected response from the server: {obj!r}") from exc


def decode_infer_result(result: Any) -> Event | None:
    """A tritonclient InferResult -> Event (None for an empty final response)."""
    text = result.as_numpy("text_output")
    if text is None:
        return None

    def one(name: str) -> Any:
        arr = result.as_numpy(name)
        return None if arr is None else arr.reshape(-1)[0]

    raw = text.reshape(-1)[0]
    reason = one("finish_reason")
    return Event(
        raw.decode("utf-8") if isinstance(raw, bytes) else str(raw),
        reason.decode() if isinstance(reason, bytes) else str(reason or ""),
        int(one("num_input_tokens") or 0),
        int(one("num_output_tokens") or 0),
    )


def served_models(index: Sequence[Mapping[str, Any]],
                  configs: Mapping[str, Mapping[str, Any]]) -> list[ModelInfo]:
    """Keep the served pipelines: decoupled models carrying a tritonkit deployment, READY."""
    out = []
    for entry in index:
        name = str(entry.get("name", ""))
        cfg = configs.get(name)
        if cfg is None or name.endswith(STEP_SUFFIXES):
            continue
        params = cfg.get("parameters", {})
        dep_json = params.get("tritonkit_deployment", {}).get("string_value")
        decoupled = cfg.get("model_transaction_policy", {}).get("decoupled", False)
        if not dep_json or not decoupled:
            continue
        dep = json.loads(dep_json)
        limits = dep.get("limits", {})
        out.append(ModelInfo(name=name, version=str(entry.get("version", "")),
                             state=str(entry.get("state", "")), catalog_model=dep.get("model"),
                             max_seq_len=limits.get("max_seq_len"),
                             max_input_len=limits.get("max_input_len"), extra={"deployment": dep}))
    return sorted(out, key=lambda m: m.name)


def ready_names(index: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(e["name"]) for e in index
            if e.get("state", "READY") == "READY" and not str(e["name"]).endswith(STEP_SUFFIXES)]


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, UnavailableError)


@dataclass
class StreamState:
    """Turns events into chunks: timing, accumulated text, the final reason and usage."""

    model: str
    started: float = field(default_factory=time.monotonic)
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    first_token_time: float | None = None

    def chunk(self, event: Event) -> Chunk:
        now = time.monotonic() - self.started
        if event.text:
            self.parts.append(event.text)
            if self.first_token_time is None:
                self.first_token_time = now
        if not event.finish_reason:
            return Chunk(event.text, now)
        self.finish_reason = event.finish_reason
        self.usage = Usage(event.num_input_tokens, event.num_output_tokens)
        return Chunk(event.text, now, self.finish_reason, self.usage)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def completion(self) -> Completion:
        if self.finish_reason is None or self.usage is None:
            raise ServerError("the stream ended without a final response")
        return Completion(self.text, self.finish_reason, self.usage, self.model,
                          time.monotonic() - self.started)


class BaseClient:
    """Defaults merged once; request building shared by Client and AsyncClient."""

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "grpc",
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: Retry = DEFAULT_RETRY,
        ssl: bool | str | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> None:
        self.endpoint = Endpoint.parse(url, protocol, ssl)
        self.timeout = Timeout.of(timeout)
        self.retry = retry
        # the admin key (for `models()`, which reads Triton's restricted repository index) comes
        # from $TRITONKIT_ADMIN_KEY unless the caller passes headers of their own
        self.headers = {**admin_headers(), **dict(headers or {})}
        self.model = model

    @property
    def protocol(self) -> str:
        return self.endpoint.protocol

    def _timeout(self, timeout: Timeout | float | object | None) -> Timeout:
        return self.timeout if timeout is _DEFAULT else Timeout.of(timeout)  # type: ignore[arg-type]

    @staticmethod
    def _pick_model(explicit: str | None, default: str | None, available: Sequence[str]) -> str:
        if explicit or default:
            return explicit or default  # type: ignore[return-value]
        if len(available) == 1:
            return available[0]
        raise InvalidRequestError(
            f"model: pass model=...; the server serves {', '.join(available) or 'no models'}",
            field="model",
        )


class _Default:
    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


_DEFAULT: Any = _Default()
USE_CLIENT_DEFAULT: Any = _DEFAULT


def retry_error(exc: TritonKitError, attempt: int, retry: Retry) -> float | None:
    """Seconds to wait before retrying `exc` (None: give up and raise)."""
    if not is_retryable(exc) or attempt >= retry.max_retries:
        return None
    return retry.backoff(attempt)
