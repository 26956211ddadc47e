"""Results the SDK returns: a completed generation, stream chunks, usage, model info."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chunk", "Completion", "ModelInfo", "Usage"]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """A finished generation: its text, why it stopped (stop|length|cancelled) and token counts."""

    text: str
    finish_reason: str
    usage: Usage
    model: str
    elapsed: float  # seconds from sending the request to the final response


@dataclass(frozen=True)
class Chunk:
    """One streamed response: a text delta (may be empty on the final chunk).

    `time` is seconds since the request was sent; the final chunk carries `finish_reason` and
    `usage`, earlier ones carry None.
    """

    delta: str
    time: float
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None


@dataclass(frozen=True)
class ModelInfo:
    """A served chat model (the decoupled pipeline), with limits from its deployment."""

    name: str
    version: str = ""
    state: str = ""
    catalog_model: str | None = None
    max_seq_len: int | None = None
    max_input_len: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
