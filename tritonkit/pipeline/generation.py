"""Per-request state of the served pipeline: engine token chunks in, exact text deltas out.

Works with any engine that streams only new tokens per response (TensorRT-LLM does): stop ids end
the text (and are never shown), stop strings are withheld across chunks and cut, and the finish
reason is derived from what happened, not assumed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from tritonkit.detokenize import ByteTable, StopStringMatcher, TextStream

__all__ = ["FinishReason", "Generation"]

FinishReason = Literal["stop", "length", "cancelled"]


class Generation:
    """Feed engine tokens with :meth:`push`; call :meth:`finish` once the engine is done."""

    def __init__(
        self,
        table: ByteTable,
        *,
        stop_ids: Iterable[int],
        stop_strings: Iterable[str],
        max_tokens: int,
    ) -> None:
        self._stream = TextStream(table)
        self._matcher = StopStringMatcher(stop_strings)
        self._stop_ids = frozenset(stop_ids)
        self.max_tokens = max_tokens
        self.num_output_tokens = 0
        self.tokens: list[int] = []
        self.stopped = False  # a stop id or stop string was seen: the engine should stop
        self.finish_reason: FinishReason | None = None
        self.text = []  # released pieces (kept for non-streaming responses)

    def push(self, new_tokens: Iterable[int]) -> str:
        """Consume one engine response's new tokens; return the text safe to release now."""
        out = []
        for tok in new_tokens:
            if self.stopped:
                break
            self.num_output_tokens += 1
            if tok in self._stop_ids:
                self.stopped = True
                break
            self.tokens.append(tok)
            out.append(self._matcher.feed(self._stream.push((tok,))))
            if self._matcher.matched is not None:
                self.stopped = True
        piece = "".join(out)
        self.text.append(piece)
        return piece

    def finish(self, cancelled: bool = False) -> str:
        """The engine ended (or the client went away). Returns the last text to release."""
        tail = ""
        if not self.stopped:
            tail = self._matcher.feed(self._stream.flush())
            if self._matcher.matched is None:
                tail += self._matcher.flush()
        if cancelled and not self.stopped:
            self.finish_reason = "cancelled"
        elif self.stopped or self.num_output_tokens < self.max_tokens:
            self.finish_reason = "stop"  # stop id, stop string, or the engine's end_id
        else:
            self.finish_reason = "length"
        self.text.append(tail)
        return tail

    @property
    def full_text(self) -> str:
        return "".join(self.text)
