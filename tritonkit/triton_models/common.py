"""Shared glue for tritonkit's Triton Python models (the model.py files stay thin adapters).

`pb` is the `triton_python_backend_utils` module, passed in by each model.py, so this package
imports without Triton present (unit tests import the library code around it directly).
"""

from __future__ import annotations

import faulthandler
import json
from typing import Any

import numpy as np

from tritonkit.deployment import Deployment

__all__ = [
    "ENGINE_WAIT_SLOTS",
    "PYTHON_BACKEND_THREAD_POOL",
    "config_parameters",
    "deployment_from_args",
    "error_response",
    "input_getter",
    "tokenizer_dir",
]

#: Threads Triton's Python backend gives each model instance for its BLS calls and its decoupled
#: `send`s (`--backend-config=python,thread-pool-size=`, Triton's default; `serve` passes it).
#: A decoupled BLS `exec()` holds one of them until the called model's *first* response arrives,
#: so requests queued behind a full engine batch can take every thread and leave none to send a
#: token or a `stop`: the whole pipeline stalls until a running sequence ends on its own.
PYTHON_BACKEND_THREAD_POOL = 32
#: How many engine calls the pipeline lets wait for a first response at once; the rest of the
#: pool stays free for sends, stop requests and preprocessing calls (docs/reliability.md).
ENGINE_WAIT_SLOTS = PYTHON_BACKEND_THREAD_POOL - 8


def config_parameters(args: dict[str, Any]) -> dict[str, str]:
    cfg = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}


def deployment_from_args(args: dict[str, Any]) -> tuple[Deployment, dict[str, str]]:
    """The deployment the renderer embedded (parameter `tritonkit_deployment`, JSON).

    Every tritonkit model calls this first, so it also turns on `faulthandler`: a crash of the
    stub process then leaves every thread's Python traceback in Triton's log."""
    faulthandler.enable(all_threads=True)
    params = config_parameters(args)
    return Deployment.model_validate_json(params["tritonkit_deployment"]), params


def tokenizer_dir(dep: Deployment, params: dict[str, str]) -> str:
    """The tokenizer folder the renderer resolved (`tokenizer_dir`), else the deployment's."""
    from tritonkit.tokenizer_assets import tokenizer_dir_for

    return params.get("tokenizer_dir") or str(tokenizer_dir_for(dep))


def error_response(pb: Any, message: str, code: str = "INVALID_ARG") -> Any:
    """An InferenceResponse carrying an error with a gRPC/HTTP-mappable code where supported."""
    err_cls = pb.TritonError
    code_value = getattr(err_cls, code, None)
    err = err_cls(message, code_value) if code_value is not None else err_cls(message)
    return pb.InferenceResponse(output_tensors=[], error=err)


def input_getter(pb: Any, request: Any):
    """A `name -> numpy array | None` function over one request's inputs."""

    def get(name: str) -> np.ndarray | None:
        t = pb.get_input_tensor_by_name(request, name)
        return None if t is None else t.as_numpy()

    return get


def request_inputs(pb: Any, request: Any) -> dict[str, np.ndarray]:
    """All inputs of a request, by name, as copies: `as_numpy()` is a view of the Python
    backend's shared memory, and the decoupled pipeline works on requests from its own threads
    after `execute` has returned, so it must not depend on how long that memory lives."""
    return {t.name(): t.as_numpy().copy() for t in request.inputs()}
