"""Checkpoint averaging: the element-wise mean of the last K weight files of one run.

Averaging the weights of the last few checkpoints (Vaswani et al. 2017, sec. 6.1)
smooths the noise of the final updates and usually gains a little BLEU for free.
Keras has no such tool, so this reads the `.weights.h5` files (h5py ships with
Keras) directly: every floating-point array outside the optimizer is averaged
(in float64, stored back in its own dtype); integer arrays (step counters, seed
states) and the optimizer's state are copied from the newest file, so the result
loads with `model.load_weights` like any checkpoint of that model.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np

OPTIMIZER_GROUP = "optimizer"


def latest_checkpoints(directory: str | Path, k: int, pattern: str = "*.weights.h5") -> list[Path]:
    """The `k` most recently written files matching `pattern` in `directory`, oldest first."""
    if k < 1:
        raise ValueError("k must be at least 1")
    files = sorted(Path(directory).glob(pattern), key=lambda p: (p.stat().st_mtime_ns, p.name))
    if not files:
        raise FileNotFoundError(f"{directory}: no files matching {pattern}")
    return files[-k:]


def _arrays(h5: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    h5.visititems(visit)
    return found


def _averaged(name: str, dataset: h5py.Dataset) -> bool:
    top = name.split("/", 1)[0]
    return top != OPTIMIZER_GROUP and np.issubdtype(dataset.dtype, np.floating)


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write the mean of the weight files `paths` (same architecture) to `out`.

    Raises ValueError naming the file and array when the files do not hold the
    same arrays with the same shapes and dtypes.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no checkpoints to average")
    out = Path(out)
    if out.resolve() in {p.resolve() for p in paths}:
        raise ValueError(f"{out}: the output must not be one of the inputs")
    with ExitStack() as stack:
        listings = [_arrays(stack.enter_context(h5py.File(p, "r"))) for p in paths]
        reference = listings[-1]
        for path, arrays in zip(paths[:-1], listings[:-1], strict=True):
            _check_same(path, arrays, paths[-1], reference)
        sums = {
            name: sum(arrays[name][()].astype(np.float64) for arrays in listings)
            for name, dataset in reference.items()
            if _averaged(name, dataset)
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.copyfile(paths[-1], tmp)  # structure, attributes, optimizer and integer state
    with h5py.File(tmp, "r+") as h5:
        for name, total in sums.items():
            h5[name][...] = (total / len(paths)).astype(h5[name].dtype)
    tmp.replace(out)
    return out


def _check_same(path: Path, arrays: dict, ref_path: Path, reference: dict) -> None:
    missing = sorted(set(reference) ^ set(arrays))
    if missing:
        raise ValueError(
            f"{path}: array {missing[0]} is in only one of {path.name} and {ref_path.name}; "
            "average checkpoints of one architecture only"
        )
    for name, dataset in reference.items():
        other = arrays[name]
        if other.shape != dataset.shape or other.dtype != dataset.dtype:
            raise ValueError(
                f"{path}: array {name} is {other.dtype}{list(other.shape)} but "
                f"{dataset.dtype}{list(dataset.shape)} in {ref_path.name}"
            )
