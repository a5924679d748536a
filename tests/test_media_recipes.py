"""Captioning and speech end to end at tiny size: recipe -> fit -> export -> TF Serving path.

Each recipe runs on a small copy of its embedded default task (digit images made
from scikit-learn's digits; numbers spoken by espeak-ng), so the exported model is
checked with real PNG and WAV bytes, plus unreadable ones.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.export.conformance import run_in_session
from s2s_zoo.training.runner import run

REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed"
)


def load_recipe(relative: str):
    spec = importlib.util.spec_from_file_location("recipe_under_test", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


def tiny_caption_recipe():
    recipe = load_recipe("recipes/captioning/show_attend_tell.py")
    return dataclasses.replace(
        recipe,
        model_overrides={
            "backbone": "cnn",
            "embedding_dim": 16,
            "decoder_units": 32,
            "feature_dim": 32,
            "attention_units": 16,
        },
        options={
            **recipe.options,
            "front_end": {"height": 32, "width": 128},
            "default_task": {"num_train": 96, "num_valid": 16, "num_test": 16},
        },
    )


def tiny_speech_recipe():
    recipe = load_recipe("recipes/speech/las.py")
    return dataclasses.replace(
        recipe,
        model_overrides={
            "embedding_dim": 16,
            "encoder_units": 16,
            "decoder_units": 32,
            "encoder_layers": 1,
            "attention_units": 16,
            "conv_channels": 4,
        },
        options={
            **recipe.options,
            "default_task": {"num_train": 48, "num_valid": 8, "num_test": 8},
        },
    )


def run_tiny(recipe, tmp_path: Path, data_dir: Path) -> dict:
    return run(
        recipe,
        [
            "--data-dir",
            str(data_dir),
            "--export-dir",
            str(tmp_path / "exported"),
            "--checkpoint-dir",
            str(tmp_path / "checkpoint"),
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--learning-rate",
            "1e-2",
            "--patience",
            "0",
            "--vocab-size",
            "40",
        ],  # fmt: skip
    )


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("captioning")
    return run_tiny(tiny_caption_recipe(), tmp, tmp / "data"), tmp / "data"


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    tmp = tmp_path_factory.mktemp("speech")
    return run_tiny(tiny_speech_recipe(), tmp, tmp / "data"), tmp / "data"


def _served(export_path: Path, signature: str, input_name: str, items: list[bytes]) -> dict:
    call = {"signature": signature, "inputs": {input_name: [_b64(x) for x in items]}}
    return run_in_session(export_path, [call])["results"][0]


def _b64(data: bytes) -> dict:
    import base64

    return {"b64": base64.b64encode(data).decode("ascii")}


def test_captioning_recipe_trains_exports_and_serves(caption_run):
    # run() already raised unless the Session-path check passed with real PNG bytes
    result, _ = caption_run
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0], losses
    assert result["export_path"].name == "1"
    assert {"greedy_bleu4", "beam_bleu4", "beam_exact_match"} <= set(result["metrics"])


def test_speech_recipe_trains_exports_and_serves(speech_run):
    result, _ = speech_run
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0], losses
    assert {"greedy_wer", "beam_cer"} <= set(result["metrics"])


def _first_files(data_dir: Path, split: str, column: int = 0, n: int = 3) -> list[Path]:
    lines = (data_dir / f"{split}.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines if line.strip()]
    rows = [r for r in rows if r[column] not in ("path", "image_path", "image")]  # header
    return [(data_dir / r[column]).resolve() for r in rows[:n]]


def test_bad_images_get_an_error_and_leave_the_batch_alone(caption_run):
    result, data_dir = caption_run
    good = [p.read_bytes() for p in _first_files(data_dir, "test", n=2)]
    truncated = good[0][: len(good[0]) // 2]
    batch = [good[0], truncated, b"not an image at all", b"", good[1]]
    for signature in ("serving_default", "greedy", "beam"):
        out = _served(result["export_path"], signature, "images", batch)
        alone = _served(result["export_path"], signature, "images", [good[0], good[1]])
        assert out["errors"][0] == out["errors"][4] == ""
        assert all(out["errors"][i] for i in (1, 2, 3)), out["errors"]
        assert [out["outputs"][i] for i in (1, 2, 3)] == ["", "", ""]
        assert [out["outputs"][0], out["outputs"][4]] == alone["outputs"]
        np.testing.assert_allclose(
            [out["scores"][0], out["scores"][4]], alone["scores"], rtol=1e-5, atol=1e-5
        )


def test_bad_wavs_get_an_error_and_leave_the_batch_alone(speech_run):
    from s2s_zoo.data.wav_files import wav_bytes

    result, data_dir = speech_run
    good = [p.read_bytes() for p in _first_files(data_dir, "test", n=2)]
    tone = np.sin(np.linspace(0, 2000, 22050)).astype(np.float32) * 0.3
    wrong_rate = wav_bytes(tone, 22050)
    empty = wav_bytes(np.zeros(0, np.float32), 16000)
    batch = [good[0], wrong_rate, empty, b"RIFF junk", good[1]]
    out = _served(result["export_path"], "beam", "audio", batch)
    alone = _served(result["export_path"], "beam", "audio", [good[0], good[1]])
    assert out["errors"][0] == out["errors"][4] == ""
    assert "22050" in out["errors"][1] and "16000" in out["errors"][1]
    assert out["errors"][2] and out["errors"][3]
    assert [out["outputs"][i] for i in (1, 2, 3)] == ["", "", ""]
    assert [out["outputs"][0], out["outputs"][4]] == alone["outputs"]


def test_exported_audio_features_equal_the_training_pipeline(speech_run):
    """The same WAV file through the tf.data pipeline and through the served graph."""
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.data.media_pipeline import make_audio_dataset

    result, data_dir = speech_run
    path = _first_files(data_dir, "valid", n=1)[0]
    inference = load_bundle(result["export_path"])
    ds = make_audio_dataset([(str(path), "x")], inference.preprocessor, 1, shuffle=False)
    (features, mask, _), _ = next(iter(ds))
    served = _served(result["export_path"], "preprocess", "audio", [path.read_bytes()])
    assert served["errors"] == [""]
    np.testing.assert_array_equal(np.asarray(served["frame_mask"]), mask.numpy())
    np.testing.assert_allclose(np.asarray(served["features"]), features.numpy(), atol=1e-4)


def test_exported_image_preprocessing_equals_the_training_pipeline(caption_run):
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.data.media_pipeline import make_image_dataset

    result, data_dir = caption_run
    path = _first_files(data_dir, "valid", n=1)[0]
    inference = load_bundle(result["export_path"])
    ds = make_image_dataset([(str(path), "x")], inference.preprocessor, 1, shuffle=False)
    (images, _), _ = next(iter(ds))
    served = _served(result["export_path"], "preprocess", "images", [path.read_bytes()])
    assert served["errors"] == [""]
    np.testing.assert_allclose(np.asarray(served["images"]), images.numpy(), atol=1e-6)


def test_captioning_fine_tune_writes_version_2(caption_run, tmp_path):
    result, data_dir = caption_run
    recipe = tiny_caption_recipe()
    export_base = result["export_path"].parent.parent
    second = run(
        recipe,
        [
            "--data-dir",
            str(data_dir),
            "--init-from",
            str(result["export_path"]),
            "--export-dir",
            str(export_base),
            "--checkpoint-dir",
            str(tmp_path / "ckpt2"),
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--no-serving-check",
        ],  # fmt: skip
    )
    assert second["export_path"].name == "2" and result["export_path"].is_dir()
    config = json.loads((second["checkpoint_dir"] / "model.json").read_text())
    assert (config["encoder"]["type"], config["decoder"]["type"]) == ("image_cnn", "rnn")


def test_speech_padding_neighbours_change_no_logits():
    """A longer neighbour in the batch must not change an utterance's logits."""
    import keras

    from s2s_zoo.models.registry import build_from_catalog

    keras.utils.set_random_seed(0)
    model = build_from_catalog(
        "speech_las", 0, 20, feature_dim=8, encoder_units=8, decoder_units=8,
        embedding_dim=8, attention_units=8, conv_channels=2, encoder_layers=1,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    short = rng.normal(size=(1, 13, 8)).astype(np.float32)
    long = rng.normal(size=(1, 30, 8)).astype(np.float32)
    padded = np.concatenate([np.pad(short, [[0, 0], [0, 17], [0, 0]]), long])
    mask = np.zeros((2, 30), bool)
    mask[0, :13] = mask[1, :] = True
    target = np.array([[2, 5, 6, 7], [2, 8, 9, 4]], np.int32)
    alone = model.training_model([short, np.ones((1, 13), bool), target[:1]])
    batched = model.training_model([padded, mask, target])
    np.testing.assert_allclose(batched[:1].numpy(), alone.numpy(), atol=1e-5)


def test_frozen_backbone_keeps_the_weights_loaded_from_a_local_file(caption_run, tmp_path):
    """--backbone-weights loads a local file; --freeze-backbone trains the decoder only."""
    import keras

    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.models.registry import build_from_catalog

    _, data_dir = caption_run
    recipe = tiny_caption_recipe()
    keras.utils.set_random_seed(42)
    donor = build_from_catalog(
        "show_attend_tell", 0, 40, image_height=32, image_width=128, **recipe.model_overrides
    )
    weights_file = tmp_path / "backbone.weights.h5"
    donor.encoder.backbone.save_weights(str(weights_file))
    result = run(
        recipe,
        [
            "--data-dir",
            str(data_dir),
            "--export-dir",
            str(tmp_path / "exported"),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--backbone-weights",
            str(weights_file),
            "--freeze-backbone",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--vocab-size",
            "40",
            "--no-serving-check",
        ],  # fmt: skip
    )
    trained = load_bundle(result["checkpoint_dir"]).model
    assert trained.config.encoder.backbone_trainable is False
    for got, want in zip(
        trained.encoder.backbone.get_weights(), donor.encoder.backbone.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    assert result["history"]["loss"][-1] < result["history"]["loss"][0]
