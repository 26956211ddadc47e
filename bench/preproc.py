"""Section 2: preprocessing. Requests/s of `ChatFormatter.encode_messages` (template rendering +
tokenization) vs the raw `tokenizers` encode of the same rendered text."""

from __future__ import annotations

import json

from bench.common import ratio, summary, time_per_call
from tritonkit.chat import ChatFormatter
from tritonkit.deployment import parse_deployment

MODELS = ("athene-70b", "athene-v2-chat")
REPS = 7

MESSAGES = json.dumps([
    {"role": "system", "content": "You are a concise assistant. Answer in plain English."},
    {"role": "user", "content": "What does Triton's ensemble scheduler do with a decoupled step?"},
    {"role": "assistant", "content": "It forwards every response of the step to the next one, "
                                     "so one request can produce many downstream responses."},
    {"role": "user", "content": "And how would a client cancel such a stream? Give an example."},
])


def run() -> dict:
    out: dict = {"reps": REPS, "models": {}}
    for model in MODELS:
        fmt = ChatFormatter.from_deployment(parse_deployment({"model": model}, source="bench"))
        rendered = fmt.render(MESSAGES)
        backend = fmt.tokenizer.backend_tokenizer
        add_special = fmt.spec.tokenizer.add_special_tokens
        n_tokens = len(fmt.encode_messages(MESSAGES))
        chat_rps, raw_rps = [], []
        for _ in range(REPS):
            chat_rps.append(1.0 / time_per_call(lambda f=fmt: f.encode_messages(MESSAGES)))
            raw_rps.append(1.0 / time_per_call(
                lambda b=backend, a=add_special, t=rendered: b.encode(t, add_special_tokens=a)))
        out["models"][model] = {
            "prompt_tokens": n_tokens,
            "chat_encode_rps": summary(chat_rps),
            "raw_encode_rps": summary(raw_rps),
            "raw_over_chat": ratio(raw_rps, chat_rps),
        }
    return out
