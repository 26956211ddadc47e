"""Serving logic of the OpenAI-compatible gateway (no FastAPI here).

Each choice is one Triton request over the SDK's asyncio gRPC client (one channel, one stream per
request). Streaming responses are validated before the first byte: the first response of every
choice is awaited, so a refused request becomes an HTTP error, not a broken stream. A streaming
answer is an `EventStream`: its `aclose()` cancels every Triton request behind it, whether or not
the body was ever iterated (a client can leave between the headers and the first event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tritonkit.clients import (
    AsyncClient,
    AsyncStream,
    Chunk,
    InvalidRequestError,
    ModelInfo,
    ModelNotFoundError,
    ServerError,
    TimeoutError,
    TritonKitError,
    UnavailableError,
)
from tritonkit.clients.gateway_protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorInfo,
    ErrorResponse,
    GatewayError,
    _SamplingRequest,
    chat_choice,
    chat_chunk,
    chat_delta,
    chat_response,
    completion_choice,
    completion_response,
    model_card,
    new_id,
    usage_dict,
)

__all__ = ["OpenAIServing", "error_response"]

MODELS_TTL_S = 10.0


def error_response(exc: BaseException, req: _SamplingRequest | None = None
                   ) -> tuple[int, ErrorResponse]:
    """The one mapper: any error -> (HTTP status, OpenAI error object)."""
    def out(status: int, message: str, type_: str, param: str | None = None,
            code: str | None = None) -> tuple[int, ErrorResponse]:
        return status, ErrorResponse(error=ErrorInfo(message=message, type=type_, param=param,
                                                     code=code))

    if isinstance(exc, GatewayError):
        return out(exc.status, exc.message, exc.type, exc.param, exc.code)
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        param = loc[0] if loc else None
        return out(400, f"{'.'.join(loc) or 'request'}: {err['msg']}", "invalid_request_error",
                   param)
    if isinstance(exc, ModelNotFoundError):
        return out(404, exc.message, "invalid_request_error", "model", "model_not_found")
    if isinstance(exc, InvalidRequestError):
        param = req.param_name(exc.field) if req is not None else exc.field
        return out(400, exc.message, "invalid_request_error", param)
    if isinstance(exc, UnavailableError):
        return out(503, f"Triton is unavailable: {exc.message}", "service_unavailable_error")
    if isinstance(exc, TimeoutError):
        return out(504, f"Triton timed out: {exc.message}", "timeout_error")
    if isinstance(exc, (ServerError, TritonKitError)):
        return out(500, exc.message, "server_error")
    return out(500, f"internal error: {exc!r}", "server_error")


def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class OpenAIServing:
    """Chat completions, completions and the model list, over one AsyncClient."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._models: dict[str, ModelInfo] = {}
        self._models_at = 0.0
        self._lock = asyncio.Lock()

    async def models(self, refresh: bool = False) -> dict[str, ModelInfo]:
        async with self._lock:
            if refresh or time.monotonic() - self._models_at > MODELS_TTL_S:
                self._models = {m.name: m for m in await self.client.models()}
                self._models_at = time.monotonic()
            return self._models

    async def list_models(self) -> dict[str, Any]:
        models = await self.models(refresh=True)
        return {"object": "list",
                "data": [model_card(m.name, m.max_seq_len) for m in models.values()]}

    async def check_model(self, name: str) -> None:
        if name in await self.models() or name in await self.models(refresh=True):
            return
        raise GatewayError(f"The model `{name}` does not exist.", status=404, param="model",
                           code="model_not_found")

    # ---- the two endpoints -----------------------------------------------------------------
    async def chat(self, req: ChatCompletionRequest) -> dict[str, Any] | EventStream:
        await self.check_model(req.model)
        messages = req.chat_messages()
        streams = [self.client.stream_chat(messages, model=req.model, seed=seed,
                                           **req.sampling_kwargs()) for seed in req.seeds()]
        if req.stream:
            firsts = await _first_chunks(streams)
            return EventStream(self._chat_sse(req, streams, firsts), streams)
        results = await _gather([s.completion() for s in streams])
        choices = [chat_choice(i, r.text, r.finish_reason) for i, r in enumerate(results)]
        usage = usage_dict(results[0].usage.prompt_tokens,
                           sum(r.usage.completion_tokens for r in results))
        return chat_response(new_id("chatcmpl"), req.model, choices, usage)

    async def completions(self, req: CompletionRequest) -> dict[str, Any] | EventStream:
        await self.check_model(req.model)
        prompts = req.prompts()
        streams = [self.client.stream_generate(p, model=req.model, seed=seed,
                                               **req.sampling_kwargs())
                   for p in prompts for seed in req.seeds()]
        echo = [p if req.echo else "" for p in prompts for _ in range(req.n)]
        if req.stream:
            firsts = await _first_chunks(streams)
            return EventStream(self._completion_sse(req, streams, firsts, echo), streams)
        results = await _gather([s.completion() for s in streams])
        choices = [completion_choice(i, echo[i] + r.text, r.finish_reason)
                   for i, r in enumerate(results)]
        usage = usage_dict(sum(results[i * req.n].usage.prompt_tokens
                               for i in range(len(prompts))),
                           sum(r.usage.completion_tokens for r in results))
        return completion_response(new_id("cmpl"), req.model, choices, usage)

    # ---- streaming -------------------------------------------------------------------------
    async def _chat_sse(self, req: ChatCompletionRequest, streams: list[AsyncStream],
                        firsts: list[Chunk]) -> AsyncIterator[str]:
        rid, created, usage = new_id("chatcmpl"), int(time.time()), req.include_usage
        for i in range(len(streams)):
            yield sse(chat_chunk(rid, req.model, created,
                                 [chat_delta(i, {"role": "assistant", "content": ""}, None)],
                                 with_usage=usage))
        async for i, chunk in _merge(req, streams, firsts):
            if isinstance(chunk, dict):
                yield sse(chunk)
                break
            if chunk.delta or chunk.finish_reason:
                delta = {"content": chunk.delta} if chunk.delta else {}
                yield sse(chat_chunk(rid, req.model, created,
                                     [chat_delta(i, delta, chunk.finish_reason)],
                                     with_usage=usage))
        else:
            if usage:
                yield sse(chat_chunk(rid, req.model, created, [], _total_usage(streams, req.n),
                                     with_usage=True))
        yield "data: [DONE]\n\n"

    async def _completion_sse(self, req: CompletionRequest, streams: list[AsyncStream],
                              firsts: list[Chunk], echo: list[str]) -> AsyncIterator[str]:
        rid, created, usage = new_id("cmpl"), int(time.time()), req.include_usage
        for i, prefix in enumerate(echo):
            if prefix:
                yield sse(completion_response(rid, req.model,
                                              [completion_choice(i, prefix, None)], None,
                                              created, with_usage=usage))
        async for i, chunk in _merge(req, streams, firsts):
            if isinstance(chunk, dict):
                yield sse(chunk)
                break
            if chunk.delta or chunk.finish_reason:
                yield sse(completion_response(
                    rid, req.model, [completion_choice(i, chunk.delta, chunk.finish_reason)],
                    None, created, with_usage=usage))
        else:
            if usage:
                yield sse(completion_response(rid, req.model, [], _total_usage(streams, req.n),
                                              created, with_usage=True))
        yield "data: [DONE]\n\n"


@dataclass
class EventStream:
    """A streaming answer: its SSE frames, and the SDK streams they come from."""

    events: AsyncIterator[str]
    streams: list[AsyncStream]

    def __aiter__(self) -> AsyncIterator[str]:
        return self.events

    async def aclose(self) -> None:
        """Cancel every Triton request behind this answer (idempotent). Closing the frame
        generator alone is not enough: one never started runs no `finally`."""
        with contextlib.suppress(Exception):
            await self.events.aclose()  # type: ignore[attr-defined]
        await _close_all(self.streams)


def _total_usage(streams: list[AsyncStream], n: int) -> dict[str, int]:
    prompt = sum(s.usage.prompt_tokens for s in streams[::n] if s.usage)
    return usage_dict(prompt, sum(s.usage.completion_tokens for s in streams if s.usage))


async def _gather(coros: list[Awaitable[Any]]) -> list[Any]:
    """Run all; on the first failure (or our own cancellation) cancel the rest."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _first_chunks(streams: list[AsyncStream]) -> list[Chunk]:
    """Open every stream and read its first chunk: refusals surface before the first byte."""
    try:
        return await _gather([s.__anext__() for s in streams])
    except BaseException:
        await _close_all(streams)
        raise


async def _close_all(streams: list[AsyncStream]) -> None:
    for s in streams:
        with contextlib.suppress(Exception):
            await s.aclose()


async def _merge(req: _SamplingRequest, streams: list[AsyncStream], firsts: list[Chunk]
                 ) -> AsyncIterator[tuple[int, Chunk | dict[str, Any]]]:
    """Chunks of all choices as they come, (index, chunk); an error ends it as an error frame."""
    queue: asyncio.Queue[tuple[int, Chunk | BaseException | None]] = asyncio.Queue()

    async def pump(i: int, stream: AsyncStream) -> None:
        try:
            async for chunk in stream:
                await queue.put((i, chunk))
            await queue.put((i, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put((i, exc))

    for i, first in enumerate(firsts):
        yield i, first
    pending = {i for i, f in enumerate(firsts) if not f.is_final}
    tasks = [asyncio.ensure_future(pump(i, streams[i])) for i in sorted(pending)]
    try:
        while pending:
            i, item = await queue.get()
            if item is None:
                pending.discard(i)
            elif isinstance(item, BaseException):
                _, err = error_response(item, req)
                yield i, err.model_dump()
                return
            else:
                yield i, item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _close_all(streams)
