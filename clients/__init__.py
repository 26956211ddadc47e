"""Client SDK, chat CLI and OpenAI-compatible gateway (tritonkit.clients).

    from tritonkit.clients import Client, AsyncClient

`Client`/`AsyncClient` talk to a tritonkit deployment over gRPC or HTTP (`protocol=`); the
exception tree is drawn in `tritonkit.clients._exceptions`. The gateway lives in
`tritonkit.clients.gateway_*` (needs the `gateway` extra), the CLI in `tritonkit.clients.cli`.
"""

from tritonkit.clients._base import USE_CLIENT_DEFAULT
from tritonkit.clients._client import AsyncClient, Client
from tritonkit.clients._config import DEFAULT_RETRY, DEFAULT_TIMEOUT, Retry, Timeout
from tritonkit.clients._exceptions import (
    CancelledError,
    InvalidRequestError,
    ModelNotFoundError,
    ServerError,
    StreamClosedError,
    TimeoutError,
    TritonKitError,
    UnavailableError,
)
from tritonkit.clients._streams import AsyncStream, Stream
from tritonkit.clients._types import Chunk, Completion, ModelInfo, Usage

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "AsyncClient",
    "AsyncStream",
    "CancelledError",
    "Chunk",
    "Client",
    "Completion",
    "InvalidRequestError",
    "ModelInfo",
    "ModelNotFoundError",
    "Retry",
    "ServerError",
    "Stream",
    "StreamClosedError",
    "Timeout",
    "TimeoutError",
    "TritonKitError",
    "UnavailableError",
    "Usage",
]
