"""The deployment description: one typed, validated YAML file every generated artefact derives from.

Load with :func:`load_deployment`. Every field has a default except ``model``; unknown keys and bad
values raise :class:`DeploymentError` whose message names the field path and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tritonkit.catalog import CatalogError, ModelSpec, get_model, model_names

__all__ = [
    "GPU_KINDS",
    "Deployment",
    "DeploymentError",
    "load_deployment",
    "parse_deployment",
]

GpuKind = Literal["t4", "a10g", "a40", "a100-40gb", "a100-80gb", "l40s", "h100", "h200"]
GPU_KINDS: tuple[str, ...] = GpuKind.__args__  # type: ignore[attr-defined]
Precision = Literal["auto", "fp16", "bf16", "fp8", "int8_wo", "int4_awq", "int8_sq"]


class DeploymentError(ValueError):
    """A deployment file is wrong; the message names each bad field and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GpuSection(_Section):
    """Which GPUs a `tensorrtllm` deployment runs on."""

    kind: GpuKind = "h100"
    count: int = Field(1, ge=1, le=64, description="GPUs per node available to one instance")


class ParallelismSection(_Section):
    tp: int = Field(1, ge=1, le=64, description="tensor parallel size (must divide the KV heads)")
    pp: int = Field(1, ge=1, le=16, description="pipeline parallel size")


class LimitsSection(_Section):
    """Sequence and batch limits; the engine is built for them and requests are checked against them."""

    max_input_len: int = Field(4096, ge=1, description="longest prompt in tokens")
    max_seq_len: int = Field(8192, ge=2, description="prompt + output tokens")
    max_batch_size: int = Field(16, ge=1, le=4096, description="sequences decoded together")
    default_max_tokens: int = Field(
        1024,
        ge=1,
        description="cap for max_tokens when a request omits it (else remaining context)",
    )
    max_stop_words: int = Field(64, ge=0, description="most stop strings one request may send")
    max_request_bytes: int = Field(4 << 20, ge=1024, description="largest text_input/messages")

    @model_validator(mode="after")
    def _input_fits(self) -> LimitsSection:
        if self.max_input_len >= self.max_seq_len:
            raise ValueError(
                f"max_input_len ({self.max_input_len}) must be below max_seq_len "
                f"({self.max_seq_len}) so at least one token can be generated"
            )
        return self


class ServingSection(_Section):
    """How Triton serves the ensemble."""

    streaming: bool = Field(True, description="decoupled engine: responses per step")
    exclude_input_in_output: bool = True
    system_prompt: str | None = Field(
        None, description="override the catalog's default system prompt ('' = none)"
    )
    date_string: str | None = Field(
        None, description="Llama-3.1 template date_string (template default when unset)"
    )
    preprocessing_instances: int = Field(1, ge=1, le=64)
    postprocessing_instances: int = Field(1, ge=1, le=64)
    max_queue_delay_us: int = Field(0, ge=0)
    max_queue_size: int = Field(0, ge=0, description="0 = unbounded")


class TensorrtLLMSection(_Section):
    """Parameters of TensorRT-LLM's C++ backend model (`engine: tensorrtllm` only)."""

    engine_dir: str = Field("/engines/current", description="folder holding rank*.engine")
    batching_strategy: Literal["inflight_fused_batching", "V1"] = "inflight_fused_batching"
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = (
        "guaranteed_no_evict"
    )
    kv_cache_free_gpu_mem_fraction: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens_in_paged_kv_cache: int | None = Field(
        None, ge=1, description="KV budget in tokens (unset: what the engine plan says fits)"
    )
    enable_kv_cache_reuse: bool | None = Field(None, description="unset: on from sm80 (plan)")
    enable_chunked_context: bool | None = Field(None, description="unset: on from sm80 (plan)")
    max_beam_width: int = Field(1, ge=1, le=8)
    cancellation_check_period_ms: int = Field(100, ge=1)
    tensorrt_llm_version: str | None = Field(
        None, description="version the engines were built with"
    )


class ReferenceEngineSection(_Section):
    """The CPU reference engine: a small Llama-architecture transformer with seeded weights."""

    seed: int = Field(0, ge=0, description="weight seed")
    num_layers: int = Field(2, ge=1, le=32)
    hidden_size: int = Field(64, ge=8, le=4096)
    num_attention_heads: int = Field(4, ge=1)
    num_kv_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(128, ge=8)
    max_batch_size: int = Field(16, ge=1, le=1024, description="sequences decoded together")
    token_delay_ms: float = Field(0.0, ge=0.0, le=10_000, description="sleep per decoding step")
    compute: Literal["model", "none"] = Field(
        "model", description="'none' emits tokens without running the transformer (benchmarks)"
    )

    @model_validator(mode="after")
    def _heads(self) -> ReferenceEngineSection:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_kv_heads")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("head size (hidden_size / num_attention_heads) must be even for RoPE")
        return self


class Deployment(_Section):
    """One deployment: a catalog model served by one engine kind with its limits."""

    model: str | None = Field(
        None,
        description="catalog model name; may be omitted when checkpoint_dir holds a Llama-3/3.1 "
        "or Qwen2.5 checkpoint whose tokenizer_config.json has a chat_template",
    )
    name: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", description="served name (default: model)"
    )
    engine: Literal["reference", "tensorrtllm"] = "reference"
    checkpoint_dir: str | None = Field(
        None,
        description="a local HF checkpoint folder; its tokenizer files override the derived ones",
    )
    tokenizer_dir: str | None = Field(None, description="explicit tokenizer folder")
    precision: Precision = "auto"
    gpu: GpuSection = Field(default_factory=GpuSection)
    parallelism: ParallelismSection = Field(default_factory=ParallelismSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    serving: ServingSection = Field(default_factory=ServingSection)
    tensorrtllm: TensorrtLLMSection = Field(default_factory=TensorrtLLMSection)
    reference: ReferenceEngineSection = Field(default_factory=ReferenceEngineSection)

    @model_validator(mode="after")
    def _cross_checks(self) -> Deployment:
        if self.model is None and self.checkpoint_dir is None:
            raise ValueError(
                f"model: required (a catalog model: {', '.join(model_names())}), unless "
                "checkpoint_dir names a checkpoint folder with a chat template"
            )
        if self.checkpoint_dir is None and self.model not in model_names():
            raise ValueError(
                f"model: unknown catalog model {self.model!r}; allowed: {', '.join(model_names())}"
                " (or set checkpoint_dir to serve a checkpoint folder without a catalog entry)"
            )
        try:
            spec = self.spec
        except CatalogError as exc:
            raise ValueError(str(exc)) from None
        if self.limits.max_seq_len > spec.max_position_embeddings:
            raise ValueError(
                f"limits.max_seq_len ({self.limits.max_seq_len}) exceeds {self.model}'s context "
                f"of {spec.max_position_embeddings} tokens"
            )
        kv = spec.architecture.num_kv_heads
        if kv % self.parallelism.tp:
            allowed = [t for t in range(1, kv + 1) if kv % t == 0]
            raise ValueError(
                f"parallelism.tp ({self.parallelism.tp}) must divide the {kv} KV heads; "
                f"allowed: {allowed}"
            )
        return self

    # ---- derived values -------------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """The catalog entry, or one derived from `checkpoint_dir` for an uncatalogued model."""
        if self.model in model_names():
            return get_model(self.model)
        from tritonkit.catalog.checkpoint import spec_from_checkpoint

        return spec_from_checkpoint(str(Path(self.checkpoint_dir).resolve()), self.model)

    @property
    def served_name(self) -> str:
        return self.name or self.spec.name

    def step_name(self, step: str) -> str:
        """Composing-model name, prefixed so several deployments can share one server."""
        return f"{self.served_name}-{step}"

    @property
    def world_size(self) -> int:
        return self.parallelism.tp * self.parallelism.pp

    @property
    def system_prompt(self) -> str | None:
        """The default system prompt in force: the deployment's override, else the catalog's."""
        if self.serving.system_prompt is not None:
            return self.serving.system_prompt or None
        return self.spec.default_system_prompt

    def fingerprint(self) -> str:
        """A short hash of everything that changes the served artefacts."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid deployment"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"{msg}; got {e.get('input')!r}"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def parse_deployment(data: dict[str, Any], source: str = "<deployment>") -> Deployment:
    """Validate a mapping (as read from YAML) into a Deployment."""
    if not isinstance(data, dict):
        raise DeploymentError(
            f"{source}: a deployment must be a mapping, got {type(data).__name__}"
        )
    try:
        return Deployment.model_validate(data)
    except ValidationError as err:
        raise DeploymentError(_format_errors(err, source)) from None


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate a deployment YAML file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(f"{p}: no such deployment file") from None
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{p}: not valid YAML: {exc}") from None
    return parse_deployment(data or {}, source=str(p))
