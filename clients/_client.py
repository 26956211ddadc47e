"""`Client` and `AsyncClient`: one surface over gRPC or HTTP; only the I/O differs.

    with Client("localhost:8001") as client:
        print(client.chat([{"role": "user", "content": "Hi"}], model="athene-70b").text)
        with client.stream_chat(messages, model="athene-70b") as stream:
            for chunk in stream:
                print(chunk.delta, end="", flush=True)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from tritonkit.clients._base import (
    _DEFAULT,
    BaseClient,
    Message,
    build_inputs,
    ready_names,
    served_models,
)
from tritonkit.clients._config import DEFAULT_RETRY, DEFAULT_TIMEOUT, Retry, Timeout
from tritonkit.clients._exceptions import TimeoutError, UnavailableError
from tritonkit.clients._grpc import AsyncGrpcTransport, GrpcTransport
from tritonkit.clients._http import AsyncHttpTransport, HttpTransport
from tritonkit.clients._streams import AsyncStream, Stream
from tritonkit.clients._types import Completion, ModelInfo

__all__ = ["AsyncClient", "Client"]

_SAMPLING_DOC = """max_tokens: output cap (omitted: the remaining context, capped by the deployment);
    stop: string(s) that end the output (never included); temperature, top_p, top_k, seed;
    extra: other inputs of the served model by name; timeout: per-call Timeout or seconds."""


class Client(BaseClient):
    """Blocking client. `protocol` is "grpc" (default) or "http"; `url` is host:port."""

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "grpc",
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: Retry = DEFAULT_RETRY,
        ssl: bool | str | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(url, protocol=protocol, timeout=timeout, retry=retry, ssl=ssl,
                         headers=headers, model=model)
        cls = GrpcTransport if self.protocol == "grpc" else HttpTransport
        self._transport = cls(self.endpoint, self.headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def health(self) -> bool:
        """True when the server is ready; False when it is unreachable or not ready."""
        try:
            return self._transport.health(self.timeout)
        except (UnavailableError, TimeoutError):
            return False

    def models(self) -> list[ModelInfo]:
        """The served chat models (not the steps each deployment is made of)."""
        index = self._transport.index(self.timeout)
        configs = {n: self._transport.config(n, self.timeout) for n in ready_names(index)}
        return served_models(index, configs)

    def _model(self, model: str | None) -> str:
        if model or self.model:
            return model or self.model  # type: ignore[return-value]
        return self._pick_model(None, None, [m.name for m in self.models()])

    def _stream(self, model: str | None, timeout: Any, **inputs: Any) -> Stream:
        name = self._model(model)
        values = build_inputs(**inputs)
        t = self._timeout(timeout)
        rid = uuid.uuid4().hex
        return Stream(lambda: self._transport.open(name, values, rid, t), name, t, self.retry)

    @overload
    def generate(self, prompt: str, *, stream: Literal[False] = ..., **kw: Any) -> Completion: ...
    @overload
    def generate(self, prompt: str, *, stream: Literal[True], **kw: Any) -> Stream: ...

    def generate(self, prompt: str, *, model: str | None = None, stream: bool = False,
                 max_tokens: int | None = None, stop: str | Sequence[str] | None = None,
                 temperature: float | None = None, top_p: float | None = None,
                 top_k: int | None = None, seed: int | None = None,
                 extra: Mapping[str, Any] | None = None, timeout: Any = _DEFAULT
                 ) -> Completion | Stream:
        """Complete a raw prompt (no chat template). `stream=True` returns a Stream."""
        s = self._stream(model, timeout, prompt=prompt, stream=stream, max_tokens=max_tokens,
                         stop=stop, temperature=temperature, top_p=top_p, top_k=top_k,
                         seed=seed, extra=extra)
        if stream:
            return s
        with s:
            return s.completion()

    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[False] = ...,
             **kw: Any) -> Completion: ...
    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[True], **kw: Any) -> Stream: ...

    def chat(self, messages: Sequence[Message], *, model: str | None = None, stream: bool = False,
             max_tokens: int | None = None, stop: str | Sequence[str] | None = None,
             temperature: float | None = None, top_p: float | None = None,
             top_k: int | None = None, seed: int | None = None,
             extra: Mapping[str, Any] | None = None, timeout: Any = _DEFAULT
             ) -> Completion | Stream:
        """Answer a conversation ([{role, content}, ...]) with the deployment's chat template."""
        s = self._stream(model, timeout, messages=messages, stream=stream, max_tokens=max_tokens,
                         stop=stop, temperature=temperature, top_p=top_p, top_k=top_k,
                         seed=seed, extra=extra)
        if stream:
            return s
        with s:
            return s.completion()

    def stream_generate(self, prompt: str, **kw: Any) -> Stream:
        return self.generate(prompt, stream=True, **kw)

    def stream_chat(self, messages: Sequence[Message], **kw: Any) -> Stream:
        return self.chat(messages, stream=True, **kw)


class AsyncClient(BaseClient):
    """asyncio twin of :class:`Client`: same arguments and method names, awaitable."""

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "grpc",
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        retry: Retry = DEFAULT_RETRY,
        ssl: bool | str | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(url, protocol=protocol, timeout=timeout, retry=retry, ssl=ssl,
                         headers=headers, model=model)
        cls = AsyncGrpcTransport if self.protocol == "grpc" else AsyncHttpTransport
        self._transport = cls(self.endpoint, self.headers)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.close()

    async def health(self) -> bool:
        try:
            return await self._transport.health(self.timeout)
        except (UnavailableError, TimeoutError):
            return False

    async def models(self) -> list[ModelInfo]:
        index = await self._transport.index(self.timeout)
        configs = {n: await self._transport.config(n, self.timeout) for n in ready_names(index)}
        return served_models(index, configs)

    async def _model(self, model: str | None) -> str:
        if model or self.model:
            return model or self.model  # type: ignore[return-value]
        return self._pick_model(None, None, [m.name for m in await self.models()])

    def _stream(self, model: str | None, timeout: Any, **inputs: Any) -> AsyncStream:
        values = build_inputs(**inputs)
        t = self._timeout(timeout)
        rid = uuid.uuid4().hex
        box: dict[str, str] = {}

        async def opener() -> Any:
            if "model" not in box:
                box["model"] = await self._model(model)
                stream._state.model = box["model"]
            return await self._transport.open(box["model"], values, rid, t)

        stream = AsyncStream(opener, model or self.model or "", t, self.retry)
        return stream

    async def _complete(self, s: AsyncStream) -> Completion:
        async with s:
            return await s.completion()

    @overload
    def generate(self, prompt: str, *, stream: Literal[False] = ..., **kw: Any) -> Any: ...
    @overload
    def generate(self, prompt: str, *, stream: Literal[True], **kw: Any) -> AsyncStream: ...

    def generate(self, prompt: str, *, model: str | None = None, stream: bool = False,
                 max_tokens: int | None = None, stop: str | Sequence[str] | None = None,
                 temperature: float | None = None, top_p: float | None = None,
                 top_k: int | None = None, seed: int | None = None,
                 extra: Mapping[str, Any] | None = None, timeout: Any = _DEFAULT) -> Any:
        """`await client.generate(...)` -> Completion; `stream=True` -> AsyncStream (no await)."""
        s = self._stream(model, timeout, prompt=prompt, stream=stream, max_tokens=max_tokens,
                         stop=stop, temperature=temperature, top_p=top_p, top_k=top_k,
                         seed=seed, extra=extra)
        return s if stream else self._complete(s)

    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[False] = ...,
             **kw: Any) -> Any: ...
    @overload
    def chat(self, messages: Sequence[Message], *, stream: Literal[True],
             **kw: Any) -> AsyncStream: ...

    def chat(self, messages: Sequence[Message], *, model: str | None = None, stream: bool = False,
             max_tokens: int | None = None, stop: str | Sequence[str] | None = None,
             temperature: float | None = None, top_p: float | None = None,
             top_k: int | None = None, seed: int | None = None,
             extra: Mapping[str, Any] | None = None, timeout: Any = _DEFAULT) -> Any:
        """`await client.chat(...)` -> Completion; `stream=True` -> AsyncStream (no await)."""
        s = self._stream(model, timeout, messages=messages, stream=stream, max_tokens=max_tokens,
                         stop=stop, temperature=temperature, top_p=top_p, top_k=top_k,
                         seed=seed, extra=extra)
        return s if stream else self._complete(s)

    def stream_generate(self, prompt: str, **kw: Any) -> AsyncStream:
        return self.generate(prompt, stream=True, **kw)

    def stream_chat(self, messages: Sequence[Message], **kw: Any) -> AsyncStream:
        return self.chat(messages, stream=True, **kw)
