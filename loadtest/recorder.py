"""Where samples go: a per-process store, shipped to the master, kept out of Locust's request rows.

Each process (local, worker or master) has one `Recorder`. Users `add()` a `RequestSample` and fire
Locust `request` events: one per request for E2E (the honest request row) and one for TTFT under a
distinct name. TTFT rows are kept out of Locust's Aggregated row (locust#2289) by `exclude_from_total`.

Distributed mode: workers batch samples and send them to the master as the custom message
`tritonkit_samples` (every second and once more at `test_stop`, which a worker fires before its
final report on `quit`). The master merges them; samples never travel as fake requests.
Each process also runs a `Monitor` (CPU % and gevent loop lag) whose summary rides along.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import gevent
import psutil

from tritonkit.loadtest.metrics import RequestSample

MESSAGE = "tritonkit_samples"
TTFT_SUFFIX = " [ttft]"


class Monitor:
    """Samples this process's CPU use and event-loop lag (how late a 100 ms sleep wakes up)."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.cpu_percent: list[tuple[float, float]] = []  # (wall time, % of one core)
        self.lag_ms: list[tuple[float, float]] = []  # (wall time, ms late)
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        proc = psutil.Process()
        proc.cpu_percent(None)
        last_cpu = time.perf_counter()
        while True:
            t = time.perf_counter()
            gevent.sleep(self.interval_s)
            now = time.perf_counter()
            self.lag_ms.append((time.time(), max(0.0, (now - t - self.interval_s) * 1000.0)))
            if now - last_cpu >= 1.0:
                self.cpu_percent.append((time.time(), proc.cpu_percent(None)))
                last_cpu = now

    def summary(self) -> dict[str, Any]:
        return {"cpu_percent": list(self.cpu_percent), "lag_ms": list(self.lag_ms)}


class Recorder:
    """Samples of this process (and, on the master, of every worker)."""

    def __init__(self, worker_id: str = "local") -> None:
        self.worker_id = worker_id
        self.samples: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self.monitor = Monitor()
        self.resources: dict[str, dict[str, Any]] = {}
        self.is_worker = False
        self._sender: gevent.Greenlet | None = None

    def add(self, sample: RequestSample) -> None:
        sample.worker = self.worker_id
        d = sample.to_json()
        (self._outbox if self.is_worker else self.samples).append(d)

    # ---- distributed ----------------------------------------------------------------------
    def start_worker(self, send: Callable[[str, dict[str, Any]], None]) -> None:
        """On a worker: ship batches to the master every second."""
        self.is_worker = True
        self._send = send

        def loop() -> None:
            while True:
                gevent.sleep(1.0)
                self.flush()

        if self._sender is None:
            self._sender = gevent.spawn(loop)

    def flush(self) -> None:
        if not self.is_worker:
            return
        batch, self._outbox = self._outbox, []
        self._send(MESSAGE, {"worker": self.worker_id, "samples": batch,
                             "resources": self.monitor.summary()})

    def receive(self, data: dict[str, Any]) -> None:
        """On the master: merge a worker's batch."""
        self.samples.extend(data.get("samples", []))
        if data.get("resources") is not None:
            self.resources[data["worker"]] = data["resources"]

    def all_resources(self) -> dict[str, dict[str, Any]]:
        out = dict(self.resources)
        if not self.is_worker:
            out[self.worker_id] = self.monitor.summary()
        return out


def exclude_from_total(stats: Any) -> None:
    """Make `stats.log_request` keep rows named `... [ttft]` out of the Aggregated total."""
    original = stats.log_request

    def log_request(method: str, name: str, response_time: float, content_length: int) -> None:
        if name.endswith(TTFT_SUFFIX):
            stats.entries[(name, method)].log(response_time, content_length)
        else:
            original(method, name, response_time, content_length)

    stats.log_request = log_request


def process_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
