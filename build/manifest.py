"""Engine manifests: fingerprint a checkpoint, detect the toolchain and GPU, verify an engine
folder, write ``manifest.json``.

Standard library only: the Kubernetes build Job runs this file as a script inside the NGC image
(``python3 manifest.py --plan plan.json --checkpoint DIR --engine DIR --steps steps.json``), so one
piece of code writes every manifest.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT = 1


class VerifyError(RuntimeError):
    """An output folder is not what the plan says it should be."""


def fingerprint_checkpoint(path: str | Path) -> str:
    """sha256 over config.json, *.json and each weight file's name, size and first 64 KiB.

    Safetensors headers (in the first bytes) list every tensor's name, shape and offset, so a
    changed weight layout changes the fingerprint without reading 140 GB.
    """
    root = Path(path)
    if not (root / "config.json").is_file():
        raise VerifyError(f"checkpoint: {root} has no config.json (not a Hugging Face checkpoint)")
    h = hashlib.sha256()
    for f in sorted(p for p in root.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + str(f.stat().st_size).encode() + b"\0")
        if f.suffix in (".json", ".safetensors", ".bin", ".model", ".txt"):
            with f.open("rb") as fh:
                h.update(fh.read(1 << 16))
    return h.hexdigest()


def _run(argv: list[str]) -> str | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def trtllm_version(python: str = "python3") -> str | None:
    """TensorRT-LLM's version: $TRITONKIT_TRTLLM_VERSION, else import it (last stdout line)."""
    env = os.environ.get("TRITONKIT_TRTLLM_VERSION")
    if env:
        return env.strip()
    out = _run([python, "-c", "import tensorrt_llm; print(tensorrt_llm.__version__)"])
    lines = [ln.strip() for ln in (out or "").splitlines() if ln.strip()]
    return lines[-1] if lines else None


def cuda_version() -> str | None:
    """CUDA version: $TRITONKIT_CUDA_VERSION, else the 'CUDA Version' of nvidia-smi."""
    env = os.environ.get("TRITONKIT_CUDA_VERSION")
    if env:
        return env.strip()
    m = re.search(r"CUDA Version:\s*([\d.]+)", _run(["nvidia-smi"]) or "")
    return m.group(1) if m else None


def gpu_info() -> list[dict[str, str]]:
    """[{name, compute_capability}] per visible GPU, from nvidia-smi."""
    out = _run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]) or ""
    gpus = []
    for line in out.splitlines():
        if "," in line:
            name, cc = (x.strip() for x in line.rsplit(",", 1))
            gpus.append({"name": name, "compute_capability": cc})
    return gpus


def _mapping(config: dict) -> dict:
    m = config.get("mapping") or config.get("pretrained_config", {}).get("mapping")
    if not isinstance(m, dict):
        raise VerifyError("config.json has no mapping (tp_size/pp_size)")
    return m


def verify_dir(path: str | Path, tp: int, pp: int, suffix: str) -> list[str]:
    """Check config.json's mapping and one ``rank{N}<suffix>`` per rank; returns the rank files."""
    root = Path(path)
    cfg = root / "config.json"
    if not cfg.is_file():
        raise VerifyError(f"{root}: config.json missing")
    try:
        m = _mapping(json.loads(cfg.read_text()))
    except json.JSONDecodeError as exc:
        raise VerifyError(f"{cfg}: not JSON: {exc}") from None
    got = (int(m.get("tp_size", 1)), int(m.get("pp_size", 1)))
    if got != (tp, pp):
        raise VerifyError(f"{cfg}: tp {got[0]} pp {got[1]}, planned tp {tp} pp {pp}")
    names = [f"rank{i}{suffix}" for i in range(tp * pp)]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise VerifyError(f"{root}: missing {', '.join(missing)} (world size {tp * pp})")
    extra = sorted(p.name for p in root.glob(f"rank*{suffix}") if p.name not in names)
    if extra:
        raise VerifyError(f"{root}: unexpected {', '.join(extra)} for world size {tp * pp}")
    return names


def check_gpu(gpus: list[dict[str, str]], compute_capability: str, kind: str) -> dict[str, str]:
    """The build GPU, refused unless its compute capability is the planned one."""
    if not gpus:
        raise VerifyError(
            "no GPU visible (nvidia-smi found none): engines must be built on the GPU "
            "kind that serves them"
        )
    bad = [g for g in gpus if g["compute_capability"] != compute_capability]
    if bad:
        raise VerifyError(
            f"gpu: this node has {bad[0]['name']} (compute {bad[0]['compute_capability']}) but the "
            f"plan is for {kind} (compute {compute_capability}); engines are GPU-specific"
        )
    return gpus[0]


def write_manifest(
    engine_dir: str | Path,
    *,
    plan: dict,
    checkpoint_dir: str,
    checkpoint_fingerprint: str,
    trtllm_version: str | None,
    cuda_version: str | None,
    gpu: dict[str, str],
    gpu_count: int,
    steps: list[dict],
    engine_files: list[str],
) -> Path:
    """Write ``manifest.json`` beside the engines and return its path."""
    data = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": plan["model"],
        "checkpoint": {"dir": checkpoint_dir, "fingerprint": checkpoint_fingerprint},
        "tensorrt_llm_version": trtllm_version,
        "cuda_version": cuda_version,
        "gpu": {**gpu, "kind": plan["gpu"], "count": gpu_count},
        "tp": plan["tp"],
        "pp": plan["pp"],
        "world_size": plan["tp"] * plan["pp"],
        "precision": plan["precision"],
        "limits": {
            k: plan[k] for k in ("max_input_len", "max_seq_len", "max_batch_size", "max_num_tokens")
        },
        "engine_files": engine_files,
        "steps": steps,
        "plan": plan,
    }
    path = Path(engine_dir) / MANIFEST
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Verify an engine folder and write its manifest (used by the Kubernetes build Job)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--steps", required=True)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args(argv)
    plan = json.loads(Path(a.plan).read_text())
    try:
        gpus = gpu_info()
        gpu = check_gpu(gpus, plan["compute_capability"], plan["gpu"])
        files = verify_dir(a.engine, plan["tp"], plan["pp"], ".engine")
        path = write_manifest(
            a.engine,
            plan=plan,
            checkpoint_dir=a.checkpoint,
            checkpoint_fingerprint=fingerprint_checkpoint(a.checkpoint),
            trtllm_version=trtllm_version(a.python),
            cuda_version=cuda_version(),
            gpu=gpu,
            gpu_count=len(gpus),
            steps=json.loads(Path(a.steps).read_text()),
            engine_files=files,
        )
    except VerifyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
