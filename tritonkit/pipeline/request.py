"""Turn the served model's input tensors into a validated generation request.

Triton itself refuses unknown inputs, wrong dtypes and missing required ones; everything it cannot
know (a negative max_tokens, invalid UTF-8, an absurd temperature, too many stop words) is refused
here with a :class:`RequestError` that names the input and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonkit.contract import UNSUPPORTED_ON_REFERENCE

__all__ = ["GenerateRequest", "RequestError", "parse_request"]


class RequestError(ValueError):
    """A request the server refuses; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class GenerateRequest:
    text_input: str | None = None
    messages: Any = None  # raw JSON text or list; validated by the chat formatter
    max_tokens: int | None = None
    stream: bool = False
    stop_words: list[str] = field(default_factory=list)
    bad_words: list[str] = field(default_factory=list)
    end_id: int | None = None
    pad_id: int | None = None
    exclude_input_in_output: bool = True
    sampling: dict[str, float | int] = field(default_factory=dict)
    passthrough: dict[str, np.ndarray] = field(default_factory=dict)


def _scalar(arr: np.ndarray, name: str) -> Any:
    flat = np.asarray(arr).reshape(-1)
    if flat.size != 1:
        raise RequestError(name, f"expected one value, got {flat.size} (shape {list(arr.shape)})")
    return flat[0]


def _text(value: Any, name: str, max_bytes: int) -> str:
    raw = value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else bytes(value)
    if len(raw) > max_bytes:
        raise RequestError(name, f"is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(name, f"is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _words(arr: np.ndarray | None, name: str, limit: int, max_bytes: int) -> list[str]:
    if arr is None:
        return []
    words = [_text(v, name, max_bytes) for v in np.asarray(arr).reshape(-1)]
    words = [w for w in words if w]
    if len(words) > limit:
        raise RequestError(name, f"{len(words)} entries; at most {limit} are allowed")
    return words


_FLOAT_RULES: dict[str, tuple[float, float, str]] = {
    "temperature": (0.0, 100.0, "0 <= temperature <= 100"),
    "top_p": (0.0, 1.0, "0 <= top_p <= 1"),
    "repetition_penalty": (1e-3, 100.0, "0 < repetition_penalty <= 100"),
    "presence_penalty": (-100.0, 100.0, "-100 <= presence_penalty <= 100"),
    "frequency_penalty": (-100.0, 100.0, "-100 <= frequency_penalty <= 100"),
    "length_penalty": (-100.0, 100.0, "-100 <= length_penalty <= 100"),
}
_INT_RULES: dict[str, tuple[int, int, str]] = {
    "top_k": (0, 1 << 20, "0 <= top_k"),
    "min_tokens": (0, 1 << 24, "min_tokens >= 0"),
    "beam_width": (1, 1, "only beam_width 1 is served"),
    "num_return_sequences": (1, 1, "only num_return_sequences 1 is served (send n requests)"),
}


def parse_request(
    inputs: Mapping[str, np.ndarray],
    *,
    max_request_bytes: int = 4 << 20,
    max_stop_words: int = 64,
    reference_engine: bool = True,
) -> GenerateRequest:
    """Validate the served model's inputs (name -> numpy array, batch dimension included)."""
    for name, arr in inputs.items():
        shape = np.asarray(arr).shape
        if shape and shape[0] != 1:
            raise RequestError(name, f"batch size {shape[0]}; send one request per prompt")
    req = GenerateRequest()
    if "text_input" in inputs:
        req.text_input = _text(
            _scalar(inputs["text_input"], "text_input"), "text_input", max_request_bytes
        )
    if "messages" in inputs:
        req.messages = _text(_scalar(inputs["messages"], "messages"), "messages", max_request_bytes)
    if req.text_input is None and req.messages is None:
        raise RequestError("text_input", "a request needs `text_input` or `messages`")
    if req.text_input and req.messages is not None:
        raise RequestError("messages", "send either `text_input` or `messages`, not both")
    if req.messages is not None:
        req.text_input = None
    if "max_tokens" in inputs:
        mt = int(_scalar(inputs["max_tokens"], "max_tokens"))
        if mt < 1:
            raise RequestError("max_tokens", f"must be >= 1, got {mt}")
        req.max_tokens = mt
    if "stream" in inputs:
        req.stream = bool(_scalar(inputs["stream"], "stream"))
    if "exclude_input_in_output" in inputs:
        req.exclude_input_in_output = bool(
            _scalar(inputs["exclude_input_in_output"], "exclude_input_in_output")
        )
    req.stop_words = _words(
        inputs.get("stop_words"), "stop_words", max_stop_words, max_request_bytes
    )
    req.bad_words = _words(inputs.get("bad_words"), "bad_words", max_stop_words, max_request_bytes)
    for name in ("end_id", "pad_id"):
        if name in inputs:
            v = int(_scalar(inputs[name], name))
            if v < 0:
                raise RequestError(name, f"must be a token id >= 0, got {v}")
            setattr(req, name, v)
    for name, (lo, hi, rule) in _FLOAT_RULES.items():
        if name in inputs:
            v = float(_scalar(inputs[name], name))
            if not math.isfinite(v) or not lo <= v <= hi:
                raise RequestError(name, f"{v!r} is out of range ({rule})")
            req.sampling[name] = v
    for name, (lo, hi, rule) in _INT_RULES.items():
        if name in inputs:
            v = int(_scalar(inputs[name], name))
            if not lo <= v <= hi:
                raise RequestError(name, f"{v} is out of range ({rule})")
            req.sampling[name] = v
    if "seed" in inputs:
        req.sampling["seed"] = int(_scalar(inputs["seed"], "seed"))
    for name in UNSUPPORTED_ON_REFERENCE:
        if name in inputs:
            arr = np.asarray(inputs[name])
            if arr.size == 0 or (arr.dtype == np.bool_ and not arr.any()):
                continue  # an explicit "off" (e.g. return_log_probs=false) asks for nothing
            if reference_engine:
                raise RequestError(name, "is not supported by the CPU reference engine")
            req.passthrough[name] = arr
    return req
