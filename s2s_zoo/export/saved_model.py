"""Write a `Seq2SeqInference` as a TF Serving SavedModel: `BASE/NAME/VERSION/`.

Uses `keras.export.ExportArchive` because a plain `tf.saved_model.save` of Keras 3
layers loads in TF2 Python but fails on TF Serving's Session loader ("Could not
find variable ..."). The version is written to a hidden temporary directory and
renamed into place, so a server polling the model directory never sees a
half-written version (TF Serving ignores names that are not integers).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import keras

from s2s_zoo.bundle import BUNDLE_IN_EXPORT, WEIGHTS_COLLECTION, save_bundle
from s2s_zoo.inference import Seq2SeqInference


def existing_versions(model_dir: str | Path) -> list[int]:
    """Integer version directories under `model_dir`, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if re.fullmatch(r"\d+", p.name))


def next_version(model_dir: str | Path) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def export_saved_model(
    inference: Seq2SeqInference,
    model_dir: str | Path,
    version: int | None = None,
    task: str | None = None,
) -> Path:
    """Export to `model_dir/VERSION` (next free version by default); never overwrite."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError("SavedModel versions are positive integers")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists; versions are never overwritten")
    tmp = model_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        archive = keras.export.ExportArchive()
        archive.track(inference.model.training_model)  # all weights; the views share them
        archive.track(inference.preprocessor)  # the tokenizer resources
        # in model order, so fine-tuning from an export restores the same weights
        archive.add_variable_collection(
            WEIGHTS_COLLECTION, list(inference.model.training_model.weights)
        )
        for name, function in inference.signatures.items():
            archive.add_endpoint(name, function)
        archive.write_out(str(tmp), verbose=False)
        save_bundle(
            inference, tmp / BUNDLE_IN_EXPORT, weights=False, task=task
        )  # weights: variables/
        os.rename(tmp, final)  # atomic on one filesystem
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final
