"""Exact command lines of an engine build: convert_checkpoint.py or quantize.py, then trtllm-build.

Flags follow shared/reference/trtllm-build.md §2–§3. Flags renamed across TensorRT-LLM releases are
chosen by version and, where the installed ``trtllm-build --help`` is available, by its flag list.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from tritonkit.build.gpus import get_gpu
from tritonkit.build.planner import Plan
from tritonkit.build.precision import PRECISIONS, Version

__all__ = ["Step", "Toolchain", "build_steps", "format_steps", "help_flags"]

CHECKPOINT_SUBDIR = "checkpoint"
ENGINE_SUBDIR = "engine"
QFORMAT = {"fp8": "fp8", "int4_awq": "int4_awq", "int8_sq": "int8_sq"}
CALIB_SIZE = {"fp8": 512, "int4_awq": 32, "int8_sq": 512}  # READMEs: 512, and 32 for AWQ


@dataclass(frozen=True)
class Toolchain:
    """Where the TensorRT-LLM tools are and which version they are."""

    version: Version
    python: str = "python3"
    trtllm_root: str = "/opt/TensorRT-LLM"  # a TensorRT-LLM source tree (for examples/)
    convert_script: str | None = None  # explicit path, overrides the one under trtllm_root
    quantize_script: str | None = None
    trtllm_build: str = "trtllm-build"
    build_flags: frozenset[str] | None = None  # from `trtllm-build --help`, when available
    workers: int | None = None  # parallel per-rank builds (default: min(world, GPUs per node))

    @property
    def version_str(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True)
class Step:
    """One command of the build and the folder it fills."""

    name: str  # "convert" | "quantize" | "build"
    argv: list[str]
    output_dir: str
    dropped: list[str] = field(default_factory=list)  # flags the installed trtllm-build lacks

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)


def help_flags(help_text: str) -> frozenset[str]:
    """The ``--flags`` a ``--help`` text lists."""
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z0-9_]*)", help_text))


def convert_script(model_type: str, tc: Toolchain) -> str:
    """convert_checkpoint.py of the model family; moved to examples/models/core/ after ~v0.15."""
    if tc.convert_script:
        return tc.convert_script
    sub = {"llama": "llama", "qwen2": "qwen"}[model_type]
    if tc.version <= (0, 15):
        return f"{tc.trtllm_root}/examples/{sub}/convert_checkpoint.py"
    return f"{tc.trtllm_root}/examples/models/core/{sub}/convert_checkpoint.py"


def checkpoint_step(plan: Plan, checkpoint_dir: str, out_dir: str, tc: Toolchain) -> Step:
    """convert_checkpoint.py (16-bit, INT8 weight-only) or quantize.py (FP8, INT4 AWQ, INT8 SQ)."""
    out = f"{out_dir}/{CHECKPOINT_SUBDIR}"
    p = PRECISIONS[plan.precision]
    par = ["--tp_size", str(plan.tp), "--pp_size", str(plan.pp)]
    if p.tool == "quantize":
        script = tc.quantize_script or f"{tc.trtllm_root}/examples/quantization/quantize.py"
        argv = [
            tc.python,
            script,
            "--model_dir",
            checkpoint_dir,
            "--output_dir",
            out,
            "--dtype",
            plan.dtype,
            "--qformat",
            QFORMAT[p.name],
        ]
        if p.name == "fp8":
            argv += ["--kv_cache_dtype", "fp8"]
        if p.name == "int4_awq":
            argv += ["--awq_block_size", "128"]
        argv += ["--calib_size", str(CALIB_SIZE[p.name]), *par]
        return Step("quantize", argv, out)
    argv = [
        tc.python,
        convert_script(plan.model_type, tc),
        "--model_dir",
        checkpoint_dir,
        "--output_dir",
        out,
        "--dtype",
        plan.dtype,
        *par,
    ]
    if plan.use_parallel_embedding:
        argv += ["--use_parallel_embedding"]
    if p.name == "int8_wo":
        argv += ["--use_weight_only", "--weight_only_precision", "int8"]
    if plan.model_type == "llama":
        argv += ["--load_by_shard"]  # Llama converter only; reads HF shards one at a time
    return Step("convert", argv, out)


def engine_step(plan: Plan, out_dir: str, tc: Toolchain) -> Step:
    """trtllm-build with the plan's limits and the plugin flags for its GPU and version."""
    gpu = get_gpu(plan.gpu)
    v, dt = tc.version, plan.dtype
    ckpt, out = f"{out_dir}/{CHECKPOINT_SUBDIR}", f"{out_dir}/{ENGINE_SUBDIR}"
    flags: list[tuple[str, str | None]] = [
        ("--max_batch_size", str(plan.max_batch_size)),
        ("--max_input_len", str(plan.max_input_len)),
    ]
    known = tc.build_flags
    new_seq = ("--max_seq_len" in known) if known else v >= (0, 12)
    if new_seq:
        flags.append(("--max_seq_len", str(plan.max_seq_len)))
    else:  # before v0.12: output length only
        flags.append(("--max_output_len", str(plan.max_seq_len - plan.max_input_len)))
    flags += [
        ("--max_num_tokens", str(plan.max_num_tokens)),
        ("--gpt_attention_plugin", dt),
        ("--remove_input_padding", "enable"),
        ("--context_fmha", "enable"),
    ]
    if plan.precision != "fp8":
        flags.append(("--gemm_plugin", dt))
    elif plan.max_batch_size <= 4:  # the FP8 GEMM plugin targets small batches
        flags.append(("--gemm_plugin", "fp8"))
    new_kv = ("--kv_cache_type" in known) if known else v >= (0, 13)
    flags.append(("--kv_cache_type", "paged") if new_kv else ("--paged_kv_cache", "enable"))
    if plan.sm >= 80:  # chunked context and KV reuse need it; not confirmed on Turing
        flags.append(("--use_paged_context_fmha", "enable"))
    if plan.precision == "fp8" and v >= (0, 12):
        flags.append(("--use_fp8_context_fmha", "enable"))
    if plan.tp > 1 and not gpu.nvlink and v < (0, 12):
        flags.append(("--use_custom_all_reduce", "disable"))  # removed in v0.12
    workers = tc.workers or min(plan.world_size, gpu.gpus_per_node)
    flags.append(("--workers", str(workers)))
    argv = [tc.trtllm_build, "--checkpoint_dir", ckpt, "--output_dir", out]
    dropped = []
    for name, value in flags:
        if known is not None and name not in known:
            dropped.append(name)
            continue
        argv += [name] if value is None else [name, value]
    return Step("build", argv, out, dropped)


def build_steps(plan: Plan, checkpoint_dir: str, out_dir: str, tc: Toolchain) -> list[Step]:
    """The two steps of a build, in order."""
    return [checkpoint_step(plan, checkpoint_dir, out_dir, tc), engine_step(plan, out_dir, tc)]


def format_steps(steps: list[Step]) -> str:
    """Shell-ready text of the steps, one command per paragraph."""
    out = []
    for s in steps:
        out.append(f"# {s.name}")
        groups: list[list[str]] = []
        for a in s.argv:
            if a.startswith("--") or not groups:
                groups.append([a])
            else:
                groups[-1].append(a)
        out.append(" \\\n    ".join(shlex.join(g) for g in groups))
        if s.dropped:
            out.append(f"# (not supported by this trtllm-build: {', '.join(s.dropped)})")
    return "\n".join(out) + "\n"
