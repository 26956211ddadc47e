"""Typed errors: the offending field is named, over gRPC and HTTP alike.

    python clients/examples/errors.py localhost:8001 athene-70b [grpc|http]
"""

from __future__ import annotations

import sys

from tritonkit.clients import Client, InvalidRequestError, ModelNotFoundError


def main(url: str, model: str, protocol: str = "grpc") -> None:
    with Client(url, protocol=protocol) as client:
        try:
            client.generate("Hi", model=model, max_tokens=0)
        except InvalidRequestError as exc:
            print(f"field={exc.field} message={exc.message}")
        try:
            client.generate("Hi", model="no-such-model")
        except ModelNotFoundError as exc:
            print(f"field={exc.field} message={exc.message}")


if __name__ == "__main__":
    main(*sys.argv[1:])
