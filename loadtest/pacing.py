"""Open-loop arrivals: one schedule per process, shared by its users (Locust itself is closed-loop).

The schedule is fixed in advance of completions: slot k+1 = slot k + gap, with gap = 1/λ
(`constant`) or Exp(λ) (`poisson`). A user takes the next slot, sleeps until it and sends; if every
user is busy the slot is late, and `schedule lag` = actual send - slot records it. Users are the cap
on requests in flight. In distributed mode each process paces λ × (its users / all users); the
union of independent Poisson streams is Poisson with the summed rate.
"""

from __future__ import annotations

import random
import time

import gevent


class Pacer:
    def __init__(self, rate: float, arrival: str = "poisson", seed: int = 0) -> None:
        if rate <= 0:
            raise ValueError(f"rate: must be > 0 requests/s, got {rate}")
        if arrival not in ("constant", "poisson"):
            raise ValueError(f"arrival: unknown {arrival!r}; choose constant or poisson")
        self.rate, self.arrival = rate, arrival
        self.rng = random.Random(seed)
        self._next: float | None = None

    def gap(self, share: float) -> float:
        lam = self.rate * max(share, 1e-9)
        return 1.0 / lam if self.arrival == "constant" else self.rng.expovariate(lam)

    def wait(self, share: float = 1.0) -> float:
        """Sleep until this user's slot; returns the schedule lag in seconds (>= 0)."""
        now = time.perf_counter()
        if self._next is None:
            self._next = now
        slot = self._next
        self._next = slot + self.gap(share)  # no yield between read and update: greenlet-safe
        if slot > now:
            gevent.sleep(slot - now)
        return max(0.0, time.perf_counter() - slot)
