"""HTTP user: `POST /v2/models/<model>/generate_stream` (Server-Sent Events), timed per event.

Locust's own HTTP clients stop timing at the response headers when streaming; this user times each
`data:` event itself with httpx (gevent-patched sockets) and fires its own events.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tritonkit.loadtest.metrics import StreamTimer
from tritonkit.loadtest.users import LLMUser, StreamFailure
from tritonkit.loadtest.workloads import ChatRequest


def sse_events(lines: Any) -> Any:
    """Yield the JSON of each `data:` line (stops at `[DONE]`)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


class TritonHttpUser(LLMUser):
    """Streams the served model over Triton's HTTP generate_stream; `host` is `http://HOST:PORT`."""

    abstract = True
    protocol = "http"

    def on_start(self) -> None:
        super().on_start()
        self._http = httpx.Client(base_url=self.host, timeout=self.campaign.options.timeout_s)

    def on_stop(self) -> None:
        self._http.close()

    def payload(self, req: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": json.dumps(req.messages),
                                "max_tokens": req.max_tokens, "stream": True}
        if req.min_tokens:
            body["min_tokens"] = req.min_tokens
        return body

    def stream(self, req: ChatRequest, timer: StreamTimer) -> str:
        parts: list[str] = []
        s = timer.sample
        timer.t0 = time.perf_counter()
        with self._http.stream("POST", f"/v2/models/{self.model}/generate_stream",
                               json=self.payload(req)) as r:
            if r.status_code != 200:
                raise StreamFailure(f"HTTP {r.status_code}: {r.read().decode(errors='replace')[:200]}")
            for ev in sse_events(r.iter_lines()):
                at = time.perf_counter()
                if "error" in ev:
                    raise StreamFailure(f"in-band error: {ev['error']}")
                text = ev.get("text_output", "")
                parts.append(text)
                timer.chunk(text, at)
                s.finish_reason = ev.get("finish_reason") or s.finish_reason
                s.input_tokens = ev.get("num_input_tokens", s.input_tokens)
                s.output_tokens = ev.get("num_output_tokens", s.output_tokens)
        if s.finish_reason == "cancelled":
            raise StreamFailure("server cancelled the request")
        return "".join(parts)
