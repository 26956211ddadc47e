"""The ensemble's Python steps: `preprocessing` and `postprocessing`, TensorRT-LLM-compatible.

Tensor names follow the TensorRT-LLM backend's models; tritonkit adds `MESSAGES` (chat messages as
JSON, rendered with the model's chat template) and makes `QUERY`/`REQUEST_OUTPUT_LEN` optional.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tritonkit.detokenize import ByteTable
from tritonkit.pipeline.preprocess import Preprocessor, to_word_list
from tritonkit.pipeline.request import RequestError
from tritonkit.triton_models.common import (
    deployment_from_args,
    error_response,
    input_getter,
    tokenizer_dir,
)

__all__ = ["PostprocessingModel", "PreprocessingModel"]


def _text(arr: np.ndarray | None) -> str | None:
    if arr is None:
        return None
    v = np.asarray(arr).reshape(-1)[0]
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _words(arr: np.ndarray | None) -> list[str]:
    if arr is None:
        return []
    return [
        v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(arr).reshape(-1)
    ]


class PreprocessingModel:
    pb: Any = None

    def initialize(self, args: dict[str, Any]) -> None:
        dep, params = deployment_from_args(args)
        self.pre = Preprocessor(dep, tokenizer_dir=params.get("tokenizer_dir"))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._one(r) for r in requests]

    def _one(self, request: Any) -> Any:
        pb = self.pb
        get = input_getter(pb, request)
        try:
            mt = get("REQUEST_OUTPUT_LEN")
            max_tokens = None if mt is None else int(np.asarray(mt).reshape(-1)[0])
            if max_tokens is not None and max_tokens < 1:
                raise RequestError("max_tokens", f"must be >= 1, got {max_tokens}")
            end_id, pad_id = get("END_ID"), get("PAD_ID")
            prep = self.pre(
                text_input=_text(get("QUERY")),
                messages=_text(get("MESSAGES")),
                max_tokens=max_tokens,
                stop_words=_words(get("STOP_WORDS_DICT")),
                bad_words=_words(get("BAD_WORDS_DICT")),
                end_id=None if end_id is None else int(np.asarray(end_id).reshape(-1)[0]),
                pad_id=None if pad_id is None else int(np.asarray(pad_id).reshape(-1)[0]),
            )
        except (RequestError, UnicodeDecodeError) as exc:
            return error_response(pb, str(exc))
        ids = np.asarray(prep.input_ids, np.int32).reshape(1, -1)
        return pb.InferenceResponse(
            output_tensors=[
                pb.Tensor("INPUT_ID", ids),
                pb.Tensor("REQUEST_INPUT_LEN", np.array([[ids.shape[1]]], np.int32)),
                pb.Tensor("REQUEST_OUTPUT_LEN", np.array([[prep.request_output_len]], np.int32)),
                pb.Tensor("STOP_WORDS_IDS", to_word_list(prep.stop_words)[None]),
                pb.Tensor("BAD_WORDS_IDS", to_word_list(prep.bad_words)[None]),
                pb.Tensor("OUT_END_ID", np.array([[prep.end_id]], np.int32)),
                pb.Tensor("OUT_PAD_ID", np.array([[prep.pad_id]], np.int32)),
            ]
        )


class PostprocessingModel:
    """Stateless: each response's tokens decoded on their own (as in TensorRT-LLM's ensemble);
    stop ids are trimmed. Exact streaming needs per-request state: the served pipeline model."""

    pb: Any = None

    def initialize(self, args: dict[str, Any]) -> None:
        dep, params = deployment_from_args(args)
        tok_dir = tokenizer_dir(dep, params)
        self.table = ByteTable.from_tokenizer_json(f"{tok_dir}/tokenizer.json")
        self.stop_ids = frozenset(dep.spec.stop_token_ids)

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = self.pb
        out = []
        for request in requests:
            get = input_getter(pb, request)
            tokens = np.asarray(get("TOKENS_BATCH"))
            lengths = np.asarray(get("SEQUENCE_LENGTH"))
            tokens = tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])
            lengths = lengths.reshape(tokens.shape[0], -1)
            texts = []
            for b in range(tokens.shape[0]):
                row = []
                for beam in range(tokens.shape[1]):
                    ids = [
                        t
                        for t in tokens[b, beam, : lengths[b, beam]].tolist()
                        if t not in self.stop_ids
                    ]
                    row.append(self.table.decode(ids).encode("utf-8"))
                texts.append(row)
            out.append(
                pb.InferenceResponse(
                    output_tensors=[pb.Tensor("OUTPUT", np.array(texts, dtype=object))]
                )
            )
        return out
