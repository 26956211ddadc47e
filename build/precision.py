"""Which precisions each GPU architecture supports, with which TensorRT-LLM versions, and what a
precision costs in bytes. Facts: shared/reference/trtllm-build.md §1, §2, §4.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonkit.build.gpus import GpuSpec

__all__ = [
    "PRECISIONS",
    "PrecisionSpec",
    "Version",
    "VersionRange",
    "parse_version",
    "preference",
    "supported",
    "unsupported_reason",
]

Version = tuple[int, int]


def parse_version(text: str) -> Version:
    """``"0.13.0"`` / ``"0.17.0.post1"`` / ``"1.0.0rc2"`` -> ``(0, 13)`` (major, minor)."""
    parts = text.strip().lstrip("v").split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        raise ValueError(f"not a TensorRT-LLM version: {text!r}") from None


@dataclass(frozen=True)
class VersionRange:
    """Inclusive range of TensorRT-LLM (major, minor) versions; ``hi=None`` means no upper bound."""

    lo: Version
    hi: Version | None = None

    def __contains__(self, v: Version) -> bool:
        return v >= self.lo and (self.hi is None or v <= self.hi)

    def __str__(self) -> str:
        lo = f">={self.lo[0]}.{self.lo[1]}"
        return lo if self.hi is None else f"{lo},<={self.hi[0]}.{self.hi[1]}"

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Inverse of ``str()``: ``">=0.12"`` or ``">=0.12,<=0.13"``."""
        lo, hi = None, None
        for part in text.split(","):
            part = part.strip()
            if part.startswith(">="):
                lo = parse_version(part[2:])
            elif part.startswith("<="):
                hi = parse_version(part[2:])
            else:
                raise ValueError(f"not a version range: {text!r}")
        if lo is None:
            raise ValueError(f"not a version range: {text!r}")
        return cls(lo, hi)

    def intersect(self, other: VersionRange) -> VersionRange | None:
        lo = max(self.lo, other.lo)
        his = [h for h in (self.hi, other.hi) if h is not None]
        hi = min(his) if his else None
        return None if hi is not None and hi < lo else VersionRange(lo, hi)


@dataclass(frozen=True)
class PrecisionSpec:
    """One weight/activation precision of a TensorRT-LLM engine."""

    name: str
    weight_bytes: float  # bytes per quantized (linear-layer) weight, scales included
    min_sm: int
    max_sm: int
    tool: str  # "convert" (convert_checkpoint.py) or "quantize" (quantize.py)
    description: str
    kv_bytes: int = 2  # bytes per KV-cache element
    compute: str = "bf16"  # which peak the GEMMs run at: bf16, fp8 or int8


PRECISIONS: dict[str, PrecisionSpec] = {
    p.name: p
    for p in (
        PrecisionSpec("bf16", 2.0, 80, 90, "convert", "BF16 weights and activations (lossless)"),
        PrecisionSpec("fp16", 2.0, 75, 90, "convert", "FP16 weights and activations"),
        PrecisionSpec(
            "fp8", 1.0, 89, 90, "quantize", "FP8 W8A8 + FP8 KV cache (ModelOpt PTQ)", 1, "fp8"
        ),
        PrecisionSpec("int8_wo", 1.0, 75, 90, "convert", "INT8 weight-only (W8A16)"),
        # group-128 AWQ: 4 bits + one FP16 scale per 128 weights
        PrecisionSpec(
            "int4_awq", 0.5 + 2 / 128, 80, 90, "quantize", "INT4 AWQ weight-only (W4A16)"
        ),
        PrecisionSpec(
            "int8_sq", 1.0, 80, 90, "quantize", "INT8 SmoothQuant W8A8 (ModelOpt PTQ)", 2, "int8"
        ),
    )
}

# TensorRT-LLM dropped Turing after v0.13 (maintainers in #2620/#2619).
_TURING = VersionRange((0, 9), (0, 13))
# First release with each family (Llama-3.1 and Qwen2 arrived in v0.12).
FAMILY_VERSIONS: dict[str, VersionRange] = {
    "llama3": VersionRange((0, 9)),
    "llama3.1": VersionRange((0, 12)),
    "qwen2.5": VersionRange((0, 12)),
}


def arch_versions(gpu: GpuSpec) -> VersionRange:
    """TensorRT-LLM versions that support this GPU's architecture."""
    return _TURING if gpu.sm == 75 else VersionRange((0, 9))


def unsupported_reason(precision: str, gpu: GpuSpec) -> str | None:
    """Why ``precision`` cannot run on ``gpu`` (one sentence), or None when it can."""
    p = PRECISIONS.get(precision)
    if p is None:
        return f"unknown precision {precision!r}"
    if gpu.sm < p.min_sm:
        need = {80: "sm80+ (Ampere or newer)", 89: "sm89/sm90 (Ada or Hopper)"}[p.min_sm]
        return f"{precision} needs {need}; {gpu.kind} is sm{gpu.sm} ({gpu.arch})"
    return None


def supported(gpu: GpuSpec) -> list[str]:
    """Precisions that run on ``gpu``."""
    return [n for n in PRECISIONS if unsupported_reason(n, gpu) is None]


def preference(gpu: GpuSpec) -> list[str]:
    """Automatic choice order: best quality-per-byte first, then smaller weights.

    Hopper/Ada: FP8 (near-lossless, the format NVIDIA's own 70B figures use), then INT4 AWQ
    (BF16 only on request: where FP8 does not fit, BF16 cannot either).
    Ampere: BF16, then INT8 weight-only, then INT4 AWQ. Turing: FP16, then INT8 weight-only.
    SmoothQuant is never chosen automatically (needs calibration quality checks); ask for it.
    """
    if gpu.sm >= 89:
        return ["fp8", "int4_awq"]
    if gpu.sm >= 80:
        return ["bf16", "int8_wo", "int4_awq"]
    return ["fp16", "int8_wo"]
