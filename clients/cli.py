"""`tritonkit chat`, `tritonkit generate` and `tritonkit gateway`: thin commands over the SDK.

    tritonkit chat --url localhost:8001 --model athene-70b              # interactive
    tritonkit chat --url localhost:8001 --model athene-70b --once "Hi" --json
    tritonkit generate --url localhost:8001 --model athene-70b "Once upon a time"
    tritonkit gateway --triton localhost:8001 --port 9000 --api-key sk-local
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from tritonkit.clients import Client, Stream, TritonKitError

__all__ = ["chat", "gateway", "generate", "register"]

err = Console(stderr=True)

Url = Annotated[str, typer.Option(help="Triton gRPC (host:8001) or HTTP (host:8000) address",
                                  envvar="TRITONKIT_URL")]
Model = Annotated[str | None, typer.Option(help="served model (default: the only one)",
                                           envvar="TRITONKIT_MODEL")]
Protocol = Annotated[str, typer.Option(help="grpc or http")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object per reply")]
MaxTokens = Annotated[int | None, typer.Option(help="output cap (default: remaining context)")]
Temperature = Annotated[float | None, typer.Option(help="sampling temperature")]
TopP = Annotated[float | None, typer.Option(help="nucleus sampling")]
Seed = Annotated[int | None, typer.Option(help="sampling seed")]


def _result(stream: Stream, elapsed: float | None) -> dict[str, Any]:
    usage = stream.usage
    return {"model": stream.model, "text": stream.text, "finish_reason": stream.finish_reason,
            "usage": None if usage is None else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens},
            "time_to_first_token": stream.time_to_first_token, "elapsed": elapsed}


def _print_stream(stream: Stream, as_json: bool) -> dict[str, Any]:
    """Show a reply as it arrives (or as one JSON object at the end)."""
    last = None
    with stream:
        for chunk in stream:
            last = chunk.time
            if not as_json:
                sys.stdout.write(chunk.delta)
                sys.stdout.flush()
    out = _result(stream, last)
    if as_json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print()
    return out


def _fail(exc: TritonKitError) -> typer.Exit:
    field = getattr(exc, "field", None)
    err.print(f"[red]error[/red] ({type(exc).__name__}{f', field {field}' if field else ''}): "
              f"{exc.message}", highlight=False, markup=True)
    return typer.Exit(1)


def chat(
    url: Url = "localhost:8001",
    model: Model = None,
    protocol: Protocol = "grpc",
    system: Annotated[str | None, typer.Option(help="system prompt")] = None,
    once: Annotated[str | None, typer.Option(help="send one message, print the reply, exit")] = None,
    as_json: Json = False,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    seed: Seed = None,
) -> None:
    """Chat with a served model: streamed replies, history kept; Ctrl-C stops a reply."""
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                "seed": seed}
    with Client(url, protocol=protocol, model=model) as client:
        if once is not None:
            history.append({"role": "user", "content": once})
            try:
                _print_stream(client.stream_chat(history, **sampling), as_json)
            except TritonKitError as exc:
                raise _fail(exc) from None
            return
        err.print("[dim]/reset clears the history, /exit or Ctrl-D quits, "
                  "Ctrl-C stops a reply[/dim]")
        while True:
            try:
                line = input("> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return
            if line.strip() in ("/exit", "/quit"):
                return
            if line.strip() == "/reset":
                del history[1 if system else 0:]
                continue
            if not line.strip():
                continue
            history.append({"role": "user", "content": line})
            stream = client.stream_chat(history, **sampling)
            try:
                out = _print_stream(stream, as_json)
            except KeyboardInterrupt:  # the stream is closed: the server stops generating
                print()
                err.print("[yellow]stopped[/yellow]")
                out = {"text": stream.text}
            except TritonKitError as exc:
                _fail(exc)
                history.pop()
                continue
            history.append({"role": "assistant", "content": out["text"]})


def generate(
    prompt: Annotated[str, typer.Argument(help="raw prompt (no chat template)")],
    url: Url = "localhost:8001",
    model: Model = None,
    protocol: Protocol = "grpc",
    as_json: Json = False,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    seed: Seed = None,
    stop: Annotated[list[str] | None, typer.Option(help="stop string (repeatable)")] = None,
) -> None:
    """Complete one raw prompt and print the result."""
    with Client(url, protocol=protocol, model=model) as client:
        try:
            _print_stream(client.stream_generate(prompt, max_tokens=max_tokens, stop=stop,
                                                 temperature=temperature, top_p=top_p,
                                                 seed=seed), as_json)
        except TritonKitError as exc:
            raise _fail(exc) from None


def gateway(
    triton: Annotated[str, typer.Option(help="Triton address (gRPC host:8001 by default)",
                                        envvar="TRITONKIT_URL")] = "localhost:8001",
    port: Annotated[int, typer.Option(help="port to listen on")] = 9000,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    protocol: Protocol = "grpc",
    api_key: Annotated[list[str] | None, typer.Option(
        help="accepted bearer key (repeatable; none: no auth)", envvar="TRITONKIT_API_KEY")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models)."""
    try:
        from tritonkit.clients.gateway_app import run
    except ImportError as exc:
        err.print(f"the gateway needs the `gateway` extra (pip install 'tritonkit[gateway]'): "
                  f"{exc}")
        raise typer.Exit(1) from None
    run(triton, host=host, port=port, protocol=protocol, api_keys=api_key or (),
        log_level=log_level)


def register(app: typer.Typer) -> None:
    """Mount the client commands on the `tritonkit` app."""
    app.command("chat")(chat)
    app.command("generate")(generate)
    app.command("gateway")(gateway)
