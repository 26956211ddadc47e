"""The `tritonkit` command line: thin commands over library code.

Each stage owns a typer app in its own module; they are mounted here.
"""

from __future__ import annotations

import typer

from tritonkit import helm_values, prompt_cli, serve_cli
from tritonkit.build import cli as build_cli
from tritonkit.clients import cli as clients_cli
from tritonkit.loadtest import cli as loadtest_cli

app = typer.Typer(
    name="tritonkit",
    help="Serve 70B-class chat models on Triton: render, serve, build, chat, load-test.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# --- stage apps, one line each ---------------------------------------------------------------
app.command("render")(serve_cli.render)
app.command("serve")(serve_cli.serve)
app.command("prompt")(prompt_cli.prompt)
app.add_typer(build_cli.app, name="build")
app.add_typer(helm_values.app, name="helm")
clients_cli.register(app)  # chat, generate, gateway
app.command("loadtest")(loadtest_cli.loadtest)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
