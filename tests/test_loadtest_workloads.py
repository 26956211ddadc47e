"""Workloads with the real athene-70b tokenizer: seeded, lengths as drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritonkit.loadtest.workloads import (
    DATA,
    JsonlWorkload,
    LengthDist,
    MultiTurnWorkload,
    SharedPrefixWorkload,
    SyntheticWorkload,
    WorkloadError,
    count_tokens,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("athene-70b")


def test_synthetic_lengths_seeded(tok) -> None:
    w = SyntheticWorkload(tok, LengthDist.parse("uniform:50:300"), LengthDist.parse("fixed:64"),
                          seed=3, pool_size=40)
    reqs = [w.session(0).next() for _ in range(1)] + [w.session(i).next() for i in range(1, 20)]
    exact = sum(count_tokens(tok, r.messages[0]["content"]) == r.prompt_tokens for r in reqs)
    assert exact == len(reqs)
    assert all(r.max_tokens == 64 == r.min_tokens for r in reqs)
    within = [r.prompt_tokens for r in w.pool]
    assert min(within) >= 48 and max(within) <= 302  # the draw, +-2 at decode/re-encode edges
    w2 = SyntheticWorkload(tok, LengthDist.parse("uniform:50:300"), LengthDist.parse("fixed:64"),
                           seed=3, pool_size=40)
    assert w2.session(5).next().messages == w.session(5).next().messages


def test_shared_prefix(tok) -> None:
    syn = SyntheticWorkload(tok, LengthDist.parse("fixed:20"), LengthDist.parse("fixed:8"),
                            pool_size=20)
    w = SharedPrefixWorkload(syn, num_prefixes=2, prefix_tokens=64)
    s = w.session(0)
    contents = [s.next().messages[0]["content"] for _ in range(20)]
    used = [next(i for i, p in enumerate(w.prefixes) if c.startswith(p)) for c in contents]
    assert set(used) == {0, 1}


def test_multi_turn_history(tok) -> None:
    w = MultiTurnWorkload(tok, LengthDist.parse("fixed:8"), seed=1)
    s = w.session(0)
    r1 = s.next()
    s.observe("first reply")
    r2 = s.next()
    assert r1.turn == 1 and r2.turn == 2
    assert [m["role"] for m in r2.messages] == ["user", "assistant", "user"]
    assert r2.messages[1]["content"] == "first reply"


def test_jsonl_and_shipped_dataset(tok, tmp_path: Path) -> None:
    w = JsonlWorkload(tok, DATA / "prompts.jsonl", LengthDist.parse("fixed:16"))
    assert len(w.items) >= 30
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
                 + "\n" + json.dumps({"prompt": "x " * 500}) + "\n")
    w = JsonlWorkload(tok, p, LengthDist.parse("fixed:16"), max_prompt_tokens=100)
    assert len(w.items) == 1
    assert w.session(0).next().max_tokens == 5
    p.write_text('{"text": 1}\n')
    with pytest.raises(WorkloadError, match="neither 'prompt' nor 'messages'"):
        JsonlWorkload(tok, p, LengthDist.parse("fixed:16"))
