"""Render a complete, servable Triton model repository from one or more deployments.

    tritonkit render --deployment deployments/athene-70b.yaml --out /tmp/repo

Per deployment `<name>` (the catalog model name unless the deployment sets `name`):

    <name>                  the served model: BLS pipeline, decoupled (streaming, cancellation)
    <name>-unary            the same pipeline, not decoupled (gRPC `infer`, HTTP `infer`)
    <name>-ensemble         TensorRT-LLM's ensemble wiring: preprocessing -> engine -> postprocessing
    <name>-preprocessing    chat template + tokenize
    <name>-tensorrt_llm     the engine: TensorRT-LLM's C++ backend, or the CPU reference engine
    <name>-postprocessing   detokenize

The output folder is written from scratch (never serve the source folder).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonkit.deployment import Deployment
from tritonkit.model_repository.configs import deployment_configs
from tritonkit.tokenizer_assets import tokenizer_dir_for

__all__ = ["RenderError", "parse_config", "render_repository"]

SOURCES = Path(__file__).resolve().parent


class RenderError(ValueError):
    pass


def parse_config(text: str) -> mc.ModelConfig:
    """Strictly parse a config.pbtxt (unknown fields and bad enums raise)."""
    return text_format.Parse(text, mc.ModelConfig())


def render_repository(
    deployments: Sequence[Deployment], out: str | Path, *, clean: bool = True
) -> dict[str, Path]:
    """Write every model of every deployment into `out`; return model name -> folder."""
    out = Path(out)
    names: dict[str, Path] = {}
    plans: list[tuple[Path, str, mc.ModelConfig]] = []
    for dep in deployments:
        if dep.engine == "tensorrtllm" and Path(dep.tensorrtllm.engine_dir).exists():
            from tritonkit.build.check import check_manifest  # wrong arch/TP/PP: refuse

            check_manifest(dep.tensorrtllm.engine_dir, dep)
        tok_dir = str(tokenizer_dir_for(dep).resolve())
        for name, (kind, cfg) in deployment_configs(dep, tok_dir).items():
            if name in names:
                raise RenderError(
                    f"model name {name!r} is used twice; give one of the deployments a `name`"
                )
            names[name] = out / name
            plans.append((out / name, kind, cfg))
    if clean and out.exists():
        shutil.rmtree(out)
    for folder, kind, cfg in plans:
        version = folder / "1"
        version.mkdir(parents=True, exist_ok=True)
        text = text_format.MessageToString(cfg)
        parse_config(text)  # round-trip: what we write is what Triton will read
        (folder / "config.pbtxt").write_text(text, encoding="utf-8")
        if kind:
            shutil.copyfile(SOURCES / kind / "1" / "model.py", version / "model.py")
    return names
