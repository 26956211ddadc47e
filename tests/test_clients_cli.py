"""`tritonkit chat` / `tritonkit generate` as a user runs them (subprocess), and the SDK examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.live

MODEL = "athene-70b"
EXAMPLES = Path(__file__).resolve().parent.parent / "clients" / "examples"


def _tritonkit(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritonkit.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_chat_once_json(live: Any) -> None:
    out = _tritonkit("chat", "--url", live.grpc_url, "--model", MODEL, "--once", "Hi there",
                     "--max-tokens", "6", "--json")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["finish_reason"] == "length" and reply["usage"]["completion_tokens"] == 6
    assert reply["text"] and reply["time_to_first_token"] > 0


def test_chat_interactive_keeps_history(live: Any) -> None:
    out = _tritonkit("chat", "--url", live.http_url, "--protocol", "http", "--model", MODEL,
                     "--system", "Be brief.", "--max-tokens", "4", "--json",
                     stdin="first question\nsecond question\n/exit\n")
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line.removeprefix("> ")) for line in out.stdout.splitlines()
               if line.lstrip("> ").startswith("{")]
    assert len(replies) == 2
    first, second = (r["usage"]["prompt_tokens"] for r in replies)
    assert second > first + 4  # the second prompt carries the first turn and its reply


def test_generate_plain_and_error_exit(live: Any) -> None:
    ok = _tritonkit("generate", "--url", live.grpc_url, "--model", MODEL, "Once upon",
                    "--max-tokens", "5")
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    bad = _tritonkit("generate", "--url", live.grpc_url, "--model", MODEL, "Once upon",
                     "--max-tokens", "0")
    assert bad.returncode == 1
    assert "field max_tokens" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(("example", "protocol"), [("chat_stream.py", "grpc"),
                                                   ("async_concurrent.py", "grpc"),
                                                   ("errors.py", "grpc"), ("errors.py", "http")])
def test_examples_run(live: Any, example: str, protocol: str) -> None:
    url = live.grpc_url if protocol == "grpc" else live.http_url
    args = [url, MODEL] + ([protocol] if example == "errors.py" else [])
    out = subprocess.run([sys.executable, str(EXAMPLES / example), *args], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    expected = {"chat_stream.py": "finish_reason: length",
                "async_concurrent.py": "cancelled: CancelledError",
                "errors.py": "field=max_tokens"}[example]
    assert expected in out.stdout
