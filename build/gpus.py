"""The GPU kinds tritonkit plans for: memory, architecture, bandwidth and peak throughput.

Figures are NVIDIA data-sheet values (dense, i.e. without 2:4 sparsity). ``memory_gib`` is what
``nvidia-smi`` reports as total memory (a little below the marketing "GB"), because that is what
the TensorRT-LLM runtime can allocate from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GPUS", "GpuSpec", "get_gpu"]


@dataclass(frozen=True)
class GpuSpec:
    """One GPU kind (one SKU) as the planner sees it."""

    kind: str
    name: str
    memory_gib: float
    sm: int  # compute capability as 75, 80, 86, 89, 90
    mem_bandwidth_gbs: float  # HBM/GDDR peak, GB/s
    bf16_tflops: float  # dense tensor-core BF16 (FP16 on Turing, which has no BF16)
    fp8_tflops: float  # dense FP8; 0 where the architecture has none
    int8_tops: float  # dense INT8 tensor-core
    nvlink: bool  # all GPUs of a node joined by NVLink/NVSwitch (else PCIe)
    link_gbs: float  # per-GPU bandwidth one all-reduce can use, GB/s (NVLink or PCIe)
    gpus_per_node: int = 8

    @property
    def compute_capability(self) -> str:
        """As ``nvidia-smi --query-gpu=compute_cap`` prints it, e.g. ``9.0``."""
        return f"{self.sm // 10}.{self.sm % 10}"

    @property
    def arch(self) -> str:
        return {75: "Turing", 80: "Ampere", 86: "Ampere", 89: "Ada", 90: "Hopper"}[self.sm]


GPUS: dict[str, GpuSpec] = {
    g.kind: g
    for g in (
        # T4: 16 GB GDDR6, 320 GB/s, 65 FP16 / 130 INT8 tensor TFLOPs, PCIe Gen3 x16.
        GpuSpec("t4", "Tesla T4", 15.0, 75, 320, 65, 0, 130, False, 12),
        # A10G (AWS g5): 24 GB GDDR6, 600 GB/s, PCIe Gen4.
        GpuSpec("a10g", "NVIDIA A10G", 22.5, 86, 600, 70, 0, 140, False, 25),
        # A40: 48 GB GDDR6, 696 GB/s; NVLink bridges only join pairs, so PCIe for TP > 2.
        GpuSpec("a40", "NVIDIA A40", 45.0, 86, 696, 150, 0, 300, False, 25),
        # A100 SXM4: 312 BF16 / 624 INT8 TFLOPs, NVLink 3 (600 GB/s).
        GpuSpec("a100-40gb", "NVIDIA A100-SXM4-40GB", 40.0, 80, 1555, 312, 0, 624, True, 300),
        GpuSpec("a100-80gb", "NVIDIA A100-SXM4-80GB", 80.0, 80, 2039, 312, 0, 624, True, 300),
        # L40S: 48 GB GDDR6, 864 GB/s, 362 BF16 / 733 FP8 dense, PCIe Gen4, no NVLink.
        GpuSpec("l40s", "NVIDIA L40S", 45.0, 89, 864, 362, 733, 733, False, 25),
        # H100 SXM5 80 GB: 3.35 TB/s, 989 BF16 / 1979 FP8 dense, NVLink 4 (900 GB/s).
        GpuSpec("h100", "NVIDIA H100 80GB HBM3", 79.6, 90, 3350, 989, 1979, 1979, True, 450),
        # H200 SXM 141 GB: 4.8 TB/s, same compute as H100.
        GpuSpec("h200", "NVIDIA H200", 140.4, 90, 4800, 989, 1979, 1979, True, 450),
    )
}


def get_gpu(kind: str) -> GpuSpec:
    """The GPU called ``kind``; a ValueError naming the allowed kinds otherwise."""
    try:
        return GPUS[kind]
    except KeyError:
        raise ValueError(f"gpu: unknown GPU kind {kind!r}; allowed: {', '.join(GPUS)}") from None
