"""Preprocessing: prompt (raw text or chat messages) to engine inputs, checked against the limits.

Produces exactly what TensorRT-LLM's `tensorrt_llm` model takes: `input_ids`, `input_lengths`,
`request_output_len`, `end_id`, `pad_id` and the `[2, L]` word lists (`stop_words_list`,
`bad_words_list`). The engine gets one `end_id` only, so the model's other stop ids travel as
single-token stop words; the served model trims them from the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tritonkit.deployment import Deployment
from tritonkit.pipeline.request import RequestError

__all__ = ["Prepared", "Preprocessor", "to_word_list"]


def to_word_list(words: Sequence[Sequence[int]]) -> np.ndarray:
    """TensorRT-LLM's word-list tensor: row 0 the flat ids (0-padded), row 1 the cumulative end
    offsets (-1-padded). Shape [2, max(1, total ids)]."""
    flat: list[int] = []
    offsets: list[int] = []
    for w in words:
        if not w:
            continue
        flat.extend(int(t) for t in w)
        offsets.append(len(flat))
    width = max(1, len(flat))
    out = np.zeros((2, width), np.int32)
    out[1, :] = -1
    out[0, : len(flat)] = flat
    out[1, : len(offsets)] = offsets
    return out


@dataclass
class Prepared:
    input_ids: list[int]
    request_output_len: int
    end_id: int
    pad_id: int
    stop_words: list[list[int]]
    bad_words: list[list[int]]


class Preprocessor:
    """One per deployment: owns the chat formatter (tokenizer + template) and the limits."""

    def __init__(self, deployment: Deployment, tokenizer_dir: str | None = None) -> None:
        from tritonkit.chat import ChatFormatter  # heavy (transformers); load once per model

        self.deployment = deployment
        if tokenizer_dir is not None and deployment.tokenizer_dir is None:
            deployment = deployment.model_copy(update={"tokenizer_dir": tokenizer_dir})
        self.chat = ChatFormatter.from_deployment(deployment)
        self.spec = deployment.spec
        self.limits = deployment.limits
        self.vocab_size = len(self.chat.tokenizer)

    def encode_words(self, words: Sequence[str]) -> list[list[int]]:
        """Stop/bad words as token ids (no BOS), as TensorRT-LLM's preprocessing encodes them."""
        tok = self.chat.tokenizer
        return [tok.encode(w, add_special_tokens=False) for w in words if w]

    def __call__(
        self,
        *,
        text_input: str | None,
        messages: object,
        max_tokens: int | None,
        stop_words: Sequence[str] = (),
        bad_words: Sequence[str] = (),
        end_id: int | None = None,
        pad_id: int | None = None,
    ) -> Prepared:
        if messages is not None:
            try:  # ChatError: malformed messages, or a template that refuses them
                msgs = self.chat.validate_messages(messages)
                ids = self.chat.encode_messages(msgs, add_generation_prompt=True)
            except ValueError as exc:
                raise RequestError("messages", str(exc).removeprefix("messages: ")) from None
            except RecursionError:  # json.loads on e.g. "[[[[...]]]]" nested 100k deep
                raise RequestError("messages", "JSON nested too deeply to parse") from None
            field = "messages"
        elif text_input is not None:
            ids = self.chat.encode_text(text_input)
            field = "text_input"
        else:
            raise RequestError("text_input", "a request needs `text_input` or `messages`")
        n = len(ids)
        lim = self.limits
        if n == 0:
            raise RequestError(field, "the prompt is empty (0 tokens)")
        if n > lim.max_input_len:
            raise RequestError(
                field,
                f"the prompt is {n} tokens; this deployment accepts at most "
                f"{lim.max_input_len} input tokens (limits.max_input_len)",
            )
        room = lim.max_seq_len - n
        if max_tokens is None:
            out_len = min(room, lim.default_max_tokens)
        elif n + max_tokens > lim.max_seq_len:
            raise RequestError(
                "max_tokens",
                f"the prompt ({n} tokens) + max_tokens ({max_tokens}) = {n + max_tokens} exceeds "
                f"the context of {lim.max_seq_len} tokens; at most {room} can be generated",
            )
        else:
            out_len = max_tokens
        vocab = self.vocab_size
        for name, v in (("end_id", end_id), ("pad_id", pad_id)):
            if v is not None and v >= vocab:
                raise RequestError(name, f"{v} is not a token id (vocabulary size {vocab})")
        eid = end_id if end_id is not None else self.spec.end_id
        stops = [[t] for t in self.spec.stop_token_ids if t != eid]
        stops += self.encode_words(stop_words)
        return Prepared(
            input_ids=ids,
            request_output_len=out_len,
            end_id=eid,
            pad_id=pad_id if pad_id is not None else self.spec.pad_id,
            stop_words=stops,
            bad_words=self.encode_words(bad_words),
        )
