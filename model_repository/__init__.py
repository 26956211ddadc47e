"""Triton model sources and the repository renderer (tritonkit.model_repository)."""
