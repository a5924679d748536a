"""Captioning and speech end to end at tiny size: recipe -> fit -> export -> TF Serving path.

Each recipe runs on a small copy of its embedded default task (digit images made
from scikit-learn's digits and fonts; numbers spoken by espeak-ng and festival), so the
exported model is checked with real PNG and WAV bytes, plus unreadable ones. Both train
with every augmentation on, to show none of it reaches the export.
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
            "image_augment": "affine,blur,noise,jitter,jpeg",
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
            "audio_augment": "speed,noise,gain,reverb",
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
    assert {"greedy_bleu4", "beam_bleu4", "beam_exact_match", "beam_wer"} <= set(result["metrics"])


def _test_sources(data_dir: Path) -> list[str]:
    """The source column of the generated test split's `test.sources.tsv`, in order."""
    lines = (data_dir / "test.sources.tsv").read_text().splitlines()[1:]
    return [line.split("\t")[1] for line in lines if line.strip()]


def test_captioning_reports_every_metric_per_source(caption_run):
    result, data_dir = caption_run
    metrics, sources = result["metrics"], _test_sources(data_dir)
    fonts = sorted({s for s in sources if s != "handwriting"})
    groups = ["handwriting"] * ("handwriting" in sources) + ["fonts"] * bool(fonts) + fonts
    for mode in ("greedy", "beam"):
        for name in ("exact_match", "wer", "cer", "bleu4"):
            assert {f"{mode}_{name}[{g}]" for g in groups} <= set(metrics)
    # exact match is a mean: handwriting and fonts partition the test images
    counts = {"handwriting": sources.count("handwriting"), "fonts": len(sources) - sources.count(
        "handwriting")}  # fmt: skip
    weighted = sum(n * metrics.get(f"beam_exact_match[{g}]", 0.0) for g, n in counts.items())
    assert weighted / len(sources) == pytest.approx(metrics["beam_exact_match"])
    weighted = sum(
        sources.count(f) * metrics[f"beam_exact_match[{f}]"] for f in fonts
    )  # the families partition the fonts
    assert weighted == pytest.approx(counts["fonts"] * metrics.get("beam_exact_match[fonts]", 0))


def test_speech_recipe_trains_exports_and_serves(speech_run):
    result, data_dir = speech_run
    losses = result["history"]["loss"]
    assert losses[-1] < losses[0], losses
    assert {"greedy_wer", "beam_cer"} <= set(result["metrics"])
    engines = sorted(set(_test_sources(data_dir)))
    for engine in engines:
        assert {f"beam_wer[{engine}]", f"greedy_cer[{engine}]"} <= set(result["metrics"])
    if len(engines) == 1:
        assert result["metrics"][f"beam_wer[{engines[0]}]"] == result["metrics"]["beam_wer"]


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
    resampled = wav_bytes(tone, 22050)  # another rate is resampled in the graph, not refused
    too_slow = wav_bytes(tone[:2000], 2000)  # below the 4 kHz the front end accepts
    empty = wav_bytes(np.zeros(0, np.float32), 16000)
    batch = [good[0], too_slow, empty, b"RIFF junk", good[1], resampled]
    out = _served(result["export_path"], "beam", "audio", batch)
    alone = _served(result["export_path"], "beam", "audio", [good[0], good[1], resampled])
    assert out["errors"][0] == out["errors"][4] == out["errors"][5] == ""
    assert "2000 Hz" in out["errors"][1] and "4000" in out["errors"][1]
    assert out["errors"][2] and out["errors"][3]
    assert [out["outputs"][i] for i in (1, 2, 3)] == ["", "", ""]
    assert [out["outputs"][i] for i in (0, 4, 5)] == alone["outputs"]


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
    # the task's evaluation pipeline is the served one; its training pipeline is augmented
    task, args = _task_and_args(tiny_speech_recipe(), data_dir)
    pairs = [(str(path), "x")]
    (plain, _, _), _ = next(iter(task.dataset(pairs, inference.preprocessor, args, False)))
    np.testing.assert_array_equal(plain.numpy(), features.numpy())
    (trained, _, _), _ = next(iter(task.dataset(pairs * 4, inference.preprocessor, args, True)))
    assert not np.allclose(trained.numpy()[:, : min(trained.shape[1], plain.shape[1])],
                           plain.numpy()[:, : min(trained.shape[1], plain.shape[1])])  # fmt: skip


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
    # the recipe trained with augmentation: its training batches are not what is served
    task, args = _task_and_args(tiny_caption_recipe(), data_dir)
    (augmented, _), _ = next(iter(task.dataset([(str(path), "x")] * 4, inference.preprocessor,
                                               args, training=True)))  # fmt: skip
    assert np.abs(augmented.numpy() - images.numpy()).max(axis=(1, 2, 3)).min() > 0.05


def _task_and_args(recipe, data_dir: Path):
    from s2s_zoo.tasks.base import get_task
    from s2s_zoo.training.runner import argument_parser

    task = get_task(recipe.task, recipe.options)
    args = argument_parser(recipe, task).parse_args(["--data-dir", str(data_dir)])
    return task, args


def _graph_ops(export_path: Path) -> set[str]:
    """Every op type in a SavedModel's graphs and function library."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((export_path / "saved_model.pb").read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


# what the augmentations (and SpecAugment) are made of; none belongs in a serving graph
AUGMENTATION_OPS = {
    "ImageProjectiveTransformV3", "EncodeJpeg", "EncodeJpegVariableQuality", "AdjustContrastv2",
    "StatelessRandomUniformV2", "StatelessRandomNormalV2", "StatelessRandomUniformIntV2",
    "RandomUniform", "RandomStandardNormal",
}  # fmt: skip


def _traced_ops(function, *specs) -> set[str]:
    import tensorflow as tf

    graph = tf.function(function).get_concrete_function(*specs).graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for library_function in graph.library.function:
        ops |= {node.op for node in library_function.node_def}
    return ops


def test_no_augmentation_op_reaches_either_export(caption_run, speech_run):
    import tensorflow as tf

    from s2s_zoo.features.audio_augment import AudioAugmentConfig, augment_waveforms
    from s2s_zoo.features.image_augment import ImageAugmentConfig, augment_images

    # the op list is right: tracing the augmentations yields ops from it
    image_ops = _traced_ops(
        lambda x: augment_images(x, ImageAugmentConfig.from_names("affine,jpeg"), 0),
        tf.TensorSpec([None, 32, 128, 3], tf.float32),
    )
    audio_ops = _traced_ops(
        lambda w, n: augment_waveforms(w, n, AudioAugmentConfig.from_names("noise"), 0),
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None], tf.int32),
    )
    assert {"ImageProjectiveTransformV3", "EncodeJpegVariableQuality"} <= image_ops
    assert "StatelessRandomNormalV2" in audio_ops
    for result, _ in (caption_run, speech_run):
        ops = _graph_ops(result["export_path"])
        assert len(ops) > 50  # the whole serving graph was read
        assert not ops & AUGMENTATION_OPS, ops & AUGMENTATION_OPS


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
