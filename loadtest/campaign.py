"""Campaign options (Locust command-line arguments `--tk-*`) and the per-process campaign state.

The options are registered with `init_command_line_parser`, so `locust -f loadtest/locustfile.py
--tk-scenario chat-short --tk-model M ...` works, and Locust forwards them from master to workers.
`Campaign.get(environment)` builds the workload, pacer and recorder once per process, lazily (a
worker learns the master's options only with its first spawn message).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonkit.loadtest.pacing import Pacer
from tritonkit.loadtest.recorder import Recorder, process_id
from tritonkit.loadtest.scenarios import get_scenario
from tritonkit.loadtest.shapes import Plan, make_plan
from tritonkit.loadtest.workloads import (
    DATA,
    JsonlWorkload,
    LengthDist,
    MultiTurnWorkload,
    SharedPrefixWorkload,
    SyntheticWorkload,
    Workload,
    load_tokenizer,
)

PROTOCOLS = ("grpc", "http", "openai")


def add_arguments(parser: Any) -> None:
    """Register the `--tk-*` options on Locust's argument parser."""
    g = parser.add_argument_group("tritonkit")
    g.add_argument("--tk-scenario", default="chat-short", help="named scenario")
    g.add_argument("--tk-protocol", default="grpc", choices=PROTOCOLS)
    g.add_argument("--tk-model", default="", help="served model name (Triton) or OpenAI model")
    g.add_argument("--tk-tokenizer", default="", help="catalog model or tokenizer folder "
                   "(default: --tk-model if it is a catalog name)")
    g.add_argument("--tk-isl", default="", help="input length: fixed:N|uniform:LO:HI|normal:M:SD")
    g.add_argument("--tk-osl", default="", help="output length distribution (same forms)")
    g.add_argument("--tk-pin-output", default="true", choices=("true", "false"),
                   help="set min_tokens = max_tokens so the output length is exactly the draw")
    g.add_argument("--tk-dataset", default="", help="JSONL prompts (workload jsonl)")
    g.add_argument("--tk-workload", default="", help="override: synthetic|shared-prefix|"
                   "multi-turn|jsonl")
    g.add_argument("--tk-shape", default="", help="override: constant|step|spike|sweep")
    g.add_argument("--tk-sweep", default="", help="sweep levels, e.g. 1,2,4,8")
    g.add_argument("--tk-rate", type=float, default=0.0, help="open loop: target requests/s")
    g.add_argument("--tk-arrival", default="poisson", choices=("constant", "poisson"))
    g.add_argument("--tk-duration", type=float, default=0.0, help="plan length in s")
    g.add_argument("--tk-warmup", type=float, default=-1.0, help="warm-up s excluded")
    g.add_argument("--tk-seed", type=int, default=0)
    g.add_argument("--tk-timeout", type=float, default=300.0, help="per-request timeout s")
    g.add_argument("--tk-out", default="", help="write samples and the report here at the end")
    g.add_argument("--tk-slo-ttft-ms", type=float, default=0.0)
    g.add_argument("--tk-slo-tpot-ms", type=float, default=0.0)
    g.add_argument("--tk-slo-e2e-ms", type=float, default=0.0)
    g.add_argument("--tk-slo-attainment", type=float, default=0.95,
                   help="fraction of requests that must meet every SLO (the SLO gate)")
    g.add_argument("--tk-gate", default="", help="gates, e.g. 'goodput>=0.9,ttft_p99<=500,"
                   "error_rate<=0.01'")


@dataclass
class CampaignOptions:
    scenario: str
    protocol: str
    model: str
    tokenizer: str
    isl: LengthDist
    osl: LengthDist
    pin_output: bool
    workload: str
    dataset: str
    shape: str
    sweep: tuple[int, ...]
    users: int
    spawn_rate: float
    rate: float
    arrival: str
    duration_s: float
    warmup_s: float
    seed: int
    timeout_s: float
    out: str
    slo: dict[str, float]
    gate: str
    slo_attainment: float

    @classmethod
    def from_parsed(cls, o: Any) -> CampaignOptions:
        sc = get_scenario(o.tk_scenario)
        tokenizer = o.tk_tokenizer or o.tk_model
        duration = o.tk_duration or getattr(o, "run_time", None) or sc.duration_s
        return cls(
            scenario=sc.name, protocol=o.tk_protocol, model=o.tk_model, tokenizer=tokenizer,
            isl=LengthDist.parse(o.tk_isl or sc.isl, what="isl"),
            osl=LengthDist.parse(o.tk_osl or sc.osl, what="osl"),
            pin_output=o.tk_pin_output == "true",
            workload=o.tk_workload or ("jsonl" if o.tk_dataset else sc.workload),
            dataset=o.tk_dataset, shape=o.tk_shape or sc.shape,
            sweep=tuple(int(x) for x in o.tk_sweep.split(",") if x.strip()),
            users=int(getattr(o, "num_users", None) or sc.users),
            # Locust turns an unset -r into 1/s; ramps are the shapes' job, so spawn at once
            spawn_rate=max(float(getattr(o, "spawn_rate", None) or 0), 100.0),
            rate=o.tk_rate, arrival=o.tk_arrival, duration_s=duration,
            warmup_s=o.tk_warmup if o.tk_warmup >= 0 else sc.warmup_s,
            seed=o.tk_seed, timeout_s=o.tk_timeout, out=o.tk_out,
            slo={k: v for k, v in (("ttft_ms", o.tk_slo_ttft_ms), ("tpot_ms", o.tk_slo_tpot_ms),
                                   ("e2e_ms", o.tk_slo_e2e_ms)) if v > 0},
            gate=o.tk_gate, slo_attainment=o.tk_slo_attainment,
        )

    def plan(self) -> Plan:
        p = make_plan(self.shape, self.users, self.duration_s, sweep=self.sweep)
        return p.__class__(**{**p.__dict__, "spawn_rate": self.spawn_rate})

    def describe(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["isl"], d["osl"] = str(self.isl), str(self.osl)
        return d


def build_workload(o: CampaignOptions) -> Workload:
    if not o.tokenizer:
        raise ValueError("tokenizer: give --tk-tokenizer (a catalog model or a tokenizer folder)")
    tok = load_tokenizer(o.tokenizer)
    syn = SyntheticWorkload(tok, o.isl, o.osl, seed=o.seed, pin_output=o.pin_output)
    if o.workload == "synthetic":
        return syn
    if o.workload == "shared-prefix":
        return SharedPrefixWorkload(syn, num_prefixes=4, prefix_tokens=512)
    if o.workload == "multi-turn":
        return MultiTurnWorkload(tok, o.osl, seed=o.seed, pin_output=o.pin_output)
    if o.workload == "jsonl":
        return JsonlWorkload(tok, Path(o.dataset or DATA / "prompts.jsonl"), o.osl, seed=o.seed,
                             pin_output=o.pin_output)
    raise ValueError(f"workload: unknown {o.workload!r}; choose synthetic, shared-prefix, "
                     "multi-turn or jsonl")


@dataclass
class Campaign:
    """Per-process state: options, workload, optional pacer, recorder, user index counter."""

    options: CampaignOptions
    workload: Workload
    recorder: Recorder
    pacer: Pacer | None = None
    _index: itertools.count = field(default_factory=itertools.count)
    worker_index: int = 0

    def next_user_index(self) -> int:
        return self.worker_index * 100_000 + next(self._index)

    @classmethod
    def get(cls, environment: Any) -> Campaign:
        c = getattr(environment, "tritonkit_campaign", None)
        if c is None:
            o = CampaignOptions.from_parsed(environment.parsed_options)
            rec = getattr(environment, "tritonkit_recorder", None) or Recorder(process_id())
            widx = getattr(environment.runner, "worker_index", 0) or 0
            pacer = Pacer(o.rate, o.arrival, seed=o.seed + widx) if o.rate > 0 else None
            c = cls(o, build_workload(o), rec, pacer, worker_index=widx)
            environment.tritonkit_campaign = c
        return c
