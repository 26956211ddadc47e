"""Roofline estimate of steady-state decode throughput for a planned engine.

One decode step of B sequences with mean context C on one GPU costs

    t_mem  = (weight bytes + B·C·KV bytes/token) / (bandwidth · BW_EFF)
    t_comp = B·(2·linear params + 4·L·q_dim·C) / tp / (peak · DECODE_MFU)
    t_comm = 2 all-reduces per layer of B·hidden·2 bytes (ring, LINK_EFF, plus latency)
    t_step = max(t_mem, t_comp) + t_comm + STEP_OVERHEAD_S

PP stages run one after the other (no micro-batch overlap is assumed: PP buys memory, not speed),
so a token takes pp·t_step. Each request's prefill (2·params·isl + causal attention FLOPs, at
PREFILL_MFU over all GPUs) interrupts the batch once (in-flight batching), so for concurrency N

    cycle = osl·pp·t_step + N·t_prefill,  output tok/s = N·osl / cycle,  TPOT = cycle / osl.

The efficiency factors below are what a well-tuned TensorRT-LLM engine reaches in practice; the
estimate is checked against NVIDIA's published Llama-3.x-70B figures (docs/build.md, tests).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tritonkit.build.gpus import GpuSpec
from tritonkit.build.memory import kv_bytes_per_token, weight_bytes
from tritonkit.build.precision import PrecisionSpec
from tritonkit.catalog import Architecture

__all__ = ["EFFICIENCY", "Estimate", "estimate"]

BW_EFF = 0.70  # share of peak memory bandwidth decode GEMV/attention kernels reach
DECODE_MFU = 0.5  # share of peak tensor FLOPs for decode GEMMs at large batch
PREFILL_MFU = 0.35  # share of peak tensor FLOPs for prefill (FP8 peaks are hardest to reach)
LINK_EFF = 0.7  # share of NVLink/PCIe bandwidth an all-reduce reaches
ALLREDUCE_LATENCY_NVLINK_S = 8e-6
ALLREDUCE_LATENCY_PCIE_S = 25e-6
STEP_OVERHEAD_S = 3e-4  # scheduling, sampling, kernel launches per decode step

EFFICIENCY = {
    "bw_eff": BW_EFF,
    "decode_mfu": DECODE_MFU,
    "prefill_mfu": PREFILL_MFU,
    "link_eff": LINK_EFF,
    "allreduce_latency_nvlink_s": ALLREDUCE_LATENCY_NVLINK_S,
    "allreduce_latency_pcie_s": ALLREDUCE_LATENCY_PCIE_S,
    "step_overhead_s": STEP_OVERHEAD_S,
}


class Estimate(BaseModel):
    """The roofline estimate for one workload."""

    model_config = ConfigDict(frozen=True)

    isl: int
    osl: int
    concurrency: int
    step_ms: float  # one decode step through all PP stages
    bound: str  # "memory" or "compute": what limits a decode step
    prefill_ms: float  # one request's prefill on the whole instance
    tpot_ms: float  # mean time per output token a user sees (decode + others' prefills)
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    notes: list[str] = []


def _peak_tflops(gpu: GpuSpec, p: PrecisionSpec) -> float:
    return {"fp8": gpu.fp8_tflops, "int8": gpu.int8_tops}.get(p.compute, gpu.bf16_tflops)


def estimate(
    a: Architecture,
    gpu: GpuSpec,
    p: PrecisionSpec,
    *,
    tp: int,
    pp: int,
    parallel_embedding: bool,
    isl: int,
    osl: int,
    concurrency: int,
    notes: list[str] | None = None,
) -> Estimate:
    """Steady-state output tokens/s and TPOT for ``concurrency`` sequences of isl+osl tokens."""
    n = concurrency
    ctx = isl + osl / 2
    q_dim = a.num_attention_heads * a.head_dim
    emb = a.vocab_size * a.hidden_size
    params = a.num_parameters
    dense = params - emb  # the embedding lookup costs no FLOPs
    peak = _peak_tflops(gpu, p) * 1e12

    w = weight_bytes(a, p, tp, pp, parallel_embedding)
    kv = kv_bytes_per_token(a, p, tp, pp)
    t_mem = (w + n * ctx * kv) / (gpu.mem_bandwidth_gbs * 1e9 * BW_EFF)
    flops = n * (2 * dense + 4 * a.num_layers * q_dim * ctx) / (tp * pp)
    t_comp = flops / (peak * DECODE_MFU)
    t_comm = 0.0
    if tp > 1:
        lat = ALLREDUCE_LATENCY_NVLINK_S if gpu.nvlink else ALLREDUCE_LATENCY_PCIE_S
        msg = n * a.hidden_size * 2
        one = 2 * (tp - 1) / tp * msg / (gpu.link_gbs * 1e9 * LINK_EFF) + lat
        t_comm = 2 * (a.num_layers / pp) * one
    t_stage = max(t_mem, t_comp) + t_comm + STEP_OVERHEAD_S
    t_step = pp * t_stage

    pre_flops = 2 * dense * isl + 2 * a.num_layers * q_dim * isl * isl
    t_prefill = pre_flops / (tp * pp * peak * PREFILL_MFU)
    cycle = osl * t_step + n * t_prefill
    tps = n * osl / cycle
    return Estimate(
        isl=isl,
        osl=osl,
        concurrency=n,
        step_ms=t_step * 1e3,
        bound="memory" if t_mem >= t_comp else "compute",
        prefill_ms=t_prefill * 1e3,
        tpot_ms=cycle / osl * 1e3,
        output_tokens_per_s=tps,
        output_tokens_per_s_per_gpu=tps / (tp * pp),
        notes=notes or [],
    )
