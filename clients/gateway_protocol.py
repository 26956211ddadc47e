"""OpenAI API shapes the gateway speaks (pydantic): requests validate themselves and turn into
SDK keyword arguments in one method each; responses and chunks are built from SDK results."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_N",
    "ChatCompletionRequest",
    "CompletionRequest",
    "ErrorInfo",
    "ErrorResponse",
    "GatewayError",
]

#: Most choices one request may fan out to (each is its own Triton request).
MAX_N = 16


class GatewayError(Exception):
    """An error the gateway returns as-is: OpenAI's error object with an HTTP status."""

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.type, self.param, self.code = (
            message, status, type, param, code)


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class ContentPart(OpenAIBaseModel):
    type: str
    text: str | None = None


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise GatewayError(f"content part type {part.type!r} is not supported; "
                                   "only text parts are", param="messages")
            parts.append(part.text)
        return "".join(parts)


class _SamplingRequest(OpenAIBaseModel):
    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = Field(None, ge=0, lt=2**63)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _SamplingRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        if isinstance(self.stop, list) and len(self.stop) > 64:
            raise ValueError("stop: at most 64 sequences")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def _max_tokens(self) -> int | None:
        return self.max_tokens

    def max_tokens_param(self) -> str:
        return "max_tokens"

    def seeds(self) -> list[int | None]:
        """One seed per choice: `seed + i` when given, else distinct random seeds (n > 1)."""
        if self.seed is not None:
            return [self.seed + i for i in range(self.n)]
        if self.n == 1:
            return [None]
        return random.sample(range(1, 2**31), self.n)

    def sampling_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's chat/generate (no seed: see `seeds`)."""
        extra = {k: v for k, v in (("presence_penalty", self.presence_penalty),
                                   ("frequency_penalty", self.frequency_penalty)) if v is not None}
        # OpenAI samples by default (top_p 1); the engine is greedy without top_p/top_k, which
        # would make n > 1 choices identical whatever their seeds.
        top_p = 1.0 if self.top_p is None and self.n > 1 else self.top_p
        return {"max_tokens": self._max_tokens(), "stop": self.stop,
                "temperature": self.temperature, "top_p": top_p, "extra": extra or None}

    def param_name(self, field: str) -> str:
        """The OpenAI parameter a served-model input came from (for error `param`)."""
        return {"stop_words": "stop", "max_tokens": self.max_tokens_param(),
                "text_input": "prompt"}.get(field, field)


class ChatCompletionRequest(_SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    tools: list[Any] | None = None

    @model_validator(mode="after")
    def _unsupported(self) -> ChatCompletionRequest:
        if self.logprobs:
            raise GatewayError("logprobs are not supported", param="logprobs")
        if self.tools:
            raise GatewayError("tools are not supported", param="tools")
        return self

    def _max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def max_tokens_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"

    def chat_messages(self) -> list[dict[str, str]]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]


class CompletionRequest(_SamplingRequest):
    prompt: str | list[str]
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None

    @model_validator(mode="after")
    def _unsupported(self) -> CompletionRequest:
        if self.logprobs is not None:
            raise GatewayError("logprobs are not supported", param="logprobs")
        if self.suffix:
            raise GatewayError("suffix is not supported", param="suffix")
        if self.best_of not in (None, self.n):
            raise GatewayError("best_of must equal n (no server-side ranking)", param="best_of")
        if isinstance(self.prompt, list) and not self.prompt:
            raise GatewayError("prompt must not be empty", param="prompt")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


# ---- responses (plain dicts in OpenAI's shape; built in one place each) ------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage_dict(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def chat_response(rid: str, model: str, choices: list[dict[str, Any]],
                  usage: dict[str, int]) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": usage}


def chat_choice(index: int, text: str, finish_reason: str) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason, "logprobs": None}


def chat_chunk(rid: str, model: str, created: int, choices: list[dict[str, Any]],
               usage: dict[str, int] | None = None, with_usage: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created,
                           "model": model, "choices": choices}
    if with_usage:
        out["usage"] = usage
    return out


def chat_delta(index: int, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def completion_response(rid: str, model: str, choices: list[dict[str, Any]],
                        usage: dict[str, int] | None, created: int | None = None,
                        with_usage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rid, "object": "text_completion",
                           "created": created or int(time.time()), "model": model,
                           "choices": choices}
    if with_usage:
        out["usage"] = usage
    return out


def completion_choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "text": text, "finish_reason": finish_reason, "logprobs": None}


def model_card(name: str, max_model_len: int | None) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tritonkit",
            "max_model_len": max_model_len}
