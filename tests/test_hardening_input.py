"""Hardening, bad input (issue 9 item 1): hypothesis sends malformed requests over every transport.

Transports: HTTP `generate` on `X`, HTTP `infer` (v2 JSON tensors) on `X-unary`, gRPC `ModelInfer`
on `X-unary` and `ModelStreamInfer` on `X` (raw protobuf, so BYTES can carry invalid UTF-8 and
byte counts can lie), and the OpenAI gateway. Every reply must be an error that names the problem:
HTTP 4xx (never 5xx), gRPC INVALID_ARGUMENT (what Triton itself uses for schema violations; over
`ModelStreamInfer` errors arrive in-band as `error_message`, which carries no status code). The
server must stay up and ready, nothing may hang (every call has a timeout), and a good request
succeeds afterwards.

One known Triton-core limitation (docs/reliability.md): Triton's HTTP JSON-to-tensor parser answers
500 "Unable to parse ..." when a JSON value has the wrong type for the input's datatype (or `data`
disagrees with `shape`). The request never reaches a model; those cases are asserted as exactly that
and the server must keep serving.

Examples: about 1,000 in all by default; `TRITONKIT_FUZZ_EXAMPLES=<n per transport>` for soak runs.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pbg

from tests.conftest import Live

# this module's own server (`live`) and gateway, not the session's: tests/hardening.py
from tests.hardening import module_gateway, module_live  # noqa: F401

pytestmark = pytest.mark.live

MODEL = "athene-70b"
UNARY = f"{MODEL}-unary"
PER_TRANSPORT = int(os.environ.get("TRITONKIT_FUZZ_EXAMPLES", "250"))
TIMEOUT = 30.0
MAX_BYTES = 4 << 20  # limits.max_request_bytes default (the live deployments keep it)
VOCAB = 128256  # Llama-3 vocabulary (athene-70b)

FUZZ = settings(max_examples=PER_TRANSPORT, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

#: Served-model input datatypes (the interface of docs/serving.md).
DTYPES = {
    "text_input": "BYTES", "messages": "BYTES", "max_tokens": "INT32", "stream": "BOOL",
    "stop_words": "BYTES", "bad_words": "BYTES", "end_id": "INT32", "pad_id": "INT32",
    "temperature": "FP32", "top_p": "FP32", "repetition_penalty": "FP32",
    "presence_penalty": "FP32", "frequency_penalty": "FP32", "length_penalty": "FP32",
    "top_k": "INT32", "min_tokens": "INT32", "beam_width": "INT32",
    "num_return_sequences": "INT32", "seed": "UINT64", "return_log_probs": "BOOL",
    "return_context_logits": "BOOL",
}
FLOATS = [k for k, v in DTYPES.items() if v == "FP32"]
BAD_FLOAT = {  # values outside every float input's range (request.py _FLOAT_RULES)
    "temperature": [math.nan, math.inf, -math.inf, -1.0, 1e30, 101.0],
    "top_p": [math.nan, math.inf, -0.5, 1.5, 1e30],
    "repetition_penalty": [math.nan, -math.inf, 0.0, -3.0, 1e30],
    "presence_penalty": [math.nan, math.inf, -1e30, 1e30, 101.0],
    "frequency_penalty": [math.nan, -math.inf, -101.0, 1e30],
    "length_penalty": [math.nan, math.inf, -1e9, 1e9],
}
INT32_MAX = 2**31 - 1


# ---- the abstract case: typed inputs + what the error must name ------------------------------
@dataclass
class Case:
    """One malformed request: inputs as name -> (datatype, shape, flat values), and the input
    names of which at least one must appear in the error."""

    inputs: dict[str, tuple[str, list[int], list[Any]]]
    names: tuple[str, ...]
    why: str


def _scalar(name: str, value: Any) -> tuple[str, list[int], list[Any]]:
    return DTYPES[name], [1, 1], [value]


def _words(words: list[str]) -> tuple[str, list[int], list[Any]]:
    return "BYTES", [1, len(words)], list(words)


def _base(draw: st.DrawFn) -> dict[str, tuple[str, list[int], list[Any]]]:
    """A valid request with a few valid extras, to vary what surrounds the one bad input."""
    if draw(st.booleans()):
        out = {"text_input": _scalar("text_input", draw(st.text(min_size=1, max_size=40)))}
    else:
        out = {"messages": _scalar("messages", json.dumps([{"role": "user", "content": "hi"}]))}
    out["max_tokens"] = _scalar("max_tokens", draw(st.integers(1, 4)))
    if draw(st.booleans()):
        out["temperature"] = _scalar("temperature", draw(st.floats(0.0, 2.0)))
    if draw(st.booleans()):
        out["top_k"] = _scalar("top_k", draw(st.integers(0, 50)))
    if draw(st.booleans()):
        out["stop_words"] = _words(draw(st.lists(st.text(min_size=1, max_size=5), max_size=3)))
    return out


_NESTED = st.recursive(st.none() | st.integers() | st.text(max_size=5),
                       lambda kids: st.lists(kids, max_size=3)
                       | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=10)


@st.composite
def bad_messages(draw: st.DrawFn) -> str:
    """`messages` text that is not a list of {role, content} with allowed roles."""
    kind = draw(st.sampled_from(["not_json", "not_list", "deep", "items", "role", "content",
                                 "keys", "empty"]))
    if kind == "not_json":
        return draw(st.sampled_from(["", "[", "{role: user}", "[{'role': 'user'}]", "nan"]))
    if kind == "not_list":
        return json.dumps(draw(st.none() | st.integers() | st.text(max_size=10)
                               | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
    if kind == "deep":
        depth = draw(st.sampled_from([50, 5_000, 100_000]))
        return "[" * depth + "]" * depth
    if kind == "items":
        return json.dumps(draw(st.lists(st.none() | st.integers() | st.lists(_NESTED, max_size=2),
                                        min_size=1, max_size=3)))
    if kind == "role":
        role = draw(st.text(max_size=12).filter(lambda r: r not in ("system", "user",
                                                                    "assistant")))
        return json.dumps([{"role": role, "content": "hi"}])
    if kind == "content":
        return json.dumps([{"role": "user", "content": draw(_NESTED.filter(
            lambda c: not isinstance(c, str) and c is not None))}])
    if kind == "keys":
        key = draw(st.text(min_size=1, max_size=8).filter(
            lambda k: k not in ("role", "content", "name")))
        return json.dumps([{"role": "user", "content": "hi", key: 1}])
    return "[]"


@st.composite
def semantic_case(draw: st.DrawFn) -> Case:
    """Right names, types and shapes; a value the pipeline must refuse by name."""
    inputs = _base(draw)
    kind = draw(st.sampled_from(["max_tokens", "float", "int", "ids", "stop", "messages",
                                 "missing", "both", "unsupported"]))
    if kind == "max_tokens":
        v = draw(st.integers(-(2**31), 0) | st.integers(4097, INT32_MAX))  # > max_seq_len
        inputs["max_tokens"] = _scalar("max_tokens", v)
        return Case(inputs, ("max_tokens",), f"max_tokens={v}")
    if kind == "float":
        name = draw(st.sampled_from(FLOATS))
        v = draw(st.sampled_from(BAD_FLOAT[name]))
        inputs[name] = _scalar(name, v)
        return Case(inputs, (name,), f"{name}={v}")
    if kind == "int":
        name, v = draw(st.sampled_from(["top_k", "min_tokens", "beam_width",
                                        "num_return_sequences"]).flatmap(
            lambda n: st.tuples(st.just(n), {
                "top_k": st.integers(-(2**31), -1) | st.integers(2**20 + 1, INT32_MAX),
                "min_tokens": st.integers(-(2**31), -1),
                "beam_width": st.integers(-(2**31), 0) | st.integers(2, INT32_MAX),
                "num_return_sequences": st.integers(2, INT32_MAX),
            }[n])))
        inputs[name] = _scalar(name, v)
        return Case(inputs, (name,), f"{name}={v}")
    if kind == "ids":
        name = draw(st.sampled_from(["end_id", "pad_id"]))
        v = draw(st.integers(-(2**31), -1) | st.integers(VOCAB, INT32_MAX))
        inputs[name] = _scalar(name, v)
        return Case(inputs, (name,), f"{name}={v}")
    if kind == "stop":
        name = draw(st.sampled_from(["stop_words", "bad_words"]))
        n = draw(st.integers(65, 5_000))
        inputs[name] = _words([f"w{i}" for i in range(n)])
        return Case(inputs, (name,), f"{n} {name}")
    if kind == "messages":
        inputs.pop("text_input", None)
        inputs["messages"] = _scalar("messages", draw(bad_messages()))
        return Case(inputs, ("messages",), "bad messages")
    if kind == "missing":
        inputs.pop("text_input", None)
        inputs.pop("messages", None)
        return Case(inputs, ("text_input",), "no prompt")
    if kind == "both":
        inputs["text_input"] = _scalar("text_input", "hello")
        inputs["messages"] = _scalar("messages", json.dumps([{"role": "user", "content": "x"}]))
        return Case(inputs, ("messages",), "text_input and messages")
    name = draw(st.sampled_from(["return_log_probs", "return_context_logits"]))  # unsupported
    inputs[name] = _scalar(name, True)
    return Case(inputs, (name,), f"{name} on the CPU engine")


@st.composite
def schema_case(draw: st.DrawFn) -> Case:
    """Violations of the model's schema that Triton checks: unknown inputs, wrong datatypes,
    wrong shapes."""
    inputs = _base(draw)
    kind = draw(st.sampled_from(["unknown", "dtype", "shape"]))
    if kind == "unknown":
        name = draw(st.from_regex(r"[a-z][a-z_]{0,19}", fullmatch=True).filter(
            lambda n: n not in DTYPES and n not in _ALL_INPUTS))
        inputs[name] = ("INT32", [1, 1], [1])
        return Case(inputs, (name,), f"unknown input {name}")
    name = draw(st.sampled_from(["max_tokens", "temperature", "top_k", "seed", "stream",
                                 "text_input" if "text_input" in inputs else "messages"]))
    if kind == "dtype":
        dt = draw(st.sampled_from(["INT32", "INT64", "FP32", "FP64", "BOOL", "UINT64", "INT8",
                                   "BYTES"]).filter(lambda d: d != DTYPES[name]))
        value: Any = {"BYTES": "x", "BOOL": True, "FP32": 1.5, "FP64": 1.5}.get(dt, 1)
        inputs[name] = (dt, [1, 1], [value])
        return Case(inputs, (name,), f"{name} as {dt}")
    shape = draw(st.sampled_from([[1, 2], [1, 1, 1], [2, 1], [1, 3, 2]]))
    value = {"BYTES": "x", "BOOL": True, "FP32": 0.5}.get(DTYPES[name], 1)
    inputs[name] = (DTYPES[name], shape, [value] * math.prod(shape))
    # a bigger batch dimension is reported on whichever input disagrees with the others
    return Case(inputs, (name, *inputs), f"{name} shape {shape}")


_ALL_INPUTS = {  # every input of the served model (metadata), so "unknown" really is unknown
    "decoder_text_input", "prompt_embedding_table", "prompt_table_extra_id", "prompt_vocab_size",
    "embedding_bias_words", "embedding_bias_weights", "lora_task_id", "lora_weights",
    "lora_config", "guided_decoding_guide_type", "guided_decoding_guide",
    "return_generation_logits", "return_perf_metrics", *DTYPES,
}


# ---- checks shared by every transport ----------------------------------------------------------
def _names_problem(message: str, case: Case) -> None:
    assert any(n in message for n in case.names), (
        f"{case.why}: error does not name {case.names}: {message[:300]!r}")


def _still_serving(live: Live) -> None:
    assert live.server.process is not None and live.server.process.poll() is None, "server died"
    r = httpx.get(f"{live.http_url}/v2/health/ready", timeout=TIMEOUT)
    assert r.status_code == 200, "server no longer ready"


def _good_request_succeeds(live: Live) -> None:
    r = httpx.post(f"{live.http_url}/v2/models/{MODEL}/generate",
                   json={"text_input": "hello", "max_tokens": 2}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["num_output_tokens"] == 2, r.text


TRITON_JSON_PARSE = ("Unable to parse", "failed to parse the request JSON")


def _post_json(url: str, body: Any) -> httpx.Response:
    """POST `body` as JSON, NaN and Infinity included (as Python's json writes them)."""
    return httpx.post(url, content=json.dumps(body), timeout=TIMEOUT,
                      headers={"content-type": "application/json"})


def _http_error(r: httpx.Response, case: Case, *, triton_json: bool = False) -> None:
    """4xx naming the problem; or, for JSON Triton cannot turn into the input's datatype, Triton
    core's own 500 "Unable to parse ..." (documented limitation)."""
    message = r.json().get("error", "")
    if triton_json and r.status_code == 500:
        assert message.startswith(TRITON_JSON_PARSE), (case.why, message)
        return
    assert 400 <= r.status_code < 500, f"{case.why}: HTTP {r.status_code}: {r.text[:300]}"
    _names_problem(message, case)


# ---- HTTP generate ----------------------------------------------------------------------------
def _generate_json(inputs: dict[str, tuple[str, list[int], list[Any]]]) -> dict[str, Any]:
    return {n: (v[0] if s == [1, 1] else v) for n, (_dt, s, v) in inputs.items()}


@st.composite
def generate_case(draw: st.DrawFn) -> tuple[Case, dict[str, Any], bool]:
    """(case, JSON body, whether Triton's JSON parser may be the one refusing it)."""
    if draw(st.integers(0, 3)) > 0:
        case = draw(semantic_case())
        return case, _generate_json(case.inputs), False
    # generate has no datatype field, turns unknown keys into parameters and flattens nested
    # lists ([[[1]]] is one value): only more values than one apply
    case = draw(schema_case().filter(lambda c: " shape " in c.why and "[1, 1, 1]" not in c.why))
    body = _generate_json(case.inputs)
    if draw(st.booleans()):  # a JSON value of the wrong type for a typed input
        name = draw(st.sampled_from(["max_tokens", "temperature", "stream", "seed",
                                     "text_input" if "text_input" in body else "messages"]))
        body[name] = draw(st.sampled_from(["x", {"a": 1}, -1 if name == "seed" else "1", None,
                                           [[1, [2]]]]))
        return Case(case.inputs, (*case.names, name), f"{name}={body[name]!r}"), body, True
    return case, body, True  # generate has no datatype field: Triton parses by the config's


@FUZZ
@given(generate_case())
def test_fuzz_http_generate(live: Live, drawn: tuple[Case, dict[str, Any], bool]) -> None:
    case, body, triton_json = drawn
    r = _post_json(f"{live.http_url}/v2/models/{MODEL}/generate", body)
    _http_error(r, case, triton_json=triton_json)


# ---- HTTP infer (v2 JSON tensors) on X-unary --------------------------------------------------
def _infer_json(inputs: dict[str, tuple[str, list[int], list[Any]]]) -> dict[str, Any]:
    return {"inputs": [{"name": n, "datatype": dt, "shape": s, "data": v}
                       for n, (dt, s, v) in inputs.items()]}


@st.composite
def infer_case(draw: st.DrawFn) -> tuple[Case, dict[str, Any], bool]:
    case = draw(st.one_of(semantic_case(), schema_case()))
    body = _infer_json(case.inputs)
    if draw(st.integers(0, 4)) == 0:  # `data` disagreeing with `shape` or datatype
        tensor = draw(st.sampled_from(body["inputs"]))
        tensor["data"] = draw(st.sampled_from([[], [1, 2, 3], [{"x": 1}], [[1], 2]]))
        return (Case(case.inputs, (*case.names, tensor["name"]), f"{tensor['name']} data"), body,
                True)
    return case, body, False


@FUZZ
@given(infer_case())
def test_fuzz_http_infer_unary(live: Live, drawn: tuple[Case, dict[str, Any], bool]) -> None:
    case, body, triton_json = drawn
    r = _post_json(f"{live.http_url}/v2/models/{UNARY}/infer", body)
    _http_error(r, case, triton_json=triton_json)


# ---- gRPC, raw protobuf ----------------------------------------------------------------------
_PACK = {"INT32": "<i", "INT64": "<q", "UINT64": "<Q", "FP32": "<f", "FP64": "<d", "INT8": "<b",
         "BOOL": "<?"}


def _raw(dt: str, values: list[Any]) -> bytes:
    if dt == "BYTES":
        out = b""
        for v in values:
            b = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
            out += struct.pack("<I", len(b)) + b
        return out
    return b"".join(struct.pack(_PACK[dt], v) for v in values)


def _infer_request(model: str, inputs: dict[str, tuple[str, list[int], list[Any]]],
                   raw: dict[str, bytes] | None = None) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model)
    for name, (dt, shape, values) in inputs.items():
        req.inputs.append(pb.ModelInferRequest.InferInputTensor(name=name, datatype=dt,
                                                                shape=shape))
        req.raw_input_contents.append((raw or {}).get(name, _raw(dt, values)))
    return req


@st.composite
def grpc_case(draw: st.DrawFn) -> tuple[Case, dict[str, bytes]]:
    """(case, raw contents that override the honest encoding of some inputs)."""
    case = draw(st.one_of(semantic_case(), schema_case()))
    kind = draw(st.sampled_from(["none", "none", "utf8", "bytesize", "prefix"]))
    if kind == "none":
        return case, {}
    if kind == "utf8":  # invalid UTF-8 in a text input (gRPC BYTES can carry it)
        name = draw(st.sampled_from(["text_input", "messages", "stop_words", "bad_words"]))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"ok\xe2\x82", b"\xed\xa0\x80",
                                    b"\xf8\x88\x80\x80\x80"]))
        inputs = {k: v for k, v in _base(draw).items() if k != "stop_words"}
        if name in ("text_input", "messages"):
            inputs.pop("text_input", None)
            inputs.pop("messages", None)
        inputs[name] = ("BYTES", [1, 1], [bad])
        if name not in ("text_input", "messages") and "messages" not in inputs:
            inputs["text_input"] = _scalar("text_input", "hi")
        return Case(inputs, (name,), f"invalid UTF-8 in {name}"), {}
    name = draw(st.sampled_from(sorted(case.inputs)))
    dt, _shape, values = case.inputs[name]
    honest = _raw(dt, values)
    if kind == "bytesize" or dt != "BYTES":
        cut = draw(st.integers(0, max(0, len(honest) - 1)))
        data = honest[:cut] if draw(st.booleans()) else honest + b"\0" * draw(st.integers(1, 9))
    else:  # a BYTES length prefix that lies
        data = struct.pack("<I", draw(st.integers(len(honest), 2**32 - 1))) + b"ab"
    case = Case(case.inputs, (*case.names, name), f"raw {name} of {len(data)} bytes")
    return case, {name: data}


def _check_grpc_error(code: grpc.StatusCode | None, message: str, case: Case) -> None:
    assert code in (None, grpc.StatusCode.INVALID_ARGUMENT), f"{case.why}: {code} {message}"
    assert message, f"{case.why}: no error"
    _names_problem(message, case)


@pytest.fixture(scope="module")
def stub(live: Live) -> Iterator[pbg.GRPCInferenceServiceStub]:
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(live.grpc_url, options=opts) as channel:
        yield pbg.GRPCInferenceServiceStub(channel)


def _grpc_unary(stub: pbg.GRPCInferenceServiceStub, req: pb.ModelInferRequest
                ) -> tuple[grpc.StatusCode | None, str]:
    try:
        stub.ModelInfer(req, timeout=TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return None, ""


def _grpc_stream(stub: pbg.GRPCInferenceServiceStub, req: pb.ModelInferRequest
                 ) -> tuple[grpc.StatusCode | None, str]:
    """The first response of one ModelStreamInfer call (an in-band error has no status code)."""
    try:
        for resp in stub.ModelStreamInfer(iter([req]), timeout=TIMEOUT):
            return None, resp.error_message
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return None, ""


@FUZZ
@given(grpc_case(), st.booleans())
def test_fuzz_grpc(live: Live, stub: pbg.GRPCInferenceServiceStub,
                  drawn: tuple[Case, dict[str, bytes]], use_stream: bool) -> None:
    case, raw = drawn
    if use_stream:
        code, message = _grpc_stream(stub, _infer_request(MODEL, case.inputs, raw))
    else:
        code, message = _grpc_unary(stub, _infer_request(UNARY, case.inputs, raw))
    _check_grpc_error(code, message, case)


# ---- the gateway -------------------------------------------------------------------------------
HI = [{"role": "user", "content": "hi"}]


@st.composite
def gateway_case(draw: st.DrawFn) -> tuple[str, bytes, tuple[str, ...]]:
    """(route, body bytes, names of which one must be the error's `param` or in its message)."""
    chat = draw(st.booleans())
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 2}
    body.update({"messages": HI} if chat else {"prompt": "hi"})
    route = "/chat/completions" if chat else "/completions"
    kind = draw(st.sampled_from(["sampling", "types", "messages", "prompt", "stop", "model",
                                 "raw", "n", "stream_options"]))
    if kind == "sampling":
        name, v = draw(st.sampled_from([
            ("temperature", math.nan), ("temperature", math.inf), ("temperature", -1.0),
            ("temperature", 1e300), ("top_p", math.nan), ("top_p", -0.1), ("top_p", 2.0),
            ("presence_penalty", -math.inf), ("frequency_penalty", 9.0), ("max_tokens", 0),
            ("max_tokens", -5), ("max_tokens", 10**6), ("max_tokens", 2**40), ("seed", -1),
            ("seed", 2**70)]))
        body[name] = v
        names: tuple[str, ...] = (name,)
    elif kind == "types":
        name = draw(st.sampled_from(["max_tokens", "temperature", "top_p", "seed", "n",
                                     "stream", "stop"]))
        body[name] = draw(st.sampled_from([{"a": 1}, [[1]], [None]]))
        names = (name,)
    elif kind == "messages":
        route, names = "/chat/completions", ("messages",)
        body.pop("prompt", None)
        body["messages"] = draw(st.sampled_from([
            "hi", 5, None, [], {"role": "user"}, [[[[["x"]]]]], [{"role": "wizard", "content": "x"}],
            [{"content": "x"}], [{"role": "user", "content": {"a": [1]}}],
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        ]) | _NESTED)
    elif kind == "prompt":
        route, names = "/completions", ("prompt",)
        body.pop("messages", None)
        body["prompt"] = draw(st.sampled_from([[], [[1, 2]], {"a": 1}, None, 5, [None]]))
    elif kind == "stop":
        body["stop"] = [f"s{i}" for i in range(draw(st.integers(65, 5000)))]
        names = ("stop",)
    elif kind == "model":
        body["model"] = draw(st.sampled_from(["", "no-such-model", 5, None,
                                              f"{MODEL}-tensorrt_llm"]))
        names = ("model",)
    elif kind == "n":
        body["n"] = draw(st.sampled_from([0, -1, 17, 10**9]))
        names = ("n",)
    elif kind == "stream_options":
        body["stream_options"] = {"include_usage": True}
        names = ("stream_options", "stream")
    else:
        raw = draw(st.sampled_from([b"", b"not json", b"[" * 100_000 + b"]" * 100_000, b"5",
                                    b'{"model": "x\xff\xfe"}', b"null", b"[1, 2]"]))
        return route, raw, ("request", "JSON", "body", "model")
    return route, json.dumps(body).encode(), names


@FUZZ
@given(gateway_case())
def test_fuzz_gateway(gateway: str, drawn: tuple[str, bytes, tuple[str, ...]]) -> None:
    route, body, names = drawn
    r = httpx.post(gateway + route, content=body, timeout=TIMEOUT,
                   headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, f"{body[:200]!r}: HTTP {r.status_code}: {r.text[:300]}"
    err = r.json()["error"]
    assert err["param"] in names or any(n in err["message"] for n in names), (body[:200], err)


# ---- deterministic edges: just over the size limit, thousands of stop words -------------------
def test_just_over_max_request_bytes_everywhere(live: Live, stub: pbg.GRPCInferenceServiceStub,
                                               gateway: str) -> None:
    big = "a" * (MAX_BYTES + 1)
    limit = f"is {MAX_BYTES + 1} bytes; the limit is {MAX_BYTES}"
    r = httpx.post(f"{live.http_url}/v2/models/{MODEL}/generate",
                   json={"text_input": big, "max_tokens": 2}, timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["error"] == f"text_input: {limit}"
    msgs = json.dumps([{"role": "user", "content": big}])
    r = httpx.post(f"{live.http_url}/v2/models/{UNARY}/infer", timeout=TIMEOUT,
                   json=_infer_json({"messages": ("BYTES", [1, 1], [msgs])}))
    assert r.status_code == 400 and r.json()["error"].startswith("messages: is "), r.text
    inputs = {"text_input": ("BYTES", [1, 1], [big]), "max_tokens": _scalar("max_tokens", 2)}
    for call, model in ((_grpc_unary, UNARY), (_grpc_stream, MODEL)):
        code, message = call(stub, _infer_request(model, inputs))
        assert code in (None, grpc.StatusCode.INVALID_ARGUMENT) and limit in message, message
    r = httpx.post(f"{gateway}/completions", json={"model": MODEL, "prompt": big, "max_tokens": 2},
                   timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    # exactly at the limit is not refused for its size (it is far beyond max_input_len instead)
    r = httpx.post(f"{live.http_url}/v2/models/{MODEL}/generate",
                   json={"text_input": "a" * MAX_BYTES, "max_tokens": 2}, timeout=60)
    assert r.status_code == 400 and "max_input_len" in r.json()["error"], r.text
    _still_serving(live)
    _good_request_succeeds(live)


def test_top_k_beyond_vocabulary_generates(live: Live) -> None:
    """top_k >= vocabulary size keeps every token (it used to crash the engine step and end every
    sequence in the batch with an empty `stop`)."""
    r = httpx.post(f"{live.http_url}/v2/models/{MODEL}/generate", timeout=TIMEOUT,
                   json={"text_input": "hello", "max_tokens": 3, "top_k": 2**20,
                         "temperature": 1.0, "seed": 1})
    assert r.status_code == 200 and r.json()["num_output_tokens"] == 3, r.text


def test_server_survived_and_serves(live: Live) -> None:
    """Runs after the fuzzers (file order): no crash, still ready, a good request succeeds on
    every transport."""
    _still_serving(live)
    _good_request_succeeds(live)
    inputs = {"text_input": _scalar("text_input", "hello"), "max_tokens": _scalar("max_tokens", 2)}
    with grpc.insecure_channel(live.grpc_url) as channel:
        s = pbg.GRPCInferenceServiceStub(channel)
        assert _grpc_unary(s, _infer_request(UNARY, inputs)) == (None, "")
        assert _grpc_stream(s, _infer_request(MODEL, inputs)) == (None, "")
    r = httpx.post(f"{live.http_url}/v2/models/{UNARY}/infer", json=_infer_json(inputs),
                   timeout=TIMEOUT)
    assert r.status_code == 200, r.text
