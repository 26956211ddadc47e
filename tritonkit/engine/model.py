"""A small Llama-architecture transformer in numpy with seeded weights.

RMSNorm, rotary position embeddings, grouped-query attention with a per-sequence KV cache and a
SwiGLU MLP, over the real tokenizer's full vocabulary. Its weights are random (seeded), so its text
is gibberish, but it exercises every path a real engine does: prefill, decode, batching, sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KVCache", "ModelShape", "TinyLlama"]


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int
    num_layers: int = 2
    hidden_size: int = 64
    num_attention_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    rope_theta: float = 500000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class KVCache:
    """Keys and values of one sequence, per layer, grown in chunks."""

    def __init__(self, shape: ModelShape, capacity: int = 64) -> None:
        self.shape = shape
        self.length = 0
        kv, d = shape.num_kv_heads, shape.head_dim
        self.k = [np.zeros((kv, capacity, d), np.float32) for _ in range(shape.num_layers)]
        self.v = [np.zeros((kv, capacity, d), np.float32) for _ in range(shape.num_layers)]

    def _reserve(self, n: int) -> None:
        cap = self.k[0].shape[1]
        if self.length + n <= cap:
            return
        new_cap = max(cap * 2, self.length + n)
        for arrs in (self.k, self.v):
            for i, a in enumerate(arrs):
                grown = np.zeros((a.shape[0], new_cap, a.shape[2]), np.float32)
                grown[:, : self.length] = a[:, : self.length]
                arrs[i] = grown

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store k, v ([kv_heads, n, d]) at the current position; return the full cache so far."""
        n = k.shape[1]
        if layer == 0:
            self._reserve(n)
        start = self.length
        self.k[layer][:, start : start + n] = k
        self.v[layer][:, start : start + n] = v
        end = start + n
        if layer == self.shape.num_layers - 1:
            self.length = end
        return self.k[layer][:, :end], self.v[layer][:, :end]


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class TinyLlama:
    """Seeded random weights; `forward` runs any number of new tokens for a batch of sequences."""

    def __init__(self, shape: ModelShape, seed: int = 0) -> None:
        self.shape = shape
        rng = np.random.default_rng(seed)
        h, d = shape.hidden_size, shape.head_dim
        q, kv = shape.num_attention_heads * d, shape.num_kv_heads * d

        def w(*dims: int) -> np.ndarray:
            return (rng.standard_normal(dims) / np.sqrt(dims[0])).astype(np.float32)

        self.embed = rng.standard_normal((shape.vocab_size, h)).astype(np.float32)
        self.layers = [
            {
                "attn_norm": np.ones(h, np.float32),
                "wq": w(h, q),
                "wk": w(h, kv),
                "wv": w(h, kv),
                "wo": w(q, h),
                "mlp_norm": np.ones(h, np.float32),
                "w_gate": w(h, shape.intermediate_size),
                "w_up": w(h, shape.intermediate_size),
                "w_down": w(shape.intermediate_size, h),
            }
            for _ in range(shape.num_layers)
        ]
        self.final_norm = np.ones(h, np.float32)
        # Scaled so that logits are spread enough for sampling to matter.
        self.lm_head = (w(h, shape.vocab_size) * 4.0).astype(np.float32)
        inv = 1.0 / (shape.rope_theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        self._inv_freq = inv

    def new_cache(self) -> KVCache:
        return KVCache(self.shape)

    def _rope(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """x: [heads, n, d]; rotate-half RoPE at the given absolute positions."""
        ang = np.outer(positions, self._inv_freq)  # [n, d/2]
        cos = np.cos(ang).astype(np.float32)
        sin = np.sin(ang).astype(np.float32)
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)

    def forward(self, tokens: list[np.ndarray], caches: list[KVCache]) -> np.ndarray:
        """Run new tokens for each sequence (ragged); return last-position logits [batch, vocab]."""
        s = self.shape
        d, nh, nkv = s.head_dim, s.num_attention_heads, s.num_kv_heads
        group = nh // nkv
        lens = [len(t) for t in tokens]
        starts = [c.length for c in caches]
        x = self.embed[np.concatenate(tokens)]  # [total, h]
        offsets = np.cumsum([0, *lens])
        for li, layer in enumerate(self.layers):
            hn = _rms_norm(x, layer["attn_norm"], s.rms_norm_eps)
            qa, ka, va = hn @ layer["wq"], hn @ layer["wk"], hn @ layer["wv"]
            attn_out = np.empty((x.shape[0], nh * d), np.float32)
            for b, cache in enumerate(caches):
                lo, hi = offsets[b], offsets[b + 1]
                n = hi - lo
                pos = np.arange(starts[b], starts[b] + n)
                q = self._rope(qa[lo:hi].reshape(n, nh, d).transpose(1, 0, 2), pos)
                k = self._rope(ka[lo:hi].reshape(n, nkv, d).transpose(1, 0, 2), pos)
                v = va[lo:hi].reshape(n, nkv, d).transpose(1, 0, 2)
                kc, vc = cache.append(li, k, v)  # [nkv, T, d]
                kc = np.repeat(kc, group, axis=0)
                vc = np.repeat(vc, group, axis=0)
                scores = q @ kc.transpose(0, 2, 1) / np.sqrt(d)  # [nh, n, T]
                total = kc.shape[1]
                causal = np.arange(total)[None, :] > (pos[:, None])
                scores = np.where(causal[None], -np.inf, scores)
                scores = scores - scores.max(axis=-1, keepdims=True)
                p = np.exp(scores)
                p /= p.sum(axis=-1, keepdims=True)
                attn_out[lo:hi] = (p @ vc).transpose(1, 0, 2).reshape(n, nh * d)
            x = x + attn_out @ layer["wo"]
            hn = _rms_norm(x, layer["mlp_norm"], s.rms_norm_eps)
            x = x + (_silu(hn @ layer["w_gate"]) * (hn @ layer["w_up"])) @ layer["w_down"]
        last = x[offsets[1:] - 1]
        return _rms_norm(last, self.final_norm, s.rms_norm_eps) @ self.lm_head
