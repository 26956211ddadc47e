"""Triton adapter: tritonkit.triton_models.engine.ReferenceEngineModel does the work (see its docstring)."""

import triton_python_backend_utils as pb_utils

from tritonkit.triton_models.engine import ReferenceEngineModel


class TritonPythonModel(ReferenceEngineModel):
    pb = pb_utils
