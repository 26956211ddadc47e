"""The floor for pipeline overhead: a no-op Python model and a no-op three-step ensemble of the
same shape as tritonkit's (pre -> engine -> post), written into a temporary model repository that
is served beside the rendered tritonkit repository (a second `--model-repository`)."""

from __future__ import annotations

from pathlib import Path

MODEL_PY = '''
import numpy as np
import triton_python_backend_utils as pb_utils

OUT = {"noop_single": ("text_output", "TYPE_STRING"), "noop_post": ("text_output", "TYPE_STRING"),
       "noop_pre": ("input_ids", "TYPE_INT32"), "noop_engine": ("output_ids", "TYPE_INT32")}


class TritonPythonModel:
    def initialize(self, args):
        self.name = args["model_name"]

    def execute(self, requests):
        out_name, kind = OUT[self.name]
        responses = []
        for request in requests:
            n = 1
            for t in request.inputs():
                n = t.as_numpy().shape[0]
                break
            if kind == "TYPE_STRING":
                arr = np.array([[b"ok"]] * n, dtype=object)
            else:
                arr = np.ones((n, 4), np.int32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(out_name, arr)]))
        return responses
'''


def _io(kind: str, name: str, dtype: str, dims: str) -> str:
    return f'{kind} [ {{ name: "{name}" data_type: {dtype} dims: [ {dims} ] }} ]\n'


def _python(name: str, inputs: list[tuple[str, str, str]], out: tuple[str, str, str]) -> str:
    cfg = f'name: "{name}"\nbackend: "python"\nmax_batch_size: 8\n'
    cfg += "input [\n" + ",\n".join(
        f'  {{ name: "{n}" data_type: {d} dims: [ {s} ] }}' for n, d, s in inputs) + "\n]\n"
    cfg += _io("output", *out)
    cfg += 'instance_group [ { count: 1 kind: KIND_CPU } ]\n'
    return cfg


ENSEMBLE = '''name: "noop_ensemble"
platform: "ensemble"
max_batch_size: 8
input [
  { name: "text_input" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "max_tokens" data_type: TYPE_INT32 dims: [ 1 ] }
]
output [ { name: "text_output" data_type: TYPE_STRING dims: [ 1 ] } ]
ensemble_scheduling {
  step [
    { model_name: "noop_pre" model_version: -1
      input_map { key: "text_input" value: "text_input" }
      input_map { key: "max_tokens" value: "max_tokens" }
      output_map { key: "input_ids" value: "_ids" } },
    { model_name: "noop_engine" model_version: -1
      input_map { key: "input_ids" value: "_ids" }
      output_map { key: "output_ids" value: "_out" } },
    { model_name: "noop_post" model_version: -1
      input_map { key: "output_ids" value: "_out" }
      output_map { key: "text_output" value: "text_output" } }
  ]
}
'''


def write(root: Path) -> Path:
    text_in = [("text_input", "TYPE_STRING", "1"), ("max_tokens", "TYPE_INT32", "1")]
    models = {
        "noop_single": _python("noop_single", text_in, ("text_output", "TYPE_STRING", "1")),
        "noop_pre": _python("noop_pre", text_in, ("input_ids", "TYPE_INT32", "-1")),
        "noop_engine": _python("noop_engine", [("input_ids", "TYPE_INT32", "-1")],
                               ("output_ids", "TYPE_INT32", "-1")),
        "noop_post": _python("noop_post", [("output_ids", "TYPE_INT32", "-1")],
                             ("text_output", "TYPE_STRING", "1")),
    }
    for name, cfg in models.items():
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        (root / name / "config.pbtxt").write_text(cfg)
        (root / name / "1" / "model.py").write_text(MODEL_PY)
    (root / "noop_ensemble" / "1").mkdir(parents=True, exist_ok=True)
    (root / "noop_ensemble" / "config.pbtxt").write_text(ENSEMBLE)
    return root
