"""Many concurrent streams over one asyncio gRPC connection, one of them cancelled.

    python clients/examples/async_concurrent.py localhost:8001 athene-70b
"""

from __future__ import annotations

import asyncio
import sys

from tritonkit.clients import AsyncClient


async def main(url: str, model: str) -> None:
    async with AsyncClient(url, model=model) as client:

        first_chunk = asyncio.Event()

        async def ask(i: int, max_tokens: int = 8) -> str:
            async with client.stream_chat([{"role": "user", "content": f"Count to {i}"}],
                                          max_tokens=max_tokens) as stream:
                async for _ in stream:
                    first_chunk.set()
            return f"{i}: {stream.finish_reason} {stream.usage}"

        for line in await asyncio.gather(*(ask(i) for i in range(8))):
            print(line)
        # Cancelling the task (here: once its stream is under way) cancels the request on the server.
        first_chunk.clear()
        task = asyncio.create_task(ask(100, max_tokens=2000))
        await first_chunk.wait()
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        print("cancelled:", type(outcome).__name__)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
