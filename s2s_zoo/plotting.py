"""Alignment heatmaps (attention of each output piece over the source pieces)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def save_alignment_heatmap(
    weights: np.ndarray, source: Sequence[str], target: Sequence[str], path: str | Path
) -> Path:
    """Write a [target, source] attention matrix as a labelled PNG heatmap."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(target), len(source)):
        raise ValueError(f"weights {weights.shape} do not match {len(target)}x{len(source)} labels")
    width = max(4.0, 0.45 * len(source) + 2)
    height = max(3.0, 0.35 * len(target) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), labels=source, rotation=60, ha="right")
    ax.set_yticks(range(len(target)), labels=target)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
