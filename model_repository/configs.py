"""Every config.pbtxt of a deployment, built as `ModelConfig` protobuf objects from typed data.

Names, dtypes and dims come from the tensor contract (tritonkit.contract); values come from the
Deployment. Nothing is string-templated: a wrong field is a Python error here, not a `${typo}`
that the TensorRT-LLM backend silently ignores at load time.
"""

from __future__ import annotations

from collections.abc import Iterable

from tritonclient.grpc import model_config_pb2 as mc

from tritonkit.contract import (
    ENGINE,
    ENSEMBLE_STEPS,
    TensorSpec,
    model_contract,
    pipeline_inputs,
    pipeline_outputs,
)
from tritonkit.deployment import Deployment

__all__ = ["STEPS", "deployment_configs"]

#: Composing-model kinds, each rendered as `<served name>-<kind>`; the pipeline is `<served name>`.
STEPS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble")

_PRE_INPUTS = (
    "QUERY",
    "REQUEST_OUTPUT_LEN",
    "BAD_WORDS_DICT",
    "STOP_WORDS_DICT",
    "END_ID",
    "PAD_ID",
)
_PRE_OUTPUTS = (
    "INPUT_ID",
    "REQUEST_INPUT_LEN",
    "BAD_WORDS_IDS",
    "STOP_WORDS_IDS",
    "REQUEST_OUTPUT_LEN",
    "OUT_END_ID",
    "OUT_PAD_ID",
)
#: Ensemble inputs the CPU pipeline's ensemble routes nowhere (multimodal/decoder/prompt tables).
_ENSEMBLE_DROPPED = (
    "decoder_text_input",
    "prompt_table_extra_id",
    "embedding_bias_words",
    "embedding_bias_weights",
)


def _tensor(cls: type, spec: TensorSpec):
    t = cls(name=spec.name, data_type=mc.DataType.Value(spec.data_type), dims=list(spec.dims))
    if cls is mc.ModelInput:
        t.optional = spec.optional
        t.allow_ragged_batch = spec.allow_ragged_batch
    if spec.reshape is not None:
        t.reshape.shape.extend(spec.reshape)
    return t


def _io(cfg: mc.ModelConfig, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec]) -> None:
    cfg.input.extend(_tensor(mc.ModelInput, t) for t in inputs)
    cfg.output.extend(_tensor(mc.ModelOutput, t) for t in outputs)


def _params(cfg: mc.ModelConfig, values: dict[str, str | int | float | bool]) -> None:
    for key, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        cfg.parameters[key].string_value = text


def _cpu_instances(cfg: mc.ModelConfig, count: int) -> None:
    cfg.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=count)


def _common_params(dep: Deployment, tokenizer_dir: str) -> dict[str, str | bool]:
    return {
        "tokenizer_dir": tokenizer_dir,
        "tritonkit_deployment": dep.model_dump_json(),
    }


def preprocessing_config(dep: Deployment, tokenizer_dir: str) -> mc.ModelConfig:
    pre = model_contract("preprocessing")
    cfg = mc.ModelConfig(
        name=dep.step_name("preprocessing"),
        backend="python",
        max_batch_size=dep.limits.max_batch_size,
    )
    inputs = [pre.input(n) for n in _PRE_INPUTS]
    inputs = [
        t.with_(optional=True) if t.name in ("QUERY", "REQUEST_OUTPUT_LEN") else t for t in inputs
    ]
    inputs.append(TensorSpec("MESSAGES", "TYPE_STRING", (1,), optional=True))
    _io(cfg, inputs, [pre.output(n) for n in _PRE_OUTPUTS])
    cfg.dynamic_batching.SetInParent()
    _cpu_instances(cfg, dep.serving.preprocessing_instances)
    _params(
        cfg,
        {
            **_common_params(dep, tokenizer_dir),
            "add_special_tokens": dep.spec.tokenizer.add_special_tokens,
        },
    )
    return cfg


def postprocessing_config(dep: Deployment, tokenizer_dir: str) -> mc.ModelConfig:
    post = model_contract("postprocessing")
    cfg = mc.ModelConfig(
        name=dep.step_name("postprocessing"),
        backend="python",
        max_batch_size=dep.limits.max_batch_size,
    )
    _io(cfg, post.inputs, post.outputs)
    cfg.dynamic_batching.SetInParent()
    _cpu_instances(cfg, dep.serving.postprocessing_instances)
    _params(cfg, {**_common_params(dep, tokenizer_dir), "skip_special_tokens": True})
    return cfg


def _engine_shell(dep: Deployment) -> mc.ModelConfig:
    cfg = mc.ModelConfig(
        name=dep.step_name("tensorrt_llm"), max_batch_size=dep.limits.max_batch_size
    )
    _io(cfg, ENGINE.inputs, ENGINE.outputs)
    cfg.dynamic_batching.preferred_batch_size.append(dep.limits.max_batch_size)
    cfg.dynamic_batching.max_queue_delay_microseconds = dep.serving.max_queue_delay_us
    if dep.serving.max_queue_size:
        cfg.dynamic_batching.default_queue_policy.max_queue_size = dep.serving.max_queue_size
    _cpu_instances(cfg, 1)
    return cfg


def reference_engine_config(dep: Deployment, tokenizer_dir: str) -> mc.ModelConfig:
    """The CPU reference engine: a decoupled Python model with tensorrt_llm's exact contract."""
    cfg = _engine_shell(dep)
    cfg.backend = "python"
    cfg.model_transaction_policy.decoupled = True
    _params(
        cfg,
        {
            **_common_params(dep, tokenizer_dir),
            "exclude_input_in_output": dep.serving.exclude_input_in_output,
        },
    )
    return cfg


def tensorrtllm_engine_parameters(dep: Deployment) -> dict[str, str | int | float | bool]:
    """The C++ backend's parameters (tensorrtllm-backend.md §3), typed, from the deployment and
    its engine plan (KV budget, chunked context, KV reuse where the deployment leaves them unset).
    A deployment the planner refuses (does not fit, invalid TP/precision) fails here."""
    from tritonkit.build.planner import plan_for_deployment, serving_parameters

    planned = serving_parameters(plan_for_deployment(dep))
    t = dep.tensorrtllm

    def pick(value: object, key: str) -> object:
        return planned[key] if value is None else value

    params: dict[str, str | int | float | bool] = {
        "max_beam_width": t.max_beam_width,
        "FORCE_CPU_ONLY_INPUT_TENSORS": "no",
        "gpt_model_type": t.batching_strategy,
        "gpt_model_path": t.engine_dir,
        "batch_scheduler_policy": t.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": t.kv_cache_free_gpu_mem_fraction,
        "exclude_input_in_output": dep.serving.exclude_input_in_output,
        "cancellation_check_period_ms": t.cancellation_check_period_ms,
        "stats_check_period_ms": 100,
        "iter_stats_max_iterations": 1000,
        "request_stats_max_iterations": 0,
        "enable_kv_cache_reuse": pick(t.enable_kv_cache_reuse, "enable_kv_cache_reuse"),
        "normalize_log_probs": True,
        "enable_chunked_context": pick(t.enable_chunked_context, "enable_chunked_context"),
        "decoding_mode": "top_k_top_p" if t.max_beam_width == 1 else "beam_search",
        "executor_worker_path": "/opt/tritonserver/backends/tensorrtllm/trtllmExecutorWorker",
        "multi_block_mode": True,
        "enable_context_fmha_fp32_acc": False,
        "cuda_graph_mode": False,
        "gpu_weights_percent": 1.0,
        "num_nodes": 1,
    }
    params["max_tokens_in_paged_kv_cache"] = pick(
        t.max_tokens_in_paged_kv_cache, "max_tokens_in_paged_kv_cache"
    )
    unknown = set(params) - set(ENGINE.parameters)
    if unknown:  # only keys the backend reads: a typo here must fail the render, not the load
        raise ValueError(f"not tensorrt_llm parameter keys: {sorted(unknown)}")
    return params


def tensorrtllm_engine_config(dep: Deployment) -> mc.ModelConfig:
    cfg = _engine_shell(dep)
    cfg.backend = "tensorrtllm"
    cfg.model_transaction_policy.decoupled = dep.serving.streaming
    _params(cfg, tensorrtllm_engine_parameters(dep))
    return cfg


def ensemble_config(dep: Deployment) -> mc.ModelConfig:
    """TensorRT-LLM's ensemble wiring (contract steps), composing models renamed per deployment."""
    cfg = mc.ModelConfig(
        name=dep.step_name("ensemble"),
        platform="ensemble",
        max_batch_size=dep.limits.max_batch_size,
    )
    ens = model_contract("ensemble")
    inputs = [
        t.with_(optional=True) if t.name in ("text_input", "max_tokens") else t
        for t in ens.inputs
        if t.name not in _ENSEMBLE_DROPPED
    ]
    inputs.append(TensorSpec("messages", "TYPE_STRING", (1,), optional=True))
    _io(cfg, inputs, [ens.output("text_output")])
    pre_in = {t.name for t in preprocessing_config(dep, "").input}
    pre_out = set(_PRE_OUTPUTS)
    wired = {t.name for t in inputs}
    for step in ENSEMBLE_STEPS:
        kind = step["model_name"]
        s = cfg.ensemble_scheduling.step.add(model_name=dep.step_name(kind), model_version=-1)
        for key, value in step["input_map"].items():
            if kind == "preprocessing" and key not in pre_in:
                continue
            if kind == "tensorrt_llm" and value.startswith("_") and not _produced(value, pre_out):
                continue
            if not value.startswith("_") and value not in wired:
                continue
            s.input_map[key] = value
        if kind == "preprocessing":
            s.input_map["MESSAGES"] = "messages"
        for key, value in step["output_map"].items():
            if kind == "preprocessing" and key not in pre_out:
                continue
            if kind == "tensorrt_llm" and key not in ("output_ids", "sequence_length"):
                continue
            s.output_map[key] = value
    return cfg


def _produced(tensor: str, pre_out: set[str]) -> bool:
    """Whether an internal ensemble tensor (`_INPUT_ID`, ...) comes out of our preprocessing."""
    name = tensor.lstrip("_")
    return (
        name in pre_out
        or {"PREPROCESSOR_END_ID": "OUT_END_ID", "PREPROCESSOR_PAD_ID": "OUT_PAD_ID"}.get(name)
        in pre_out
    )


def pipeline_config(dep: Deployment, tokenizer_dir: str, *, decoupled: bool) -> mc.ModelConfig:
    """The served BLS pipeline (`<name>`, decoupled) or its unary twin (`<name>-unary`)."""
    name = dep.served_name if decoupled else dep.step_name("unary")
    cfg = mc.ModelConfig(name=name, backend="python", max_batch_size=dep.limits.max_batch_size)
    _io(cfg, pipeline_inputs(), pipeline_outputs())
    cfg.model_transaction_policy.decoupled = decoupled
    if not decoupled:
        cfg.dynamic_batching.SetInParent()
    _cpu_instances(cfg, 1)
    _params(cfg, _common_params(dep, tokenizer_dir))
    return cfg


def deployment_configs(
    dep: Deployment, tokenizer_dir: str
) -> dict[str, tuple[str, mc.ModelConfig]]:
    """model name -> (source kind, config) for every model of a deployment."""
    engine = (
        reference_engine_config(dep, tokenizer_dir)
        if dep.engine == "reference"
        else tensorrtllm_engine_config(dep)
    )
    configs = [
        ("preprocessing", preprocessing_config(dep, tokenizer_dir)),
        ("tensorrt_llm" if dep.engine == "reference" else "", engine),
        ("postprocessing", postprocessing_config(dep, tokenizer_dir)),
        ("", ensemble_config(dep)),
        ("pipeline", pipeline_config(dep, tokenizer_dir, decoupled=True)),
        ("pipeline", pipeline_config(dep, tokenizer_dir, decoupled=False)),
    ]
    return {cfg.name: (kind, cfg) for kind, cfg in configs}
