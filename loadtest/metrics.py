"""Per-request measurements: one `RequestSample` per streamed request, with stated formulas.

Times are taken with `time.perf_counter()` (monotonic) relative to `t0`, the instant just before
the request is handed to the client library; `start_wall` (`time.time()`) places the request on the
campaign timeline and across processes.

- TTFT  = first content chunk - t0 (first response whose text delta is non-empty)
- ITL   = every gap between consecutive content chunks (a list per request)
- E2E   = end of stream - t0 (final response / `[DONE]` / end of the SSE body)
- TPOT  = (E2E - TTFT) / (output tokens - 1), output tokens from the server's count; undefined
          (None) for requests with fewer than 2 output tokens
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


def tpot_s(e2e_s: float, ttft_s: float, output_tokens: int) -> float | None:
    """Time per output token after the first: (E2E - TTFT) / (n_out - 1); None if n_out < 2."""
    if output_tokens < 2:
        return None
    return (e2e_s - ttft_s) / (output_tokens - 1)


@dataclass
class RequestSample:
    """What one request measured. Durations in seconds; `ok` false means `error` says why."""

    protocol: str
    model: str
    start_wall: float
    ok: bool = False
    error: str | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    requested_output_tokens: int | None = None
    prompt_tokens_client: int | None = None
    finish_reason: str | None = None
    chunks: int = 0
    schedule_lag_s: float | None = None
    users: int | None = None
    worker: str = "local"
    turn: int | None = None

    @property
    def tpot_s(self) -> float | None:
        if self.e2e_s is None or self.ttft_s is None or self.output_tokens is None:
            return None
        return tpot_s(self.e2e_s, self.ttft_s, self.output_tokens)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tpot_s"] = self.tpot_s
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RequestSample:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**d)


class StreamTimer:
    """Timestamps the chunks of one stream and turns them into a `RequestSample`."""

    def __init__(self, sample: RequestSample) -> None:
        self.sample = sample
        self.t0 = time.perf_counter()
        self._last: float | None = None

    def chunk(self, text: str, at: float | None = None) -> None:
        """A response arrived; only non-empty text counts as a content chunk."""
        if not text:
            return
        now = time.perf_counter() if at is None else at
        s = self.sample
        if self._last is None:
            s.ttft_s = now - self.t0
        else:
            s.itl_s.append(now - self._last)
        self._last = now
        s.chunks += 1

    def finish(self, at: float | None = None) -> RequestSample:
        """The stream ended normally: E2E, and a failure if no content arrived."""
        now = time.perf_counter() if at is None else at
        s = self.sample
        s.e2e_s = now - self.t0
        if s.ttft_s is None:
            return self.fail("stream ended without any content chunk", at=now)
        s.ok = True
        return s

    def fail(self, reason: str, at: float | None = None) -> RequestSample:
        now = time.perf_counter() if at is None else at
        s = self.sample
        s.ok, s.error = False, reason[:500]
        if s.e2e_s is None:
            s.e2e_s = now - self.t0
        return s
