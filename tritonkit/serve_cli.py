"""`tritonkit render` and `tritonkit serve`: thin commands over model_repository and serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tritonkit.deployment import DeploymentError, load_deployment

DeploymentOpt = Annotated[
    list[Path],
    typer.Option("--deployment", "-d", help="deployment YAML (repeat to serve several)"),
]


def _load(paths: list[Path]):
    try:
        return [load_deployment(p) for p in paths]
    except DeploymentError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def render(
    deployment: DeploymentOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="output model repository folder")],
) -> None:
    """Write a complete Triton model repository for the deployment(s)."""
    from tritonkit.model_repository.render import RenderError, render_repository

    deps = _load(deployment)
    try:
        models = render_repository(deps, out)
    except (RenderError, ValueError) as exc:
        typer.echo(f"render: {exc}", err=True)
        raise typer.Exit(2) from None
    for name in sorted(models):
        typer.echo(f"{out / name}")


def serve(
    deployment: DeploymentOpt,
    http_port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port")] = 8001,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port")] = 8002,
    repo: Annotated[Path | None, typer.Option(help="render into this folder")] = None,
    exit_timeout: Annotated[int, typer.Option(help="seconds to drain on shutdown")] = 30,
) -> None:
    """Render, start tritonserver, wait until ready, serve until Ctrl-C/SIGTERM."""
    from tritonkit.serve import Ports, TritonServer, serve_forever

    deps = _load(deployment)
    server = TritonServer(
        deps, Ports(http_port, grpc_port, metrics_port), repo_dir=repo, exit_timeout_s=exit_timeout
    )
    raise typer.Exit(serve_forever(server, echo=typer.echo))
