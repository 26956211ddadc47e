"""Stream objects: iterators and context managers over one generation.

Leaving the `with` block (break, error, Ctrl-C), calling `close()`, or cancelling the task that
iterates cancels the request on the server. Retries (connect failures, UNAVAILABLE) happen only
before the first response. Errors inside a stream raise the SDK's own classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tritonkit.clients._base import Event, StreamState, retry_error
from tritonkit.clients._config import Retry, Timeout
from tritonkit.clients._exceptions import StreamClosedError, TimeoutError, TritonKitError
from tritonkit.clients._types import Chunk, Completion, Usage

__all__ = ["AsyncStream", "Stream"]

if sys.version_info >= (3, 11):
    from asyncio import timeout as _deadline
else:  # the backport of asyncio.timeout
    from async_timeout import timeout as _deadline


#: How long closing a finished stream waits for its call to end (the server ends it right after
#: the final response) before cancelling it: see `_Pump.finish`.
FINISH_WAIT_S = 2.0


class _StreamBase:
    def __init__(self, model: str, timeout: Timeout, retry: Retry) -> None:
        self._state = StreamState(model)
        self._timeout = timeout
        self._retry = retry
        self._attempt = 0
        self._received = False
        self._closed = False
        self._opened_at = time.monotonic()  # when the current attempt's request went out

    # what the caller reads after (or during) the stream
    @property
    def model(self) -> str:
        return self._state.model

    @property
    def text(self) -> str:
        """Text received so far."""
        return self._state.text

    @property
    def finish_reason(self) -> str | None:
        return self._state.finish_reason

    @property
    def usage(self) -> Usage | None:
        return self._state.usage

    @property
    def time_to_first_token(self) -> float | None:
        return self._state.first_token_time

    def _wait(self) -> tuple[float | None, str]:
        """How long to wait for the next response, and which deadline that is. The first token
        is due `first_token` s after the request went out, however long opening took (over
        HTTP, opening itself waits for the first event)."""
        t = self._timeout
        if self._received:
            wait, phase = t.between_tokens, "between_tokens"
        else:
            phase = "first_token"
            wait = (None if t.first_token is None
                    else max(t.first_token - (time.monotonic() - self._opened_at), 0.0))
        if t.total is not None:
            left = t.total - (time.monotonic() - self._state.started)
            if wait is None or left < wait:
                wait, phase = max(left, 0.0), "total"
        return wait, phase

    def _timed_out(self, wait: float | None, phase: str) -> TimeoutError:
        limit = self._timeout.first_token if phase == "first_token" else wait
        return TimeoutError(f"no response within {limit:.3g} s ({phase} timeout)", phase=phase)

    def _overdue(self, wait: float | None, phase: str) -> bool:
        """The first token's deadline passed before we could wait for it (e.g. while opening)."""
        return phase == "first_token" and wait == 0.0

    def _retry_delay(self, exc: TritonKitError) -> float | None:
        if self._received:
            return None
        delay = retry_error(exc, self._attempt, self._retry)
        if delay is not None:
            self._attempt += 1
        return delay

    def _accept(self, event: Event) -> Chunk:
        self._received = True
        return self._state.chunk(event)


class Stream(_StreamBase):
    """A blocking stream of :class:`Chunk`; use as ``with client.stream_chat(...) as s: for c in s``."""

    def __init__(self, opener: Callable[[], Any], model: str, timeout: Timeout,
                 retry: Retry) -> None:
        super().__init__(model, timeout, retry)
        self._opener = opener
        self._call: Any = None

    def __enter__(self) -> Stream:
        self._ensure_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Chunk:
        if self._state.done:
            self.close()
            raise StopIteration
        if self._closed:
            raise StreamClosedError("the stream is closed")
        try:
            event = self._next_event()
        except BaseException:
            self.close()
            raise
        if event is None:
            self.close()
            self._state.completion()  # raises: ended without a final response
            raise StopIteration
        return self._accept(event)

    def _ensure_open(self) -> None:
        while self._call is None:
            try:
                self._opened_at = time.monotonic()
                self._call = self._opener()
            except TritonKitError as exc:
                delay = self._retry_delay(exc)
                if delay is None:
                    raise
                time.sleep(delay)

    def _next_event(self) -> Event | None:
        while True:
            self._ensure_open()
            wait, phase = self._wait()
            if self._overdue(wait, phase):
                raise self._timed_out(wait, phase)
            try:
                return self._call.next(wait)
            except queue.Empty:
                raise self._timed_out(wait, phase) from None
            except TritonKitError as exc:
                delay = self._retry_delay(exc)
                if delay is None:
                    raise
                self._call.cancel()
                self._call = None
                time.sleep(delay)

    def completion(self) -> Completion:
        """Read the rest of the stream and return the whole result."""
        for _ in self:
            pass
        return self._state.completion()

    def close(self) -> None:
        """Stop reading; if the generation is still running, cancel it on the server."""
        if self._closed:
            return
        self._closed = True
        if self._call is None:
            return
        if self._state.done:
            self._call.finish(FINISH_WAIT_S)
        else:
            self._call.cancel()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class AsyncStream(_StreamBase):
    """An asyncio stream of :class:`Chunk`: ``async with client.stream_chat(...) as s``."""

    def __init__(self, opener: Callable[[], Awaitable[Any]], model: str, timeout: Timeout,
                 retry: Retry) -> None:
        super().__init__(model, timeout, retry)
        self._opener = opener
        self._call: Any = None

    async def __aenter__(self) -> AsyncStream:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._state.done:
            await self.aclose()
            raise StopAsyncIteration
        if self._closed:
            raise StreamClosedError("the stream is closed")
        try:
            event = await self._next_event()
        except BaseException:  # includes asyncio.CancelledError: cancel on the server too
            await asyncio.shield(self.aclose())
            raise
        if event is None:
            await self.aclose()
            self._state.completion()
            raise StopAsyncIteration
        return self._accept(event)

    async def _ensure_open(self) -> None:
        while self._call is None:
            try:
                self._opened_at = time.monotonic()
                self._call = await self._opener()
            except TritonKitError as exc:
                delay = self._retry_delay(exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _next_event(self) -> Event | None:
        while True:
            await self._ensure_open()
            wait, phase = self._wait()
            if self._overdue(wait, phase):
                raise self._timed_out(wait, phase)
            try:
                # not asyncio.wait_for: before Python 3.12 it can swallow a cancellation that
                # lands as the response arrives, and the task then reads the stream to its end
                # for nobody (the gateway's disconnected clients kept generating)
                async with _deadline(wait):
                    return await self._call.next()
            except asyncio.TimeoutError:
                raise self._timed_out(wait, phase) from None
            except TritonKitError as exc:
                delay = self._retry_delay(exc)
                if delay is None:
                    raise
                await self._call.cancel()
                self._call = None
                await asyncio.sleep(delay)

    async def completion(self) -> Completion:
        async for _ in self:
            pass
        return self._state.completion()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        call = self._call
        if call is None:
            return
        if not self._state.done:
            await call.cancel()
            return
        try:  # read the finished call to its end rather than cancel it (see `_Pump.finish`)
            async with _deadline(FINISH_WAIT_S):
                await call.drain()
        except asyncio.CancelledError:
            await call.cancel()
            raise
        except Exception:  # not ended in time, or failed after the final: nothing is lost
            await call.cancel()
