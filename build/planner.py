"""The engine planner: which precision, TP and PP a model needs on a GPU kind, and why.

:func:`plan` returns a :class:`Plan` (precision, TP×PP, limits, per-GPU memory, a roofline
throughput estimate, one explanation line per choice) or raises :class:`PlanError` naming the field
that cannot be honoured, with the numbers.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tritonkit.build.gpus import GpuSpec, get_gpu
from tritonkit.build.memory import GIB, MemoryReport, memory_report
from tritonkit.build.precision import (
    FAMILY_VERSIONS,
    PRECISIONS,
    PrecisionSpec,
    arch_versions,
    preference,
    supported,
    unsupported_reason,
)
from tritonkit.build.roofline import Estimate, estimate
from tritonkit.catalog import ModelSpec, get_model

__all__ = ["Memory", "Plan", "PlanError", "plan", "plan_for_deployment", "serving_parameters"]

PP_SIZES = (1, 2, 4, 8, 16)
AWQ_GROUP = 128
# quantize.py loads the whole 16-bit model on GPUs to calibrate; the Llama README measured a peak
# "above 210 GB" for 70B FP8, i.e. about 1.5x the BF16 weights.
CALIBRATION_FACTOR = 1.5


class PlanError(ValueError):
    """A plan request that cannot be honoured; the message starts with the field name."""


class Memory(BaseModel):
    """Per-GPU memory of the plan (GiB unless named otherwise)."""

    model_config = ConfigDict(frozen=True)

    gpu_memory_gib: float
    weights_gib: float
    activations_gib: float
    runtime_gib: float
    kv_pool_gib: float
    kv_bytes_per_token: int
    kv_cache_tokens: int
    kv_tokens_required: int
    headroom_gib: float


class Plan(BaseModel):
    """Everything the executor needs to build, and the serving side needs to check."""

    model_config = ConfigDict(frozen=True)

    model: str
    checkpoint: str
    model_type: Literal["llama", "qwen2"]
    family: str
    gpu: str
    gpu_name: str
    sm: int
    compute_capability: str
    tp: int
    pp: int
    world_size: int
    nodes: int
    precision: str
    dtype: Literal["bfloat16", "float16"]
    kv_cache_dtype: str
    use_parallel_embedding: bool
    calibration_gpus: int  # GPUs quantize.py needs on the build node (0: no calibration)
    trtllm_versions: str  # e.g. ">=0.12" or ">=0.12,<=0.13"
    max_input_len: int
    max_seq_len: int
    max_batch_size: int
    max_num_tokens: int
    kv_cache_free_gpu_mem_fraction: float
    memory: Memory
    estimate: Estimate
    explanation: list[str]

    # flat views for --format json and callers
    @property
    def weights_gib_per_gpu(self) -> float:
        return self.memory.weights_gib

    @property
    def kv_cache_tokens(self) -> int:
        return self.memory.kv_cache_tokens

    @property
    def est_output_tokens_per_s(self) -> float:
        return self.estimate.output_tokens_per_s

    def summary(self) -> dict[str, object]:
        """The plan as JSON-ready data with the flat headline fields first."""
        head = {
            "model": self.model,
            "gpu": self.gpu,
            "tp": self.tp,
            "pp": self.pp,
            "world_size": self.world_size,
            "precision": self.precision,
            "weights_gib_per_gpu": round(self.weights_gib_per_gpu, 2),
            "kv_cache_tokens": self.kv_cache_tokens,
            "est_output_tokens_per_s": round(self.est_output_tokens_per_s, 1),
            "est_tpot_ms": round(self.estimate.tpot_ms, 2),
        }
        return {**head, **self.model_dump(mode="json")}


def _mem(r: MemoryReport) -> Memory:
    return Memory(
        gpu_memory_gib=r.gpu_memory_gib,
        weights_gib=round(r.weights_gib, 3),
        activations_gib=round(r.activations_gib, 3),
        runtime_gib=r.runtime_gib,
        kv_pool_gib=round(r.kv_pool_gib, 3),
        kv_bytes_per_token=int(r.kv_bytes_per_token),
        kv_cache_tokens=r.kv_cache_tokens,
        kv_tokens_required=r.kv_tokens_required,
        headroom_gib=round(r.headroom_gib, 3),
    )


def _check_limits(spec: ModelSpec, max_input_len: int, max_seq_len: int, max_batch_size: int):
    if max_batch_size < 1:
        raise PlanError(f"max_batch_size: must be >= 1, got {max_batch_size}")
    if max_input_len < 1:
        raise PlanError(f"max_input_len: must be >= 1, got {max_input_len}")
    if max_input_len >= max_seq_len:
        raise PlanError(
            f"max_input_len: {max_input_len} must be below max_seq_len {max_seq_len} "
            "(max_seq_len counts prompt + output)"
        )
    if max_seq_len > spec.max_position_embeddings:
        raise PlanError(
            f"max_seq_len: {max_seq_len} exceeds {spec.name}'s context of "
            f"{spec.max_position_embeddings} tokens"
        )


def _layout_error(spec: ModelSpec, gpu: GpuSpec, tp: int | None, pp: int | None, gpus: int):
    kv, layers = spec.architecture.num_kv_heads, spec.architecture.num_layers
    if tp is not None:
        allowed = [t for t in range(1, kv + 1) if kv % t == 0 and t <= gpu.gpus_per_node]
        if tp < 1 or kv % tp:
            raise PlanError(f"tp: {tp} must divide the {kv} KV heads; allowed: {allowed}")
        if tp > gpu.gpus_per_node:
            raise PlanError(
                f"tp: {tp} exceeds the {gpu.gpus_per_node} GPUs of one node; TP stays inside a "
                f"node, use pp across nodes; allowed: {allowed}"
            )
    if pp is not None and (pp < 1 or layers % pp):
        raise PlanError(f"pp: {pp} must divide the {layers} layers; allowed: {list(PP_SIZES)}")
    if (tp or 1) * (pp or 1) > gpus:
        raise PlanError(
            f"gpus: tp {tp or 1} × pp {pp or 1} needs {(tp or 1) * (pp or 1)} GPUs, "
            f"only {gpus} allowed (--gpus)"
        )


def _precision_error(spec: ModelSpec, gpu: GpuSpec, p: PrecisionSpec, tp: int) -> str | None:
    why = unsupported_reason(p.name, gpu)
    if why:
        return why
    inter = spec.architecture.intermediate_size
    if p.name == "int4_awq" and (inter // tp) % AWQ_GROUP:
        return (
            f"int4_awq at tp {tp}: intermediate_size {inter} / {tp} = {inter / tp:g} is not a "
            f"multiple of the AWQ group size {AWQ_GROUP}"
        )
    return None


def plan(
    model_spec: ModelSpec | str,
    gpu_kind: str,
    gpus: int | None = None,
    tp: int | None = None,
    pp: int | None = None,
    precision: str | None = None,
    *,
    max_input_len: int = 4096,
    max_seq_len: int = 8192,
    max_batch_size: int = 16,
    max_num_tokens: int = 8192,
    kv_cache_free_gpu_mem_fraction: float = 0.9,
    isl: int | None = None,
    osl: int | None = None,
    concurrency: int | Literal["max"] = "max",
) -> Plan:
    """Plan the engine build of ``model_spec`` on ``gpu_kind`` GPUs.

    ``gpus`` caps the GPUs one instance may use (default: one node of 8); ``tp``, ``pp`` and
    ``precision`` pin a choice (then it is checked, not searched). ``isl``, ``osl`` and
    ``concurrency`` set the workload of the throughput estimate (defaults: 1000/1000 clipped to
    the limits, as many sequences as fit).
    """
    spec = get_model(model_spec) if isinstance(model_spec, str) else model_spec
    try:
        gpu = get_gpu(gpu_kind)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    a = spec.architecture
    if precision == "auto":
        precision = None
    if precision is not None and precision not in PRECISIONS:
        raise PlanError(f"precision: unknown {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if gpus is not None and gpus < 1:
        raise PlanError(f"gpus: must be >= 1, got {gpus}")
    if not 0 < kv_cache_free_gpu_mem_fraction <= 1:
        raise PlanError("kv_cache_free_gpu_mem_fraction: must be in (0, 1]")
    _check_limits(spec, max_input_len, max_seq_len, max_batch_size)
    limit = (
        gpus if gpus is not None else ((tp or 1) * (pp or 1) if (tp and pp) else gpu.gpus_per_node)
    )
    _layout_error(spec, gpu, tp, pp, limit)

    if precision is not None:
        why = unsupported_reason(precision, gpu)
        if why:
            raise PlanError(f"precision: {why}; allowed on {gpu.kind}: {', '.join(supported(gpu))}")
        order = [precision]
    else:
        order = preference(gpu)

    tps = [tp] if tp else [t for t in (1, 2, 4, 8) if a.num_kv_heads % t == 0]
    pps = [pp] if pp else [p for p in PP_SIZES if a.num_layers % p == 0]
    tried: list[tuple[str, int, int, MemoryReport | str]] = []
    for pname in order:
        p = PRECISIONS[pname]
        for pp_ in pps:
            for tp_ in tps:
                if tp_ * pp_ > limit or tp_ > gpu.gpus_per_node:
                    continue
                bad = _precision_error(spec, gpu, p, tp_)
                if bad:
                    tried.append((pname, tp_, pp_, bad))
                    continue
                par_emb = p.tool == "convert" and tp_ > 1
                r = memory_report(
                    a,
                    p,
                    gpu.memory_gib,
                    tp=tp_,
                    pp=pp_,
                    parallel_embedding=par_emb,
                    max_batch_size=max_batch_size,
                    max_seq_len=max_seq_len,
                    max_num_tokens=max_num_tokens,
                    kv_fraction=kv_cache_free_gpu_mem_fraction,
                )
                if r.fits:
                    return _build_plan(
                        spec,
                        gpu,
                        p,
                        tp_,
                        pp_,
                        r,
                        tried,
                        limit,
                        explicit=(precision is not None, tp is not None, pp is not None),
                        limits=(max_input_len, max_seq_len, max_batch_size, max_num_tokens),
                        kv_fraction=kv_cache_free_gpu_mem_fraction,
                        workload=(isl, osl, concurrency),
                    )
                tried.append((pname, tp_, pp_, r))
    raise PlanError(_refusal(spec, gpu, tried, limit, tp, pp, precision))


def _describe(r: MemoryReport | str) -> str:
    if isinstance(r, str):
        return r
    if r.kv_pool_gib <= 0:
        return (
            f"weights {r.weights_gib:.1f} GiB + activations {r.activations_gib:.1f} + runtime "
            f"{r.runtime_gib:.1f} exceed the {r.gpu_memory_gib:.1f} GiB per GPU"
        )
    return (
        f"weights {r.weights_gib:.1f} GiB/GPU leave a KV pool of {r.kv_pool_gib:.1f} GiB = "
        f"{r.kv_cache_tokens:,} tokens, below the {r.kv_tokens_required:,} needed"
    )


def _refusal(spec, gpu, tried, limit, tp, pp, precision) -> str:
    field = (
        "tp"
        if tp is not None
        else "pp"
        if pp is not None
        else ("precision" if precision is not None else "gpus")
    )
    what = f"{spec.name} does not fit on {limit}× {gpu.kind} ({gpu.memory_gib:g} GiB each)"
    if not tried:
        return f"{field}: {what}: no TP×PP layout is possible within {limit} GPUs"
    sized = [t for t in tried if isinstance(t[3], MemoryReport)]
    # closest miss: the layout with the most KV room (or the least weight overflow)
    best = max(sized, key=lambda t: (t[3].kv_pool_gib, -t[3].weights_gib)) if sized else tried[-1]
    hint = "" if field != "gpus" else "; allow more GPUs (--gpus), a smaller precision or limits"
    return (
        f"{field}: {what}: best try {best[0]} tp {best[1]} pp {best[2]}: {_describe(best[3])}{hint}"
    )


def _build_plan(spec, gpu, p, tp, pp, r, tried, limit, *, explicit, limits, kv_fraction, workload):
    a = spec.architecture
    max_input_len, max_seq_len, max_batch_size, max_num_tokens = limits
    dtype = "float16" if gpu.sm < 80 else "bfloat16"
    versions = arch_versions(gpu).intersect(FAMILY_VERSIONS[spec.family])
    assert versions is not None
    calib = 0
    if p.tool == "quantize":
        need = a.num_parameters * 2 * CALIBRATION_FACTOR / GIB
        calib = math.ceil(need / gpu.memory_gib)
    world = tp * pp
    why_p = "requested" if explicit[0] else f"first that fits of {' > '.join(preference(gpu))}"
    expl = [
        f"precision: {p.name}: {p.description}; {gpu.kind} is sm{gpu.sm} ({gpu.arch}) "
        f"supporting {', '.join(supported(gpu))} ({why_p})",
    ]
    smaller = [t for t in tried if t[0] == p.name and t[2] == pp and t[1] < tp]
    fails = f"; tp {smaller[-1][1]}: {_describe(smaller[-1][3])}" if smaller else ""
    expl.append(
        f"tp: {tp}: "
        + (
            "requested"
            if explicit[1]
            else f"smallest TP dividing the {a.num_kv_heads} KV heads that fits weights + KV "
            f"for {max_batch_size} × {max_seq_len} tokens"
        )
        + fails
    )
    expl.append(
        f"pp: {pp}: "
        + (
            "requested"
            if explicit[2]
            else "TP alone fits"
            if pp == 1
            else f"no TP alone fits within {limit} GPUs; PP splits the "
            f"{a.num_layers} layers into {pp} stages ({math.ceil(world / gpu.gpus_per_node)} nodes)"
        )
    )
    expl.append(
        f"memory per GPU: weights {r.weights_gib:.1f} GiB, activations {r.activations_gib:.1f}, "
        f"runtime {r.runtime_gib:.1f}, KV pool {r.kv_pool_gib:.1f} GiB = {r.kv_cache_tokens:,} "
        f"tokens ({r.kv_tokens_required:,} needed), headroom {r.headroom_gib:.1f} GiB"
    )
    kvd = "fp8" if p.kv_bytes == 1 else dtype
    expl.append(f"kv cache: {kvd}, {int(r.kv_bytes_per_token) // 1024} KiB/token per GPU")
    vnote = f"TensorRT-LLM {versions}"
    if gpu.sm == 75:
        vnote += " (Turing support was dropped after v0.13)"
    if FAMILY_VERSIONS[spec.family].lo > (0, 9):
        vnote += f" ({spec.family} needs >= {FAMILY_VERSIONS[spec.family].lo[0]}."
        vnote += f"{FAMILY_VERSIONS[spec.family].lo[1]})"
    expl.append(f"versions: {vnote}")
    if calib:
        expl.append(
            f"calibration: quantize.py holds the 16-bit model on GPUs (~{CALIBRATION_FACTOR}× its "
            f"weights): the build node needs >= {calib} {gpu.kind}"
        )
    isl, osl, conc = workload
    est = _estimate(
        spec,
        gpu,
        p,
        tp,
        pp,
        p.tool == "convert" and tp > 1,
        r,
        max_input_len,
        max_seq_len,
        max_batch_size,
        isl,
        osl,
        conc,
    )
    return Plan(
        model=spec.name,
        checkpoint=spec.checkpoint,
        model_type=a.model_type,
        family=spec.family,
        gpu=gpu.kind,
        gpu_name=gpu.name,
        sm=gpu.sm,
        compute_capability=gpu.compute_capability,
        tp=tp,
        pp=pp,
        world_size=world,
        nodes=math.ceil(world / gpu.gpus_per_node),
        precision=p.name,
        dtype=dtype,
        kv_cache_dtype=kvd,
        use_parallel_embedding=p.tool == "convert" and tp > 1,
        calibration_gpus=calib,
        trtllm_versions=str(versions),
        max_input_len=max_input_len,
        max_seq_len=max_seq_len,
        max_batch_size=max_batch_size,
        max_num_tokens=max_num_tokens,
        kv_cache_free_gpu_mem_fraction=kv_fraction,
        memory=_mem(r),
        estimate=est,
        explanation=expl,
    )


def _estimate(spec, gpu, p, tp, pp, par_emb, r, max_in, max_seq, max_batch, isl, osl, conc):
    isl = isl if isl is not None else min(1000, max_in)
    osl = osl if osl is not None else min(1000, max_seq - isl)
    if isl < 1 or osl < 1:
        raise PlanError(f"isl: isl ({isl}) and osl ({osl}) must be >= 1")
    if isl > max_in:
        raise PlanError(f"isl: {isl} exceeds max_input_len {max_in}")
    if isl + osl > max_seq:
        raise PlanError(f"osl: isl {isl} + osl {osl} exceeds max_seq_len {max_seq}")
    fit = r.kv_cache_tokens // (isl + osl)
    notes = []
    if conc == "max":
        n = min(max_batch, fit)
        notes.append(f"concurrency max = min(max_batch_size {max_batch}, KV holds {fit} sequences)")
    else:
        if not isinstance(conc, int) or conc < 1:
            raise PlanError(f"concurrency: must be a positive integer or 'max', got {conc!r}")
        n = min(conc, max_batch, fit)
        if n < conc:
            notes.append(
                f"concurrency {conc} capped at {n} (max_batch_size {max_batch}, "
                f"KV holds {fit} sequences); the rest queue"
            )
    return estimate(
        spec.architecture,
        gpu,
        p,
        tp=tp,
        pp=pp,
        parallel_embedding=par_emb,
        isl=isl,
        osl=osl,
        concurrency=max(n, 1),
        notes=notes,
    )


def plan_for_deployment(deployment, **workload) -> Plan:
    """The plan a ``tensorrtllm`` deployment pins (its gpu kind, TP, PP, precision and limits)."""
    d = deployment
    return plan(
        d.spec,
        d.gpu.kind,
        gpus=max(d.gpu.count, d.world_size),
        tp=d.parallelism.tp,
        pp=d.parallelism.pp,
        precision=None if d.precision == "auto" else d.precision,
        max_input_len=d.limits.max_input_len,
        max_seq_len=d.limits.max_seq_len,
        max_batch_size=d.limits.max_batch_size,
        kv_cache_free_gpu_mem_fraction=d.tensorrtllm.kv_cache_free_gpu_mem_fraction,
        **workload,
    )


def serving_parameters(p: Plan) -> dict[str, object]:
    """The TensorRT-LLM backend parameters that follow from a plan (for `render`/`serve`)."""
    return {
        "world_size": p.world_size,
        "tp": p.tp,
        "pp": p.pp,
        "gpus_per_node": min(p.world_size, get_gpu(p.gpu).gpus_per_node),
        "max_batch_size": p.max_batch_size,
        "max_input_len": p.max_input_len,
        "max_seq_len": p.max_seq_len,
        "max_num_tokens": p.max_num_tokens,
        "max_beam_width": 1,
        "kv_cache_free_gpu_mem_fraction": p.kv_cache_free_gpu_mem_fraction,
        "max_tokens_in_paged_kv_cache": p.memory.kv_cache_tokens,
        "kv_cache_dtype": p.kv_cache_dtype,
        "enable_chunked_context": p.sm >= 80,  # needs paged context FMHA (enabled from sm80)
        "enable_kv_cache_reuse": p.sm >= 80,
    }
