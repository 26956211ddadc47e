"""Workloads: what each request asks, seeded, with lengths measured by the target's tokenizer.

A `Workload` makes one `Session` per Locust user (own RNG, seeded from the campaign seed and the
user's index); `Session.next()` gives the next `ChatRequest`, `Session.observe(reply)` feeds a
multi-turn conversation its assistant turn.

- `SyntheticWorkload`: input length ~ `isl`, output length ~ `osl` (`LengthDist`: fixed, uniform,
  normal); the prompt is that many tokens sliced from a random offset of the shipped corpus
  (wrapping), decoded, and re-measured.
- `SharedPrefixWorkload`: `num_prefixes` fixed prefixes of `prefix_tokens`, each request one of them
  plus a synthetic suffix (KV-cache reuse).
- `MultiTurnWorkload`: conversations (shipped `data/conversations.jsonl` or a JSONL file) replayed
  turn by turn with the model's real replies as history.
- `JsonlWorkload`: prompts from a JSONL file (`{"prompt": ...}` or `{"messages": [...]}`, optional
  `max_tokens`), filtered by token length.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer

DATA = Path(__file__).resolve().parent / "data"
Message = dict[str, str]


class WorkloadError(ValueError):
    """A workload option is malformed; the message names it and what is allowed."""


@dataclass(frozen=True)
class LengthDist:
    """A token-length distribution: `fixed:N`, `uniform:LO:HI` or `normal:MEAN:SD` (clipped)."""

    kind: str
    a: float
    b: float = 0.0
    lo: int = 1
    hi: int = 1 << 20

    @classmethod
    def parse(cls, spec: str | int, *, what: str = "length") -> LengthDist:
        if isinstance(spec, int):
            return cls("fixed", spec)
        m = re.fullmatch(r"(fixed|uniform|normal):(\d+(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?", spec.strip())
        if m is None or (m[1] != "fixed" and m[3] is None):
            raise WorkloadError(
                f"{what}: {spec!r} is not a length distribution; use fixed:N, uniform:LO:HI "
                "or normal:MEAN:SD"
            )
        kind, a, b = m[1], float(m[2]), float(m[3] or 0)
        if kind == "uniform" and b < a:
            raise WorkloadError(f"{what}: uniform:{a:g}:{b:g} has HI < LO")
        if a < 1:
            raise WorkloadError(f"{what}: {spec!r} must be at least 1 token")
        return cls(kind, a, b)

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            v = self.a
        elif self.kind == "uniform":
            v = rng.randint(int(self.a), int(self.b))
        else:
            v = round(rng.gauss(self.a, self.b))
        return int(min(max(v, self.lo), self.hi))

    def __str__(self) -> str:
        return f"{self.kind}:{self.a:g}" + (f":{self.b:g}" if self.kind != "fixed" else "")


@dataclass
class ChatRequest:
    """One request: chat messages, the output budget, and what the client measured."""

    messages: list[Message]
    max_tokens: int
    min_tokens: int = 0
    prompt_tokens: int = 0
    turn: int | None = None


class Session(Protocol):
    def next(self) -> ChatRequest: ...
    def observe(self, reply: str) -> None: ...


class Workload(Protocol):
    def session(self, index: int) -> Session: ...


def load_tokenizer(name_or_dir: str) -> Tokenizer:
    """A catalog model's tokenizer (by catalog name) or one from a folder holding tokenizer.json."""
    path = Path(name_or_dir)
    if not (path / "tokenizer.json").is_file():
        from tritonkit.tokenizer_assets import tokenizer_dir_for

        try:
            path = tokenizer_dir_for(name_or_dir)
        except Exception as exc:
            raise WorkloadError(
                f"tokenizer: {name_or_dir!r} is neither a catalog model nor a folder with "
                f"tokenizer.json ({exc})"
            ) from None
    return Tokenizer.from_file(str(path / "tokenizer.json"))


def count_tokens(tok: Tokenizer, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids)


class Corpus:
    """The shipped corpus, tokenized once; slices of exactly `n` tokens of text."""

    def __init__(self, tok: Tokenizer, text: str | None = None) -> None:
        self.tok = tok
        text = text if text is not None else (DATA / "corpus.txt").read_text("utf-8")
        self.ids = tok.encode(" ".join(text.split()), add_special_tokens=False).ids

    def text(self, n: int, rng: random.Random) -> tuple[str, int]:
        """About `n` tokens of corpus text from a random offset; returns (text, measured tokens)."""
        start = rng.randrange(len(self.ids))
        want = n
        for _ in range(4):  # decode/re-encode can merge or split at the edges: adjust and retry
            ids = [self.ids[(start + i) % len(self.ids)] for i in range(max(want, 1))]
            text = self.tok.decode(ids).strip()
            got = count_tokens(self.tok, text)
            if got == n:
                break
            want = max(1, want + (n - got))
        return text, got


def _seeded(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


@dataclass
class SyntheticWorkload:
    """Synthetic prompts. A pool of `pool_size` requests is made up front (seeded), so no
    tokenizer runs on the hot path; sessions draw from it with their own RNG."""

    tok: Tokenizer
    isl: LengthDist
    osl: LengthDist
    seed: int = 0
    pin_output: bool = True
    corpus: Corpus | None = None
    pool_size: int = 200
    pool: list[ChatRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.corpus = self.corpus or Corpus(self.tok)

    def session(self, index: int) -> _Pooled:
        if not self.pool:
            rng = random.Random(self.seed)
            self.pool = [self.make(rng) for _ in range(self.pool_size)]
        return _Pooled(self.pool, _seeded(self.seed, index))

    def make(self, rng: random.Random, prefix: str = "") -> ChatRequest:
        assert self.corpus is not None
        text, n = self.corpus.text(self.isl.sample(rng), rng)
        content = prefix + text
        out = self.osl.sample(rng)
        return ChatRequest([{"role": "user", "content": content}], out,
                           min_tokens=out if self.pin_output else 0,
                           prompt_tokens=count_tokens(self.tok, content) if prefix else n)


@dataclass
class _Pooled:
    pool: list[ChatRequest]
    rng: random.Random

    def next(self) -> ChatRequest:
        r = self.rng.choice(self.pool)
        return ChatRequest([dict(m) for m in r.messages], r.max_tokens, r.min_tokens,
                           r.prompt_tokens)

    def observe(self, reply: str) -> None:
        pass


@dataclass
class _SingleTurn:
    workload: Any
    rng: random.Random

    def next(self) -> ChatRequest:
        return self.workload.make(self.rng)

    def observe(self, reply: str) -> None:
        pass


@dataclass
class SharedPrefixWorkload:
    """Every request starts with one of `num_prefixes` shared prefixes (seeded, fixed per run)."""

    synthetic: SyntheticWorkload
    num_prefixes: int = 4
    prefix_tokens: int = 256
    prefixes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.num_prefixes < 1 or self.prefix_tokens < 1:
            raise WorkloadError("shared prefix: num_prefixes and prefix_tokens must be >= 1")
        rng = random.Random(self.synthetic.seed)
        assert self.synthetic.corpus is not None
        self.prefixes = [self.synthetic.corpus.text(self.prefix_tokens, rng)[0] + "\n\n"
                         for _ in range(self.num_prefixes)]

    def session(self, index: int) -> _Pooled:
        if not self.synthetic.pool:
            rng = random.Random(self.synthetic.seed)
            self.synthetic.pool = [self.synthetic.make(rng, prefix=rng.choice(self.prefixes))
                                   for _ in range(self.synthetic.pool_size)]
        return _Pooled(self.synthetic.pool, _seeded(self.synthetic.seed, index))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
    if not out:
        raise WorkloadError(f"{path}: no records")
    return out


@dataclass
class JsonlWorkload:
    """Prompts from JSONL: each line `{"prompt": str}` or `{"messages": [...]}`, opt. `max_tokens`."""

    tok: Tokenizer
    path: Path
    osl: LengthDist
    seed: int = 0
    pin_output: bool = True
    min_prompt_tokens: int = 1
    max_prompt_tokens: int = 1 << 20
    items: list[tuple[list[Message], int, int | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, rec in enumerate(read_jsonl(self.path), 1):
            if "messages" in rec:
                msgs = rec["messages"]
            elif "prompt" in rec:
                msgs = [{"role": "user", "content": str(rec["prompt"])}]
            else:
                raise WorkloadError(f"{self.path}: record {i} has neither 'prompt' nor 'messages'")
            n = sum(count_tokens(self.tok, m["content"]) for m in msgs)
            if self.min_prompt_tokens <= n <= self.max_prompt_tokens:
                self.items.append((msgs, n, rec.get("max_tokens")))
        if not self.items:
            raise WorkloadError(f"{self.path}: no prompt within {self.min_prompt_tokens}.."
                                f"{self.max_prompt_tokens} tokens")

    def session(self, index: int) -> _SingleTurn:
        return _SingleTurn(self, _seeded(self.seed, index))

    def make(self, rng: random.Random) -> ChatRequest:
        msgs, n, max_tokens = rng.choice(self.items)
        out = int(max_tokens) if max_tokens else self.osl.sample(rng)
        return ChatRequest([dict(m) for m in msgs], out,
                           min_tokens=out if self.pin_output else 0, prompt_tokens=n)


@dataclass
class MultiTurnWorkload:
    """Conversations replayed turn by turn; the model's replies become the history."""

    tok: Tokenizer
    osl: LengthDist
    path: Path = DATA / "conversations.jsonl"
    seed: int = 0
    pin_output: bool = True
    max_history_tokens: int = 1500
    conversations: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, rec in enumerate(read_jsonl(self.path), 1):
            turns = rec.get("turns")
            if not isinstance(turns, list) or not turns:
                raise WorkloadError(f"{self.path}: record {i} needs a non-empty 'turns' list")
            self.conversations.append([str(t) for t in turns])

    def session(self, index: int) -> _Conversation:
        return _Conversation(self, _seeded(self.seed, index))


@dataclass
class _Conversation:
    workload: MultiTurnWorkload
    rng: random.Random
    turns: list[str] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    turn: int = 0

    def next(self) -> ChatRequest:
        w = self.workload
        if not self.turns:
            self.turns = list(self.rng.choice(w.conversations))
            self.history, self.turn = [], 0
        self.history.append({"role": "user", "content": self.turns.pop(0)})
        while (sum(count_tokens(w.tok, m["content"]) for m in self.history) > w.max_history_tokens
               and len(self.history) > 1):
            self.history = self.history[2:]  # drop the oldest exchange
        out = w.osl.sample(self.rng)
        self.turn += 1
        n = sum(count_tokens(w.tok, m["content"]) for m in self.history)
        return ChatRequest([dict(m) for m in self.history], out,
                           min_tokens=out if w.pin_output else 0, prompt_tokens=n, turn=self.turn)

    def observe(self, reply: str) -> None:
        self.history.append({"role": "assistant", "content": reply})
