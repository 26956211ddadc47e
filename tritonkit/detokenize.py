"""Exact incremental detokenization and stop-string hold-back.

Llama-3 and Qwen2.5 use byte-level BPE: every token is a fixed byte string, and text is those bytes
decoded as UTF-8. So streaming text exactly means: keep one incremental UTF-8 decoder per request,
feed it each new token's bytes, and emit what it yields. A character split across tokens is held
until its last byte arrives; spaces are bytes like any other; the concatenated deltas equal the
non-streamed text byte for byte, and cost O(1) per token (no re-decoding of the sequence).

:class:`StopStringMatcher` withholds any tail that could still become a stop string, so stop strings
never leak, even when split across chunks.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["ByteTable", "StopStringMatcher", "TextStream"]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte <-> printable-character map used by ByteLevel BPE."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


_CHAR_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}


class ByteTable:
    """The raw bytes of every token id; special tokens map to b"" when skipped."""

    def __init__(self, pieces: list[bytes], special_ids: frozenset[int]) -> None:
        self.pieces = pieces
        self.special_ids = special_ids

    def __len__(self) -> int:
        return len(self.pieces)

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, skip_special_tokens: bool = True) -> ByteTable:
        """Build from a Hugging Face tokenizer.json whose decoder is ByteLevel."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        decoder = data.get("decoder") or {}
        kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", [])}
        if "ByteLevel" not in kinds:
            raise ValueError(
                f"{path}: decoder {decoder.get('type')!r} is not ByteLevel; tritonkit serves "
                "byte-level BPE families (Llama-3, Qwen2.5)"
            )
        vocab: dict[str, int] = data["model"]["vocab"]
        added = {t["id"]: t for t in data.get("added_tokens", [])}
        size = max([*vocab.values(), *added.keys()]) + 1
        pieces = [b""] * size
        for tok, i in vocab.items():
            pieces[i] = bytes(_CHAR_TO_BYTE[c] for c in tok)
        special = set()
        for i, t in added.items():
            if t.get("special"):
                special.add(i)
                pieces[i] = b"" if skip_special_tokens else t["content"].encode()
            else:
                pieces[i] = t["content"].encode()
        return cls(pieces, frozenset(special))

    def to_bytes(self, ids: Iterable[int]) -> bytes:
        n = len(self.pieces)
        return b"".join(self.pieces[i] if 0 <= i < n else b"" for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """Whole-sequence decode: the same text a stream of the same ids yields in total."""
        return self.to_bytes(ids).decode("utf-8", errors="replace")


class TextStream:
    """Per-request incremental detokenizer: push token ids, get exactly the new text."""

    def __init__(self, table: ByteTable) -> None:
        self._table = table
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, ids: Sequence[int]) -> str:
        return self._decoder.decode(self._table.to_bytes(ids))

    def flush(self) -> str:
        """Text of an incomplete trailing character (U+FFFD), at the end of the stream only."""
        return self._decoder.decode(b"", final=True)


class StopStringMatcher:
    """Cuts text at the first stop string and withholds tails that may begin one."""

    def __init__(self, stop_strings: Iterable[str]) -> None:
        self.stops = sorted({s for s in stop_strings if s}, key=len, reverse=True)
        self._held = ""
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """Return the text that is safe to release now; sets `matched` when a stop string hit."""
        if self.matched is not None:
            return ""
        buf = self._held + text
        if not self.stops:
            return buf
        first = -1
        for s in self.stops:
            i = buf.find(s)
            if i != -1 and (first == -1 or i < first):
                first, self.matched = i, s
        if first != -1:
            self._held = ""
            return buf[:first]
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), hold, -1):
                if buf.endswith(s[:k]):
                    hold = k
                    break
        self._held = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        """At the end of generation with no match, held text is ordinary output."""
        out, self._held = ("" if self.matched is not None else self._held), ""
        return out
