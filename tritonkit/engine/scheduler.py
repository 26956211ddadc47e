"""Continuous batching for the CPU reference engine, with TensorRT-LLM's request semantics.

One thread runs decoding steps; each step advances every active sequence by one token, and
requests that arrived meanwhile join the batch at the next step (their prompt is prefilled in the
same forward pass). Stopping follows TensorRT-LLM: `end_id` ends a sequence without emitting it;
a `stop_words_list` match ends it with the matched tokens emitted; `request_output_len` bounds it;
a cancelled or stopped request ends at the next step. No Triton import here: model.py adapts it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tritonkit.engine.model import ModelShape, TinyLlama

__all__ = ["ContinuousBatcher", "EngineRequest", "EngineUpdate", "SamplingParams"]

FinishReason = Literal["end_id", "stop_words", "length", "cancelled"]


@dataclass(frozen=True)
class SamplingParams:
    """TensorRT-LLM sampling inputs. top_k = top_p = 0 (both unset) means greedy, as in TRT-LLM."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    seed: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    min_tokens: int = 0

    @property
    def greedy(self) -> bool:
        return (self.top_k in (0, 1) and self.top_p == 0.0) or self.temperature == 0.0


@dataclass
class EngineUpdate:
    """What one step produced for one request: new tokens, and how it ended if it did."""

    request_id: str
    new_tokens: list[int]
    num_output_tokens: int
    finished: bool = False
    finish_reason: FinishReason | None = None


@dataclass
class EngineRequest:
    request_id: str
    input_ids: list[int]
    max_new_tokens: int
    emit: Callable[[EngineUpdate], None]
    end_id: int | None = None
    stop_words: list[list[int]] = field(default_factory=list)
    bad_words: list[list[int]] = field(default_factory=list)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    is_cancelled: Callable[[], bool] = lambda: False
    # engine state
    output: list[int] = field(default_factory=list)
    stop_requested: bool = False


class _Seq:
    def __init__(self, req: EngineRequest, model: TinyLlama | None) -> None:
        self.req = req
        self.cache = model.new_cache() if model is not None else None
        self.pending: list[int] = list(req.input_ids)  # tokens still to run through the model
        self.rng = np.random.default_rng(req.sampling.seed)
        self.counts: dict[int, int] = {}


class ContinuousBatcher:
    """Runs the reference engine: `submit` requests from any thread; `emit` callbacks fire on the
    engine thread with each step's tokens (the caller decides whether to stream or accumulate)."""

    def __init__(
        self,
        shape: ModelShape,
        seed: int = 0,
        max_batch_size: int = 16,
        token_delay_s: float = 0.0,
        compute: Literal["model", "none"] = "model",
        on_step: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.shape = shape
        self.model = TinyLlama(shape, seed) if compute == "model" else None
        self.max_batch_size = max_batch_size
        self.token_delay_s = token_delay_s
        self._queue: deque[EngineRequest] = deque()
        self._active: list[_Seq] = []
        self._by_id: dict[str, EngineRequest] = {}
        self._cv = threading.Condition()
        self._closed = False
        self.steps = 0
        self.tokens_generated = 0
        # metrics hook: (requests in flight, tokens this step, step seconds incl. the delay)
        self.on_step = on_step
        self._thread = threading.Thread(target=self._loop, name="reference-engine", daemon=True)
        self._thread.start()

    # ---- public API ------------------------------------------------------------------------
    def submit(self, req: EngineRequest) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("engine is shutting down")
            self._queue.append(req)
            if req.request_id:
                self._by_id[req.request_id] = req
            self._cv.notify()

    def stop(self, request_id: str) -> bool:
        """TensorRT-LLM's `stop` input: end the running request with this id at the next step."""
        with self._cv:
            req = self._by_id.get(request_id)
            if req is None:
                return False
            req.stop_requested = True
            self._cv.notify()
            return True

    @property
    def in_flight(self) -> int:
        """Requests queued or decoding (the gauge cancellation tests read)."""
        with self._cv:
            return len(self._queue) + len(self._active)

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._closed = True
            for seq in self._active:
                seq.req.stop_requested = True
            for req in self._queue:
                req.stop_requested = True
            self._cv.notify()
        self._thread.join(timeout)

    # ---- engine thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._active and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue and not self._active:
                    return
                while self._queue and len(self._active) < self.max_batch_size:
                    self._active.append(_Seq(self._queue.popleft(), self.model))
                batch = list(self._active)
            t0 = time.perf_counter()
            before = self.tokens_generated
            try:
                self._step(batch)
            except Exception as exc:  # never let one bad step kill the engine thread
                for seq in batch:
                    self._finish(seq, "cancelled")
                print(f"reference engine: step failed: {exc!r}", flush=True)
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            if self.on_step is not None:
                try:
                    self.on_step(
                        self.in_flight, self.tokens_generated - before, time.perf_counter() - t0
                    )
                except Exception as exc:
                    print(f"reference engine: metrics update failed: {exc!r}", flush=True)

    def _finish(self, seq: _Seq, reason: FinishReason, new: list[int] | None = None) -> None:
        with self._cv:
            if seq in self._active:
                self._active.remove(seq)
            if self._by_id.get(seq.req.request_id) is seq.req:
                del self._by_id[seq.req.request_id]
        seq.req.emit(EngineUpdate(seq.req.request_id, new or [], len(seq.req.output), True, reason))

    def _step(self, batch: list[_Seq]) -> None:
        running: list[_Seq] = []
        for seq in batch:
            if seq.req.stop_requested or seq.req.is_cancelled():
                self._finish(seq, "cancelled")
            else:
                running.append(seq)
        if not running:
            return
        self.steps += 1
        if self.model is not None:
            logits = self.model.forward(
                [np.asarray(s.pending, np.int64) for s in running], [s.cache for s in running]
            )
        else:
            logits = None
        for i, seq in enumerate(running):
            req = seq.req
            if logits is not None:
                token = self._sample(seq, logits[i])
            else:
                token = int(seq.rng.integers(0, self.shape.vocab_size))
            seq.pending = [token]
            produced = len(req.output)
            if (
                req.end_id is not None
                and token == req.end_id
                and produced >= req.sampling.min_tokens
            ):
                self._finish(seq, "end_id")
                continue
            req.output.append(token)
            self.tokens_generated += 1
            seq.counts[token] = seq.counts.get(token, 0) + 1
            if self._matches_stop(req):
                self._finish(seq, "stop_words", [token])
            elif len(req.output) >= req.max_new_tokens:
                self._finish(seq, "length", [token])
            else:
                req.emit(EngineUpdate(req.request_id, [token], len(req.output)))

    @staticmethod
    def _matches_stop(req: EngineRequest) -> bool:
        out = req.output
        return any(w and out[-len(w) :] == w for w in req.stop_words)

    def _sample(self, seq: _Seq, logits: np.ndarray) -> int:
        req, sp = seq.req, seq.req.sampling
        logits = logits.astype(np.float64)
        if seq.counts:
            ids = np.fromiter(seq.counts.keys(), np.int64)
            cnt = np.fromiter(seq.counts.values(), np.float64)
            if sp.repetition_penalty != 1.0:
                vals = logits[ids]
                logits[ids] = np.where(
                    vals > 0, vals / sp.repetition_penalty, vals * sp.repetition_penalty
                )
            logits[ids] -= sp.presence_penalty + sp.frequency_penalty * cnt
        for word in req.bad_words:
            if word and (len(word) == 1 or req.output[-(len(word) - 1) :] == word[:-1]):
                logits[word[-1]] = -np.inf
        if req.end_id is not None and len(req.output) < sp.min_tokens:
            logits[req.end_id] = -np.inf
        if sp.greedy:
            return int(np.argmax(logits))
        logits = logits / max(sp.temperature, 1e-5)
        if 0 < sp.top_k < logits.shape[0]:  # top_k >= vocab keeps every token
            kth = np.partition(logits, -sp.top_k)[-sp.top_k]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        if 0.0 < sp.top_p < 1.0:
            order = np.argsort(-probs)
            cum = np.cumsum(probs[order])
            keep = order[: int(np.searchsorted(cum, sp.top_p)) + 1]
            mask = np.zeros_like(probs)
            mask[keep] = probs[keep]
            probs = mask / mask.sum()
        return int(seq.rng.choice(probs.shape[0], p=probs))
