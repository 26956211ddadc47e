"""A Hugging Face checkpoint folder (config, generation config, tokenizer, chat template) without
weights, for serving a model that has no catalog entry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tritonkit.tokenizer_assets import tokenizer_dir_for

#: A template of the checkpoint's own (not any catalog template): proves the folder's wins.
CUSTOM_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n[{{ loop.index }}] {{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

LLAMA31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32,
    "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    "bos_token_id": 128000, "eos_token_id": 128009, "torch_dtype": "bfloat16",
}


def make_llama31_checkpoint(dest: Path) -> Path:
    """A Llama-3.1-8B-shaped checkpoint folder with its own chat template (no weights)."""
    dest.mkdir(parents=True, exist_ok=True)
    src = tokenizer_dir_for("nemotron-70b")
    shutil.copyfile(src / "tokenizer.json", dest / "tokenizer.json")
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text())
    tok_cfg["chat_template"] = CUSTOM_TEMPLATE
    (dest / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    (dest / "config.json").write_text(json.dumps(LLAMA31_8B_CONFIG))
    (dest / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}))
    return dest
