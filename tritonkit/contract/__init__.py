"""The tensor contract: TensorRT-LLM's Triton models, and tritonkit's pipeline interface on top.

`tensorrtllm_backend.json` (vendored from the reference config.pbtxt files of the TensorRT-LLM
backend, parsed with tritonclient's ModelConfig protobuf) is the single source for the names,
dtypes, dims and optionality of the `preprocessing`, `tensorrt_llm`, `postprocessing` and
`ensemble` models. The renderer builds every config.pbtxt from these objects; the Python models
read their inputs by the same names.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "ENGINE",
    "ENSEMBLE_STEPS",
    "PIPELINE_EXTRA_INPUTS",
    "PIPELINE_EXTRA_OUTPUTS",
    "TensorSpec",
    "model_contract",
    "pipeline_inputs",
    "pipeline_outputs",
]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a Triton model (dims exclude the batch dimension)."""

    name: str
    data_type: str  # "TYPE_INT32", "TYPE_STRING", ...
    dims: tuple[int, ...]
    optional: bool = False
    allow_ragged_batch: bool = False
    reshape: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TensorSpec:
        reshape = obj.get("reshape")
        return cls(
            name=obj["name"],
            data_type=obj["data_type"],
            dims=tuple(int(d) for d in obj["dims"]),
            optional=bool(obj.get("optional", False)),
            allow_ragged_batch=bool(obj.get("allow_ragged_batch", False)),
            reshape=tuple(int(d) for d in reshape.get("shape", []))
            if reshape is not None
            else None,
        )

    def with_(self, **changes: Any) -> TensorSpec:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(changes)
        return TensorSpec(**data)


@functools.cache
def _raw() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("tensorrtllm_backend.json").read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class ModelContract:
    name: str
    backend: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: dict[str, str]

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no input {name!r}")

    def output(self, name: str) -> TensorSpec:
        for t in self.outputs:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no output {name!r}")


@functools.cache
def model_contract(name: str) -> ModelContract:
    """The upstream contract of `preprocessing`, `tensorrt_llm`, `postprocessing` or `ensemble`."""
    m = _raw()["models"][name]
    return ModelContract(
        name=name,
        backend=m["backend"],
        inputs=tuple(TensorSpec.from_json(t) for t in m["inputs"]),
        outputs=tuple(TensorSpec.from_json(t) for t in m["outputs"]),
        parameters=dict(m.get("parameters", {})),
    )


ENGINE = model_contract("tensorrt_llm")
ENSEMBLE_STEPS: list[dict[str, Any]] = _raw()["models"]["ensemble"]["steps"]

#: Inputs tritonkit's pipeline adds to the ensemble interface.
PIPELINE_EXTRA_INPUTS = (TensorSpec("messages", "TYPE_STRING", (1,), optional=True),)
#: Outputs tritonkit's pipeline adds: the truth about how and how much it generated.
PIPELINE_EXTRA_OUTPUTS = (
    TensorSpec("finish_reason", "TYPE_STRING", (1,)),
    TensorSpec("num_input_tokens", "TYPE_INT32", (1,)),
    TensorSpec("num_output_tokens", "TYPE_INT32", (1,)),
)

#: Ensemble inputs the CPU pipeline does not implement (multimodal, LoRA, prompt tables, ...):
#: sent to a `reference` deployment they are refused by name; the GPU engine takes them.
UNSUPPORTED_ON_REFERENCE = (
    "decoder_text_input",
    "prompt_embedding_table",
    "prompt_table_extra_id",
    "prompt_vocab_size",
    "lora_task_id",
    "lora_weights",
    "lora_config",
    "guided_decoding_guide_type",
    "guided_decoding_guide",
    "return_log_probs",
    "return_context_logits",
    "return_generation_logits",
    "embedding_bias_words",
    "embedding_bias_weights",
)


def pipeline_inputs() -> tuple[TensorSpec, ...]:
    """The served model's inputs: the ensemble's, with `text_input` and `max_tokens` optional
    (a request carries `text_input` or `messages`; omitted `max_tokens` = remaining context)."""
    out = []
    for t in model_contract("ensemble").inputs:
        if t.name in ("text_input", "max_tokens"):
            t = t.with_(optional=True)
        out.append(t)
    return (*out, *PIPELINE_EXTRA_INPUTS)


def pipeline_outputs() -> tuple[TensorSpec, ...]:
    """The served model's outputs: `text_output` plus finish reason and token counts."""
    return (model_contract("ensemble").output("text_output"), *PIPELINE_EXTRA_OUTPUTS)
