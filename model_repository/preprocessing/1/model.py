"""Triton adapter: tritonkit.triton_models.steps.PreprocessingModel does the work (see its docstring)."""

import triton_python_backend_utils as pb_utils

from tritonkit.triton_models.steps import PreprocessingModel


class TritonPythonModel(PreprocessingModel):
    pb = pb_utils
