"""Stream a chat reply over gRPC and print per-chunk timing.

    python clients/examples/chat_stream.py localhost:8001 athene-70b
"""

from __future__ import annotations

import sys

from tritonkit.clients import Client


def main(url: str, model: str) -> None:
    messages = [{"role": "system", "content": "You are concise."},
                {"role": "user", "content": "Name three rivers."}]
    with Client(url, model=model) as client, client.stream_chat(messages, max_tokens=16) as stream:
        for chunk in stream:
            print(f"{chunk.time * 1000:7.1f} ms  {chunk.delta!r}")
    print("finish_reason:", stream.finish_reason, "usage:", stream.usage)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
