"""tritonkit's Locust entry point: `locust -f loadtest/locustfile.py --host URL --tk-model M ...`.

One concrete user per protocol; the shape `CampaignShape` plays the campaign's plan and spawns
only the user class `--tk-protocol` names. At the end the master (or the single local process)
writes `samples.ndjson`, `run.json` and the report to `--tk-out` and sets the exit code from the
SLO gates.
"""

from __future__ import annotations

# isort: off
import tritonkit.loadtest.gevent_setup  # noqa: F401  (before anything imports grpc)
# isort: on

import json
import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from tritonkit.loadtest.campaign import Campaign, CampaignOptions, add_arguments
from tritonkit.loadtest.recorder import MESSAGE, Recorder, exclude_from_total, process_id
from tritonkit.loadtest.users.openai_http import OpenAIUser
from tritonkit.loadtest.users.triton_grpc import TritonGrpcUser
from tritonkit.loadtest.users.triton_http import TritonHttpUser


class GrpcChatUser(TritonGrpcUser):
    pass


class HttpChatUser(TritonHttpUser):
    pass


class OpenAIChatUser(OpenAIUser):
    pass


USER_CLASSES = {"grpc": GrpcChatUser, "http": HttpChatUser, "openai": OpenAIChatUser}


class CampaignShape(LoadTestShape):
    """Plays the plan of `--tk-shape` (constant, step, spike, sweep) for `--tk-protocol`'s user."""

    use_common_options = True

    def tick(self) -> tuple[int, float, list] | None:
        o = CampaignOptions.from_parsed(self.runner.environment.parsed_options)
        step = o.plan().at(self.get_run_time())
        if step is None:
            return None
        return step[0], step[1], [USER_CLASSES[o.protocol]]


@events.init_command_line_parser.add_listener
def _args(parser: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    exclude_from_total(environment.stats)
    rec = Recorder(process_id())
    environment.tritonkit_recorder = rec
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, lambda environment, msg, **kw: rec.receive(msg.data))
    elif isinstance(runner, WorkerRunner):
        rec.start_worker(runner.send_message)
    rec.monitor.start()


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    environment.tritonkit_started = time.time()
    if not isinstance(environment.runner, MasterRunner):
        Campaign.get(environment).workload.session(-1)  # build the workload and its pool now


@events.test_stop.add_listener
def _stop(environment: Any, **_: Any) -> None:
    environment.tritonkit_stopped = time.time()
    environment.tritonkit_recorder.flush()


@events.quitting.add_listener
def _quit(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    o = CampaignOptions.from_parsed(environment.parsed_options)
    if not o.out:
        return
    from tritonkit.loadtest.report import write_campaign

    rec: Recorder = environment.tritonkit_recorder
    total = environment.stats.total
    run = {
        "options": o.describe(),
        "host": environment.host,
        "started": getattr(environment, "tritonkit_started", None),
        "stopped": getattr(environment, "tritonkit_stopped", time.time()),
        "timeline": o.plan().timeline(),
        "resources": rec.all_resources(),
        "locust": {"requests": total.num_requests, "failures": total.num_failures},
    }
    code = write_campaign(Path(o.out), run, rec.samples)
    if code:
        environment.process_exit_code = code
    print(json.dumps({"tritonkit_report": str(Path(o.out) / "report.html"), "exit_code": code}))
