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
FILES = ("model.json", "preprocessor.json", "decoding.json", "target.spm.model", "model.weights.h5")
TEXT_FILES = ("source.spm.model",)  # only text sources have a source vocabulary


def save_bundle(inference: Seq2SeqInference, directory: str | Path) -> Path:
    """Write everything needed to rebuild `inference` into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pre = inference.preprocessor
    (directory / "model.json").write_text(inference.model.config_json())
    (directory / "preprocessor.json").write_text(json.dumps(pre.get_config(), indent=2))
    (directory / "decoding.json").write_text(
        json.dumps(dataclasses.asdict(inference.decoding), indent=2)
    )
    if pre.kind == "text":
        (directory / "source.spm.model").write_bytes(pre.source_proto)
    (directory / "target.spm.model").write_bytes(pre.target_proto)
    inference.model.training_model.save_weights(str(directory / "model.weights.h5"))
    return directory


def resolve_bundle_dir(path: str | Path) -> Path:
    """Accept a bundle directory or an exported version directory (`exported/NAME/1`)."""
    path = Path(path)
    for candidate in (path, path / BUNDLE_IN_EXPORT):
        if (candidate / "model.json").is_file():
            kind = _preprocessor_config(candidate).get("kind", "text")
            needed = FILES + (TEXT_FILES if kind == "text" else ())
            missing = [f for f in needed if not (candidate / f).is_file()]
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
    pre_cfg = _preprocessor_config(directory)
    kind = pre_cfg.pop("kind", "text")
    target_proto = (directory / "target.spm.model").read_bytes()
    if kind == "text":
        source_proto = (directory / "source.spm.model").read_bytes()
        preprocessor = TextPreprocessor(source_proto, target_proto, **pre_cfg)
    else:
        from s2s_zoo.data.media_preprocessors import media_preprocessor_from_config

        preprocessor = media_preprocessor_from_config({"kind": kind, **pre_cfg}, target_proto)
    model = build_from_json((directory / "model.json").read_text())
    if load_weights:
        model.training_model.load_weights(str(directory / "model.weights.h5"))
    decoding = DecodingConfig(**json.loads((directory / "decoding.json").read_text()))
    return Seq2SeqInference(preprocessor, model, decoding)


def _preprocessor_config(directory: Path) -> dict:
    path = directory / "preprocessor.json"
    return json.loads(path.read_text()) if path.is_file() else {}
