"""Unit tests of the serving core's library code (no server): detokenizer, stop strings,
reference engine, request validation, deployment config, rendered configs."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tokenizers import Tokenizer
from tritonclient.grpc import model_config_pb2 as mc

from tritonkit.catalog import model_names
from tritonkit.deployment import DeploymentError, parse_deployment
from tritonkit.detokenize import ByteTable, StopStringMatcher, TextStream
from tritonkit.engine.inputs import word_list
from tritonkit.engine.model import ModelShape
from tritonkit.engine.scheduler import ContinuousBatcher, EngineRequest, SamplingParams
from tritonkit.model_repository.render import render_repository
from tritonkit.pipeline.generation import Generation
from tritonkit.pipeline.preprocess import to_word_list
from tritonkit.pipeline.request import RequestError, parse_request
from tritonkit.tokenizer_assets import tokenizer_dir_for

SHARED_CONTRACT = Path(__file__).resolve().parents[2] / "shared/reference/tensorrtllm-backend-contract.json"


@pytest.fixture(scope="module", params=["athene-70b", "athene-v2-chat"])
def tok(request: pytest.FixtureRequest) -> tuple[ByteTable, Tokenizer]:
    path = tokenizer_dir_for(request.param) / "tokenizer.json"
    return ByteTable.from_tokenizer_json(path), Tokenizer.from_file(str(path))


def test_stream_equals_hf_decode_on_random_ids(tok: tuple[ByteTable, Tokenizer]) -> None:
    table, hf = tok
    rng = random.Random(1)
    for _ in range(200):
        ids = [rng.randrange(len(table)) for _ in range(rng.randrange(1, 40))]
        s = TextStream(table)
        streamed = "".join(s.push([i]) for i in ids) + s.flush()
        assert streamed == hf.decode(ids, skip_special_tokens=True) == table.decode(ids)


def test_split_utf8_and_spaces_stream_exactly(tok: tuple[ByteTable, Tokenizer]) -> None:
    table, hf = tok
    text = "Hello, world! 👋 Ünïcödé 你好世界 — ok  two  spaces 🇫🇷"
    ids = hf.encode(text, add_special_tokens=False).ids
    s = TextStream(table)
    pieces = [s.push([i]) for i in ids]
    assert "".join(pieces) + s.flush() == text
    assert all("\ufffd" not in p for p in pieces)


def test_stop_matcher_withholds_split_stop_strings() -> None:
    m = StopStringMatcher(["<END>", "\n\n"])
    out = [m.feed(x) for x in ["Hello <", "E", "N", "D> more"]]
    assert "".join(out) == "Hello " and m.matched == "<END>"
    m = StopStringMatcher(["<END>"])
    assert m.feed("a <EN") == "a " and m.feed("x") == "<ENx" and m.flush() == ""
    m = StopStringMatcher(["abc"])
    assert m.feed("xab") == "x" and m.flush() == "ab"


def test_generation_trims_stop_ids_and_reports_reasons(tok: tuple[ByteTable, Tokenizer]) -> None:
    table, hf = tok
    ids = hf.encode("one two three four", add_special_tokens=False).ids
    g = Generation(table, stop_ids={7}, stop_strings=[], max_tokens=len(ids))
    text = "".join(g.push([i]) for i in ids) + g.finish()
    assert text == "one two three four" and g.finish_reason == "length"
    g = Generation(table, stop_ids={ids[2]}, stop_strings=[], max_tokens=50)
    text = "".join(g.push([i]) for i in ids) + g.finish()
    assert text == hf.decode(ids[:2]) and g.finish_reason == "stop" and g.num_output_tokens == 3
    g = Generation(table, stop_ids=set(), stop_strings=["three"], max_tokens=50)
    text = "".join(g.push([i]) for i in ids) + g.finish()
    assert text == "one two " and g.finish_reason == "stop"
    g = Generation(table, stop_ids=set(), stop_strings=[], max_tokens=50)
    g.push(ids[:2])
    g.finish(cancelled=True)
    assert g.finish_reason == "cancelled"


def _run(batcher: ContinuousBatcher, reqs: list[EngineRequest]) -> dict[str, list[int]]:
    done = threading.Event()
    out: dict[str, list[int]] = {}
    left = [len(reqs)]

    for r in reqs:
        def emit(u, rid=r.request_id):
            out.setdefault(rid, []).extend(u.new_tokens)
            if u.finished:
                left[0] -= 1
                if not left[0]:
                    done.set()
        r.emit = emit
        batcher.submit(r)
    assert done.wait(30)
    return out


def test_engine_is_deterministic_and_batch_invariant() -> None:
    b = ContinuousBatcher(ModelShape(vocab_size=1000), seed=3, max_batch_size=8)
    reqs = [EngineRequest(str(i), list(range(10 + i, 30)), 12, emit=None) for i in range(6)]
    together = _run(b, reqs)
    alone = _run(b, [EngineRequest("x", list(range(12, 30)), 12, emit=None)])
    assert together["2"] == alone["x"] and len(alone["x"]) == 12
    sampled = [EngineRequest(f"s{i}", [1, 2, 3], 10, emit=None,
                             sampling=SamplingParams(top_k=50, temperature=1.0, seed=7))
               for i in range(2)]
    outs = _run(b, sampled)
    assert outs["s0"] == outs["s1"]
    b.close()


def test_engine_end_id_stop_words_and_stop_request() -> None:
    b = ContinuousBatcher(ModelShape(vocab_size=500), seed=0)
    ref = _run(b, [EngineRequest("r", [5, 6, 7], 20, emit=None)])["r"]
    end = ref[4]
    first = ref.index(end)
    out = _run(b, [EngineRequest("e", [5, 6, 7], 20, emit=None, end_id=end)])["e"]
    assert out == ref[:first]  # end_id is not emitted
    out = _run(b, [EngineRequest("w", [5, 6, 7], 20, emit=None, stop_words=[ref[2:4]])])["w"]
    assert out == ref[:4]  # stop words are emitted, as in TensorRT-LLM
    slow = ContinuousBatcher(ModelShape(vocab_size=500), seed=0, token_delay_s=0.01)
    got: list[int] = []
    fin = threading.Event()

    def emit(u) -> None:
        got.extend(u.new_tokens)
        if u.finished:
            fin.set()

    slow.submit(EngineRequest("long", [1, 2], 5000, emit=emit))
    while len(got) < 3:
        pass
    assert slow.stop("long") and fin.wait(5) and len(got) < 5000 and slow.in_flight == 0


def test_word_list_round_trip() -> None:
    words = [[1, 2, 3], [9], [4, 5]]
    assert word_list(to_word_list(words)) == words
    assert word_list(to_word_list([])) == []


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"max_tokens": np.array([[3]], np.int32)}, "text_input"),
        ({"text_input": np.array([[b"\xff\xfe"]], object)}, "text_input"),
        ({"text_input": np.array([[b"x"]], object), "max_tokens": np.array([[0]], np.int32)},
         "max_tokens"),
        ({"text_input": np.array([[b"x"]], object), "top_p": np.array([[1.5]], np.float32)},
         "top_p"),
        ({"text_input": np.array([[b"x"]], object), "beam_width": np.array([[4]], np.int32)},
         "beam_width"),
        ({"text_input": np.array([[b"x"], [b"y"]], object)}, "text_input"),
        ({"text_input": np.array([[b"x"]], object),
          "stop_words": np.array([[b"s%d" % i for i in range(100)]], object)}, "stop_words"),
        ({"text_input": np.array([[b"x"]], object), "lora_task_id": np.array([[1]], np.uint64)},
         "lora_task_id"),
    ],
)
def test_request_errors_name_the_field(inputs: dict, field: str) -> None:
    with pytest.raises(RequestError) as exc:
        parse_request(inputs)
    assert exc.value.field == field and str(exc.value).startswith(field)


def test_deployment_errors_name_fields() -> None:
    with pytest.raises(DeploymentError) as exc:
        parse_deployment({"model": "athene-70b", "engine": "gpu", "limits": {"max_seq_len": "x"},
                          "bogus": 1, "parallelism": {"tp": 3}})
    msg = str(exc.value)
    for needle in ("engine:", "'reference' or 'tensorrtllm'", "limits.max_seq_len", "bogus: unknown key"):
        assert needle in msg
    with pytest.raises(DeploymentError, match=r"tp \(3\) must divide the 8 KV heads"):
        parse_deployment({"model": "athene-70b", "parallelism": {"tp": 3}})
    with pytest.raises(DeploymentError, match="allowed: athene-70b"):
        parse_deployment({"model": "llama-9000"})
    with pytest.raises(DeploymentError, match="exceeds athene-70b's context of 8192"):
        parse_deployment({"model": "athene-70b", "limits": {"max_seq_len": 9000}})


def test_shipped_deployments_load() -> None:
    from tritonkit.deployment import load_deployment

    shipped = sorted(Path("deployments").glob("*.yaml"))
    assert {p.stem for p in shipped} >= set(model_names())
    for p in shipped:
        load_deployment(p)


def test_rendered_configs_parse_strictly_and_follow_the_contract(tmp_path: Path) -> None:
    contract = json.loads(SHARED_CONTRACT.read_text()) if SHARED_CONTRACT.exists() else None
    deps = [parse_deployment({"model": "athene-70b"}),
            parse_deployment({"model": "athene-70b", "name": "gpu", "engine": "tensorrtllm",
                              "parallelism": {"tp": 4}})]
    models = render_repository(deps, tmp_path)
    assert set(models) == {f"{n}{s}" for n in ("athene-70b", "gpu") for s in
                           ("", "-unary", "-ensemble", "-preprocessing", "-tensorrt_llm",
                            "-postprocessing")}
    for name, folder in models.items():
        text = (folder / "config.pbtxt").read_text()
        assert "${" not in text
        cfg = text_format.Parse(text, mc.ModelConfig())
        assert cfg.name == name
    gpu = text_format.Parse((models["gpu-tensorrt_llm"] / "config.pbtxt").read_text(), mc.ModelConfig())
    assert gpu.backend == "tensorrtllm" and not (models["gpu-tensorrt_llm"] / "1/model.py").exists()
    assert gpu.parameters["gpt_model_type"].string_value == "inflight_fused_batching"
    assert gpu.parameters["exclude_input_in_output"].string_value == "true"
    ref = text_format.Parse((models["athene-70b-tensorrt_llm"] / "config.pbtxt").read_text(),
                            mc.ModelConfig())
    assert ref.backend == "python" and ref.model_transaction_policy.decoupled
    if contract is not None:  # the reference engine's tensors are exactly TensorRT-LLM's
        upstream = contract["models"]["tensorrt_llm"]
        for ours, theirs in ((ref.input, upstream["inputs"]), (ref.output, upstream["outputs"])):
            assert [(t.name, mc.DataType.Name(t.data_type), [str(d) for d in t.dims]) for t in ours] \
                == [(t["name"], t["data_type"], t["dims"]) for t in theirs]
        assert set(gpu.parameters) <= set(upstream["parameters"])
    ens = text_format.Parse((models["athene-70b-ensemble"] / "config.pbtxt").read_text(),
                            mc.ModelConfig())
    steps = [s.model_name for s in ens.ensemble_scheduling.step]
    assert steps == ["athene-70b-preprocessing", "athene-70b-tensorrt_llm", "athene-70b-postprocessing"]
    assert ens.ensemble_scheduling.step[1].input_map["streaming"] == "stream"


def test_deployment_docs_are_current() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "scripts/deployment_docs.py", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_serve_launches_multi_gpu_engines_under_mpirun_leader_mode(tmp_path: Path) -> None:
    from tritonkit.runtime import TritonRuntime
    from tritonkit.serve import Ports, TritonServer

    dep = parse_deployment({"model": "athene-70b", "engine": "tensorrtllm",
                            "parallelism": {"tp": 4}})
    cmd = TritonServer([dep], Ports(), repo_dir=tmp_path).command(TritonRuntime.locate())
    assert cmd[0] == "mpirun" and cmd.count(":") == 3  # one tritonserver per rank
    ranks = " ".join(cmd).split(" : ")
    assert "--model-control-mode=explicit" not in ranks[0]  # rank 0 serves everything
    for i, part in enumerate(ranks[1:], start=1):
        assert "--model-control-mode=explicit" in part
        assert "--load-model=athene-70b-tensorrt_llm" in part
        assert f"shm-region-prefix-name=prefix{i}_" in part
    single = parse_deployment({"model": "athene-70b"})
    assert TritonServer([single], Ports(), repo_dir=tmp_path).command(
        TritonRuntime.locate())[0].endswith("tritonserver")
