"""Access control for the Triton server tritonkit starts: one place for the admin-key rules.

Triton's admin APIs (model repository, shared memory, logging, trace, statistics) are always
restricted behind a key (`--http-restricted-api` / `--grpc-restricted-protocol`): requests to them
must carry the header `tritonkit-admin-key: <key>` (HTTP) or the metadata
`triton-grpc-protocol-tritonkit-admin-key: <key>` (gRPC; Triton adds the prefix). The key comes
from `TRITONKIT_ADMIN_KEY` (or the file named by `TRITONKIT_ADMIN_KEY_FILE`, e.g. a mounted
Kubernetes Secret); when neither is set, a random key nobody knows is used, so those APIs
are closed. Model control stays off (Triton's default mode `none`), so models cannot be loaded or
unloaded over the API at all. Inference, health, metadata and model config stay open.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ADMIN_HEADER",
    "ADMIN_KEY_ENV",
    "GRPC_ADMIN_HEADER",
    "RESTRICTED_APIS",
    "GrpcTls",
    "admin_headers",
    "server_access_args",
]

ADMIN_HEADER = "tritonkit-admin-key"
#: Triton 2.51 looks for gRPC restricted-protocol keys under this prefix (checked).
GRPC_ADMIN_HEADER = "triton-grpc-protocol-" + ADMIN_HEADER
ADMIN_KEY_ENV = "TRITONKIT_ADMIN_KEY"
ADMIN_KEY_FILE_ENV = "TRITONKIT_ADMIN_KEY_FILE"
#: Triton's names for the admin APIs (the same for HTTP and gRPC in 2.51).
RESTRICTED_APIS = ("model-repository", "shared-memory", "logging", "trace", "statistics")


def configured_admin_key() -> str | None:
    """The admin key from the environment or a key file, if any."""
    if os.environ.get(ADMIN_KEY_ENV):
        return os.environ[ADMIN_KEY_ENV]
    path = os.environ.get(ADMIN_KEY_FILE_ENV)
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return None


def admin_key() -> str:
    """The configured admin key, or a fresh random one (admin APIs effectively closed)."""
    return configured_admin_key() or secrets.token_urlsafe(32)


def admin_headers() -> dict[str, str]:
    """Headers that unlock the admin APIs, when this process knows the key."""
    key = configured_admin_key()
    return {ADMIN_HEADER: key, GRPC_ADMIN_HEADER: key} if key else {}


@dataclass(frozen=True)
class GrpcTls:
    """PEM files for gRPC TLS; with `client_ca`, clients must present a certificate (mutual)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def args(self) -> list[str]:
        for p in (self.cert, self.key, self.client_ca):
            if p is not None and not Path(p).is_file():
                raise FileNotFoundError(f"gRPC TLS file not found: {p}")
        out = [f"--grpc-server-cert={self.cert}", f"--grpc-server-key={self.key}"]
        if self.client_ca is not None:
            out += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.client_ca}"]
        else:
            out.append("--grpc-use-ssl=true")
        return out


def server_access_args(key: str, tls: GrpcTls | None = None) -> list[str]:
    """tritonserver flags: admin APIs behind `key` on HTTP and gRPC, optional gRPC TLS."""
    apis = ",".join(RESTRICTED_APIS)
    out = [
        f"--http-restricted-api={apis}:{ADMIN_HEADER}={key}",
        f"--grpc-restricted-protocol={apis}:{ADMIN_HEADER}={key}",
    ]
    return out + (tls.args() if tls is not None else [])
