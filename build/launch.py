"""Leader-mode launch of a multi-GPU engine: one tritonserver per rank under mpirun.

As TensorRT-LLM's ``scripts/launch_triton_server.py`` does it (shared/reference/
tensorrtllm-backend.md §7): rank 0 serves HTTP/gRPC/metrics and the whole ensemble; ranks != 0 load
only the ``tensorrt_llm`` model (``--model-control-mode=explicit``) and never leave init. Every rank
gets ``--disable-auto-complete-config`` and its own Python-backend shared-memory prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["mpirun_command"]


def _rank_argv(argv: Sequence[str], rank: int, model: str) -> list[str]:
    out = list(argv)
    if rank:
        out += ["--model-control-mode=explicit", f"--load-model={model}"]
    out += [
        "--disable-auto-complete-config",
        f"--backend-config=python,shm-region-prefix-name=prefix{rank}_",
    ]
    return out


def mpirun_command(
    world_size: int,
    tritonserver_argv_for_rank0: Sequence[str],
    tritonserver_argv_for_workers: Sequence[str],
    *,
    trtllm_model_name: str = "tensorrt_llm",
    mpirun: str = "mpirun",
    allow_run_as_root: bool = True,
    mpi_args: Sequence[str] = (),
) -> list[str]:
    """``mpirun [--allow-run-as-root] -n 1 <rank 0> : -n 1 <rank 1> : ...``, one part per rank.

    The argv lists start with the tritonserver executable and carry the repository and port flags;
    this adds the per-rank flags. ``world_size`` must be the engine's tp × pp (>= 2: a single rank
    needs no MPI, run its argv directly).
    """
    if world_size < 2:
        raise ValueError(f"world_size: {world_size}; leader mode needs >= 2 ranks (tp × pp)")
    for name, argv in (
        ("rank0", tritonserver_argv_for_rank0),
        ("workers", tritonserver_argv_for_workers),
    ):
        if not argv or "tritonserver" not in argv[0]:
            raise ValueError(
                f"tritonserver_argv_for_{name}: must start with tritonserver, got {list(argv)[:1]}"
            )
    for flag in ("--model-control-mode", "--load-model"):
        if any(a.startswith(flag) for a in tritonserver_argv_for_workers):
            raise ValueError(f"tritonserver_argv_for_workers: {flag} is added per rank; drop it")
    cmd = [mpirun, *(["--allow-run-as-root"] if allow_run_as_root else []), *mpi_args]
    for rank in range(world_size):
        if rank:
            cmd.append(":")
        base = tritonserver_argv_for_rank0 if rank == 0 else tritonserver_argv_for_workers
        cmd += ["-n", "1", *_rank_argv(base, rank, trtllm_model_name)]
    return cmd
