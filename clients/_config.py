"""Small configuration objects: timeouts and the retry policy (keyword-only, one default each)."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DEFAULT_RETRY", "DEFAULT_TIMEOUT", "Retry", "Timeout"]


@dataclass(frozen=True, kw_only=True)
class Timeout:
    """Deadlines in seconds; None means no limit.

    connect: reaching the server (TCP/TLS, or the gRPC channel becoming ready)
    first_token: from sending the request to its first response
    between_tokens: the longest gap between two responses of a stream
    total: the whole request, first byte to final response
    """

    connect: float | None = 10.0
    first_token: float | None = 60.0
    between_tokens: float | None = 60.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_token", "between_tokens", "total"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"Timeout.{name} must be > 0 seconds or None, got {v!r}")

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from a Timeout, one number (every phase) or None (no limits)."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(connect=None, first_token=None, between_tokens=None, total=None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = float(value)
            return cls(connect=v, first_token=v, between_tokens=v, total=None)
        raise TypeError(f"timeout must be a Timeout, a number of seconds or None, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class Retry:
    """Retries for connect failures and UNAVAILABLE, only before the first response arrived.

    The n-th retry waits min(max_backoff, initial_backoff * 2**n) * (1 - jitter * random()).
    """

    max_retries: int = 2
    initial_backoff: float = 0.25
    max_backoff: float = 4.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"Retry.max_retries must be >= 0, got {self.max_retries}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Retry.jitter must be within [0, 1], got {self.jitter}")

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * (2**attempt))
        return base * (1 - self.jitter * random.random())


DEFAULT_TIMEOUT = Timeout()
DEFAULT_RETRY = Retry()
