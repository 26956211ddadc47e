"""``check_manifest``: refuse to serve engines that do not match the deployment."""

from __future__ import annotations

import json
from pathlib import Path

from tritonkit.build.gpus import get_gpu
from tritonkit.build.manifest import MANIFEST

__all__ = ["EngineMismatch", "check_manifest", "read_manifest"]


class EngineMismatch(ValueError):
    """Engines on disk do not fit the deployment; each line names a deployment field."""


def read_manifest(engine_dir: str | Path) -> dict:
    """The manifest.json of an engine folder (EngineMismatch when missing or unreadable)."""
    path = Path(engine_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineMismatch(
            f"tensorrtllm.engine_dir: {path} not found; build the engines with "
            "`tritonkit build run` (it writes the manifest beside them)"
        ) from None
    except json.JSONDecodeError as exc:
        raise EngineMismatch(f"tensorrtllm.engine_dir: {path} is not JSON: {exc}") from None


def check_manifest(engine_dir: str | Path, deployment) -> None:
    """Raise EngineMismatch unless the engines in ``engine_dir`` serve ``deployment``.

    Checks model, GPU architecture (engines are compute-capability specific), TP, PP, precision,
    the limits (deployment's may not exceed the engine's), the TensorRT-LLM version when the
    deployment pins one, and that every rank file is present.
    """
    m = read_manifest(engine_dir)
    d = deployment
    errors: list[str] = []
    if m.get("model") != d.model:
        errors.append(f"model: {d.model!r}, but the engines were built for {m.get('model')!r}")
    gpu = get_gpu(d.gpu.kind)
    built = m.get("gpu", {})
    if built.get("compute_capability") != gpu.compute_capability:
        errors.append(
            f"gpu.kind: {d.gpu.kind} is compute {gpu.compute_capability}, but the engines were "
            f"built on {built.get('name')} (compute {built.get('compute_capability')}); rebuild "
            "on the serving GPU kind"
        )
    for field, want in (("tp", d.parallelism.tp), ("pp", d.parallelism.pp)):
        if m.get(field) != want:
            errors.append(
                f"parallelism.{field}: {want}, but the engines have {field} {m.get(field)}"
            )
    if d.precision != "auto" and m.get("precision") != d.precision:
        errors.append(f"precision: {d.precision}, but the engines are {m.get('precision')}")
    limits = m.get("limits", {})
    for field in ("max_input_len", "max_seq_len", "max_batch_size"):
        want, have = getattr(d.limits, field), limits.get(field)
        if have is None or want > have:
            errors.append(f"limits.{field}: {want} exceeds the engine's {have}")
    pinned = d.tensorrtllm.tensorrt_llm_version
    if pinned and pinned != m.get("tensorrt_llm_version"):
        errors.append(
            f"tensorrtllm.tensorrt_llm_version: {pinned}, but the engines were built with "
            f"{m.get('tensorrt_llm_version')}"
        )
    world = int(m.get("tp") or 0) * int(m.get("pp") or 0)
    missing = [
        f"rank{i}.engine"
        for i in range(world)
        if not (Path(engine_dir) / f"rank{i}.engine").is_file()
    ]
    if missing:
        errors.append(f"tensorrtllm.engine_dir: {engine_dir} lacks {', '.join(missing)}")
    if errors:
        raise EngineMismatch(
            f"engines in {engine_dir} do not match the deployment:\n  " + "\n  ".join(errors)
        )
