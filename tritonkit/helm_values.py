"""Helm values from a deployment file: `tritonkit helm values --deployment FILE`.

The chart (helm/tritonkit) takes the deployment itself as `.Values.deployment` and mounts it for
`tritonkit serve`; everything else the chart needs that follows from the deployment is computed
here, once:

- GPUs per instance = TP x PP (0 for the CPU reference engine), GPUs per node, node affinity on the
  `nvidia.com/gpu.product` labels of the GPU kind; TP x PP above GPUs per node makes each instance a
  LeaderWorkerSet group;
- `/dev/shm` size (NCCL needs it with more than one GPU), counted in the pod memory limit;
- a startup-probe budget sized for the engine load time of the model's weights;
- the engine volume and build Job (TensorRT-LLM), the image, the ports.

`tritonkit helm schema` refreshes the deployment part of the chart's values.schema.json from the
pydantic model, so the chart rejects the same keys the deployment loader does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from tritonkit.deployment import Deployment, DeploymentError, load_deployment

__all__ = [
    "GPU_PRODUCTS",
    "SERVING_IMAGE",
    "TRITON_TRTLLM_IMAGE",
    "GpuLayout",
    "app",
    "build_values",
    "deployment_schema_definitions",
    "gpu_layout",
]

CHART_DIR = Path(__file__).resolve().parent.parent / "helm" / "tritonkit"
SCHEMA_PATH = CHART_DIR / "values.schema.json"

#: The project's serving image (CPU reference engine).
SERVING_IMAGE = {"repository": "ghcr.io/tritonkit/tritonkit", "tag": "0.1.0"}
#: NGC Triton + TensorRT-LLM image (Triton 24.07 = TensorRT-LLM 0.11); tritonkit is pip-installed.
TRITON_TRTLLM_IMAGE = {
    "repository": "nvcr.io/nvidia/tritonserver",
    "tag": "24.07-trtllm-python-py3",
}

#: GPU Feature Discovery `nvidia.com/gpu.product` values per deployment GPU kind.
GPU_PRODUCTS: dict[str, list[str]] = {
    "t4": ["Tesla-T4"],
    "a10g": ["NVIDIA-A10G"],
    "a40": ["NVIDIA-A40"],
    "a100-40gb": ["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"],
    "a100-80gb": ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"],
    "l40s": ["NVIDIA-L40S"],
    "h100": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"],
    "h200": ["NVIDIA-H200", "NVIDIA-H200-NVL"],
}

#: Bytes per weight for each precision ("auto" is taken as the checkpoint's 16-bit dtype).
_BYTES_PER_WEIGHT = {
    "auto": 2.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8_wo": 1.0,
    "int8_sq": 1.0,
    "int4_awq": 0.5,
}
#: Conservative rate at which one pod reads engines from its volume into GPU memory.
ENGINE_LOAD_GIB_PER_S = 0.5
#: Startup margin on top of the engine load (Python models, tokenizer, MPI start).
STARTUP_MARGIN_S = 300
#: /dev/shm per GPU in a pod (NCCL buffers, Python-backend tensors), and the floor.
SHM_GIB_PER_GPU = 4
SHM_FLOOR_GIB = 1
#: Host memory per GPU besides /dev/shm (engine staging, Python models).
HOST_GIB_PER_GPU = 16
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
_GIB = 1 << 30


@dataclass(frozen=True)
class GpuLayout:
    """How one instance's ranks map onto GPUs and nodes."""

    world_size: int  # GPUs per instance (TP x PP); 0 for the reference engine
    gpus_per_node: int
    nodes: int  # pods per instance (> 1: LeaderWorkerSet)
    weights_gib_per_gpu: float  # engine weights one GPU loads
    source: str  # where the numbers came from

    @property
    def gpus_per_pod(self) -> int:
        return min(self.world_size, self.gpus_per_node)


def _from_planner(dep: Deployment) -> tuple[int, int, float] | None:
    """(TP x PP, GPUs per node, weight GiB per GPU) from `tritonkit build plan` for this deployment,
    or None when the build stage (tritonkit.build.planner) is not installed."""
    try:
        from tritonkit.build.planner import PlanError, plan_for_deployment, serving_parameters
    except ImportError:
        return None
    try:
        p = plan_for_deployment(dep)
    except PlanError as exc:
        raise DeploymentError(f"the build planner refuses this deployment: {exc}") from None
    return p.world_size, int(serving_parameters(p)["gpus_per_node"]), p.weights_gib_per_gpu


def gpu_layout(dep: Deployment, gpus_per_node: int | None = None) -> GpuLayout:
    """GPUs per instance and their nodes; refuses a multi-node layout that does not divide.

    Uses the build planner (so the chart agrees with `tritonkit build plan`) when it is installed,
    else deployment.parallelism with the checkpoint's 16-bit weights (or the chosen precision).
    """
    if gpus_per_node is not None and gpus_per_node < 1:
        raise DeploymentError(f"--gpus-per-node must be at least 1, got {gpus_per_node}")
    if dep.engine == "reference":
        return GpuLayout(0, gpus_per_node or 1, 1, 0.0, "reference engine (CPU)")
    planned = _from_planner(dep)
    if planned is not None:
        world, per_node, weights = planned
        source = "tritonkit build plan"
    else:
        world = dep.world_size
        per_node = dep.gpu.count if dep.gpu.count > 1 else world
        bytes_per = _BYTES_PER_WEIGHT[dep.precision]
        weights = dep.spec.architecture.num_parameters * bytes_per / _GIB / world
        source = "deployment.parallelism (build planner not installed)"
    per_node = gpus_per_node or per_node
    if world > per_node and world % per_node:
        raise DeploymentError(
            f"parallelism: TP x PP = {world} GPUs does not fill whole nodes of {per_node} GPUs "
            f"(--gpus-per-node); use a multiple of {per_node}"
        )
    return GpuLayout(world, per_node, max(1, world // per_node), weights, source)


def _startup_probe(layout: GpuLayout) -> dict[str, Any]:
    """Startup budget = engine load of one pod's weights (twice, for safety) + a margin."""
    period = 10
    pod_gib = layout.weights_gib_per_gpu * layout.gpus_per_pod
    budget = STARTUP_MARGIN_S + 2 * pod_gib / ENGINE_LOAD_GIB_PER_S
    return {
        "httpGet": {"path": "/v2/health/ready", "port": "http"},
        "initialDelaySeconds": 10,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": math.ceil(budget / period),
    }


def shm_gib(layout: GpuLayout) -> int:
    """/dev/shm per pod: SHM_GIB_PER_GPU per GPU, at least SHM_FLOOR_GIB."""
    return max(SHM_FLOOR_GIB, SHM_GIB_PER_GPU * layout.gpus_per_pod)


def build_values(dep: Deployment, gpus_per_node: int | None = None) -> dict[str, Any]:
    """The chart values for one deployment (keys of helm/tritonkit/values.yaml)."""
    layout = gpu_layout(dep, gpus_per_node)
    gpu = dep.engine == "tensorrtllm"
    shm = shm_gib(layout)
    values: dict[str, Any] = {
        "deployment": dep.model_dump(mode="json", exclude_none=True),
        "image": {**(TRITON_TRTLLM_IMAGE if gpu else SERVING_IMAGE), "pullPolicy": "IfNotPresent"},
        "tritonkitInstall": {"enabled": gpu},
        "gpu": {
            "count": layout.world_size,
            "perNode": layout.gpus_per_node,
            "resourceName": "nvidia.com/gpu",
            "products": list(GPU_PRODUCTS[dep.gpu.kind]) if gpu else [],
        },
        "ports": dict(PORTS),
        "shm": {"enabled": True, "sizeLimit": f"{shm}Gi"},
        "startupProbe": _startup_probe(layout),
    }
    if gpu:
        host = HOST_GIB_PER_GPU * layout.gpus_per_pod
        values["resources"] = {
            "requests": {"cpu": str(2 * layout.gpus_per_pod), "memory": f"{host}Gi"},
            "limits": {"memory": f"{host + shm}Gi"},  # /dev/shm is counted against the limit
        }
        ckpt = dep.spec.architecture.num_parameters * 2 / _GIB  # the 16-bit HF checkpoint
        engines = layout.weights_gib_per_gpu * layout.world_size
        size = math.ceil(1.2 * (ckpt + engines) / 100) * 100
        values["persistence"] = {
            "enabled": True,
            "accessMode": "ReadWriteMany" if layout.nodes > 1 else "ReadWriteOnce",
            "size": f"{size}Gi",
            "mountPath": "/engines",
        }
        values["engineBuild"] = {"enabled": True}
    else:
        values["resources"] = {
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"memory": f"{8 + shm}Gi"},
        }
    return values


def render_values(dep: Deployment, source: str, gpus_per_node: int | None = None) -> str:
    """The values file text, with a header saying where each derived number came from."""
    values = build_values(dep, gpus_per_node)
    layout = gpu_layout(dep, gpus_per_node)
    probe = values["startupProbe"]
    header = [
        f"# Generated by `tritonkit helm values --deployment {source}`; regenerate, do not edit.",
        f"# GPUs per instance: {layout.world_size} (from {layout.source}), "
        f"{layout.gpus_per_node} per node, {layout.nodes} pod(s) per instance.",
        f"# /dev/shm {values['shm']['sizeLimit']}; startup budget "
        f"{probe['periodSeconds'] * probe['failureThreshold']} s.",
    ]
    body = yaml.safe_dump(values, sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def deployment_schema_definitions() -> dict[str, Any]:
    """JSON-schema (draft-07) definitions for `.Values.deployment`, from the pydantic model."""
    schema = Deployment.model_json_schema(ref_template="#/definitions/{model}")
    defs = schema.pop("$defs", {})
    # the cross-field rule pydantic checks in a validator: a catalog model or a checkpoint folder
    schema["anyOf"] = [
        {"required": ["model"], "properties": {"model": {"type": "string"}}},
        {"required": ["checkpoint_dir"], "properties": {"checkpoint_dir": {"type": "string"}}},
    ]
    defs["Deployment"] = schema
    return dict(sorted(defs.items()))


app = typer.Typer(
    help="Helm chart values derived from a deployment file.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("values")
def values_cmd(
    deployment: Annotated[Path, typer.Option(help="deployment YAML file")],
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    gpus_per_node: Annotated[
        int | None,
        typer.Option(help="GPUs per node (default: the deployment's gpu.count)", min=1),
    ] = None,
) -> None:
    """Write chart values (GPUs, shm, probes, ports, image, engine volume) for a deployment."""
    try:
        dep = load_deployment(deployment)
        text = render_values(dep, str(deployment), gpus_per_node)
    except DeploymentError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@app.command("schema")
def schema_cmd(
    check: Annotated[bool, typer.Option(help="fail if values.schema.json is out of date")] = False,
) -> None:
    """Refresh the deployment definitions in helm/tritonkit/values.schema.json."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    fresh = deployment_schema_definitions()
    if check:
        if schema.get("definitions") != fresh:
            typer.echo(f"{SCHEMA_PATH}: out of date; run `tritonkit helm schema`", err=True)
            raise typer.Exit(1)
        return
    schema["definitions"] = fresh
    SCHEMA_PATH.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"wrote {SCHEMA_PATH}", err=True)
