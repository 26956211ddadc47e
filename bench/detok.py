"""Section 1: detokenization scaling. Per-token cost of `TextStream.push` at position 16 vs 4,096,
against re-decoding the whole sequence per chunk with the real tokenizer (`tokenizer.decode`)."""

from __future__ import annotations

import time

from tokenizers import Tokenizer

from bench.common import ratio, summary
from tritonkit.detokenize import ByteTable, TextStream
from tritonkit.tokenizer_assets import tokenizer_dir_for

MODEL = "athene-70b"
POSITIONS = (16, 4096)
WINDOW = 64  # tokens timed after each position
REPS = 7

_TEXT = (
    "Triton serves the model; the kit adds the chat template, streaming text and stop strings. "
    "Grüße aus Zürich — naïve café, 東京の天気は晴れです。 Привет, мир! 🙂🚀 "
    "def f(x):\n    return x ** 2  # squares\n"
)


def token_ids(tok: Tokenizer, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n:
        ids.extend(tok.encode(_TEXT, add_special_tokens=False).ids)
    return ids[:n]


def _incremental(table: ByteTable, ids: list[int], pos: int) -> float:
    """Seconds per token pushing ids[pos:pos+WINDOW] one at a time after pos tokens."""
    inner = 20
    total = 0.0
    for _ in range(inner):
        ts = TextStream(table)
        ts.push(ids[:pos])
        t0 = time.perf_counter()
        for i in range(pos, pos + WINDOW):
            ts.push(ids[i : i + 1])
        total += time.perf_counter() - t0
    return total / (inner * WINDOW)


def _redecode(tok: Tokenizer, ids: list[int], pos: int) -> float:
    """Seconds per token when every new token re-decodes the whole sequence so far."""
    inner = 3 if pos > 1000 else 20
    t0 = time.perf_counter()
    for _ in range(inner):
        for i in range(pos, pos + WINDOW):
            tok.decode(ids[: i + 1], skip_special_tokens=True)
    return (time.perf_counter() - t0) / (inner * WINDOW)


def run() -> dict:
    folder = tokenizer_dir_for(MODEL)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    table = ByteTable.from_tokenizer_json(folder / "tokenizer.json")
    ids = token_ids(tok, max(POSITIONS) + WINDOW + 1)
    # exactness sanity check: streamed text equals whole decode
    ts = TextStream(table)
    streamed = "".join(ts.push([i]) for i in ids) + ts.flush()
    assert streamed == table.decode(ids), "TextStream is not exact"
    inc = {p: [] for p in POSITIONS}
    red = {p: [] for p in POSITIONS}
    for _ in range(REPS):
        for p in POSITIONS:
            inc[p].append(_incremental(table, ids, p))
            red[p].append(_redecode(tok, ids, p))
    lo, hi = POSITIONS
    return {
        "model": MODEL,
        "window_tokens": WINDOW,
        "reps": REPS,
        "incremental_s_per_token": {str(p): summary(v) for p, v in inc.items()},
        "redecode_s_per_token": {str(p): summary(v) for p, v in red.items()},
        "ratios": {
            f"incremental_{hi}_over_{lo}": ratio(inc[hi], inc[lo]),
            f"redecode_{hi}_over_{lo}": ratio(red[hi], red[lo]),
            f"redecode_over_incremental_at_{lo}": ratio(red[lo], inc[lo]),
            f"redecode_over_incremental_at_{hi}": ratio(red[hi], inc[hi]),
        },
    }
