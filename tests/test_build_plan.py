"""Planner: memory vs hand computation, choices, refusals, roofline plausibility, matrix, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tritonkit.build.cli import app
from tritonkit.build.matrix import MATRIX_PATH, matrix_text
from tritonkit.build.planner import PlanError, plan, serving_parameters
from tritonkit.catalog import get_model

GIB = 1024**3
runner = CliRunner()


def test_parameter_counts_match_the_fact_sheet():
    assert get_model("athene-70b").architecture.num_parameters / 1e9 == pytest.approx(
        70.55, abs=0.01
    )
    assert get_model("athene-v2-chat").architecture.num_parameters / 1e9 == pytest.approx(
        72.71, abs=0.01
    )


def test_bf16_weights_and_kv_match_hand_computation():
    # 70.55e9 params × 2 bytes / TP 4 (embedding sharded with --use_parallel_embedding)
    p = plan("athene-70b", "a100-80gb", tp=4, precision="bf16")
    hand = 70.55e9 * 2 / 4 / GIB  # 32.85 GiB
    assert p.weights_gib_per_gpu == pytest.approx(hand, rel=0.002)
    # KV: 2 × 80 layers × 8 heads × 128 × 2 bytes = 320 KiB/token, / TP 4 = 80 KiB per GPU
    assert p.memory.kv_bytes_per_token == 320 * 1024 // 4
    m = p.memory
    pool = (80.0 - m.weights_gib - m.activations_gib - m.runtime_gib) * 0.9
    assert m.kv_pool_gib == pytest.approx(pool, abs=0.01)
    assert m.kv_cache_tokens == pytest.approx(pool * GIB / (80 * 1024), rel=1e-4)
    assert m.kv_tokens_required == 16 * 8192


def test_fp8_kv_is_half_and_pp_splits_layers():
    p = plan("athene-70b", "h100", tp=2, pp=2, precision="fp8", gpus=4)
    # 160 KiB/token in FP8, / TP 2 / PP 2
    assert p.memory.kv_bytes_per_token == 160 * 1024 // 4
    # FP8 linear layers (68.45e9 params × 1 byte) / 4 GPUs + 16-bit embedding (replicated on
    # quantize.py checkpoints) on the first stage
    a = get_model("athene-70b").architecture
    emb = a.vocab_size * a.hidden_size
    hand = ((a.num_parameters - 2 * emb) * 1 / 4 + emb * 2) / GIB
    assert p.weights_gib_per_gpu == pytest.approx(hand, rel=0.002)


@pytest.mark.parametrize(
    ("gpu", "gpus", "precision", "tp", "pp"),
    [
        ("h100", None, "fp8", 2, 1),  # NVIDIA's H100 70B setup: FP8 TP2
        ("h200", None, "fp8", 1, 1),  # H200 FP8 TP1
        ("a100-80gb", None, "bf16", 4, 1),  # TP2 leaves no room for 16 × 8K tokens of KV
        ("l40s", None, "fp8", 4, 1),  # L40S FP8 TP4
        ("t4", 16, "fp16", 8, 2),  # Turing: no bf16; fp16 needs two nodes of 8 T4
        ("t4", 8, None, None, None),  # one node of T4: refused even at int8 (see refusals)
    ],
)
def test_automatic_choices(gpu, gpus, precision, tp, pp):
    if precision is None:
        with pytest.raises(PlanError, match="best try int8_wo tp 8 pp 1"):
            plan("nemotron-70b", gpu, gpus=gpus)
        return
    p = plan("nemotron-70b", gpu, gpus=gpus)
    assert (p.precision, p.tp, p.pp) == (precision, tp, pp)
    assert len(p.explanation) >= 4 and p.explanation[0].startswith(f"precision: {precision}")
    assert p.memory.kv_cache_tokens >= p.memory.kv_tokens_required
    if gpu == "t4":
        assert p.trtllm_versions == ">=0.12,<=0.13"  # Llama-3.1 needs 0.12, Turing ends at 0.13
        assert p.dtype == "float16" and p.nodes == 2


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"gpu_kind": "h100", "tp": 3}, "tp", ["divide the 8 KV heads", "[1, 2, 4, 8]"]),
        ({"gpu_kind": "a100-80gb", "precision": "fp8"}, "precision", ["sm89/sm90", "sm80"]),
        ({"gpu_kind": "t4", "precision": "bf16"}, "precision", ["sm80+", "t4 is sm75"]),
        ({"gpu_kind": "t4", "gpus": 1}, "gpus", ["67.7 GiB", "15.0 GiB"]),
        ({"gpu_kind": "h100", "pp": 3}, "pp", ["80 layers"]),
        ({"gpu_kind": "h100", "tp": 4, "pp": 4, "gpus": 8}, "gpus", ["needs 16 GPUs"]),
        ({"gpu_kind": "b200"}, "gpu", ["unknown GPU kind", "h100"]),
        ({"gpu_kind": "h100", "max_seq_len": 16384}, "max_seq_len", ["8192"]),
        ({"gpu_kind": "h100", "max_input_len": 8192}, "max_input_len", ["below max_seq_len"]),
        ({"gpu_kind": "h100", "tp": 1, "pp": 1, "precision": "bf16"}, "tp", ["exceed"]),
    ],
)
def test_refusals_name_the_field_with_numbers(kwargs, field, words):
    with pytest.raises(PlanError) as ei:
        plan("athene-70b", **kwargs)
    msg = str(ei.value)
    assert msg.startswith(f"{field}:"), msg
    for w in words:
        assert w in msg, msg


def test_qwen_awq_refused_at_tp_above_one():
    with pytest.raises(PlanError, match="29568 / 2 = 14784 is not a multiple"):
        plan("athene-v2-chat", "a100-80gb", tp=2, pp=1, precision="int4_awq")
    assert plan("athene-v2-chat", "a100-80gb", tp=1, precision="int4_awq").tp == 1


def test_kv_shortfall_refusal_reports_tokens():
    with pytest.raises(PlanError) as ei:
        plan("athene-70b", "h100", tp=2, pp=1, precision="fp8", max_batch_size=64)
    assert "524,288 needed" in str(ei.value)


# Published TensorRT-LLM figures for Llama-3.x-70B FP8, max-throughput (trtllm-bench, offline):
# docs/source/performance/perf-overview.md (v1.0), "Llama 3.3 70B", total output tokens/s.
PUBLISHED = [
    ("h100", 2, 1000, 1000, 4205),
    ("h100", 2, 128, 2048, 6651),
    ("h100", 2, 2048, 128, 762),
    ("h100", 2, 5000, 500, 898),
    ("h200", 1, 1000, 1000, 2909),
    ("h200", 1, 2048, 2048, 2003),
]


@pytest.mark.parametrize(("gpu", "tp", "isl", "osl", "published"), PUBLISHED)
def test_roofline_is_plausible_against_published_throughput(gpu, tp, isl, osl, published):
    probe = plan(
        "nemotron-70b",
        gpu,
        tp=tp,
        precision="fp8",
        max_input_len=isl,
        max_seq_len=isl + osl,
        max_batch_size=1,
    )
    fit = min(2048, probe.kv_cache_tokens // (isl + osl))
    p = plan(
        "nemotron-70b",
        gpu,
        tp=tp,
        precision="fp8",
        max_input_len=isl,
        max_seq_len=isl + osl,
        max_batch_size=fit,
        isl=isl,
        osl=osl,
    )
    ratio = p.est_output_tokens_per_s / published
    assert 0.6 < ratio < 1.6, (p.estimate, ratio)


def test_roofline_single_stream_tpot_is_plausible():
    # NVIDIA NIM 1.8.0 benchmark, Llama-3.3-70B FP8 TP2 on 2×H100, 500/2000, concurrency 1:
    # ITL 18.91 ms.
    p = plan("nemotron-70b", "h100", tp=2, precision="fp8", isl=500, osl=2000, concurrency=1)
    assert 18.91 * 0.7 < p.estimate.tpot_ms < 18.91 * 1.3


def test_roofline_more_gpus_more_throughput_and_concurrency_caps():
    tp2 = plan("athene-70b", "h100", tp=2, max_batch_size=128, concurrency=64)
    tp4 = plan("athene-70b", "h100", tp=4, max_batch_size=128, concurrency=64)
    assert tp4.est_output_tokens_per_s > tp2.est_output_tokens_per_s
    assert tp4.estimate.tpot_ms < tp2.estimate.tpot_ms
    capped = plan("athene-70b", "h100", concurrency=500)
    assert capped.estimate.concurrency == 16 and "capped" in capped.estimate.notes[0]


def test_serving_parameters_follow_the_plan():
    p = plan("athene-70b", "h100")
    s = serving_parameters(p)
    assert (s["world_size"], s["max_tokens_in_paged_kv_cache"]) == (2, p.kv_cache_tokens)
    assert s["kv_cache_dtype"] == "fp8" and s["max_seq_len"] == 8192


def test_matrix_is_current():
    assert MATRIX_PATH.read_text() == matrix_text(), "run `tritonkit build matrix`"


def test_matrix_check_cli_detects_drift(tmp_path):
    stale = tmp_path / "m.yaml"
    stale.write_text(matrix_text().replace("tp: 2", "tp: 4", 1))
    r = runner.invoke(app, ["matrix", "--check", "--path", str(stale)])
    assert r.exit_code == 1 and "stale" in r.output
    assert runner.invoke(app, ["matrix", "--path", str(stale)]).exit_code == 0
    assert runner.invoke(app, ["matrix", "--check", "--path", str(stale)]).exit_code == 0


def test_cli_plan_json():
    r = runner.invoke(
        app,
        [
            "plan",
            "--model",
            "athene-70b",
            "--gpu",
            "h100",
            "--format",
            "json",
            "--isl",
            "500",
            "--osl",
            "500",
            "--concurrency",
            "8",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["tp"], d["pp"], d["precision"]) == (2, 1, "fp8")
    assert d["weights_gib_per_gpu"] == pytest.approx(34.8, abs=0.1)
    assert d["kv_cache_tokens"] > 131072 and d["est_output_tokens_per_s"] > 0
    assert d["estimate"]["concurrency"] == 8


def test_cli_refusal_is_one_line_without_traceback():
    r = runner.invoke(
        app, ["plan", "--model", "athene-70b", "--gpu", "a100-80gb", "--precision", "fp8"]
    )
    assert r.exit_code == 1
    assert "precision: fp8 needs sm89/sm90" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["plan", "--model", "nope", "--gpu", "h100"])
    assert r.exit_code == 1 and "unknown model 'nope'" in r.output
