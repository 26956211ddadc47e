"""Abstract Locust users for LLM streaming; concrete protocols subclass `LLMUser` and implement
`stream()`.

Per request the user fires two Locust `request` events: `<model>` (E2E; `response_length` = output
tokens; `exception` set on failure, the Locust row that counts requests) and `<model> [ttft]` (TTFT,
kept out of the Aggregated row). Everything else (ITL gaps, TPOT, token counts, schedule lag) goes to
the campaign's recorder, never as a pseudo-request.
"""

from __future__ import annotations

import time
from typing import ClassVar

from locust import User, constant, task
from locust.exception import LocustError

from tritonkit.loadtest.campaign import Campaign
from tritonkit.loadtest.metrics import RequestSample, StreamTimer
from tritonkit.loadtest.recorder import TTFT_SUFFIX
from tritonkit.loadtest.workloads import ChatRequest, Session


class StreamFailure(Exception):
    """The request failed; the message is the reason recorded and shown in Locust's failures."""


class LLMUser(User):
    """One simulated client: takes requests from its workload session, streams, records."""

    abstract = True
    protocol: ClassVar[str] = ""
    wait_time = constant(0)

    def on_start(self) -> None:
        if not self.host:
            raise LocustError(f"{type(self).__name__}: set the server with --host")
        self.campaign = Campaign.get(self.environment)
        self.model = self.campaign.options.model
        if not self.model:
            raise LocustError(f"{type(self).__name__}: set the served model with --tk-model")
        self.session: Session = self.campaign.workload.session(self.campaign.next_user_index())

    def stream(self, req: ChatRequest, timer: StreamTimer) -> str:
        """Send `req`, call `timer.chunk(text)` per response; return the text. Raise on failure."""
        raise NotImplementedError

    @task
    def chat(self) -> None:
        c = self.campaign
        req = self.session.next()
        lag = None
        if c.pacer is not None:
            total = max(c.options.users, 1)
            lag = c.pacer.wait(share=self.environment.runner.user_count / total)
        sample = RequestSample(
            self.protocol, self.model, time.time(), requested_output_tokens=req.max_tokens,
            prompt_tokens_client=req.prompt_tokens, schedule_lag_s=lag, turn=req.turn,
            users=self.environment.runner.user_count,
        )
        timer = StreamTimer(sample)
        text = ""
        try:
            text = self.stream(req, timer)
            timer.finish()
        except StreamFailure as exc:
            timer.fail(str(exc))
        except Exception as exc:  # the reason goes to the report and to Locust's failures
            timer.fail(f"{type(exc).__name__}: {exc}")
        self.session.observe(text)
        self.record(sample)

    def record(self, s: RequestSample) -> None:
        self.campaign.recorder.add(s)
        fire = self.environment.events.request.fire
        if s.ttft_s is not None:
            fire(request_type=self.protocol, name=self.model + TTFT_SUFFIX,
                 response_time=s.ttft_s * 1000.0, response_length=0, exception=None,
                 context={"tritonkit": "ttft"})
        fire(request_type=self.protocol, name=self.model,
             response_time=(s.e2e_s or 0.0) * 1000.0, response_length=s.output_tokens or 0,
             exception=None if s.ok else StreamFailure(s.error or "failed"),
             context={"tritonkit": "e2e"})
