"""Named scenarios: a workload, lengths and a load plan, each overridable by a flag."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    workload: str  # synthetic | shared-prefix | multi-turn | jsonl
    isl: str
    osl: str
    users: int
    shape: str = "constant"  # constant | step | spike | sweep
    duration_s: float = 60.0
    warmup_s: float = 5.0


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("chat-short", "short chat turns: ~128 tokens in, ~64 out, closed loop",
                 "synthetic", "normal:128:32", "normal:64:16", users=8),
        Scenario("long-context", "long prompts (~1536 tokens) with 128-token answers; prefill-heavy",
                 "synthetic", "normal:1536:128", "fixed:128", users=4),
        Scenario("multi-turn", "shipped conversations replayed turn by turn, replies as history",
                 "multi-turn", "fixed:1", "uniform:32:96", users=8),
        Scenario("burst", "chat-short lengths; 2 users, a spike to 16 for the middle 20% of the run",
                 "synthetic", "normal:128:32", "normal:64:16", users=2, shape="spike"),
        Scenario("shared-prefix", "4 shared 512-token prefixes + ~64-token suffixes (KV reuse)",
                 "shared-prefix", "normal:64:16", "normal:64:16", users=8),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"scenario: unknown {name!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None
