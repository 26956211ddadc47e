"""Read TensorRT-LLM `tensorrt_llm` input tensors into an engine request (reference engine).

Names, dtypes and meanings follow the tensorrt_llm contract (tritonkit.contract.ENGINE). Inputs
the reference engine cannot honour (LoRA, prompt tables, beams > 1, ...) are refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tritonkit.engine.scheduler import SamplingParams

__all__ = ["EngineInputError", "ParsedEngineRequest", "parse_engine_inputs", "word_list"]

Getter = Callable[[str], "np.ndarray | None"]

_REFUSED = (
    "encoder_input_features",
    "draft_input_ids",
    "decoder_input_ids",
    "draft_logits",
    "prompt_embedding_table",
    "prompt_table_extra_ids",
    "lora_task_id",
    "lora_weights",
    "lora_config",
    "context_phase_params",
    "guided_decoding_guide_type",
    "guided_decoding_guide",
    "embedding_bias",
)
_REFUSED_IF_TRUE = ("return_log_probs", "return_context_logits", "return_generation_logits")


class EngineInputError(ValueError):
    pass


@dataclass
class ParsedEngineRequest:
    stop: bool
    input_ids: list[int]
    max_new_tokens: int
    end_id: int | None
    pad_id: int | None
    stop_words: list[list[int]]
    bad_words: list[list[int]]
    streaming: bool
    exclude_input_in_output: bool
    sampling: SamplingParams


def _scalar(get: Getter, name: str, default):
    arr = get(name)
    if arr is None:
        return default
    flat = np.asarray(arr).reshape(-1)
    if flat.size == 0:
        return default
    return flat[0].item()


def word_list(arr: np.ndarray | None) -> list[list[int]]:
    """Decode a `[2, L]` (or `[1, 2, L]`) TensorRT-LLM word list into token-id sequences."""
    if arr is None:
        return []
    a = np.asarray(arr)
    if a.ndim == 3:
        a = a[0]
    if a.ndim != 2 or a.shape[0] != 2:
        raise EngineInputError(f"word list must have shape [2, L], got {list(np.shape(arr))}")
    flat, offsets = a[0].tolist(), [o for o in a[1].tolist() if o >= 0]
    words, start = [], 0
    for end in offsets:
        if end > len(flat) or end < start:
            raise EngineInputError(f"word list offsets are not increasing: {a[1].tolist()}")
        words.append(flat[start:end])
        start = end
    return words


def parse_engine_inputs(get: Getter, exclude_input_default: bool = False) -> ParsedEngineRequest:
    """`get(name)` returns the input tensor as numpy (batch dim included) or None."""
    for name in _REFUSED:
        arr = get(name)
        if arr is not None and np.asarray(arr).size:
            raise EngineInputError(f"{name} is not supported by the CPU reference engine")
    for name in _REFUSED_IF_TRUE:
        if _scalar(get, name, False):
            raise EngineInputError(f"{name} is not supported by the CPU reference engine")
    for name in ("beam_width", "num_return_sequences"):
        v = _scalar(get, name, 1)
        if v != 1:
            raise EngineInputError(f"{name}={v}: the reference engine serves 1 only")
    stop = bool(_scalar(get, "stop", False))
    ids_arr = get("input_ids")
    ids = [] if ids_arr is None else np.asarray(ids_arr).reshape(-1).astype(np.int64).tolist()
    n = int(_scalar(get, "input_lengths", len(ids)))
    if not stop:
        if n <= 0 or n > len(ids):
            raise EngineInputError(f"input_lengths={n} but input_ids holds {len(ids)} ids")
        ids = ids[:n]
    max_new = int(_scalar(get, "request_output_len", 0))
    if not stop and max_new <= 0:
        raise EngineInputError(f"request_output_len must be >= 1, got {max_new}")
    end_id = _scalar(get, "end_id", None)
    pad_id = _scalar(get, "pad_id", None)
    sampling = SamplingParams(
        temperature=float(_scalar(get, "temperature", 1.0)),
        top_k=int(_scalar(get, "runtime_top_k", 0)),
        top_p=float(_scalar(get, "runtime_top_p", 0.0)),
        seed=int(_scalar(get, "seed", _scalar(get, "random_seed", 0))),
        repetition_penalty=float(_scalar(get, "repetition_penalty", 1.0)),
        presence_penalty=float(_scalar(get, "presence_penalty", 0.0)),
        frequency_penalty=float(_scalar(get, "frequency_penalty", 0.0)),
        min_tokens=int(_scalar(get, "min_tokens", _scalar(get, "min_length", 0))),
    )
    return ParsedEngineRequest(
        stop=stop,
        input_ids=[int(i) for i in ids],
        max_new_tokens=max_new,
        end_id=None if end_id is None else int(end_id),
        pad_id=None if pad_id is None else int(pad_id),
        stop_words=word_list(get("stop_words_list")),
        bad_words=word_list(get("bad_words_list")),
        streaming=bool(_scalar(get, "streaming", False)),
        exclude_input_in_output=bool(
            _scalar(get, "exclude_input_in_output", exclude_input_default)
        ),
        sampling=sampling,
    )
