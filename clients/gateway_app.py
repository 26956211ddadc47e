"""Routes of the OpenAI-compatible gateway (FastAPI), kept thin: parse, call serving, shape errors.

    tritonkit gateway --triton localhost:8001 --port 9000 --api-key sk-local

Non-streaming handlers race the client's disconnect: if it goes away, the Triton requests are
cancelled. Streaming responses are cancelled by Starlette when the client disconnects, which
closes the stream generators and so the Triton requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tritonkit.clients import AsyncClient, Timeout
from tritonkit.clients.gateway_protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    GatewayError,
    _SamplingRequest,
)
from tritonkit.clients.gateway_serving import EventStream, OpenAIServing, error_response

__all__ = ["create_app", "run"]


def _error(exc: BaseException, req: _SamplingRequest | None = None) -> JSONResponse:
    status, body = error_response(exc, req)
    return JSONResponse(body.model_dump(), status_code=status)


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise GatewayError(f"the request body is not valid JSON: {exc}") from None


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _cancel_on_disconnect(request: Request, work: Awaitable[Any]) -> Any:
    """Run `work`; if the client disconnects first, cancel it (and its Triton requests)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return None
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


class _EventStreamResponse(StreamingResponse):
    """Server-sent events that cancel their Triton requests however the response ends: done,
    failed, or the client gone (even before the first event, when Starlette never iterates)."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(stream, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache"})
        self._stream = stream

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()


def create_app(triton_url: str, *, protocol: str = "grpc", api_keys: Sequence[str] = (),
               timeout: Timeout | None = None) -> FastAPI:
    """The gateway app in front of the Triton server at `triton_url`."""
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = AsyncClient(triton_url, protocol=protocol, timeout=timeout or Timeout())
        state["serving"] = OpenAIServing(client)
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(title="tritonkit OpenAI-compatible gateway", lifespan=lifespan)
    keys = [k.encode() for k in api_keys]

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        if keys and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not any(hmac.compare_digest(given.encode(), k) for k in keys):
                return _error(GatewayError("Incorrect API key provided.", status=401,
                                           code="invalid_api_key"))
        return await call_next(request)

    def serving() -> OpenAIServing:
        return state["serving"]

    @app.get("/health")
    async def health() -> JSONResponse:
        ok = await serving().client.health()
        return JSONResponse({"triton_ready": ok}, status_code=200 if ok else 503)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        try:
            return JSONResponse(await serving().list_models())
        except Exception as exc:
            return _error(exc)

    @app.get("/v1/models/{name}")
    async def model(name: str) -> JSONResponse:
        try:
            await serving().check_model(name)
            return JSONResponse(next(m for m in (await serving().list_models())["data"]
                                     if m["id"] == name))
        except Exception as exc:
            return _error(exc)

    async def handle(request: Request, cls: type[_SamplingRequest], method: str) -> Any:
        req: _SamplingRequest | None = None
        try:
            req = cls.model_validate(await _body(request))
            result = await _cancel_on_disconnect(request, getattr(serving(), method)(req))
        except Exception as exc:
            return _error(exc, req)
        if result is None:  # the client went away
            return JSONResponse({}, status_code=499)
        if isinstance(result, dict):
            return JSONResponse(result)
        return _EventStreamResponse(result)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await handle(request, ChatCompletionRequest, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await handle(request, CompletionRequest, "completions")

    return app


def run(triton_url: str, *, host: str = "127.0.0.1", port: int = 9000,
        protocol: str = "grpc", api_keys: Sequence[str] = (), log_level: str = "info") -> None:
    """Serve the gateway with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(triton_url, protocol=protocol, api_keys=api_keys), host=host,
                port=port, log_level=log_level)
