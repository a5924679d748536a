"""Media requests of any mix of good and unreadable items, all bad and empty included,
return one row per item from every signature, in process and on the Session path."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from s2s_zoo.data.wav_files import wav_bytes
from s2s_zoo.export.conformance import check_serving
from s2s_zoo.export.saved_model import export_saved_model
from s2s_zoo.features.image import encode_png
from tests.test_catalog import media_inference

TONE = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
BAD = {
    "audio": [b"this is not a WAV file", b"", wav_bytes(TONE, 2000)],
    "image": [b"this is not an image", b"", b"\x89PNG\r\n\x1a\ncut off"],
}
MODELS = {"audio": "speech_las", "image": "show_attend_tell"}


def good_item(kind: str) -> bytes:
    if kind == "image":
        return encode_png(np.full((40, 80, 3), 128, np.uint8))
    return wav_bytes(TONE, 22050)  # resampled in the graph


@pytest.fixture(scope="module", params=["audio", "image"])
def media(request, tmp_path_factory):
    from tests.test_catalog import media_examples

    kind = request.param
    pairs = media_examples(kind, tmp_path_factory.mktemp(kind))
    return kind, media_inference(MODELS[kind], pairs)


def batches(kind: str) -> list[list[bytes]]:
    bad, good = BAD[kind], good_item(kind)
    return [[bad[0]], bad, [], [bad[0], good, bad[2]], [good]]


def call(inference, name: str, batch: list[bytes]) -> dict:
    inputs = tf.constant(batch, tf.string)
    if name == "nbest":
        out = inference.nbest(inputs, tf.constant(3), tf.constant(2), tf.constant(0))
    else:
        out = inference.signatures[name](inputs)
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("name", ["greedy", "beam", "serving_default", "nbest", "preprocess"])
def test_every_mix_of_good_and_bad_items_gives_one_row_each(media, name):
    kind, inference = media
    for batch in batches(kind):
        out = call(inference, name, batch)
        for key, value in out.items():
            assert value.shape[0] == len(batch), (name, key, len(batch))
        bad = np.array([item in BAD[kind] for item in batch], bool)
        assert [e != b"" for e in out["errors"]] == bad.tolist()
        if name == "preprocess":
            continue
        assert (out["outputs"][bad] == b"").all() and (out["scores"][bad] == 0).all()
        assert (out["lengths"][bad] == 0).all() and (out["output_tokens"][bad] == b"").all()
        if "nbest_outputs" in out:
            assert (out["nbest_outputs"][bad] == b"").all()
            assert (out["nbest_scores"][bad] == 0).all()
        assert (out["lengths"][~bad] > 0).all()  # good items decode as usual


def test_a_bad_item_does_not_change_its_neighbours(media):
    kind, inference = media
    good = good_item(kind)
    alone = call(inference, "beam", [good])
    mixed = call(inference, "beam", [BAD[kind][0], good, BAD[kind][1]])
    assert mixed["outputs"][1] == alone["outputs"][0]
    np.testing.assert_allclose(mixed["scores"][1], alone["scores"][0], atol=1e-5)


def huge_item(kind: str) -> bytes:
    """A 4000x4000 photo-sized image, or ten minutes of audio."""
    if kind == "image":
        return encode_png(np.full((4000, 4000, 3), 90, np.uint8))
    noise = np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32)
    return wav_bytes(0.05 * noise, 16000)


@pytest.mark.slow  # ten minutes of audio through the speech encoder: ~20 s on a busy CPU
def test_huge_items_decode_beside_small_ones(media):
    kind, inference = media
    good = good_item(kind)
    out = call(inference, "greedy", [good, huge_item(kind), BAD[kind][1]])
    assert [e == b"" for e in out["errors"]] == [True, True, False]
    assert out["outputs"][0] == call(inference, "greedy", [good])["outputs"][0]
    assert np.isfinite(out["scores"][1])


@pytest.mark.slow  # an export of a speech model and a child process: ~1 min on a busy CPU
def test_session_path_serves_other_rates_and_all_bad_batches(tmp_path):
    """A tiny speech export on TF Serving's loader: 22.05 and 48 kHz WAVs decode, and
    requests of only unreadable items (or none) return their rows."""
    from tests.test_catalog import media_examples

    inference = media_inference("speech_las", media_examples("audio", tmp_path))
    path = export_saved_model(inference, tmp_path / "speech")
    good = [wav_bytes(TONE, 22050), wav_bytes(TONE, 48000)]
    batches = [good, [BAD["audio"][0]], BAD["audio"], [], [BAD["audio"][1], *good]]
    report = check_serving(path, inference, batches=batches)
    assert report.ok, report.mismatches
    assert len(inference.greedy(good)["outputs"]) == 2
