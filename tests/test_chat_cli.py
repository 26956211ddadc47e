"""`tritonkit prompt` through the real typer app (CliRunner) and once as the installed command."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tritonkit.cli import app

MESSAGES = [{"role": "user", "content": "Hi <|eot_id|>"}]


@pytest.fixture
def messages_file(tmp_path: Path) -> Path:
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(MESSAGES))
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["prompt", *args])


def test_prints_rendered_prompt_as_json_string(messages_file: Path) -> None:
    res = run("--model", "smaug-llama-3-70b", "--messages", str(messages_file))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        "Hi <|eot_id|><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_ids_without_generation_prompt(messages_file: Path) -> None:
    res = run("--model", "smaug-llama-3-70b", "--messages", str(messages_file), "--ids",
              "--no-generation-prompt")  # fmt: skip
    assert res.exit_code == 0, res.output
    ids = json.loads(res.stdout)
    # the user's "<|eot_id|>" is text; only the template's closing marker is 128009
    assert ids[:5] == [128000, 128006, 882, 128007, 271]
    assert ids[-1] == 128009 and ids.count(128009) == 1


def test_deployment_instead_of_model(tmp_path: Path, messages_file: Path) -> None:
    dep = tmp_path / "dep.yaml"
    dep.write_text("model: athene-v2-chat\nserving:\n  system_prompt: Be brief.\n")
    res = run("--deployment", str(dep), "--messages", str(messages_file))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout).startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--model", "llama-9"], "unknown model 'llama-9'"),
        (["--model", "tulu-3-70b", "--deployment", "x.yaml"], "exactly one of"),
        (["--deployment", "/nonexistent.yaml"], "no such deployment file"),
    ],
)
def test_usage_errors_exit_nonzero_without_traceback(
    messages_file: Path, args: list[str], match: str
) -> None:
    res = run(*args, "--messages", str(messages_file))
    assert res.exit_code == 1
    assert match in res.stderr and "Traceback" not in res.output


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not valid JSON"),
        ('[{"role": "tool", "content": "x"}]', "'tool' is not allowed"),
    ],
)
def test_bad_messages_file(tmp_path: Path, content: str, match: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    res = run("--model", "tulu-3-70b", "--messages", str(bad))
    assert res.exit_code == 1 and match in res.stderr and "Traceback" not in res.output


def test_installed_command(messages_file: Path) -> None:
    exe = shutil.which("tritonkit") or str(Path(__file__).parents[1] / ".venv/bin/tritonkit")
    proc = subprocess.run(
        [exe, "prompt", "--model", "tulu-3-70b", "--messages", str(messages_file), "--ids"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[:6] == [128000, 27, 91, 882, 91, 397]
