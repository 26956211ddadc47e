"""Per-GPU memory model of a TensorRT-LLM engine: weights, activations, runtime, KV cache.

All sizes in bytes unless a name ends in ``_gib``. The assumptions (stated in docs/build.md):

- linear-layer weights use the precision's bytes; embedding, lm_head, norms and biases stay 16-bit;
- TP shards every linear layer and the lm_head; the embedding is sharded only when the checkpoint
  is converted with ``--use_parallel_embedding`` (convert_checkpoint.py path), else replicated;
- PP splits the layers evenly; the first stage also holds the embedding, the last the lm_head;
- activations are fixed at build time by ``max_num_tokens`` (one layer's widest buffers, 16-bit)
  plus FP32 logits for ``max_batch_size`` rows;
- runtime: CUDA context, cuBLAS/TensorRT workspaces (``RUNTIME_GIB``) plus NCCL buffers when
  world size > 1 (``NCCL_GIB``);
- the KV pool is ``kv_cache_free_gpu_mem_fraction`` of what is left (TensorRT-LLM default 0.9).
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonkit.build.precision import PrecisionSpec
from tritonkit.catalog import Architecture

__all__ = ["GIB", "NCCL_GIB", "RUNTIME_GIB", "MemoryReport", "memory_report", "weight_bytes"]

GIB = 1024**3
RUNTIME_GIB = 1.5
NCCL_GIB = 0.5


def _layer_params(a: Architecture) -> tuple[int, int]:
    """(quantizable linear weights, 16-bit extras) of one decoder layer."""
    h, kv, q = a.hidden_size, a.num_kv_heads * a.head_dim, a.num_attention_heads * a.head_dim
    linear = h * q + 2 * h * kv + q * h + 3 * h * a.intermediate_size
    extras = 2 * h + ((q + 2 * kv) if a.qkv_bias else 0)
    return linear, extras


def weight_bytes(
    a: Architecture, p: PrecisionSpec, tp: int, pp: int, parallel_embedding: bool
) -> float:
    """Weight bytes on the fullest GPU (the PP stage with the most bytes)."""
    linear, extras = _layer_params(a)
    per_stage_layers = (a.num_layers / pp) * (linear * p.weight_bytes + extras * 2) / tp
    emb = a.vocab_size * a.hidden_size * 2 / (tp if parallel_embedding else 1)
    head = (
        0 if a.tie_word_embeddings else a.vocab_size * a.hidden_size * 2 / tp
    ) + a.hidden_size * 2
    if pp == 1:
        return per_stage_layers + emb + head
    return per_stage_layers + max(emb, head)


def kv_bytes_per_token(a: Architecture, p: PrecisionSpec, tp: int, pp: int) -> float:
    """KV-cache bytes one token occupies on one GPU (K and V, its layers, its heads)."""
    return 2 * (a.num_layers / pp) * (a.num_kv_heads / tp) * a.head_dim * p.kv_bytes


def activation_bytes(a: Architecture, tp: int, max_num_tokens: int, max_batch_size: int) -> float:
    """Build-time activation buffers: the widest per-layer tensors for max_num_tokens, + logits."""
    q_kv = (a.num_attention_heads + 2 * a.num_kv_heads) * a.head_dim
    per_token = 4 * a.hidden_size + (2 * a.intermediate_size + q_kv) / tp
    return max_num_tokens * per_token * 2 + max_batch_size * a.vocab_size * 4


@dataclass(frozen=True)
class MemoryReport:
    """Where one GPU's memory goes."""

    gpu_memory_gib: float
    weights_gib: float
    activations_gib: float
    runtime_gib: float
    kv_pool_gib: float
    kv_bytes_per_token: float
    kv_cache_tokens: int
    kv_tokens_required: int
    headroom_gib: float  # left unallocated: the (1 - fraction) share, or the deficit if negative

    @property
    def fits(self) -> bool:
        return self.kv_pool_gib > 0 and self.kv_cache_tokens >= self.kv_tokens_required


def memory_report(
    a: Architecture,
    p: PrecisionSpec,
    gpu_memory_gib: float,
    *,
    tp: int,
    pp: int,
    parallel_embedding: bool,
    max_batch_size: int,
    max_seq_len: int,
    max_num_tokens: int,
    kv_fraction: float,
) -> MemoryReport:
    w = weight_bytes(a, p, tp, pp, parallel_embedding) / GIB
    act = activation_bytes(a, tp, max_num_tokens, max_batch_size) / GIB
    rt = RUNTIME_GIB + (NCCL_GIB if tp * pp > 1 else 0.0)
    free = gpu_memory_gib - w - act - rt
    pool = max(free, 0.0) * kv_fraction
    per_tok = kv_bytes_per_token(a, p, tp, pp)
    tokens = int(pool * GIB // per_tok)
    return MemoryReport(
        gpu_memory_gib=gpu_memory_gib,
        weights_gib=w,
        activations_gib=act,
        runtime_gib=rt,
        kv_pool_gib=pool,
        kv_bytes_per_token=per_tok,
        kv_cache_tokens=tokens,
        kv_tokens_required=max_batch_size * max_seq_len,
        headroom_gib=free - pool if free > 0 else free,
    )
