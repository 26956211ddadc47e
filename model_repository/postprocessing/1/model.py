"""Triton adapter: tritonkit.triton_models.steps.PostprocessingModel does the work (see its docstring)."""

import triton_python_backend_utils as pb_utils

from tritonkit.triton_models.steps import PostprocessingModel


class TritonPythonModel(PostprocessingModel):
    pb = pb_utils
