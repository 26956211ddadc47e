"""tritonkit: serve 70B-class chat models on NVIDIA Triton Inference Server.

Stages (see README): deployment -> build -> model_repository -> serve -> clients -> loadtest -> helm.
"""

__version__ = "0.1.0"
