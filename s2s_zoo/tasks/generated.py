"""Bookkeeping for the embedded default tasks that recipes generate on first use.

A task directory holds `train.tsv`, `valid.tsv`, `test.tsv` and a `task.json`
recording the generator's parameters, so a rerun with the same parameters reuses
the files and a changed parameter regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPLITS = ("train", "valid", "test")


def split_files(out_dir: Path) -> dict[str, Path]:
    return {split: out_dir / f"{split}.tsv" for split in SPLITS}


def is_made(out_dir: Path, params: dict[str, Any]) -> bool:
    """Whether `out_dir` already holds a complete task made with `params`."""
    marker = out_dir / "task.json"
    if not marker.is_file() or json.loads(marker.read_text()).get("params") != params:
        return False
    return all(path.is_file() for path in split_files(out_dir).values())


def mark_made(out_dir: Path, params: dict[str, Any], **details: Any) -> None:
    """Record `params` (and JSON-able `details`, e.g. held-out voices) last, once all is written."""
    (out_dir / "task.json").write_text(json.dumps({"params": params, **details}))
