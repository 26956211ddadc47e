"""The CPU reference engine as a decoupled Triton Python model named like TensorRT-LLM's.

Same tensor contract as `tensorrt_llm`: streaming responses carry only the new tokens; the
non-streaming response carries all output ids (with the prompt unless `exclude_input_in_output`);
a request with `stop=true` and the `request_id` of a running request ends it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tritonkit.engine.inputs import EngineInputError, parse_engine_inputs
from tritonkit.engine.model import ModelShape
from tritonkit.engine.scheduler import ContinuousBatcher, EngineRequest, EngineUpdate
from tritonkit.tokenizer_assets import tokenizer_dir_for
from tritonkit.triton_models.common import deployment_from_args, error_response, input_getter

__all__ = ["ReferenceEngineModel"]


def _vocab_size(tokenizer_dir: str) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(f"{tokenizer_dir}/tokenizer.json").get_vocab_size(True)


class ReferenceEngineModel:
    pb: Any = None  # set by model.py to triton_python_backend_utils

    def initialize(self, args: dict[str, Any]) -> None:
        dep, params = deployment_from_args(args)
        ref = dep.reference
        tok_dir = params.get("tokenizer_dir") or str(tokenizer_dir_for(dep))
        spec = dep.spec.architecture
        shape = ModelShape(
            vocab_size=_vocab_size(tok_dir),
            num_layers=ref.num_layers,
            hidden_size=ref.hidden_size,
            num_attention_heads=ref.num_attention_heads,
            num_kv_heads=ref.num_kv_heads,
            intermediate_size=ref.intermediate_size,
            rope_theta=spec.rope_theta,
            rms_norm_eps=spec.rms_norm_eps,
        )
        self.exclude_input_default = params.get("exclude_input_in_output", "false") == "true"
        self.engine = ContinuousBatcher(
            shape,
            seed=ref.seed,
            max_batch_size=ref.max_batch_size,
            token_delay_s=ref.token_delay_ms / 1000.0,
            compute=ref.compute,
        )

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            self._handle(request)
        return None

    def _handle(self, request: Any) -> None:
        pb = self.pb
        sender = request.get_response_sender()
        try:
            parsed = parse_engine_inputs(input_getter(pb, request), self.exclude_input_default)
        except EngineInputError as exc:
            sender.send(error_response(pb, str(exc)), flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return
        rid = request.request_id()
        if parsed.stop:
            self.engine.stop(rid)
            sender.send(self._response([], 0), flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return
        prompt = parsed.input_ids
        include_prompt = not parsed.streaming and not parsed.exclude_input_in_output
        lock = threading.Lock()

        def emit(update: EngineUpdate) -> None:
            flags = pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL if update.finished else 0
            if parsed.streaming:
                if update.new_tokens or update.finished:
                    with lock:
                        self._safe_send(
                            sender, self._response(update.new_tokens, len(update.new_tokens)), flags
                        )
            elif update.finished:
                tokens = (prompt if include_prompt else []) + engine_req.output
                with lock:
                    self._safe_send(sender, self._response(tokens, len(tokens)), flags)

        engine_req = EngineRequest(
            request_id=rid,
            input_ids=prompt,
            max_new_tokens=parsed.max_new_tokens,
            emit=emit,
            end_id=parsed.end_id,
            stop_words=parsed.stop_words,
            bad_words=parsed.bad_words,
            sampling=parsed.sampling,
            is_cancelled=request.is_cancelled,
        )
        self.engine.submit(engine_req)

    @staticmethod
    def _safe_send(sender: Any, response: Any, flags: int) -> None:
        try:
            sender.send(response, flags=flags)
        except Exception as exc:  # client gone: the request was cancelled under us
            print(f"reference engine: response not delivered: {exc}", flush=True)

    def _response(self, tokens: list[int], length: int) -> Any:
        pb = self.pb
        ids = np.asarray(tokens, np.int32).reshape(1, 1, -1)
        seq = np.asarray([[length]], np.int32)
        return pb.InferenceResponse(
            output_tensors=[pb.Tensor("output_ids", ids), pb.Tensor("sequence_length", seq)]
        )

    def finalize(self) -> None:
        self.engine.close()
