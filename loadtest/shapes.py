"""Load plans (users over time) and the Locust `LoadTestShape` that plays them.

A plan is pure data: `at(t)` gives `(users, spawn_rate)` at run time `t` or None when done, and
`timeline()` the segments `(t_start, t_end, users)` the report uses to group samples by load level.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    duration_s: float

    def users_at(self, t: float) -> int:
        raise NotImplementedError

    spawn_rate: float = 100.0

    def at(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        return self.users_at(t), self.spawn_rate

    def timeline(self) -> list[tuple[float, float, int]]:
        """Segments of constant target users (evaluated every 0.1 s)."""
        out: list[tuple[float, float, int]] = []
        t, step = 0.0, 0.1
        while t < self.duration_s:
            u = self.users_at(t)
            if out and out[-1][2] == u:
                out[-1] = (out[-1][0], round(t + step, 3), u)
            else:
                out.append((round(t, 3), round(t + step, 3), u))
            t += step
        return out


@dataclass(frozen=True)
class ConstantPlan(Plan):
    users: int = 1

    def users_at(self, t: float) -> int:
        return self.users


@dataclass(frozen=True)
class StepPlan(Plan):
    """`start` users, `step` more every `every_s`, at most `max_users`."""

    start: int = 1
    step: int = 1
    every_s: float = 10.0
    max_users: int = 64

    def users_at(self, t: float) -> int:
        return min(self.max_users, self.start + self.step * int(t // self.every_s))


@dataclass(frozen=True)
class SpikePlan(Plan):
    """`base` users, `peak` users during [spike_at_s, spike_at_s + spike_s)."""

    base: int = 2
    peak: int = 16
    spike_at_s: float = 10.0
    spike_s: float = 5.0

    def users_at(self, t: float) -> int:
        return self.peak if self.spike_at_s <= t < self.spike_at_s + self.spike_s else self.base


@dataclass(frozen=True)
class SweepPlan(Plan):
    """Each concurrency in `levels` held for `hold_s` seconds, in order."""

    levels: tuple[int, ...] = (1, 2, 4, 8)
    hold_s: float = 10.0

    def users_at(self, t: float) -> int:
        return self.levels[min(int(t // self.hold_s), len(self.levels) - 1)]


def make_plan(shape: str, users: int, duration_s: float, *, sweep: tuple[int, ...] = (),
              step_every_s: float | None = None) -> Plan:
    """The plan for a shape name; `users` is the constant level, the step maximum or spike peak."""
    if shape == "constant":
        return ConstantPlan(duration_s, users=users)
    if shape == "step":
        every = step_every_s or max(duration_s / 4, 1.0)
        n = max(int(duration_s // every), 1)
        return StepPlan(duration_s, start=max(users // n, 1), step=max(users // n, 1),
                        every_s=every, max_users=users)
    if shape == "spike":
        base = max(users, 1)
        return SpikePlan(duration_s, base=base, peak=base * 8, spike_at_s=0.4 * duration_s,
                         spike_s=0.2 * duration_s)
    if shape == "sweep":
        levels = sweep or tuple(2**i for i in range(users.bit_length()) if 2**i <= users)
        return SweepPlan(len(levels) * (duration_s / len(levels)), levels=tuple(levels),
                         hold_s=duration_s / len(levels))
    raise ValueError(f"shape: unknown {shape!r}; choose constant, step, spike or sweep")


def level_at(timeline: list[tuple[float, float, int]], t: float) -> int | None:
    for a, b, u in timeline:
        if a <= t < b:
            return u
    return timeline[-1][2] if timeline and t >= timeline[-1][1] else None
