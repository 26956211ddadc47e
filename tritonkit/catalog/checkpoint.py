"""A catalog entry derived from a Hugging Face checkpoint folder, for models not in the catalog.

Any Llama-3/3.1 or Qwen2.5 checkpoint is servable without a catalog entry when its folder holds
`config.json`, `tokenizer.json` and a `tokenizer_config.json` carrying a `chat_template`
(`generation_config.json` is read for the stop ids when present). The folder's own template is
what the chat formatter renders; the catalog template of the family is only the fallback name.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from tritonkit.catalog import CatalogError, ModelSpec

__all__ = ["spec_from_checkpoint"]

_FAMILY_DEFAULTS = {  # family -> (catalog template, tokenizer recipe)
    "llama3": ("llama3", "llama3"),
    "llama3.1": ("llama3.1", "llama3.1"),
    "qwen2.5": ("qwen2.5", "qwen2.5"),
}


def _read(folder: Path, name: str, required: bool = True) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        if required:
            raise CatalogError(f"checkpoint_dir: {folder} has no {name}")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"checkpoint_dir: {path} is not valid JSON: {exc}") from None


def _token(value: Any) -> str | None:
    """tokenizer_config token entries are strings or AddedToken dicts."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, list) else [value])]


def _family(cfg: dict[str, Any]) -> str:
    kind = cfg.get("model_type")
    if kind == "qwen2":
        return "qwen2.5"
    if kind == "llama":
        scaling = cfg.get("rope_scaling") or {}
        return "llama3.1" if scaling.get("rope_type") == "llama3" else "llama3"
    raise CatalogError(
        f"checkpoint_dir: model_type {kind!r} is not served; allowed: llama (Llama-3/3.1), "
        "qwen2 (Qwen2.5)"
    )


@functools.cache
def spec_from_checkpoint(folder: str | Path, name: str | None = None) -> ModelSpec:
    """Build a ModelSpec from the checkpoint's own files; errors name the file and field."""
    folder = Path(folder)
    cfg = _read(folder, "config.json")
    tok_cfg = _read(folder, "tokenizer_config.json")
    gen = _read(folder, "generation_config.json", required=False)
    if not (folder / "tokenizer.json").is_file():
        raise CatalogError(f"checkpoint_dir: {folder} has no tokenizer.json")
    if not tok_cfg.get("chat_template"):
        raise CatalogError(
            f"checkpoint_dir: {folder}/tokenizer_config.json has no chat_template; add the "
            "model to the catalog instead (tritonkit/catalog/models.yaml)"
        )
    family = _family(cfg)
    template, recipe = _FAMILY_DEFAULTS[family]
    heads = int(cfg["num_attention_heads"])
    vocab_file = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = {t["content"]: t["id"] for t in vocab_file.get("added_tokens", [])}
    vocab.update(vocab_file["model"]["vocab"])
    bos, eos, pad = (_token(tok_cfg.get(k)) for k in ("bos_token", "eos_token", "pad_token"))
    if eos is None or eos not in vocab:
        raise CatalogError(f"checkpoint_dir: tokenizer_config.json eos_token {eos!r} is unknown")
    eos_id = vocab[eos]
    stops: list[int] = []
    for t in [*_ids(gen.get("eos_token_id")), *_ids(cfg.get("eos_token_id")), eos_id]:
        if t not in stops:
            stops.append(t)
    writes_bos = bool(bos) and ("bos_token" in tok_cfg["chat_template"] or bos in tok_cfg["chat_template"])
    fallback = re.sub(r"[^a-z0-9._-]+", "-", folder.name.lower()).strip("-") or "checkpoint"
    try:
        return ModelSpec(
            name=name or fallback,
            checkpoint=str(folder),
            family=family,
            note="derived from the checkpoint folder",
            architecture={
                "model_type": cfg["model_type"],
                "hf_architecture": (cfg.get("architectures") or ["?"])[0],
                "num_layers": cfg["num_hidden_layers"],
                "hidden_size": cfg["hidden_size"],
                "num_attention_heads": heads,
                "num_kv_heads": cfg.get("num_key_value_heads", heads),
                "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
                "intermediate_size": cfg["intermediate_size"],
                "vocab_size": cfg["vocab_size"],
                "rope_theta": cfg.get("rope_theta", 10000.0),
                "rope_scaling": cfg.get("rope_scaling"),
                "rms_norm_eps": cfg.get("rms_norm_eps", 1e-5),
                "qkv_bias": cfg["model_type"] == "qwen2",
                "tie_word_embeddings": cfg.get("tie_word_embeddings", False),
                "torch_dtype": cfg.get("torch_dtype", "bfloat16"),
            },
            max_position_embeddings=cfg["max_position_embeddings"],
            tokenizer={
                "recipe": recipe,
                "bos_token": bos,
                "eos_token": eos,
                "pad_token": pad,
                "add_special_tokens": bool(bos) and not writes_bos,
            },
            bos_token_id=vocab.get(bos) if bos else None,
            eos_token_id=eos_id,
            pad_token_id=vocab.get(pad) if pad else None,
            stop_token_ids=tuple(stops),
            chat_template=template,
            default_system_prompt=None,
        )
    except KeyError as exc:
        raise CatalogError(f"checkpoint_dir: config.json has no {exc.args[0]!r}") from None
    except ValueError as exc:
        raise CatalogError(f"checkpoint_dir: {folder}: {exc}") from None
