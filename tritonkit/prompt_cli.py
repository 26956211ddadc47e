"""`tritonkit prompt`: print a chat rendered with a model's template (JSON string) or its ids.

Heavy imports (transformers) happen inside the command so `tritonkit --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def prompt(
    messages: Annotated[
        Path, typer.Option("--messages", help="JSON file: a list of {role, content} messages")
    ],
    model: Annotated[str | None, typer.Option("--model", help="catalog model name")] = None,
    deployment: Annotated[
        Path | None, typer.Option("--deployment", help="deployment YAML (instead of --model)")
    ] = None,
    generation_prompt: Annotated[
        bool,
        typer.Option(
            "--generation-prompt/--no-generation-prompt",
            help="end with the assistant header (add_generation_prompt)",
        ),
    ] = True,
    ids: Annotated[bool, typer.Option("--ids", help="print the token ids instead")] = False,
) -> None:
    """Render MESSAGES with the model's chat template; print it as a JSON string (or ids)."""
    from tritonkit.catalog import CatalogError, get_model
    from tritonkit.chat import ChatError, ChatFormatter
    from tritonkit.deployment import DeploymentError, load_deployment
    from tritonkit.tokenizer_assets import TokenizerAssetsError, tokenizer_dir_for

    if (model is None) == (deployment is None):
        raise _fail("give exactly one of --model NAME or --deployment FILE")
    try:
        if deployment is not None:
            formatter = ChatFormatter.from_deployment(load_deployment(deployment))
        else:
            spec = get_model(model or "")
            formatter = ChatFormatter(spec, tokenizer_dir_for(spec))
        try:
            text = messages.read_text(encoding="utf-8")
        except OSError as exc:
            raise ChatError(f"--messages: cannot read {messages}: {exc.strerror}") from None
        if ids:
            out = json.dumps(formatter.encode_messages(text, generation_prompt))
        else:
            out = json.dumps(formatter.render(text, generation_prompt), ensure_ascii=False)
    except (CatalogError, ChatError, DeploymentError, TokenizerAssetsError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(out)
