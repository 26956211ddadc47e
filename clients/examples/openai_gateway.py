"""The official `openai` client against `tritonkit gateway`.

    tritonkit gateway --triton localhost:8001 --port 9000 --api-key sk-local &
    python clients/examples/openai_gateway.py http://localhost:9000/v1 sk-local athene-70b
"""

from __future__ import annotations

import sys

from openai import OpenAI


def main(base_url: str, api_key: str, model: str) -> None:
    client = OpenAI(base_url=base_url, api_key=api_key)
    print([m.id for m in client.models.list()])
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=12)
    print(reply.choices[0].finish_reason, reply.usage)
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=12,
        stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
        elif chunk.usage:
            print("\nusage:", chunk.usage)


if __name__ == "__main__":
    main(*sys.argv[1:])
