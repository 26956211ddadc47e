"""PNG plots of a campaign (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def latency_vs_load(levels: Sequence[dict[str, Any]], path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    users = [r["users"] for r in levels]
    for ax, metric in zip(axes, ("ttft_ms", "tpot_ms", "e2e_ms"), strict=True):
        for q, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
            ax.plot(users, [r[f"{metric}_{q}"] for r in levels], style, label=q)
        ax.set_xlabel("concurrent users")
        ax.set_ylabel(metric.replace("_ms", " (ms)").upper())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Latency percentiles vs load")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def throughput_vs_concurrency(levels: Sequence[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    users = [r["users"] for r in levels]
    ax.plot(users, [r["output_token_throughput_tps"] for r in levels], "o-", label="output tok/s")
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("output tokens/s")
    ax2 = ax.twinx()
    ax2.plot(users, [r["request_throughput_rps"] for r in levels], "s--", color="tab:orange",
             label="requests/s")
    ax2.set_ylabel("requests/s")
    ax.grid(alpha=0.3)
    fig.legend(loc="upper left")
    fig.suptitle("Throughput vs concurrency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def distributions(ttft_ms: Sequence[float], tpot_ms: Sequence[float], itl_ms: Sequence[float],
                  path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, data, title in ((axes[0], ttft_ms, "TTFT (ms)"), (axes[1], tpot_ms, "TPOT (ms)"),
                            (axes[2], itl_ms, "ITL gaps (ms)")):
        if len(data):
            ax.hist(data, bins=40, color="tab:blue", alpha=0.8)
        ax.set_title(title)
        ax.set_ylabel("requests" if title != "ITL gaps (ms)" else "gaps")
        ax.grid(alpha=0.3)
    fig.suptitle("Distributions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
