"""The `tritonkit` command line: thin commands over library code.

Each stage owns a typer app in its own module; they are mounted here.
"""

from __future__ import annotations

import typer

from tritonkit import helm_values, serve_cli

app = typer.Typer(
    name="tritonkit",
    help="Serve 70B-class chat models on Triton: render, serve, build, chat, load-test.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# --- stage apps (one line each) -------------------------------------------------------------
# (add `app.add_typer(<module>.app, name=...)` or `app.command(...)(fn)` lines here)
app.add_typer(__import__("tritonkit.build.cli", fromlist=["app"]).app, name="build")
app.command("prompt")(__import__("tritonkit.prompt_cli", fromlist=["prompt"]).prompt)
app.add_typer(helm_values.app, name="helm")
app.command("render")(serve_cli.render)
app.command("serve")(serve_cli.serve)
__import__("tritonkit.clients.cli", fromlist=["register"]).register(app)  # chat, generate, gateway
app.command("loadtest")(__import__("tritonkit.loadtest.cli", fromlist=["loadtest"]).loadtest)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
