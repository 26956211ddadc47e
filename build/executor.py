"""The build executor: run a plan's steps where TensorRT-LLM is installed, resumably.

``execute`` detects TensorRT-LLM and the GPU, refuses a wrong architecture or version early, runs
each step (skipped when its stamp records the same inputs hash and its output verifies), streams
logs under a rich progress line, verifies outputs and writes ``manifest.json`` beside the engines.
``check_manifest`` and ``mpirun_command`` are re-exported for render/serve.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tritonkit.build import manifest as mf
from tritonkit.build.check import EngineMismatch, check_manifest
from tritonkit.build.commands import (
    ENGINE_SUBDIR,
    Step,
    Toolchain,
    build_steps,
    help_flags,
)
from tritonkit.build.launch import mpirun_command
from tritonkit.build.planner import Plan
from tritonkit.build.precision import VersionRange, parse_version

__all__ = [
    "BuildError",
    "EngineMismatch",
    "check_manifest",
    "execute",
    "mpirun_command",
    "resolve_toolchain",
]

STAMPS = ".tritonkit"


class BuildError(RuntimeError):
    """A build cannot start or a step failed; the message says which and why."""


def _in_range(version: str, spec: str) -> bool:
    return parse_version(version) in VersionRange.parse(spec)


def resolve_toolchain(
    version: str | None = None,
    *,
    python: str = "python3",
    trtllm_root: str | None = None,
    convert_script: str | None = None,
    quantize_script: str | None = None,
    trtllm_build: str = "trtllm-build",
    read_help: bool = True,
) -> tuple[Toolchain, str | None]:
    """The toolchain to use and the detected version string (None when TensorRT-LLM is absent).

    ``version`` forces a version (dry runs); otherwise $TRITONKIT_TRTLLM_VERSION or an import of
    tensorrt_llm decides. With ``read_help``, ``trtllm-build --help`` refines renamed flags.
    """
    found = version or mf.trtllm_version(python)
    flags = None
    if found and read_help and shutil.which(trtllm_build):
        r = subprocess.run([trtllm_build, "--help"], capture_output=True, text=True, timeout=120)
        if r.returncode == 0 and "--checkpoint_dir" in r.stdout:
            flags = help_flags(r.stdout)
    tc = Toolchain(
        version=parse_version(found or "0.17"),
        python=python,
        trtllm_root=trtllm_root or os.environ.get("TRITONKIT_TRTLLM_ROOT", "/opt/TensorRT-LLM"),
        convert_script=convert_script,
        quantize_script=quantize_script,
        trtllm_build=trtllm_build,
        build_flags=flags,
    )
    return tc, found


def _alt_convert(step: Step) -> Step:
    """Use the other examples/ layout when the versioned convert script path does not exist."""
    script = step.argv[1]
    if step.name != "convert" or Path(script).exists():
        return step
    alt = (
        script.replace("/examples/models/core/", "/examples/")
        if "/models/core/" in script
        else script.replace("/examples/", "/examples/models/core/")
    )
    if Path(alt).exists():
        return Step(step.name, [step.argv[0], alt, *step.argv[2:]], step.output_dir, step.dropped)
    return step


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _run_step(step: Step, log_path: Path, console: Console) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=20)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=True,
    ) as prog:
        task = prog.add_task(step.name, last="")
        try:
            proc = subprocess.Popen(
                step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            )
        except OSError as exc:
            raise BuildError(f"{step.name}: cannot start {step.argv[0]}: {exc}") from None
        with log_path.open("w") as log:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip()
                tail.append(line)
                prog.console.print(f"  {line}", markup=False, highlight=False)
                prog.update(task, last=line[-60:])
        rc = proc.wait()
    if rc:
        last = "\n    ".join(tail)
        raise BuildError(f"{step.name} failed (exit {rc}); log {log_path}; last lines:\n    {last}")


def _verify(step: Step, plan: Plan) -> list[str]:
    suffix = ".engine" if step.name == "build" else ".safetensors"
    try:
        return mf.verify_dir(step.output_dir, plan.tp, plan.pp, suffix)
    except mf.VerifyError as exc:
        raise BuildError(f"{step.name}: output check failed: {exc}") from None


def execute(
    plan: Plan,
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    toolchain: Toolchain,
    version: str,
    *,
    console: Console | None = None,
) -> Path:
    """Run the plan's steps into ``out_dir`` and return the manifest path."""
    console = console or Console(stderr=True)
    ckpt, out = Path(checkpoint_dir).resolve(), Path(out_dir).resolve()
    if not _in_range(version, plan.trtllm_versions):
        raise BuildError(
            f"TensorRT-LLM {version} is installed, the plan needs "
            f"{plan.trtllm_versions} ({plan.gpu}, {plan.family})"
        )
    try:
        fingerprint = mf.fingerprint_checkpoint(ckpt)
        gpus = mf.gpu_info()
        gpu = mf.check_gpu(gpus, plan.compute_capability, plan.gpu)
    except mf.VerifyError as exc:
        raise BuildError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    stamps = out / STAMPS
    stamps.mkdir(exist_ok=True)
    steps = [_alt_convert(s) for s in build_steps(plan, str(ckpt), str(out), toolchain)]
    records, upstream = [], fingerprint
    for step in steps:
        inputs = _hash(step.argv, version, upstream)
        stamp = stamps / f"{step.name}.json"
        done = stamp.is_file() and json.loads(stamp.read_text()).get("inputs") == inputs
        if done:
            try:
                files = _verify(step, plan)
                console.print(f"[green]skip[/] {step.name}: inputs unchanged, output verified")
            except BuildError:
                done = False
        if not done:
            stamp.unlink(missing_ok=True)
            console.print(f"[bold]run[/] {step.name}: {step.shell}", markup=True, highlight=False)
            if step.dropped:
                console.print(f"  (this trtllm-build has no {', '.join(step.dropped)})")
            _run_step(step, out / "logs" / f"{step.name}.log", console)
            files = _verify(step, plan)
            stamp.write_text(json.dumps({"inputs": inputs, "argv": step.argv}) + "\n")
        records.append({"name": step.name, "argv": step.argv, "inputs_hash": inputs})
        upstream = inputs
    return mf.write_manifest(
        out / ENGINE_SUBDIR,
        plan=plan.model_dump(mode="json"),
        checkpoint_dir=str(ckpt),
        checkpoint_fingerprint=fingerprint,
        trtllm_version=version,
        cuda_version=mf.cuda_version(),
        gpu=gpu,
        gpu_count=len(gpus),
        steps=records,
        engine_files=files,
    )
