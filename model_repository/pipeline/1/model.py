"""Triton adapter: tritonkit.triton_models.pipeline.PipelineModel does the work (see its docstring)."""

import triton_python_backend_utils as pb_utils

from tritonkit.triton_models.pipeline import PipelineModel


class TritonPythonModel(PipelineModel):
    pb = pb_utils
