"""OpenAI-API user: streamed `POST /v1/chat/completions` against the tritonkit gateway (or any
OpenAI-compatible server), timed per SSE chunk. Token counts come from the final `usage` chunk
(`stream_options.include_usage`); without it `output_tokens` stays unknown and TPOT undefined.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tritonkit.loadtest.metrics import StreamTimer
from tritonkit.loadtest.users import LLMUser, StreamFailure
from tritonkit.loadtest.users.triton_http import sse_events
from tritonkit.loadtest.workloads import ChatRequest


class OpenAIUser(LLMUser):
    """`host` is the gateway's base URL (`http://HOST:PORT`, with or without `/v1`)."""

    abstract = True
    protocol = "openai"

    def on_start(self) -> None:
        super().on_start()
        base = self.host.rstrip("/").removesuffix("/v1")
        self._http = httpx.Client(base_url=base, timeout=self.campaign.options.timeout_s)

    def on_stop(self) -> None:
        self._http.close()

    def payload(self, req: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": req.messages,
                                "max_tokens": req.max_tokens, "stream": True,
                                "stream_options": {"include_usage": True}}
        if req.min_tokens:
            body["min_tokens"] = req.min_tokens  # vLLM-style extension; ignored if unsupported
        return body

    def stream(self, req: ChatRequest, timer: StreamTimer) -> str:
        parts: list[str] = []
        s = timer.sample
        timer.t0 = time.perf_counter()
        with self._http.stream("POST", "/v1/chat/completions", json=self.payload(req)) as r:
            if r.status_code != 200:
                raise StreamFailure(f"HTTP {r.status_code}: {r.read().decode(errors='replace')[:200]}")
            for ev in sse_events(r.iter_lines()):
                at = time.perf_counter()
                if "error" in ev:
                    raise StreamFailure(f"in-band error: {ev['error']}")
                for ch in ev.get("choices") or []:
                    text = (ch.get("delta") or {}).get("content") or ""
                    parts.append(text)
                    timer.chunk(text, at)
                    s.finish_reason = ch.get("finish_reason") or s.finish_reason
                usage = ev.get("usage")
                if usage:
                    s.input_tokens = usage.get("prompt_tokens")
                    s.output_tokens = usage.get("completion_tokens")
        return "".join(parts)
