"""A trained model on disk: config, tokenizers, decoding settings and weights.

The same directory layout is a training checkpoint and the `assets.extra/s2s_zoo/`
folder inside every export, so `--init-from` accepts either and fine-tuning
always continues with the exact vocabulary and architecture it started from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.models.registry import build_from_json

BUNDLE_IN_EXPORT = Path("assets.extra") / "s2s_zoo"
FILES = (
    "model.json",
    "preprocessor.json",
    "decoding.json",
    "source.spm.model",
    "target.spm.model",
    "model.weights.h5",
)


def save_bundle(inference: Seq2SeqInference, directory: str | Path) -> Path:
    """Write everything needed to rebuild `inference` into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pre = inference.preprocessor
    (directory / "model.json").write_text(inference.model.config_json())
    (directory / "preprocessor.json").write_text(
        json.dumps(
            {
                "max_source_length": pre.max_source_length,
                "max_target_length": pre.max_target_length,
            },
            indent=2,
        )
    )
    (directory / "decoding.json").write_text(
        json.dumps(dataclasses.asdict(inference.decoding), indent=2)
    )
    (directory / "source.spm.model").write_bytes(pre.source_proto)
    (directory / "target.spm.model").write_bytes(pre.target_proto)
    inference.model.training_model.save_weights(str(directory / "model.weights.h5"))
    return directory


def resolve_bundle_dir(path: str | Path) -> Path:
    """Accept a bundle directory or an exported version directory (`exported/NAME/1`)."""
    path = Path(path)
    for candidate in (path, path / BUNDLE_IN_EXPORT):
        if (candidate / "model.json").is_file():
            missing = [f for f in FILES if not (candidate / f).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{candidate} is an incomplete s2s-zoo bundle: missing {missing}"
                )
            return candidate
    raise FileNotFoundError(
        f"{path} is neither an s2s-zoo checkpoint (model.json, *.spm.model, model.weights.h5) "
        f"nor an exported SavedModel version directory containing {BUNDLE_IN_EXPORT}/"
    )


def load_bundle(path: str | Path, load_weights: bool = True) -> Seq2SeqInference:
    """Rebuild the model, tokenizers and decoding settings saved by `save_bundle`."""
    directory = resolve_bundle_dir(path)
    pre_cfg = json.loads((directory / "preprocessor.json").read_text())
    preprocessor = TextPreprocessor(
        (directory / "source.spm.model").read_bytes(),
        (directory / "target.spm.model").read_bytes(),
        **pre_cfg,
    )
    model = build_from_json((directory / "model.json").read_text())
    if load_weights:
        model.training_model.load_weights(str(directory / "model.weights.h5"))
    decoding = DecodingConfig(**json.loads((directory / "decoding.json").read_text()))
    return Seq2SeqInference(preprocessor, model, decoding)
