"""A trained model on disk: config, tokenizers, decoding settings (and weights).

One layout serves two places:
- a **checkpoint** directory (`checkpoints/NAME/VERSION/`), with the weights in
  `model.weights.h5`;
- the `assets.extra/s2s_zoo/` folder inside every export, *without* a weights file:
  the SavedModel's own variables hold the weights once, and `load_bundle` reads
  them back through the export's `model_weights` collection.
`--init-from` accepts either, so fine-tuning always continues with the exact
vocabulary and architecture it started from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from s2s_zoo.data.preprocessor import load_preprocessor
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_json

BUNDLE_IN_EXPORT = Path("assets.extra") / "s2s_zoo"
CONFIG_FILES = ("model.json", "preprocessor.json", "decoding.json")
WEIGHTS_FILE = "model.weights.h5"
WEIGHTS_COLLECTION = "model_weights"  # the export's variable collection, in model order


def save_bundle(
    inference: Seq2SeqInference,
    directory: str | Path,
    weights: bool = True,
    task: str | None = None,
) -> Path:
    """Write everything needed to rebuild `inference` into `directory`.

    `task` (a registered task name) lets `s2s-zoo evaluate` read test files for it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pre = inference.preprocessor
    if task:
        (directory / "task.json").write_text(json.dumps({"task": task}))
    (directory / "model.json").write_text(inference.model.config_json())
    (directory / "preprocessor.json").write_text(json.dumps(pre.get_config(), indent=2))
    (directory / "decoding.json").write_text(
        json.dumps(dataclasses.asdict(inference.decoding), indent=2)
    )
    pre.save(directory)
    if weights:
        inference.model.training_model.save_weights(str(directory / WEIGHTS_FILE))
    return directory


def resolve_bundle_dir(path: str | Path) -> Path:
    """Accept a bundle directory, an exported version directory (`exported/NAME/1`), or a
    folder of versions (`checkpoints/NAME`, `exported/NAME`: the highest version)."""
    path = Path(path)
    versions = sorted(
        (int(p.name), p) for p in path.glob("[0-9]*") if p.name.isdigit() and p.is_dir()
    )
    if versions and not (path / "model.json").is_file():
        path = versions[-1][1]
    for candidate in (path, path / BUNDLE_IN_EXPORT):
        if (candidate / "model.json").is_file():
            missing = [f for f in CONFIG_FILES if not (candidate / f).is_file()]
            if candidate == path and not (path / WEIGHTS_FILE).is_file():
                missing.append(WEIGHTS_FILE)
            if missing:
                raise FileNotFoundError(
                    f"{candidate} is an incomplete s2s-zoo bundle: missing {missing}"
                )
            return candidate
    raise FileNotFoundError(
        f"{path} is neither an s2s-zoo checkpoint (model.json, preprocessor.json, "
        f"{WEIGHTS_FILE}, ...) nor an exported SavedModel version directory containing "
        f"{BUNDLE_IN_EXPORT}/"
    )


def load_bundle(path: str | Path, load_weights: bool = True) -> Seq2SeqInference:
    """Rebuild the model, tokenizers and decoding settings saved by `save_bundle`."""
    directory = resolve_bundle_dir(path)
    preprocessor = load_preprocessor(
        directory, json.loads((directory / "preprocessor.json").read_text())
    )
    model = build_from_json((directory / "model.json").read_text())
    if load_weights:
        if (directory / WEIGHTS_FILE).is_file():
            model.training_model.load_weights(str(directory / WEIGHTS_FILE))
            _check_weight_count(directory / WEIGHTS_FILE, model.training_model)
        else:  # an export: the weights live in the SavedModel's variables
            _load_export_weights(model.training_model, directory.parents[1])
    decoding = DecodingConfig(**json.loads((directory / "decoding.json").read_text()))
    return Seq2SeqInference(preprocessor, model, decoding)


def bundle_task(path: str | Path) -> str | None:
    """The task name a bundle was trained for, when it recorded one."""
    marker = resolve_bundle_dir(path) / "task.json"
    return json.loads(marker.read_text())["task"] if marker.is_file() else None


def _check_weight_count(path: Path, model) -> None:
    """Refuse a weights file that holds more weights than the rebuilt model: Keras loads
    the layers the model has and ignores the rest, so a model.json whose optional layers
    are off (an older or edited config) would load and answer differently, silently."""
    import h5py

    names: list[str] = []

    def visit(name: str, item) -> None:
        if isinstance(item, h5py.Dataset) and not name.startswith("optimizer"):
            names.append(name)

    with h5py.File(path, "r") as weights_file:
        weights_file.visititems(visit)
    if len(names) != len(model.weights):
        raise ValueError(
            f"{path} holds {len(names)} model weights, the model rebuilt from model.json has "
            f"{len(model.weights)}: the weights are not this config's (was an option of the "
            "model changed or added since they were saved?)"
        )


def _load_export_weights(model, export_dir: Path) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    saved = list(getattr(loaded, WEIGHTS_COLLECTION, []))
    if len(saved) != len(model.weights):
        raise ValueError(
            f"{export_dir} holds {len(saved)} model weights, the rebuilt model has "
            f"{len(model.weights)}: the export does not match its own model.json"
        )
    for variable, value in zip(model.weights, saved, strict=True):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"{export_dir}: weight {variable.path} has shape {tuple(value.shape)} in the "
                f"export and {tuple(variable.shape)} in the rebuilt model"
            )
        variable.assign(value.numpy())
