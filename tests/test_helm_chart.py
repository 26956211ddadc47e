"""The Helm chart, checked offline with real tools (installed by `make setup`, mk/helm.mk):

- helm CLI 3.10.1 (npm): `helm lint --strict` and `helm template --kube-version 1.30.0` for every
  values file in helm/tritonkit/ci/ (single GPU, TP4, multi-node LWS, HPA, KEDA, build Job,
  gateway, Locust) and the defaults;
- kubernetes-validate: every rendered object against the Kubernetes 1.30 schemas (strict);
  ServiceMonitor / PrometheusRule / ScaledObject against the @kubernetes-models CRD models (node);
  LeaderWorkerSet leader/worker templates as core/v1 PodTemplates;
- the chart's semantics the schemas cannot see (GPU = TP x PP, shm, probes, security contexts, HPA
  target types, LWS size, build-Job key, helm test hooks);
- values.schema.json rejects bad values and names the field;
- checkov on the rendered manifests: no failed check outside helm/tritonkit/checkov-skips.yaml, and
  every skip there still needed and explained.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tritonkit.deployment import parse_deployment

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "tritonkit"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
TOOLS = ROOT / ".tools"
HELM = TOOLS / "helm" / "node_modules" / ".bin" / "helm"
CRD_MODELS = TOOLS / "crd-models" / "node_modules" / "@kubernetes-models"
CHECKOV = TOOLS / "checkov-venv" / "bin" / "checkov"
SKIPS = CHART / "checkov-skips.yaml"
KUBE = "1.30.0"
NAMESPACE = "llm"
BUILT_IN_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}
WORKLOADS = {"Deployment", "Job", "Pod", "LeaderWorkerSet"}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} missing: run `make setup` (mk/helm.mk installs the chart tools)")
    return path


def _helm_env() -> dict[str, str]:
    env = dict(os.environ)
    for kind in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{kind}_HOME"] = str(TOOLS / "helm" / kind.lower())
    return env


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the project's helm CLI with its state kept under .tools/helm."""
    proc = subprocess.run(
        [str(_need(HELM)), *args], capture_output=True, text=True, env=_helm_env(), timeout=120
    )
    if check and proc.returncode:
        pytest.fail(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def split_docs(text: str) -> list[dict[str, Any]]:
    """Rendered manifests as objects (Helm's separator rule; empty documents dropped)."""
    docs = [yaml.safe_load(part) for part in re.split(r"(?:^|\s*\n)---\s*", text)]
    return [d for d in docs if d]


@functools.cache
def render(values_file: str | None = None, *sets: str) -> tuple[dict[str, Any], ...]:
    args = ["template", "rel", str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE]
    if values_file:
        args += ["-f", values_file]
    for s in sets:
        args += ["--set", s]
    return tuple(split_docs(helm(*args).stdout))


def values_of(values_file: str | None) -> dict[str, Any]:
    """The chart defaults merged with a values file (as Helm does for maps)."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    base = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(base, yaml.safe_load(Path(values_file).read_text())) if values_file else base


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs inside a workload object."""
    if doc["kind"] == "Pod":
        return [doc["spec"]]
    if doc["kind"] == "LeaderWorkerSet":
        t = doc["spec"]["leaderWorkerTemplate"]
        return [t["leaderTemplate"]["spec"], t["workerTemplate"]["spec"]]
    return [doc["spec"]["template"]["spec"]]


def triton_container(docs: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of the serving Triton pod (Deployment, or the LWS leader)."""
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "rel-tritonkit":
            spec = d["spec"]["template"]["spec"]
            break
        if d["kind"] == "LeaderWorkerSet":
            spec = d["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
            break
    else:
        raise AssertionError("no Triton workload rendered")
    return spec, next(c for c in spec["containers"] if c["name"] == "triton")


# ---- lint -----------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_helm_lint_strict(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    proc = helm(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_ci_matrix_is_complete() -> None:
    names = {p.name for p in CI_VALUES}
    for want in (
        "reference",
        "single-gpu",
        "tp4",
        "multinode-lws",
        "hpa",
        "keda",
        "build-job",
        "gateway",
        "locust",
    ):
        assert f"{want}-values.yaml" in names


# ---- Kubernetes 1.30 and CRD schemas --------------------------------------------------------
def _validate_crds(objs: list[dict[str, Any]]) -> list[str]:
    """Validate CRD objects with the @kubernetes-models classes; returns the error messages."""
    js = (
        "import { readFileSync } from 'node:fs';\n"
        "const [prom, keda] = process.argv.slice(-2);\n"
        "const { ServiceMonitor, PrometheusRule } = await import(prom);\n"
        "const { ScaledObject } = await import(keda);\n"
        "const classes = { ServiceMonitor, PrometheusRule, ScaledObject };\n"
        "const errors = [];\n"
        "for (const o of JSON.parse(readFileSync(0, 'utf8'))) {\n"
        "  try { new classes[o.kind](o).validate(); }\n"
        "  catch (e) { errors.push(`${o.kind}/${o.metadata.name}: ${e.message}`); }\n"
        "}\n"
        "process.stdout.write(JSON.stringify(errors));\n"
    )
    prom = _need(CRD_MODELS / "prometheus-operator" / "monitoring.coreos.com" / "v1" / "index.js")
    keda = _need(CRD_MODELS / "keda" / "keda.sh" / "v1alpha1" / "index.js")
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", js, prom.as_uri(), keda.as_uri()],
        input=json.dumps(objs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _k8s_errors(doc: dict[str, Any]) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBE, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}"]
    return []


def _as_pod_templates(lws: dict[str, Any]) -> list[dict[str, Any]]:
    t = lws["spec"]["leaderWorkerTemplate"]
    return [
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{lws['metadata']['name']}-{role}"},
            "template": t[f"{role}Template"],
        }
        for role in ("leader", "worker")
    ]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_rendered_objects_match_kubernetes_1_30_and_crd_schemas(values: Path | None) -> None:
    import kubernetes_validate

    docs = render(str(values) if values else None)
    errors: list[str] = []
    crds: list[dict[str, Any]] = []
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if doc["kind"] in CRD_KINDS:
            crds.append(doc)
        elif doc["kind"] == "LeaderWorkerSet":
            assert doc["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
            for pt in _as_pod_templates(doc):
                errors += _k8s_errors(pt)
        else:
            try:
                errors += _k8s_errors(doc)
            except kubernetes_validate.SchemaNotFoundError:
                assert group not in BUILT_IN_GROUPS, (
                    f"{doc['apiVersion']} {doc['kind']} not in 1.30"
                )
                raise AssertionError(
                    f"no validator for {doc['apiVersion']} {doc['kind']}"
                ) from None
    if crds:
        errors += _validate_crds(crds)
    assert not errors, "\n".join(errors)


def test_validators_catch_mistakes() -> None:
    """The validators used above reject what they should (a guard against a silent no-op)."""
    dep = next(d for d in render(None) if d["kind"] == "Deployment")
    bad = json.loads(json.dumps(dep))
    bad["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["timeoutSecond"] = 5
    assert _k8s_errors(bad)
    sm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": 8002}]},
    }
    so = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "y"},
        "spec": {"scaleTargetRef": {"name": "a"}, "minReplicaCount": "1", "triggers": []},
    }
    errs = _validate_crds([sm, so])
    assert len(errs) == 2 and "port" in errs[0] and "minReplicaCount" in errs[1]


# ---- semantics ------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_triton_pod_follows_values(values: Path | None) -> None:
    vals = values_of(str(values) if values else None)
    docs = render(str(values) if values else None)
    spec, c = triton_container(docs)
    gpus, per_node = vals["gpu"]["count"], vals["gpu"]["perNode"]
    per_pod = min(gpus, per_node)
    # GPUs: TP x PP per instance, split over whole nodes
    if per_pod:
        assert c["resources"]["limits"]["nvidia.com/gpu"] == per_pod
        assert c["resources"]["requests"]["nvidia.com/gpu"] == per_pod
    else:
        assert "nvidia.com/gpu" not in json.dumps(c["resources"])
    # GPU product node affinity and tolerations
    if vals["gpu"]["products"]:
        term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        expr = term["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert expr["key"] == "nvidia.com/gpu.product" and expr["values"] == vals["gpu"]["products"]
    assert spec["tolerations"] == vals["tolerations"]
    assert spec.get("runtimeClassName", "") == vals["runtimeClassName"]
    # /dev/shm: a sized Memory emptyDir whenever > 1 GPU
    shm = [v for v in spec["volumes"] if v["name"] == "dshm"]
    mounted = any(m["mountPath"] == "/dev/shm" for m in c["volumeMounts"])
    if gpus > 1 or vals["shm"]["enabled"]:
        assert mounted and shm[0]["emptyDir"] == {
            "medium": "Memory",
            "sizeLimit": vals["shm"]["sizeLimit"],
        }
    else:
        assert not mounted and not shm
    # probes on Triton's health endpoints, the startup budget from values
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["startupProbe"]["failureThreshold"] == vals["startupProbe"]["failureThreshold"]
    # ports and Service
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {k: vals["ports"][k] for k in ("http", "grpc", "metrics")}
    svc = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rel-tritonkit"
    )
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports
    # the deployment file in the ConfigMap is a valid tritonkit deployment, and is what runs
    cm = next(d for d in docs if d["metadata"]["name"] == "rel-tritonkit-deployment")
    dep = parse_deployment(yaml.safe_load(cm["data"]["deployment.yaml"]))
    assert dep.model == vals["deployment"]["model"]
    if not any(d["kind"] == "LeaderWorkerSet" for d in docs):
        assert c["command"] == ["tritonkit", "serve"]
        assert c["args"][:2] == ["--deployment", "/config/deployment.yaml"]
        assert c["args"][c["args"].index("--repo") + 1] == "/work/model_repository"
    assert {"name": "config", "mountPath": "/config", "readOnly": True} in c["volumeMounts"]
    if dep.engine == "tensorrtllm" and vals["persistence"]["enabled"]:
        key = f"{dep.model}-{dep.gpu.kind}-tp{dep.parallelism.tp}-pp{dep.parallelism.pp}-{dep.precision}"
        assert dep.tensorrtllm.engine_dir == f"/engines/{key}/engine"
        claim = vals["persistence"]["existingClaim"] or "rel-tritonkit-engines"
        vol = next(v for v in spec["volumes"] if v["name"] == "engines")
        assert vol["persistentVolumeClaim"]["claimName"] == claim
        assert any(d["kind"] == "PersistentVolumeClaim" for d in docs) == (
            not vals["persistence"]["existingClaim"]
        )


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "defaults")
def test_every_pod_is_locked_down(values: Path | None) -> None:
    """Non-root, no privilege escalation, drop ALL, RuntimeDefault seccomp, read-only root FS, and
    writable emptyDirs where Triton writes (/tmp, /work)."""
    docs = render(str(values) if values else None)
    seen = 0
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        for spec in pod_specs(doc):
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert spec["automountServiceAccountToken"] is False
            for c in spec["containers"] + spec.get("initContainers", []):
                sc = c["securityContext"]
                where = f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}"
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["privileged"] is False, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["capabilities"] == {"drop": ["ALL"]}, where
                assert sc["runAsNonRoot"] is True, where
                assert "limits" in c["resources"] and "memory" in c["resources"]["limits"], where
                seen += 1
    assert seen >= 3
    _, triton = triton_container(docs)
    paths = {m["mountPath"] for m in triton["volumeMounts"]}
    assert {"/tmp", "/work"} <= paths


def test_tp4_requests_four_gpus_with_shm() -> None:
    docs = render(str(CHART / "ci" / "tp4-values.yaml"))
    spec, c = triton_container(docs)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert any(
        v["name"] == "dshm" and v["emptyDir"]["sizeLimit"] == "16Gi" for v in spec["volumes"]
    )
    pdb = by_kind(docs, "PodDisruptionBudget")[0]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_multinode_is_a_leaderworkerset_of_whole_nodes() -> None:
    values = CHART / "ci" / "multinode-lws-values.yaml"
    vals = values_of(str(values))
    docs = render(str(values))
    assert not [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-tritonkit"]
    (lws,) = by_kind(docs, "LeaderWorkerSet")
    t = lws["spec"]["leaderWorkerTemplate"]
    assert t["size"] == vals["gpu"]["count"] // vals["gpu"]["perNode"] == 2
    assert t["restartPolicy"] == "RecreateGroupOnPodRestart"
    for role in ("leader", "worker"):
        spec = t[f"{role}Template"]["spec"]
        c = spec["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == vals["gpu"]["perNode"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["ROLE"] == role and env["WORLD_SIZE"] == "16" and env["GPUS_PER_NODE"] == "8"
        assert any(m["mountPath"] == "/dev/shm" for m in c["volumeMounts"])
    leader = t["leaderTemplate"]["spec"]["containers"][0]
    assert leader["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    svc = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rel-tritonkit"
    )
    assert svc["spec"]["selector"]["tritonkit.dev/role"] == "leader"
    # the launcher: leader mode, one tritonserver per rank, ranks != 0 load only tensorrt_llm
    script = next(d for d in docs if d["metadata"]["name"] == "rel-tritonkit-multinode")["data"][
        "multinode.sh"
    ]
    assert "mpirun" in script and "--model-control-mode=explicit" in script
    assert "shm-region-prefix-name=prefix0_" in script
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-ssh"))
    assert secret["data"]["id_rsa"]


def test_multinode_rejects_partial_nodes() -> None:
    proc = helm(
        "template",
        "rel",
        str(CHART),
        "--set",
        "gpu.count=12",
        "--set",
        "gpu.perNode=8",
        check=False,
    )
    assert (
        proc.returncode
        and "gpu.count (12 = TP x PP) must be a multiple of gpu.perNode (8)" in proc.stderr
    )


def test_hpa_scales_on_queue_compute_ratio() -> None:
    docs = render(str(CHART / "ci" / "hpa-values.yaml"))
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "rel-tritonkit")
    assert any(d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"] for d in docs)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "triton_queue_compute_ratio"
    # the API server rejects averageValue with type Value (schema validation does not)
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "1000m"}
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert "replicas" not in dep["spec"], "the HPA owns replicas"
    (rule,) = by_kind(docs, "PrometheusRule")
    rec = rule["spec"]["groups"][0]["rules"][0]
    assert rec["record"] == "triton:queue_compute:ratio"
    assert "nv_inference_queue_duration_us" in rec["expr"]
    assert "nv_inference_compute_infer_duration_us" in rec["expr"]
    adapter = next(d for d in docs if d["metadata"]["name"].endswith("prometheus-adapter-rules"))
    (arule,) = yaml.safe_load(adapter["data"]["rules.yaml"])
    assert arule["name"]["as"] == "triton_queue_compute_ratio"
    assert "triton:queue_compute:ratio" in arule["seriesQuery"]
    dash = next(d for d in docs if d["metadata"]["name"] == "rel-tritonkit-dashboard")
    panels = json.loads(dash["data"]["tritonkit.json"])["panels"]
    assert any("triton:queue_compute:ratio" in t["expr"] for p in panels for t in p["targets"])


def test_keda_scaledobject_targets_triton() -> None:
    docs = render(str(CHART / "ci" / "keda-values.yaml"))
    (so,) = by_kind(docs, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == "rel-tritonkit"
    trig = so["spec"]["triggers"][0]
    assert (
        trig["type"] == "prometheus" and "triton:queue_compute:ratio" in trig["metadata"]["query"]
    )
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    proc = helm(
        "template",
        "rel",
        str(CHART),
        "--set",
        "keda.enabled=true",
        "--set",
        "autoscaling.enabled=true",
        check=False,
    )
    assert proc.returncode and "autoscaling.enabled and keda.enabled are exclusive" in proc.stderr


def test_build_job_is_keyed_and_triton_waits_for_it() -> None:
    docs = render(str(CHART / "ci" / "build-job-values.yaml"))
    (job,) = [d for d in by_kind(docs, "Job") if "-build-" in d["metadata"]["name"]]
    key = "smaug-llama-3-70b-l40s-tp4-pp1-fp8"
    assert job["metadata"]["labels"]["tritonkit.dev/engine-key"] == key
    c = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["BUILD_DIR"]["value"] == f"/engines/{key}"
    assert env["ENGINE_DIR"]["value"] == f"/engines/{key}/engine"
    # the Hugging Face token is a file (HF_TOKEN_PATH), never an environment variable
    assert "HF_TOKEN" not in env
    assert env["HF_TOKEN_PATH"]["value"] == "/var/run/secrets/huggingface/token"
    vols = job["spec"]["template"]["spec"]["volumes"]
    tok = next(v for v in vols if v["name"] == "hf-token")["secret"]
    assert tok["secretName"] == "hf-token" and tok["items"] == [
        {"key": "HF_TOKEN", "path": "token"}
    ]
    script = c["args"][0]
    assert 'if [ -f "$ENGINE_DIR/manifest.json" ]' in script
    # `tritonkit build run` with the deployment's build fields (same flags as `tritonkit build plan`)
    run = " ".join(script[script.index("tritonkit build run") :].replace("\\\n", " ").split())
    for flag in (
        '--checkpoint "$CHECKPOINT_DIR"',
        '--out "$BUILD_DIR"',
        "--model smaug-llama-3-70b",
        "--gpu l40s",
        "--tp 4",
        "--pp 1",
        "--precision fp8",
        "--max-input-len 4096",
    ):
        assert flag in run, (flag, run)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 4
    (pvc,) = by_kind(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec, _ = triton_container(docs)
    wait = next(i for i in spec["initContainers"] if i["name"] == "wait-for-engines")
    assert f"/engines/{key}/engine/manifest.json" in wait["args"][0]
    # another model/GPU/TP/precision is another Job name (the key is in it)
    other = render(str(CHART / "ci" / "build-job-values.yaml"), "deployment.precision=int4_awq")
    other_job = next(d for d in by_kind(other, "Job") if "-build-" in d["metadata"]["name"])
    assert other_job["metadata"]["name"] != job["metadata"]["name"]
    proc = helm("template", "rel", str(CHART), "--set", "engineBuild.enabled=true", check=False)
    assert (
        proc.returncode
        and "engineBuild.enabled needs deployment.engine: tensorrtllm" in proc.stderr
    )


def test_gateway_and_ingress() -> None:
    docs = render(str(CHART / "ci" / "gateway-values.yaml"))
    gw = next(
        d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-tritonkit-gateway"
    )
    c = gw["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["tritonkit", "gateway"]
    assert c["image"] == "ghcr.io/tritonkit/tritonkit:0.1.0"
    assert c["args"][:2] == ["--triton", "rel-tritonkit:8001"]
    assert c["ports"][0]["containerPort"] == 9000
    svc = next(
        d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == "rel-tritonkit-gateway"
    )
    assert svc["spec"]["ports"][0]["port"] == 9000
    (ing,) = by_kind(docs, "Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "rel-tritonkit-gateway", "port": {"number": 9000}}


def test_locust_master_and_workers() -> None:
    docs = render(str(CHART / "ci" / "locust-values.yaml"))
    jobs = {d["metadata"]["name"]: d for d in by_kind(docs, "Job")}
    master = jobs["rel-tritonkit-locust-master"]["spec"]["template"]["spec"]["containers"][0]
    worker_job = jobs["rel-tritonkit-locust-worker"]
    worker = worker_job["spec"]["template"]["spec"]["containers"][0]
    assert master["command"] == worker["command"] == ["locust"]
    assert master["args"][:2] == worker["args"][:2] == ["-f", "loadtest/locustfile.py"]
    ma = master["args"]
    assert {"--master", "--headless"} <= set(ma)
    assert ma[ma.index("--expect-workers") + 1] == "4" and ma[ma.index("--users") + 1] == "64"
    assert ma[ma.index("--host") + 1] == "http://rel-tritonkit:8000"
    assert worker_job["spec"]["parallelism"] == worker_job["spec"]["completions"] == 4
    wa = worker["args"]
    assert "--worker" in wa and wa[wa.index("--master-host") + 1] == "rel-tritonkit-locust-master"
    assert any(
        d["kind"] == "Service" and d["metadata"]["name"] == "rel-tritonkit-locust-master"
        for d in docs
    )


def test_helm_test_hooks_check_readiness_and_chat() -> None:
    docs = render(None)
    pods = {d["metadata"]["name"]: d for d in by_kind(docs, "Pod")}
    assert set(pods) == {"rel-tritonkit-test-ready", "rel-tritonkit-test-chat"}
    for p in pods.values():
        assert p["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ready = pods["rel-tritonkit-test-ready"]["spec"]["containers"][0]["args"][0]
    assert "/v2/health/ready" in ready and "/v2/models/athene-70b/ready" in ready
    chat = pods["rel-tritonkit-test-chat"]["spec"]["containers"][0]["args"][0]
    assert "http://rel-tritonkit:8000/v2/models/athene-70b/generate" in chat
    assert '"messages": json.dumps(messages)' in chat and '"role": "user"' in chat
    compile(chat, "test-chat", "exec")  # the probe script is valid Python
    compile(ready, "test-ready", "exec")


def test_notes_are_checked_by_lint(tmp_path: Path) -> None:
    """`helm template` leaves NOTES.txt out, `helm lint` renders it: the lint matrix above covers
    NOTES for every values file, as a broken NOTES in a copy of the chart shows."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "helm test" in notes and "port-forward" in notes
    copy = tmp_path / "tritonkit"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "NOTES.txt").write_text(notes + "{{ .Values.gpu.count.nope }}\n")
    proc = helm("lint", "--strict", str(copy), check=False)
    assert proc.returncode and "NOTES.txt" in proc.stdout + proc.stderr


# ---- schema ---------------------------------------------------------------------------------
BAD_VALUES = [
    (["gpu.count=-1"], "gpu.count"),
    (["gpu.count=two"], "gpu.count"),
    (["image.pullPolicy=Sometimes"], "image.pullPolicy"),
    (["shm.sizeLimit=lots"], "shm.sizeLimit"),
    (["ports.http=70000"], "ports.http"),
    (["persistence.accessMode=RWX"], "persistence.accessMode"),
    (["startupProbe.failureThreshold=0"], "startupProbe.failureThreshold"),
    (["autoscaling.targetQueueComputeRatio=fast"], "autoscaling.targetQueueComputeRatio"),
    (["deployment.engine=vllm"], "deployment.engine"),
    (["deployment.parallelism.tp=0"], "deployment.parallelism.tp"),
    (["deployment.gpu.kind=v100"], "deployment.gpu.kind"),
    (["deployment.limtis.max_seq_len=9"], "limtis"),
    (["replicas=2"], "replicas"),
    (["loadtest.runTime=forever"], "loadtest.runTime"),
]


@pytest.mark.parametrize(
    ("sets", "field"), BAD_VALUES, ids=[b[1] + ":" + b[0][0] for b in BAD_VALUES]
)
def test_schema_rejects_bad_values_naming_the_field(sets: list[str], field: str) -> None:
    args = ["template", "rel", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = helm(*args, check=False)
    assert proc.returncode != 0
    assert "don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert field in proc.stderr, proc.stderr


def test_schema_is_draft07_and_requires_the_deployment_model() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    required = [r["required"] for r in schema["definitions"]["Deployment"]["anyOf"]]
    assert required == [["model"], ["checkpoint_dir"]]
    proc = helm("template", "rel", str(CHART), "--set", "deployment.model=null", check=False)
    assert proc.returncode and "model" in proc.stderr


# ---- checkov --------------------------------------------------------------------------------
def _render_all(dest: Path) -> None:
    for values in [None, *CI_VALUES]:
        name = values.stem if values else "defaults"
        docs = render(str(values) if values else None)
        # one file per object: checkov reports resources by file and name
        for i, doc in enumerate(docs):
            (dest / f"{name}-{i:02d}-{doc['kind'].lower()}.yaml").write_text(yaml.safe_dump(doc))


def test_checkov_has_no_unexplained_failures(tmp_path: Path) -> None:
    skips = yaml.safe_load(SKIPS.read_text())["skips"]
    for s in skips:
        assert s["id"].startswith("CKV") and len(s["reason"].split()) >= 5, s
    _render_all(tmp_path)
    proc = subprocess.run(
        [
            str(_need(CHECKOV)),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, set[str]] = {}
    passed = 0
    for r in reports:
        passed += r["summary"]["passed"]
        for chk in r["results"]["failed_checks"]:
            failed.setdefault(chk["check_id"], set()).add(
                f"{chk['resource']} ({chk['check_name']})"
            )
    assert passed > 100, "checkov scanned nothing"
    skip_ids = {s["id"] for s in skips}
    unexplained = {k: sorted(v)[:3] for k, v in failed.items() if k not in skip_ids}
    assert not unexplained, f"fix these or explain them in {SKIPS.name}: {unexplained}"
    stale = skip_ids - set(failed)
    assert not stale, f"{SKIPS.name} skips checks that no longer fail: {sorted(stale)}"


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    docs = render(None, f"image.digest={digest}")
    _, c = triton_container(docs)
    assert c["image"] == f"ghcr.io/tritonkit/tritonkit@{digest}"
    proc = helm("template", "rel", str(CHART), "--set", "image.digest=latest", check=False)
    assert proc.returncode and "image.digest" in proc.stderr


def test_prerendered_repository_is_served_by_tritonserver() -> None:
    docs = render(
        None,
        "modelRepository.source=volume",
        "modelRepository.volume.persistentVolumeClaim.claimName=repo",
    )
    spec, c = triton_container(docs)
    assert c["command"] == ["tritonserver"] and "--model-repository=/models" in c["args"]
    vol = next(v for v in spec["volumes"] if v["name"] == "model-repository")
    assert vol["persistentVolumeClaim"] == {"claimName": "repo"}
    proc = helm(
        "template",
        "rel",
        str(CHART),
        "-f",
        str(CHART / "ci" / "tp4-values.yaml"),
        "--set",
        "modelRepository.source=volume",
        "--set",
        "modelRepository.volume.persistentVolumeClaim.claimName=repo",
        check=False,
    )
    assert proc.returncode and "needs source: render" in proc.stderr
