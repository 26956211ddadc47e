"""`tritonkit helm values`: chart values that agree with the deployment and `tritonkit build plan`.

Runs the real CLI (typer CliRunner over tritonkit.cli.app) and renders its output with the real helm
CLI, so the values also pass the chart's schema and templates.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tritonkit import helm_values
from tritonkit.cli import app
from tritonkit.deployment import load_deployment, parse_deployment

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "tritonkit"
HELM = ROOT / ".tools" / "helm" / "node_modules" / ".bin" / "helm"
DEPLOYMENTS = sorted((ROOT / "deployments").glob("*.yaml"))

TP4 = {
    "model": "athene-70b",
    "engine": "tensorrtllm",
    "gpu": {"kind": "h100", "count": 8},
    "parallelism": {"tp": 4},
}
TP8_PP2 = {
    "model": "athene-70b",
    "engine": "tensorrtllm",
    "precision": "fp8",
    "gpu": {"kind": "h100", "count": 8},
    "parallelism": {"tp": 8, "pp": 2},
}


def run_values(tmp_path: Path, deployment: dict[str, Any] | Path, *extra: str) -> dict[str, Any]:
    """`tritonkit helm values --deployment FILE --out OUT [extra]` and the parsed output."""
    if isinstance(deployment, dict):
        path = tmp_path / "deployment.yaml"
        path.write_text(yaml.safe_dump(deployment))
    else:
        path = deployment
    out = tmp_path / "values.yaml"
    res = CliRunner().invoke(
        app, ["helm", "values", "--deployment", str(path), "--out", str(out), *extra]
    )
    assert res.exit_code == 0, res.output
    return yaml.safe_load(out.read_text())


def helm_template(values: Path) -> list[dict[str, Any]]:
    if not HELM.exists():
        pytest.fail(f"{HELM} missing: run `make setup`")
    env = dict(os.environ)
    for kind in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{kind}_HOME"] = str(ROOT / ".tools" / "helm" / kind.lower())
    proc = subprocess.run(
        [str(HELM), "template", "rel", str(CHART), "-f", str(values), "--kube-version", "1.30.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _gib(q: str) -> int:
    assert q.endswith("Gi"), q
    return int(q[:-2])


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: p.stem)
def test_reference_deployments(tmp_path: Path, path: Path) -> None:
    vals = run_values(tmp_path, path)
    dep = load_deployment(path)
    assert parse_deployment(vals["deployment"]) == dep  # the deployment is embedded unchanged
    assert vals["gpu"]["count"] == 0 and vals["gpu"]["products"] == []
    assert vals["image"]["repository"] == helm_values.SERVING_IMAGE["repository"]
    assert vals["ports"] == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert _gib(vals["resources"]["limits"]["memory"]) >= _gib(vals["shm"]["sizeLimit"])
    assert "persistence" not in vals and "engineBuild" not in vals
    docs = helm_template(tmp_path / "values.yaml")  # passes the chart's schema and renders
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in c["resources"]["limits"]


def test_tp4_agrees_with_build_plan(tmp_path: Path) -> None:
    vals = run_values(tmp_path, TP4)
    dep = parse_deployment(TP4)
    assert vals["gpu"]["count"] == dep.world_size == 4
    try:
        from tritonkit.build.planner import plan_for_deployment
    except ImportError:  # the build stage is not installed: values come from the deployment
        pass
    else:
        p = plan_for_deployment(dep)
        assert vals["gpu"]["count"] == p.world_size and p.nodes == 1
        # startup budget covers reading this pod's engines at the stated rate, twice, + margin
        pod_gib = p.weights_gib_per_gpu * 4
        budget = vals["startupProbe"]["periodSeconds"] * vals["startupProbe"]["failureThreshold"]
        assert (
            budget >= helm_values.STARTUP_MARGIN_S + 2 * pod_gib / helm_values.ENGINE_LOAD_GIB_PER_S
        )
    assert vals["gpu"]["perNode"] == 4
    assert vals["gpu"]["products"] == helm_values.GPU_PRODUCTS["h100"]
    assert vals["shm"]["sizeLimit"] == f"{4 * helm_values.SHM_GIB_PER_GPU}Gi"
    lim, req = vals["resources"]["limits"]["memory"], vals["resources"]["requests"]["memory"]
    assert _gib(lim) == _gib(req) + _gib(vals["shm"]["sizeLimit"])  # shm counted in the limit
    assert (
        vals["image"]["tag"].endswith("-trtllm-python-py3") and vals["tritonkitInstall"]["enabled"]
    )
    assert vals["persistence"]["enabled"] and vals["engineBuild"]["enabled"]
    assert vals["persistence"]["accessMode"] == "ReadWriteOnce"
    # rendered: one pod with 4 GPUs, shm, and the ConfigMap carries the same deployment
    out = tmp_path / "values.yaml"
    docs = helm_template(out)
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert c["ports"] == [
        {"name": n, "containerPort": p, "protocol": "TCP"}
        for n, p in (("http", 8000), ("grpc", 8001), ("metrics", 8002))
    ]
    vols = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert vols["dshm"]["emptyDir"]["sizeLimit"] == vals["shm"]["sizeLimit"]
    cm = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-deployment")
    )
    served = parse_deployment(yaml.safe_load(cm["data"]["deployment.yaml"]))
    assert served.world_size == 4 and served.tensorrtllm.engine_dir.startswith(
        "/engines/athene-70b-h100-tp4"
    )


def test_multinode_values_make_a_leaderworkerset(tmp_path: Path) -> None:
    vals = run_values(tmp_path, TP8_PP2)
    assert vals["gpu"]["count"] == 16 and vals["gpu"]["perNode"] == 8
    assert vals["persistence"]["accessMode"] == "ReadWriteMany"  # pods on two nodes share engines
    docs = helm_template(tmp_path / "values.yaml")
    (lws,) = [d for d in docs if d["kind"] == "LeaderWorkerSet"]
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2


def test_gpus_per_node_override(tmp_path: Path) -> None:
    vals = run_values(tmp_path, TP4, "--gpus-per-node", "2")
    assert vals["gpu"]["count"] == 4 and vals["gpu"]["perNode"] == 2
    assert vals["shm"]["sizeLimit"] == f"{2 * helm_values.SHM_GIB_PER_GPU}Gi"
    docs = helm_template(tmp_path / "values.yaml")
    (lws,) = [d for d in docs if d["kind"] == "LeaderWorkerSet"]
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2


def test_partial_nodes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(TP8_PP2))
    res = CliRunner().invoke(
        app, ["helm", "values", "--deployment", str(path), "--gpus-per-node", "3"]
    )
    assert res.exit_code == 1
    assert "does not fill whole nodes of 3 GPUs" in res.output


def test_bad_deployment_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"model": "athene-70b", "parallelism": {"tp": 3}}))
    res = CliRunner().invoke(app, ["helm", "values", "--deployment", str(path)])
    assert res.exit_code == 1 and "parallelism.tp" in res.output


def test_stdout_has_a_header_and_parses() -> None:
    res = CliRunner().invoke(app, ["helm", "values", "--deployment", str(DEPLOYMENTS[0])])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("# Generated by `tritonkit helm values")
    assert yaml.safe_load(res.output)["deployment"]["model"]


def test_schema_definitions_are_generated_and_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values.schema.json's deployment part is generated from the pydantic model; it must not drift."""
    res = CliRunner().invoke(app, ["helm", "schema", "--check"])
    assert res.exit_code == 0, res.output
    stale = tmp_path / "values.schema.json"
    schema = json.loads(helm_values.SCHEMA_PATH.read_text())
    del schema["definitions"]["LimitsSection"]["properties"]["max_seq_len"]
    stale.write_text(json.dumps(schema))
    monkeypatch.setattr(helm_values, "SCHEMA_PATH", stale)
    res = CliRunner().invoke(app, ["helm", "schema", "--check"])
    assert res.exit_code == 1 and "out of date" in res.output
    res = CliRunner().invoke(app, ["helm", "schema"])
    assert res.exit_code == 0
    assert (
        json.loads(stale.read_text())["definitions"] == helm_values.deployment_schema_definitions()
    )
