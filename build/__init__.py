"""Engine planning and TensorRT-LLM engine builds (tritonkit.build)."""
