"""``tritonkit build``: plan, run and matrix commands (thin wrappers over the library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from tritonkit.build import executor, job
from tritonkit.build.commands import build_steps, format_steps
from tritonkit.build.gpus import GPUS
from tritonkit.build.manifest import VerifyError
from tritonkit.build.matrix import MATRIX_PATH, matrix_text
from tritonkit.build.planner import Plan, PlanError, plan
from tritonkit.catalog import CatalogError

app = typer.Typer(
    help="Plan and build TensorRT-LLM engines.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)

Model = Annotated[Optional[str], typer.Option("--model", help="catalog model name")]  # noqa: UP045
Gpu = Annotated[Optional[str], typer.Option("--gpu", help=f"GPU kind: {', '.join(GPUS)}")]  # noqa: UP045
Int = Optional[int]  # noqa: UP045


def _fail(msg: str) -> typer.Exit:
    err.print(f"[red]error:[/] {msg}", highlight=False)
    return typer.Exit(1)


def _concurrency(value: str) -> int | str:
    if value == "max":
        return value
    try:
        return int(value)
    except ValueError:
        raise _fail(f"concurrency: {value!r} is not an integer or 'max'") from None


def _make_plan(
    model,
    gpu,
    gpus,
    tp,
    pp,
    precision,
    max_input_len,
    max_seq_len,
    max_batch_size,
    isl,
    osl,
    concurrency,
) -> Plan:
    if not model or not gpu:
        raise _fail("--model and --gpu are required (or --plan FILE)")
    try:
        return plan(
            model,
            gpu,
            gpus=gpus,
            tp=tp,
            pp=pp,
            precision=precision,
            max_input_len=max_input_len,
            max_seq_len=max_seq_len,
            max_batch_size=max_batch_size,
            isl=isl,
            osl=osl,
            concurrency=_concurrency(concurrency),
        )
    except (PlanError, CatalogError) as exc:
        raise _fail(str(exc)) from None


def _table(p: Plan) -> None:
    out = Console()
    t = Table(title=f"{p.model} on {p.world_size}× {p.gpu} ({p.gpu_name}, sm{p.sm})")
    t.add_column("")
    t.add_column("value", justify="right")
    m, e = p.memory, p.estimate
    rows = [
        ("precision", p.precision),
        ("tp × pp", f"{p.tp} × {p.pp}"),
        ("TensorRT-LLM", p.trtllm_versions),
        ("weights / GPU", f"{m.weights_gib:.1f} GiB"),
        ("activations / GPU", f"{m.activations_gib:.1f} GiB"),
        ("runtime / GPU", f"{m.runtime_gib:.1f} GiB"),
        ("KV pool / GPU", f"{m.kv_pool_gib:.1f} GiB"),
        ("KV cache tokens", f"{m.kv_cache_tokens:,} ({m.kv_tokens_required:,} needed)"),
        ("headroom / GPU", f"{m.headroom_gib:.1f} GiB"),
        ("workload", f"isl {e.isl}, osl {e.osl}, concurrency {e.concurrency}"),
        ("est. output tokens/s", f"{e.output_tokens_per_s:,.0f} ({e.bound}-bound)"),
        ("est. TPOT", f"{e.tpot_ms:.1f} ms"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    for line in p.explanation + e.notes:
        out.print(f"- {line}", highlight=False)


@app.command("plan")
def plan_cmd(
    model: Model = None,
    gpu: Gpu = None,
    gpus: Annotated[Int, typer.Option(help="GPUs one instance may use (default 8)")] = None,
    tp: Annotated[
        Int, typer.Option(help="tensor parallel size (default: smallest that fits)")
    ] = None,
    pp: Annotated[Int, typer.Option(help="pipeline parallel size")] = None,
    precision: Annotated[
        str | None, typer.Option(help="bf16, fp16, fp8, int8_wo, int4_awq, int8_sq")
    ] = None,
    max_input_len: Annotated[int, typer.Option(help="longest prompt")] = 4096,
    max_seq_len: Annotated[int, typer.Option(help="prompt + output")] = 8192,
    max_batch_size: Annotated[int, typer.Option(help="sequences decoded together")] = 16,
    isl: Annotated[Int, typer.Option(help="estimate: input tokens")] = None,
    osl: Annotated[Int, typer.Option(help="estimate: output tokens")] = None,
    concurrency: Annotated[
        str, typer.Option(help="estimate: sequences in flight, N or max")
    ] = "max",
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the plan JSON here")
    ] = None,
) -> None:
    """Choose precision, TP and PP for a model on a GPU kind, with memory and throughput."""
    if fmt not in ("table", "json"):
        raise _fail(f"format: {fmt!r}; allowed: table, json")
    p = _make_plan(
        model,
        gpu,
        gpus,
        tp,
        pp,
        precision,
        max_input_len,
        max_seq_len,
        max_batch_size,
        isl,
        osl,
        concurrency,
    )
    if output:
        output.write_text(p.model_dump_json(indent=2) + "\n")
    if fmt == "json":
        typer.echo(json.dumps(p.summary(), indent=2))
    else:
        _table(p)


@app.command("run")
def run_cmd(
    checkpoint: Annotated[str, typer.Option(help="Hugging Face checkpoint folder")],
    out: Annotated[str, typer.Option(help="output folder (checkpoint/, engine/, logs/)")],
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="plan JSON (plan -o FILE)")
    ] = None,
    model: Model = None,
    gpu: Gpu = None,
    gpus: Annotated[Int, typer.Option()] = None,
    tp: Annotated[Int, typer.Option()] = None,
    pp: Annotated[Int, typer.Option()] = None,
    precision: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    max_input_len: Annotated[int, typer.Option()] = 4096,
    max_seq_len: Annotated[int, typer.Option()] = 8192,
    max_batch_size: Annotated[int, typer.Option()] = 16,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the commands only")] = False,
    emit_job: Annotated[
        Path | None, typer.Option("--emit-job", help="write a Kubernetes Job here")
    ] = None,
    trtllm_version: Annotated[
        str | None,
        typer.Option(
            help="TensorRT-LLM version for --dry-run/--emit-job (default: detected, else 0.17)"
        ),
    ] = None,
    trtllm_root: Annotated[
        str | None,
        typer.Option(help="TensorRT-LLM source tree with examples/ ($TRITONKIT_TRTLLM_ROOT)"),
    ] = None,
    convert_script: Annotated[str | None, typer.Option(help="convert_checkpoint.py path")] = None,
    quantize_script: Annotated[Optional[str], typer.Option(help="quantize.py path")] = None,  # noqa: UP045
    trtllm_build: Annotated[str, typer.Option(help="trtllm-build executable")] = "trtllm-build",
    python: Annotated[str, typer.Option(help="Python with tensorrt_llm")] = "python3",
    image_tag: Annotated[
        str | None, typer.Option(help="Triton yy.mm image tag for --emit-job")
    ] = None,
    pvc: Annotated[
        str, typer.Option(help="--emit-job: PVC holding checkpoint and out")
    ] = "tritonkit-engines",
    mount_path: Annotated[str, typer.Option(help="--emit-job: where the PVC is mounted")] = "/data",
) -> None:
    """Build engines for a plan (convert or quantize, then trtllm-build), resumably."""
    if plan_file:
        try:
            p = Plan.model_validate_json(plan_file.read_text())
        except FileNotFoundError:
            raise _fail(f"plan: {plan_file} not found") from None
        except ValueError as exc:
            raise _fail(f"plan: {plan_file} is not a plan: {exc}") from None
    else:
        p = _make_plan(
            model,
            gpu,
            gpus,
            tp,
            pp,
            precision,
            max_input_len,
            max_seq_len,
            max_batch_size,
            None,
            None,
            "max",
        )
    offline = dry_run or emit_job is not None
    try:
        tc, found = executor.resolve_toolchain(
            trtllm_version if offline else None,
            python=python,
            trtllm_root=trtllm_root,
            convert_script=convert_script,
            quantize_script=quantize_script,
            trtllm_build=trtllm_build,
            read_help=not offline,
        )
    except ValueError as exc:
        raise _fail(f"trtllm_version: {exc}") from None
    steps = build_steps(p, checkpoint, out, tc)
    if emit_job is not None:
        for field, path in (("checkpoint", checkpoint), ("out", out)):
            if not path.startswith(mount_path.rstrip("/") + "/"):
                raise _fail(f"{field}: {path} must be under the Job's volume mount {mount_path}")
        try:
            docs = job.job_documents(
                p,
                steps,
                tc,
                checkpoint_dir=checkpoint,
                out_dir=out,
                pvc=pvc,
                mount_path=mount_path,
                image_tag=image_tag,
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        emit_job.write_text(job.job_yaml(docs))
        image = docs[1]["spec"]["template"]["spec"]["containers"][0]["image"]
        err.print(f"wrote {emit_job} (ConfigMap + Job, image {image})")
    if dry_run:
        typer.echo(
            f"# TensorRT-LLM {tc.version_str}: {p.model} on {p.world_size}× {p.gpu}, "
            f"{p.precision}, tp {p.tp} pp {p.pp}"
        )
        typer.echo(format_steps(steps), nl=False)
    if offline:
        return
    if found is None:
        raise _fail(
            "TensorRT-LLM is not installed here (import tensorrt_llm failed); use "
            "--dry-run to print the commands or --emit-job FILE for a Kubernetes Job"
        )
    try:
        path = executor.execute(p, checkpoint, out, tc, found, console=err)
    except (executor.BuildError, VerifyError) as exc:
        raise _fail(str(exc)) from None
    err.print(f"[green]done[/]: {path}")


@app.command("matrix")
def matrix_cmd(
    check: Annotated[
        bool, typer.Option("--check", help="fail if build/matrix.yaml is stale")
    ] = False,
    path: Annotated[Path, typer.Option(help="matrix file")] = MATRIX_PATH,
) -> None:
    """Regenerate (or --check) the plan matrix of every catalog model × GPU kind."""
    text = matrix_text()
    if check:
        current = path.read_text() if path.is_file() else ""
        if current != text:
            raise _fail(f"{path} is stale; run `tritonkit build matrix` to regenerate it")
        err.print(f"{path} is current")
        return
    path.write_text(text)
    err.print(f"wrote {path}")
