"""Serving a Llama-3/3.1 or Qwen2.5 checkpoint folder that has no catalog entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.checkpoints import make_llama31_checkpoint
from tests.conftest import CHECKPOINT_MODEL, Live, grpc_stream, http_generate, messages
from tritonkit.catalog import CatalogError
from tritonkit.catalog.checkpoint import spec_from_checkpoint
from tritonkit.chat import ChatFormatter
from tritonkit.deployment import DeploymentError, parse_deployment
from tritonkit.model_repository.render import render_repository

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 👋 there"}]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_llama31_checkpoint(tmp_path_factory.mktemp("ck") / "acme-llama-3.1-8b")


def test_spec_comes_from_the_checkpoint_files(ckpt: Path) -> None:
    spec = spec_from_checkpoint(ckpt)
    assert spec.name == "acme-llama-3.1-8b" and spec.family == "llama3.1"
    assert spec.stop_token_ids == (128001, 128008, 128009)  # generation_config first
    assert spec.architecture.num_layers == 32 and spec.max_position_embeddings == 131072
    assert spec.tokenizer.add_special_tokens is False  # the template writes BOS itself


def test_the_folder_template_renders_and_encodes_like_hf(ckpt: Path) -> None:
    dep = parse_deployment({"checkpoint_dir": str(ckpt)})
    fmt = ChatFormatter.from_deployment(dep)
    hf = AutoTokenizer.from_pretrained(str(ckpt))
    for gen in (True, False):
        assert fmt.render(CHAT, add_generation_prompt=gen) == hf.apply_chat_template(
            CHAT, tokenize=False, add_generation_prompt=gen)
    assert "[2] Hi" in fmt.render(CHAT)  # the checkpoint's own template, not a catalog one
    ids = hf.apply_chat_template(CHAT, tokenize=True, add_generation_prompt=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert fmt.encode_messages(CHAT) == ids and ids.count(128000) == 1


def test_render_and_bad_folders(ckpt: Path, tmp_path: Path) -> None:
    dep = parse_deployment({"checkpoint_dir": str(ckpt), "name": "acme"})
    assert "acme" in render_repository([dep], tmp_path / "repo")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    (bad / "tokenizer.json").write_text((ckpt / "tokenizer.json").read_text())
    (bad / "tokenizer_config.json").write_text(json.dumps({"chat_template": "x", "eos_token": "x"}))
    with pytest.raises(DeploymentError, match="model_type 'mistral' is not served"):
        parse_deployment({"checkpoint_dir": str(bad)})
    (bad / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|eot_id|>"}))
    with pytest.raises(CatalogError, match="no chat_template"):
        spec_from_checkpoint(bad)
    with pytest.raises(DeploymentError, match="model: required"):
        parse_deployment({})


def test_checkpoint_model_serves_live(live: Live) -> None:
    fmt = ChatFormatter.from_deployment(live.deployments[CHECKPOINT_MODEL])
    chat = messages(("user", "Hello from a checkpoint"))
    whole = http_generate(live, CHECKPOINT_MODEL, {"messages": chat, "max_tokens": 12}).json()
    assert whole["num_input_tokens"] == len(fmt.encode_messages(fmt.validate_messages(chat)))
    stream = grpc_stream(live, CHECKPOINT_MODEL, {"messages": chat, "max_tokens": 12,
                                                  "stream": True})
    assert stream.text == whole["text_output"] and stream.finish_reason == whole["finish_reason"]
