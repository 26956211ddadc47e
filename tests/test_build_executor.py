"""Executor, commands, manifest, check_manifest, mpirun and Job: against stand-in TensorRT-LLM tools
that record their argv and write the files the real ones write."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tritonkit.build.check import EngineMismatch, check_manifest
from tritonkit.build.cli import app
from tritonkit.build.commands import Toolchain, build_steps
from tritonkit.build.executor import BuildError, execute, mpirun_command, resolve_toolchain
from tritonkit.build.job import job_documents
from tritonkit.build.planner import plan
from tritonkit.deployment import parse_deployment

runner = CliRunner()

STANDIN = r'''#!{python}
"""Stand-in for convert_checkpoint.py / quantize.py / trtllm-build."""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
if args == ["--help"]:
    print(os.environ.get("STANDIN_HELP", ""))
    sys.exit(0)
with open(os.environ["STANDIN_RECORD"], "a") as f:
    f.write(json.dumps([Path(sys.argv[0]).name, *args]) + "\n")
if os.environ.get("STANDIN_FAIL") == Path(sys.argv[0]).name:
    print("boom: out of memory"); sys.exit(3)
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
out = Path(opt("--output_dir")); out.mkdir(parents=True, exist_ok=True)
if "--checkpoint_dir" in args:  # trtllm-build
    m = json.loads((Path(opt("--checkpoint_dir")) / "config.json").read_text())["mapping"]
    tp = int(os.environ.get("STANDIN_TP", m["tp_size"]))
    cfg = {{"version": "x", "pretrained_config": {{"mapping": {{"world_size": tp * m["pp_size"],
           "tp_size": tp, "pp_size": m["pp_size"]}}}}, "build_config": {{}}}}
    suffix = ".engine"
else:
    tp, pp = int(opt("--tp_size")), int(opt("--pp_size"))
    cfg = {{"mapping": {{"world_size": tp * pp, "tp_size": tp, "pp_size": pp}}}}
    suffix = ".safetensors"
(out / "config.json").write_text(json.dumps(cfg))
world = cfg.get("mapping", cfg.get("pretrained_config", {{}}).get("mapping"))["world_size"]
for i in range(world):
    if str(i) != os.environ.get("STANDIN_SKIP_RANK"):
        (out / f"rank{{i}}{{suffix}}").write_text("x")
print(f"wrote {{world}} ranks to {{out}}")
'''

NVIDIA_SMI = r"""#!/bin/sh
if [ "$1" = "--query-gpu=name,compute_cap" ]; then
  i=0; while [ $i -lt ${{STANDIN_GPUS:-8}} ]; do echo "{name}, {cc}"; i=$((i+1)); done
else
  echo "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |"
fi
"""

HELP_NEW = (
    "--checkpoint_dir --output_dir --max_batch_size --max_input_len --max_seq_len "
    "--max_num_tokens --gpt_attention_plugin --gemm_plugin --remove_input_padding --context_fmha "
    "--kv_cache_type --paged_kv_cache --use_paged_context_fmha --use_fp8_context_fmha --workers"
)


def _exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Stand-in tools, an H100 node, TensorRT-LLM 0.17 and a fake checkpoint."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    src = STANDIN.format(python=sys.executable)
    paths = {
        n: _exe(bin_ / n, src) for n in ("convert_checkpoint.py", "quantize.py", "trtllm-build")
    }
    smi = NVIDIA_SMI.format(name="NVIDIA H100 80GB HBM3", cc="9.0")
    _exe(bin_ / "nvidia-smi", smi)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.setenv("STANDIN_HELP", HELP_NEW)
    monkeypatch.setenv("TRITONKIT_TRTLLM_VERSION", "0.17.0.post1")
    monkeypatch.delenv("TRITONKIT_CUDA_VERSION", raising=False)
    ckpt = tmp_path / "hf"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (ckpt / "model-00001-of-00002.safetensors").write_bytes(b"header-1" * 10)
    (ckpt / "model-00002-of-00002.safetensors").write_bytes(b"header-2" * 10)
    tc, found = resolve_toolchain(
        python=sys.executable,
        convert_script=str(paths["convert_checkpoint.py"]),
        quantize_script=str(paths["quantize.py"]),
        trtllm_build=str(paths["trtllm-build"]),
    )
    return {
        "tc": tc,
        "found": found,
        "ckpt": ckpt,
        "out": tmp_path / "out",
        "bin": bin_,
        "record": tmp_path / "record.jsonl",
        "tmp": tmp_path,
    }


def _records(t) -> list[list[str]]:
    if not t["record"].exists():
        return []
    return [json.loads(x) for x in t["record"].read_text().splitlines()]


def test_llama_bf16_exact_commands():
    p = plan("athene-70b", "a100-80gb")  # bf16 TP4
    tc = Toolchain(version=(0, 17), trtllm_root="/opt/trt")
    convert, build = build_steps(p, "/ckpt", "/out", tc)
    assert convert.argv == [
        "python3",
        "/opt/trt/examples/models/core/llama/convert_checkpoint.py",
        "--model_dir",
        "/ckpt",
        "--output_dir",
        "/out/checkpoint",
        "--dtype",
        "bfloat16",
        "--tp_size",
        "4",
        "--pp_size",
        "1",
        "--use_parallel_embedding",
        "--load_by_shard",
    ]
    assert build.argv == [
        "trtllm-build",
        "--checkpoint_dir",
        "/out/checkpoint",
        "--output_dir",
        "/out/engine",
        "--max_batch_size",
        "16",
        "--max_input_len",
        "4096",
        "--max_seq_len",
        "8192",
        "--max_num_tokens",
        "8192",
        "--gpt_attention_plugin",
        "bfloat16",
        "--remove_input_padding",
        "enable",
        "--context_fmha",
        "enable",
        "--gemm_plugin",
        "bfloat16",
        "--kv_cache_type",
        "paged",
        "--use_paged_context_fmha",
        "enable",
        "--workers",
        "4",
    ]


def test_qwen_path_and_old_layout():
    p = plan("athene-v2-chat", "a100-80gb", precision="int8_wo")
    convert, _ = build_steps(p, "/ckpt", "/out", Toolchain(version=(0, 13), trtllm_root="/t"))
    assert convert.argv[1] == "/t/examples/qwen/convert_checkpoint.py"
    assert "--load_by_shard" not in convert.argv  # Llama converter only
    assert convert.argv[-3:] == ["--use_weight_only", "--weight_only_precision", "int8"]


def test_fp8_and_awq_use_quantize():
    p = plan("nemotron-70b", "h100")  # fp8 TP2
    q, b = build_steps(p, "/ckpt", "/out", Toolchain(version=(0, 17), trtllm_root="/t"))
    assert q.name == "quantize" and q.argv == [
        "python3",
        "/t/examples/quantization/quantize.py",
        "--model_dir",
        "/ckpt",
        "--output_dir",
        "/out/checkpoint",
        "--dtype",
        "bfloat16",
        "--qformat",
        "fp8",
        "--kv_cache_dtype",
        "fp8",
        "--calib_size",
        "512",
        "--tp_size",
        "2",
        "--pp_size",
        "1",
    ]
    assert "--use_fp8_context_fmha" in b.argv and "--gemm_plugin" not in b.argv
    p = plan("athene-70b", "a100-80gb", precision="int4_awq")
    q, _ = build_steps(p, "/ckpt", "/out", Toolchain(version=(0, 17), trtllm_root="/t"))
    i = q.argv.index("--qformat")
    assert q.argv[i : i + 6] == [
        "--qformat",
        "int4_awq",
        "--awq_block_size",
        "128",
        "--calib_size",
        "32",
    ]


def test_renamed_flags_by_version():
    p = plan("athene-70b", "a10g", gpus=16)  # TP8 × PP2 over PCIe
    old = build_steps(p, "/c", "/o", Toolchain(version=(0, 11)))[1].argv
    assert "--max_seq_len" not in old
    assert old[old.index("--max_output_len") + 1] == str(8192 - 4096)
    assert old[old.index("--paged_kv_cache") + 1] == "enable" and "--kv_cache_type" not in old
    assert old[old.index("--use_custom_all_reduce") + 1] == "disable"  # no NVLink, < 0.12
    new = build_steps(p, "/c", "/o", Toolchain(version=(0, 17)))[1].argv
    assert "--max_seq_len" in new and "--use_custom_all_reduce" not in new
    # the installed trtllm-build's --help wins over the version table
    helped = Toolchain(
        version=(0, 17),
        build_flags=frozenset(
            ["--max_output_len", "--paged_kv_cache", "--max_batch_size", "--max_input_len"]
        ),
    )
    step = build_steps(p, "/c", "/o", helped)[1]
    assert "--max_output_len" in step.argv and "--paged_kv_cache" in step.argv
    assert "--context_fmha" in step.dropped and "--context_fmha" not in step.argv


def test_execute_builds_verifies_and_writes_manifest(tools):
    p = plan("athene-70b", "h100")  # fp8 TP2 via quantize.py
    path = execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    rec = _records(tools)
    assert [r[0] for r in rec] == ["quantize.py", "trtllm-build"]
    assert rec[0][rec[0].index("--tp_size") + 1] == "2"
    assert rec[1][rec[1].index("--workers") + 1] == "2"
    m = json.loads(path.read_text())
    assert path == tools["out"] / "engine" / "manifest.json"
    assert (m["tp"], m["pp"], m["precision"], m["model"]) == (2, 1, "fp8", "athene-70b")
    assert m["tensorrt_llm_version"] == "0.17.0.post1" and m["cuda_version"] == "12.4"
    assert m["gpu"] == {
        "name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "kind": "h100",
        "count": 8,
    }
    assert len(m["checkpoint"]["fingerprint"]) == 64
    assert m["engine_files"] == ["rank0.engine", "rank1.engine"]
    assert [s["argv"][0] for s in m["steps"]] == [sys.executable, tools["tc"].trtllm_build]
    assert m["plan"]["memory"]["kv_cache_tokens"] == p.kv_cache_tokens
    assert "wrote 2 ranks" in (tools["out"] / "logs" / "build.log").read_text()


def test_resume_skips_unchanged_and_reruns_changed(tools):
    p = plan("athene-70b", "h100", precision="bf16")  # bf16 TP4 via convert_checkpoint.py
    execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert len(_records(tools)) == 2
    execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert len(_records(tools)) == 2  # both steps skipped
    # a changed checkpoint reruns both steps
    (tools["ckpt"] / "model-00002-of-00002.safetensors").write_bytes(b"changed!" * 10)
    execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert [r[0] for r in _records(tools)[2:]] == ["convert_checkpoint.py", "trtllm-build"]
    # changed build limits rerun only trtllm-build
    p2 = plan("athene-70b", "h100", precision="bf16", max_batch_size=8)
    execute(p2, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert [r[0] for r in _records(tools)[4:]] == ["trtllm-build"]
    # a deleted rank file is noticed: the step reruns although its stamp matches
    (tools["out"] / "engine" / "rank3.engine").unlink()
    execute(p2, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert [r[0] for r in _records(tools)[5:]] == ["trtllm-build"]


def test_verification_failures(tools, monkeypatch):
    p = plan("athene-70b", "h100", precision="bf16")  # TP4
    monkeypatch.setenv("STANDIN_SKIP_RANK", "3")
    with pytest.raises(BuildError, match=r"convert: output check failed: .*missing rank3\.safe"):
        execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    monkeypatch.delenv("STANDIN_SKIP_RANK")
    monkeypatch.setenv("STANDIN_TP", "2")
    with pytest.raises(BuildError, match=r"build: output check failed: .*tp 2 pp 1, planned tp 4"):
        execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    monkeypatch.delenv("STANDIN_TP")
    monkeypatch.setenv("STANDIN_FAIL", "trtllm-build")
    with pytest.raises(BuildError, match=r"(?s)build failed \(exit 3\).*boom: out of memory"):
        execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    assert not (tools["out"] / "engine" / "manifest.json").exists()


def test_wrong_gpu_or_version_refused_before_running(tools):
    _exe(tools["bin"] / "nvidia-smi", NVIDIA_SMI.format(name="NVIDIA A100-SXM4-80GB", cc="8.0"))
    with pytest.raises(
        BuildError, match=r"A100-SXM4-80GB \(compute 8\.0\) but the plan is for h100"
    ):
        execute(plan("athene-70b", "h100"), tools["ckpt"], tools["out"], tools["tc"], "0.17.0")
    with pytest.raises(
        BuildError,
        match=r"TensorRT-LLM 0\.17\.0 is installed, the plan needs "
        r">=0\.12,<=0\.13",
    ):
        execute(
            plan("nemotron-70b", "t4", gpus=16), tools["ckpt"], tools["out"], tools["tc"], "0.17.0"
        )
    assert _records(tools) == []


def _deployment(**over):
    d = {
        "model": "athene-70b",
        "engine": "tensorrtllm",
        "precision": "fp8",
        "gpu": {"kind": "h100", "count": 2},
        "parallelism": {"tp": 2, "pp": 1},
    }
    d.update(over)
    return parse_deployment(d)


def test_check_manifest(tools):
    p = plan("athene-70b", "h100")
    execute(p, tools["ckpt"], tools["out"], tools["tc"], tools["found"])
    engine = tools["out"] / "engine"
    check_manifest(engine, _deployment())  # matches: no error
    cases = [
        ({"gpu": {"kind": "a100-80gb", "count": 2}}, "gpu.kind: a100-80gb is compute 8.0"),
        ({"parallelism": {"tp": 4, "pp": 1}}, "parallelism.tp: 4, but the engines have tp 2"),
        ({"model": "nemotron-70b"}, "model: 'nemotron-70b'"),
        (
            {"limits": {"max_input_len": 4096, "max_seq_len": 8192, "max_batch_size": 32}},
            "limits.max_batch_size: 32 exceeds the engine's 16",
        ),
        (
            {"tensorrtllm": {"tensorrt_llm_version": "0.13.0"}},
            "tensorrtllm.tensorrt_llm_version: 0.13.0",
        ),
    ]
    for over, words in cases:
        with pytest.raises(EngineMismatch) as ei:
            check_manifest(engine, _deployment(**over))
        assert words in str(ei.value)
    (engine / "rank1.engine").unlink()
    with pytest.raises(EngineMismatch, match=r"lacks rank1\.engine"):
        check_manifest(engine, _deployment())
    with pytest.raises(EngineMismatch, match=r"manifest\.json not found"):
        check_manifest(tools["tmp"], _deployment())


def test_mpirun_command_leader_mode():
    rank0 = ["tritonserver", "--model-repository=/repo", "--http-port=8000"]
    workers = ["tritonserver", "--model-repository=/repo", "--http-port=8000"]
    cmd = mpirun_command(2, rank0, workers)
    assert cmd == [
        "mpirun",
        "--allow-run-as-root",
        "-n",
        "1",
        "tritonserver",
        "--model-repository=/repo",
        "--http-port=8000",
        "--disable-auto-complete-config",
        "--backend-config=python,shm-region-prefix-name=prefix0_",
        ":",
        "-n",
        "1",
        "tritonserver",
        "--model-repository=/repo",
        "--http-port=8000",
        "--model-control-mode=explicit",
        "--load-model=tensorrt_llm",
        "--disable-auto-complete-config",
        "--backend-config=python,shm-region-prefix-name=prefix1_",
    ]
    cmd4 = mpirun_command(4, rank0, workers, trtllm_model_name="m-tensorrt_llm")
    assert cmd4.count(":") == 3 and cmd4.count("--load-model=m-tensorrt_llm") == 3
    with pytest.raises(ValueError, match="world_size"):
        mpirun_command(1, rank0, workers)
    with pytest.raises(ValueError, match="--load-model is added per rank"):
        mpirun_command(2, rank0, [*workers, "--load-model=x"])


def test_cli_dry_run_and_emit_job(tmp_path):
    job = tmp_path / "job.yaml"
    r = runner.invoke(
        app,
        [
            "run",
            "--model",
            "athene-70b",
            "--gpu",
            "t4",
            "--gpus",
            "16",
            "--checkpoint",
            "/data/hf/athene",
            "--out",
            "/data/engines/a",
            "--dry-run",
            "--emit-job",
            str(job),
            "--trtllm-version",
            "0.13.0",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "examples/llama/convert_checkpoint.py" in r.stdout and "--max_seq_len 8192" in r.stdout
    assert "--dtype float16" in r.stdout
    cm, j = list(yaml.safe_load_all(job.read_text()))
    assert (cm["kind"], j["apiVersion"], j["kind"]) == ("ConfigMap", "batch/v1", "Job")
    c = j["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nvcr.io/nvidia/tritonserver:24.09-trtllm-python-py3"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert j["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}
    script = cm["data"]["build.sh"]
    assert "--branch v0.13.0" in script and script.count(".job-stamp") >= 4
    assert "trtllm-build --checkpoint_dir /data/engines/a/checkpoint" in script
    assert "manifest.py --plan" in script and "def write_manifest" in cm["data"]["manifest.py"]
    assert json.loads(cm["data"]["plan.json"])["pp"] == 2


def test_job_refuses_paths_outside_the_volume_and_unknown_image(tmp_path):
    r = runner.invoke(
        app,
        [
            "run",
            "--model",
            "athene-70b",
            "--gpu",
            "h100",
            "--checkpoint",
            "/elsewhere",
            "--out",
            "/data/e",
            "--emit-job",
            str(tmp_path / "j"),
        ],
    )
    assert r.exit_code == 1 and "checkpoint: /elsewhere must be under" in r.output
    p = plan("athene-70b", "h100")
    steps = build_steps(p, "/data/c", "/data/o", Toolchain(version=(0, 19)))
    with pytest.raises(ValueError, match="image_tag: no known Triton image"):
        job_documents(
            p, steps, Toolchain(version=(0, 19)), checkpoint_dir="/data/c", out_dir="/data/o"
        )


def test_cli_run_without_tensorrt_llm(tmp_path, monkeypatch):
    monkeypatch.delenv("TRITONKIT_TRTLLM_VERSION", raising=False)
    r = runner.invoke(
        app,
        [
            "run",
            "--model",
            "athene-70b",
            "--gpu",
            "h100",
            "--checkpoint",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--python",
            sys.executable,
        ],
    )
    assert r.exit_code == 1 and "TensorRT-LLM is not installed" in r.output


def test_cli_run_from_plan_file(tools, tmp_path):
    pf = tmp_path / "plan.json"
    r = runner.invoke(
        app,
        [
            "plan",
            "--model",
            "athene-v2-chat",
            "--gpu",
            "h100",
            "--precision",
            "bf16",
            "-o",
            str(pf),
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "run",
            "--plan",
            str(pf),
            "--checkpoint",
            str(tools["ckpt"]),
            "--out",
            str(tools["out"]),
            "--python",
            sys.executable,
            "--convert-script",
            str(tools["bin"] / "convert_checkpoint.py"),
            "--trtllm-build",
            str(tools["bin"] / "trtllm-build"),
        ],
    )
    assert r.exit_code == 0, r.output
    rec = _records(tools)
    assert rec[0][0] == "convert_checkpoint.py" and "--load_by_shard" not in rec[0]
    m = json.loads((tools["out"] / "engine" / "manifest.json").read_text())
    assert m["model"] == "athene-v2-chat" and m["tp"] == 4
