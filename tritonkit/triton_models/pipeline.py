"""The served model: a BLS pipeline with the ensemble's interface and per-request state.

For each request, on its own thread: validate inputs, call `<name>-preprocessing`, stream from
`<name>-tensorrt_llm` (always with streaming on when the engine is decoupled), detokenize
incrementally, withhold and cut stop strings, and stop the engine with TensorRT-LLM's `stop`
request (same request_id) when a stop string matched or the client went away. Triton 2.51's
ensembles pass no cancellation to their steps, which is why this model exists
(shared/reference/triton-on-cpu.md).
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tritonkit.detokenize import ByteTable
from tritonkit.pipeline.generation import Generation
from tritonkit.pipeline.request import GenerateRequest, RequestError, parse_request
from tritonkit.triton_models.common import (
    ENGINE_WAIT_SLOTS,
    deployment_from_args,
    error_response,
    request_inputs,
    tokenizer_dir,
)

__all__ = ["PipelineModel"]

#: Ensemble input -> tensorrt_llm input, for the sampling inputs that change name on the way.
_ENGINE_NAMES = {
    "top_k": "runtime_top_k",
    "top_p": "runtime_top_p",
    "length_penalty": "len_penalty",
}
_ENGINE_DTYPES = {
    "temperature": np.float32,
    "runtime_top_p": np.float32,
    "len_penalty": np.float32,
    "repetition_penalty": np.float32,
    "presence_penalty": np.float32,
    "frequency_penalty": np.float32,
    "runtime_top_k": np.int32,
    "min_tokens": np.int32,
    "beam_width": np.int32,
    "num_return_sequences": np.int32,
    "seed": np.uint64,
}


class _ClientGone(Exception):
    pass


class StepUnavailable(RuntimeError):
    """A composing model failed for a reason that is not the request's fault (e.g. its stub
    died): reported as UNAVAILABLE with the prefix `unavailable:`, so clients may retry."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"unavailable: {step} failed: {message}")


class PipelineModel:
    pb: Any = None  # set by model.py to triton_python_backend_utils

    def initialize(self, args: dict[str, Any]) -> None:
        pb = self.pb
        dep, params = deployment_from_args(args)
        self.deployment = dep
        tok_dir = tokenizer_dir(dep, params)
        self.table = ByteTable.from_tokenizer_json(f"{tok_dir}/tokenizer.json")
        self.preprocessing = dep.step_name("preprocessing")
        self.engine = dep.step_name("tensorrt_llm")
        self.engine_decoupled = dep.engine == "reference" or dep.serving.streaming
        self.decoupled = pb.using_decoupled_model_transaction_policy(
            json.loads(args["model_config"])
        )
        self.pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="pipeline")
        # engine calls waiting for their first response (common.ENGINE_WAIT_SLOTS)
        self._engine_slots = threading.BoundedSemaphore(ENGINE_WAIT_SLOTS)
        self._lock = threading.Lock()
        self.in_flight = 0
        # The family must outlive its metrics: keep both.
        self._family = pb.MetricFamily(
            name="tritonkit_pipeline_requests_in_flight",
            description="Requests the served pipeline holds state for",
            kind=pb.MetricFamily.GAUGE,
        )
        self._gauge = self._family.Metric(labels={"model": args["model_name"]})

    # ---- Triton entry points -----------------------------------------------------------------
    def execute(self, requests: list[Any]) -> list[Any] | None:
        if self.decoupled:
            for request in requests:
                # inputs are copied here, on Triton's thread: see common.request_inputs
                self.pool.submit(self._run_decoupled, request, request_inputs(self.pb, request))
            return None
        futures = [self.pool.submit(self._run_unary, r, request_inputs(self.pb, r))
                   for r in requests]
        return [f.result() for f in futures]

    def finalize(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        del self._gauge, self._family  # before the stub's teardown: see ReferenceEngineModel

    # ---- one request -----------------------------------------------------------------------
    def _run_decoupled(self, request: Any, inputs: dict[str, np.ndarray]) -> None:
        pb = self.pb
        sender = request.get_response_sender()
        final = pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL

        def send(resp: Any, flags: int = 0) -> None:
            try:
                sender.send(resp, flags=flags)
            except Exception as exc:  # the client went away
                raise _ClientGone(str(exc)) from None

        try:
            self._generate(request, inputs, send, final)
        except _ClientGone:
            # a response sender must always be closed, or Triton keeps the request alive
            with contextlib.suppress(Exception):
                sender.send(flags=final)
        except Exception as exc:
            try:
                code = ("INVALID_ARG" if isinstance(exc, RequestError)
                        else "UNAVAILABLE" if isinstance(exc, StepUnavailable) else "INTERNAL")
                sender.send(error_response(pb, str(exc), code), flags=final)
            except Exception:
                pass

    def _run_unary(self, request: Any, inputs: dict[str, np.ndarray]) -> Any:
        out: list[Any] = []

        def send(resp: Any, flags: int = 0) -> None:
            out.append(resp)

        try:
            self._generate(request, inputs, send, 1)
        except RequestError as exc:
            return error_response(self.pb, str(exc))
        except StepUnavailable as exc:
            return error_response(self.pb, str(exc), "UNAVAILABLE")
        except Exception as exc:
            return error_response(self.pb, str(exc), "INTERNAL")
        return out[-1]

    def _generate(self, request: Any, inputs: dict[str, np.ndarray], send: Any,
                  final_flag: int) -> None:
        with self._lock:
            self.in_flight += 1
            self._gauge.set(self.in_flight)
        try:
            self._generate_inner(request, inputs, send, final_flag)
        finally:
            with self._lock:
                self.in_flight -= 1
                self._gauge.set(self.in_flight)

    def _generate_inner(self, request: Any, inputs: dict[str, np.ndarray], send: Any,
                        final_flag: int) -> None:
        dep = self.deployment
        req = parse_request(
            inputs,
            max_request_bytes=dep.limits.max_request_bytes,
            max_stop_words=dep.limits.max_stop_words,
            reference_engine=dep.engine == "reference",
        )
        prep = self._preprocess(req)
        input_ids = prep["INPUT_ID"].reshape(-1)
        n_in = int(input_ids.shape[0])
        max_new = int(prep["REQUEST_OUTPUT_LEN"].reshape(-1)[0])
        end_id = int(prep["OUT_END_ID"].reshape(-1)[0])
        stop_ids = {*dep.spec.stop_token_ids, end_id}
        gen = Generation(
            self.table, stop_ids=stop_ids, stop_strings=req.stop_words, max_tokens=max_new
        )
        streaming = req.stream and self.decoupled
        prefix = ""
        if not req.exclude_input_in_output and not streaming:
            prefix = self.table.decode(input_ids.tolist())

        rid = uuid.uuid4().hex
        cancelled = stop_sent = drained = False
        with self._engine_slot(request.is_cancelled):
            engine = self._engine_tokens(self._start_engine(req, prep, rid))
        try:
            for tokens in engine:
                if not cancelled and request.is_cancelled():
                    cancelled = True
                delta = gen.push(tokens)
                if streaming and delta and not cancelled:
                    send(self._response(delta, "", n_in, gen.num_output_tokens))
                if not stop_sent and (cancelled or gen.stopped):
                    self._stop_engine(rid)
                    stop_sent = True
            drained = True
        finally:
            if not drained:  # the client went away mid-send, or an error: never leave the engine
                if not stop_sent:  # generating for nobody
                    self._stop_engine(rid)
                for _ in engine:  # the engine ends the sequence within a step
                    pass
        tail = gen.finish(cancelled=cancelled)
        text = tail if streaming else prefix + gen.full_text
        send(self._response(text, gen.finish_reason, n_in, gen.num_output_tokens), final_flag)

    # ---- sub-requests ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _engine_slot(self, is_cancelled: Any, poll_s: float = 0.25):
        """Hold one of ENGINE_WAIT_SLOTS while starting an engine call; a client that goes away
        while waiting for a slot ends here, before any engine request exists."""
        while not self._engine_slots.acquire(timeout=poll_s):
            if is_cancelled():
                raise _ClientGone("cancelled while waiting for the engine")
        try:
            yield
        finally:
            self._engine_slots.release()

    def _preprocess(self, req: GenerateRequest) -> dict[str, np.ndarray]:
        pb = self.pb
        tensors = []

        def add(name: str, value: np.ndarray) -> None:
            tensors.append(pb.Tensor(name, value))

        if req.messages is not None:
            add("MESSAGES", np.array([[req.messages.encode()]], dtype=object))
        else:
            add("QUERY", np.array([[(req.text_input or "").encode()]], dtype=object))
        if req.max_tokens is not None:
            add("REQUEST_OUTPUT_LEN", np.array([[req.max_tokens]], np.int32))
        if req.stop_words:
            add("STOP_WORDS_DICT", np.array([[w.encode() for w in req.stop_words]], dtype=object))
        if req.bad_words:
            add("BAD_WORDS_DICT", np.array([[w.encode() for w in req.bad_words]], dtype=object))
        if req.end_id is not None:
            add("END_ID", np.array([[req.end_id]], np.int32))
        if req.pad_id is not None:
            add("PAD_ID", np.array([[req.pad_id]], np.int32))
        names = [
            "INPUT_ID",
            "REQUEST_INPUT_LEN",
            "REQUEST_OUTPUT_LEN",
            "STOP_WORDS_IDS",
            "BAD_WORDS_IDS",
            "OUT_END_ID",
            "OUT_PAD_ID",
        ]
        resp = pb.InferenceRequest(
            model_name=self.preprocessing, inputs=tensors, requested_output_names=names
        ).exec()
        if resp.has_error():
            message = resp.error().message()
            field, problem = _split_field(message)
            if field is None:  # not a validation error of ours: the step itself failed
                raise StepUnavailable(self.preprocessing, message)
            raise RequestError(field, problem)
        # copies: as_numpy() is a view of shared memory owned by `resp`
        return {n: pb.get_output_tensor_by_name(resp, n).as_numpy().copy() for n in names}

    def _start_engine(self, req: GenerateRequest, prep: dict[str, np.ndarray], rid: str
                      ) -> Any:
        """Send the request to the engine; returns (once its first response is in) the
        responses to iterate."""
        pb = self.pb
        ids = prep["INPUT_ID"].reshape(1, -1).astype(np.int32)
        tensors = [
            pb.Tensor("input_ids", ids),
            pb.Tensor("input_lengths", np.array([[ids.shape[1]]], np.int32)),
            pb.Tensor(
                "request_output_len", prep["REQUEST_OUTPUT_LEN"].reshape(1, 1).astype(np.int32)
            ),
            pb.Tensor("end_id", prep["OUT_END_ID"].reshape(1, 1).astype(np.int32)),
            pb.Tensor("pad_id", prep["OUT_PAD_ID"].reshape(1, 1).astype(np.int32)),
            pb.Tensor("stop_words_list", prep["STOP_WORDS_IDS"].reshape(1, 2, -1).astype(np.int32)),
            pb.Tensor("streaming", np.array([[self.engine_decoupled]], np.bool_)),
            pb.Tensor("exclude_input_in_output", np.array([[True]], np.bool_)),
        ]
        bad = prep["BAD_WORDS_IDS"].reshape(1, 2, -1).astype(np.int32)
        if (bad[0, 1] >= 0).any():
            tensors.append(pb.Tensor("bad_words_list", bad))
        for name, value in req.sampling.items():
            engine_name = _ENGINE_NAMES.get(name, name)
            dtype = _ENGINE_DTYPES[engine_name]
            tensors.append(pb.Tensor(engine_name, np.array([[value]], dtype)))
        for name, arr in req.passthrough.items():
            tensors.append(pb.Tensor(name, arr))
        engine_req = pb.InferenceRequest(
            model_name=self.engine,
            inputs=tensors,
            requested_output_names=["output_ids", "sequence_length"],
            request_id=rid,
        )
        return engine_req.exec(decoupled=True) if self.engine_decoupled else [engine_req.exec()]

    def _engine_tokens(self, responses: Any):
        """The engine's new tokens, response by response."""
        pb = self.pb
        for resp in responses:
            if resp.has_error():
                message = resp.error().message()
                if "not healthy" in message or "unavailable" in message.lower():
                    raise StepUnavailable(self.engine, message)
                raise RuntimeError(f"engine: {message}")
            out = pb.get_output_tensor_by_name(resp, "output_ids")
            if out is None:
                continue  # the empty final response of a decoupled model
            seq = pb.get_output_tensor_by_name(resp, "sequence_length")
            ids_out = out.as_numpy().reshape(-1)
            n = int(seq.as_numpy().reshape(-1)[0]) if seq is not None else ids_out.shape[0]
            yield ids_out[:n].tolist()

    def _stop_engine(self, rid: str) -> None:
        """TensorRT-LLM's way to end a running request: `stop=true` with the same request_id."""
        pb = self.pb
        tensors = [
            pb.Tensor("input_ids", np.zeros((1, 1), np.int32)),
            pb.Tensor("input_lengths", np.array([[0]], np.int32)),
            pb.Tensor("request_output_len", np.array([[0]], np.int32)),
            pb.Tensor("stop", np.array([[True]], np.bool_)),
            pb.Tensor("streaming", np.array([[self.engine_decoupled]], np.bool_)),
        ]
        stop_req = pb.InferenceRequest(
            model_name=self.engine,
            inputs=tensors,
            requested_output_names=["output_ids"],
            request_id=rid,
        )
        for resp in stop_req.exec(decoupled=True) if self.engine_decoupled else [stop_req.exec()]:
            if resp.has_error():
                print(f"pipeline: stop for {rid} failed: {resp.error().message()}", flush=True)

    def _response(self, text: str, finish_reason: str, n_in: int, n_out: int) -> Any:
        pb = self.pb
        return pb.InferenceResponse(
            output_tensors=[
                pb.Tensor("text_output", np.array([[text.encode("utf-8")]], dtype=object)),
                pb.Tensor("finish_reason", np.array([[finish_reason.encode()]], dtype=object)),
                pb.Tensor("num_input_tokens", np.array([[n_in]], np.int32)),
                pb.Tensor("num_output_tokens", np.array([[n_out]], np.int32)),
            ]
        )


def _split_field(message: str) -> tuple[str | None, str]:
    """Preprocessing's validation errors read '<field>: <problem>'; anything else is not one."""
    field, sep, rest = message.partition(": ")
    return (field, rest) if sep and field.isidentifier() else (None, message)
