"""The model catalog: every fact tritonkit knows about a servable model, loaded from models.yaml.

One home for these facts (architecture numbers, special tokens, stop ids, chat template name,
default system prompt). Everything else imports them from here.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Architecture",
    "CatalogError",
    "ModelSpec",
    "TokenizerSpec",
    "catalog",
    "chat_template_names",
    "chat_template_source",
    "get_model",
    "model_names",
]

TokenizerRecipe = Literal["llama3", "llama3-bos", "llama3.1", "tulu3", "qwen2.5"]


class CatalogError(ValueError):
    """A catalog name or entry is wrong; the message names what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Architecture(_Strict):
    """The transformer's shape, as in the checkpoint's config.json."""

    model_type: Literal["llama", "qwen2"]
    hf_architecture: str
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    rope_theta: float
    rope_scaling: dict[str, Any] | None = None
    rms_norm_eps: float
    qkv_bias: bool
    tie_word_embeddings: bool = False
    torch_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"

    @property
    def num_parameters(self) -> int:
        """Parameter count computed from the shapes (embeddings + layers + norm + lm_head)."""
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        q = self.num_attention_heads * self.head_dim
        attn = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.qkv_bias else 0)
        mlp = 3 * h * self.intermediate_size
        per_layer = attn + mlp + 2 * h
        emb = self.vocab_size * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return emb + self.num_layers * per_layer + h + head


class TokenizerSpec(_Strict):
    """Which tokenizer files to derive and how a rendered prompt is encoded."""

    recipe: TokenizerRecipe
    bos_token: str | None
    eos_token: str
    pad_token: str | None
    add_special_tokens: bool = Field(
        description="encode the rendered chat prompt with special tokens (True only when the "
        "template writes no BOS but the model expects one, e.g. Tulu)"
    )


class ModelSpec(_Strict):
    """One catalog entry."""

    name: str
    checkpoint: str
    family: Literal["llama3", "llama3.1", "qwen2.5"]
    note: str = ""
    architecture: Architecture
    max_position_embeddings: int = Field(gt=0)
    tokenizer: TokenizerSpec
    bos_token_id: int | None
    eos_token_id: int
    pad_token_id: int | None
    stop_token_ids: tuple[int, ...] = Field(min_length=1)
    chat_template: str
    default_system_prompt: str | None = None
    generation_defaults: dict[str, float | int] = Field(default_factory=dict)

    @field_validator("chat_template")
    @classmethod
    def _template_exists(cls, v: str) -> str:
        if v not in chat_template_names():
            raise ValueError(
                f"chat_template {v!r} has no templates/{v}.jinja; "
                f"allowed: {', '.join(chat_template_names())}"
            )
        return v

    @field_validator("stop_token_ids")
    @classmethod
    def _eos_first_class(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"stop_token_ids has duplicates: {list(v)}")
        return v

    @property
    def end_id(self) -> int:
        """The single end id TensorRT-LLM's `end_id` input takes (first stop id)."""
        return self.stop_token_ids[0]

    @property
    def pad_id(self) -> int:
        """The pad id for TensorRT-LLM's `pad_id` (pad token, else eos, as the backend does)."""
        return self.pad_token_id if self.pad_token_id is not None else self.eos_token_id


@functools.cache
def catalog() -> dict[str, ModelSpec]:
    """All catalog entries by name, validated once."""
    text = resources.files(__package__).joinpath("models.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    out: dict[str, ModelSpec] = {}
    for name, entry in raw["models"].items():
        try:
            out[name] = ModelSpec(name=name, **entry)
        except Exception as exc:  # pydantic.ValidationError, with field paths
            raise CatalogError(f"catalog entry {name!r} is invalid: {exc}") from exc
    return out


def model_names() -> list[str]:
    return sorted(catalog())


def get_model(name: str) -> ModelSpec:
    """The catalog entry called `name`; a clear error listing the allowed names otherwise."""
    try:
        return catalog()[name]
    except KeyError:
        raise CatalogError(
            f"unknown model {name!r}; the catalog has: {', '.join(model_names())}"
        ) from None


@functools.cache
def chat_template_names() -> list[str]:
    """Names of the bundled chat templates (files `templates/<name>.jinja`)."""
    folder = resources.files(__package__).joinpath("templates")
    return sorted(f.name[: -len(".jinja")] for f in folder.iterdir() if f.name.endswith(".jinja"))


def chat_template_source(name: str) -> str:
    """The exact text of bundled chat template `name` (no newline added or stripped)."""
    if name not in chat_template_names():
        raise CatalogError(
            f"unknown chat template {name!r}; bundled: {', '.join(chat_template_names())}"
        )
    path = resources.files(__package__).joinpath("templates", f"{name}.jinja")
    return path.read_bytes().decode("utf-8")
