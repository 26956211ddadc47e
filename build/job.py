"""A Kubernetes build Job (batch/v1) that runs a plan's steps in the NGC Triton TensorRT-LLM image.

The Job file holds two documents: a ConfigMap with ``build.sh`` (the exact commands, each skipped
when its stamp holds the same command hash, so a retried pod resumes), ``plan.json``, ``steps.json``
and ``manifest.py`` (verifies the engines and writes manifest.json), and the Job that mounts it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from importlib import resources

import yaml

from tritonkit.build.commands import ENGINE_SUBDIR, Step, Toolchain
from tritonkit.build.gpus import get_gpu
from tritonkit.build.planner import Plan

__all__ = ["TRITON_IMAGE_TAGS", "image_for", "job_documents", "job_yaml"]

# Triton release (yy.mm) of the NGC `-trtllm-python-py3` image shipping each TensorRT-LLM version.
# 24.07 <-> 0.11 is from the fact sheet; the others follow the monthly cadence (unverified here:
# check the NGC release notes, or pass --image-tag).
TRITON_IMAGE_TAGS: dict[tuple[int, int], str] = {
    (0, 11): "24.07",
    (0, 12): "24.08",
    (0, 13): "24.09",
    (0, 14): "24.10",
    (0, 15): "24.11",
    (0, 16): "24.12",
    (0, 17): "25.01",
}
MOUNT = "/tritonkit"


def image_for(version: tuple[int, int], tag: str | None = None) -> str:
    """``nvcr.io/nvidia/tritonserver:<yy.mm>-trtllm-python-py3`` for a TensorRT-LLM version."""
    if tag is None:
        if version not in TRITON_IMAGE_TAGS:
            known = ", ".join(f"{a}.{b}" for a, b in TRITON_IMAGE_TAGS)
            raise ValueError(
                f"image_tag: no known Triton image for TensorRT-LLM "
                f"{version[0]}.{version[1]} (known: {known}); pass --image-tag"
            )
        tag = TRITON_IMAGE_TAGS[version]
    if not re.fullmatch(r"\d\d\.\d\d", tag):
        raise ValueError(f"image_tag: {tag!r} is not a yy.mm Triton release")
    return f"nvcr.io/nvidia/tritonserver:{tag}-trtllm-python-py3"


def _script(steps: list[Step], tc: Toolchain, out_dir: str, checkpoint_dir: str) -> str:
    stamps = f"{out_dir}/.tritonkit"
    lines = [
        "#!/bin/bash",
        "set -euo pipefail",
        f"ROOT={shlex.quote(tc.trtllm_root)}",
        f'[ -d "$ROOT/examples" ] || git clone --depth 1 --branch v{tc.version_str}.0 '
        'https://github.com/NVIDIA/TensorRT-LLM.git "$ROOT"',
        f"mkdir -p {shlex.quote(stamps)}",
    ]
    for s in steps:
        h = hashlib.sha256(json.dumps(s.argv).encode()).hexdigest()
        stamp = shlex.quote(f"{stamps}/{s.name}.job-stamp")
        lines += [
            f'if [ "$(cat {stamp} 2>/dev/null)" = {h} ]; then echo "skip {s.name}"; else',
            f"  rm -f {stamp}",
            f"  {s.shell}",
            f"  echo {h} > {stamp}",
            "fi",
        ]
    lines.append(
        f"python3 {MOUNT}/manifest.py --plan {MOUNT}/plan.json --steps {MOUNT}/steps.json "
        f"--checkpoint {shlex.quote(checkpoint_dir)} "
        f"--engine {shlex.quote(out_dir + '/' + ENGINE_SUBDIR)}"
    )
    return "\n".join(lines) + "\n"


def _name(plan: Plan) -> str:
    raw = f"tritonkit-build-{plan.model}-{plan.gpu}-tp{plan.tp}pp{plan.pp}-{plan.precision}"
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower())[:63].strip("-")


def job_documents(
    plan: Plan,
    steps: list[Step],
    tc: Toolchain,
    *,
    checkpoint_dir: str,
    out_dir: str,
    pvc: str = "tritonkit-engines",
    mount_path: str = "/data",
    image_tag: str | None = None,
    namespace: str | None = None,
) -> list[dict]:
    """[ConfigMap, Job]: the Job runs ``build.sh`` on one GPU node with the volume ``pvc``."""
    gpu = get_gpu(plan.gpu)
    name = _name(plan)
    gpus = min(
        gpu.gpus_per_node, max(min(plan.world_size, gpu.gpus_per_node), plan.calibration_gpus)
    )
    labels = {
        "app.kubernetes.io/name": "tritonkit-build",
        "app.kubernetes.io/instance": name,
        "tritonkit.dev/model": plan.model,
        "tritonkit.dev/gpu": plan.gpu,
    }
    meta = {"name": name, "labels": labels, **({"namespace": namespace} if namespace else {})}
    manifest_src = resources.files("tritonkit.build").joinpath("manifest.py").read_text()
    step_records = [
        {
            "name": s.name,
            "argv": s.argv,
            "inputs_hash": hashlib.sha256(json.dumps(s.argv).encode()).hexdigest(),
        }
        for s in steps
    ]
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            "build.sh": _script(steps, tc, out_dir, checkpoint_dir),
            "plan.json": json.dumps(plan.model_dump(mode="json"), indent=1),
            "steps.json": json.dumps(step_records, indent=1),
            "manifest.py": manifest_src,
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 2,  # a retried pod resumes from the step stamps on the volume
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    # GPU feature discovery label: the engine is bound to this GPU kind
                    "nodeSelector": {"nvidia.com/gpu.product": gpu.name.replace(" ", "-")},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "build",
                            "image": image_for(tc.version, image_tag),
                            "command": ["bash", f"{MOUNT}/build.sh"],
                            "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
                            "resources": {"limits": {"nvidia.com/gpu": gpus}},
                            "volumeMounts": [
                                {"name": "data", "mountPath": mount_path},
                                {"name": "tritonkit", "mountPath": MOUNT},
                                {"name": "dshm", "mountPath": "/dev/shm"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": pvc}},
                        {"name": "tritonkit", "configMap": {"name": name}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
                    ],
                },
            },
        },
    }
    return [config, job]


def job_yaml(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, width=100)
