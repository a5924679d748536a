"""Augmentation in the media tf.data pipelines, task flags for it, and per-source scoring.

Augmentation must change training batches only, reproducibly for a seed; the
serving side is checked end to end in test_media_recipes.py (the recipes there
train with augmentation on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.data.media_pipeline import make_audio_dataset, make_image_dataset
from s2s_zoo.data.media_preprocessors import AudioPreprocessor, ImagePreprocessor
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.features.audio import AudioFrontEnd
from s2s_zoo.features.audio_augment import AudioAugmentConfig
from s2s_zoo.features.image import ImageFrontEnd, encode_png
from s2s_zoo.features.image_augment import ImageAugmentConfig
from s2s_zoo.tasks.base import get_task
from s2s_zoo.training.runner import group_members

WORDS = ("red one", "green two", "blue three")


@pytest.fixture(scope="module")
def image_pairs(tmp_path_factory) -> list[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(12):
        pixels = rng.integers(0, 256, (24, 48, 3)).astype(np.uint8)
        path = tmp / f"{i}.png"
        path.write_bytes(encode_png(pixels))
        pairs.append((str(path), WORDS[i % 3]))
    return pairs


@pytest.fixture(scope="module")
def wav_pairs(tmp_path_factory) -> list[tuple[str, str]]:
    from s2s_zoo.data.wav_files import wav_bytes

    tmp = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(1)
    pairs = []
    for i in range(12):
        t = np.arange(int(16000 * rng.uniform(0.3, 0.5))) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.normal(size=t.size)
        path = tmp / f"{i}.wav"
        path.write_bytes(wav_bytes(wave, 16000))
        pairs.append((str(path), WORDS[i % 3]))
    return pairs


@pytest.fixture(scope="module")
def target_text():
    return train_sentencepiece(list(WORDS) * 4, 24)


def first_batches(ds, n: int = 2) -> list:
    """The first `n` batches as numpy, structure kept: [((x..., target_in), target_out)]."""
    out = []
    for inputs, target_out in ds.take(n):
        out.append(([t.numpy() for t in inputs], target_out.numpy()))
    return out


def test_image_augmentation_changes_training_batches_only_and_is_seeded(image_pairs, target_text):
    pre = ImagePreprocessor(target_text, ImageFrontEnd(24, 48), 8)
    config = ImageAugmentConfig.from_names("affine,blur,noise,jitter,jpeg", probability=1.0)

    def batches(augment, seed=3, shuffle=False):
        ds = make_image_dataset(image_pairs, pre, 4, shuffle=shuffle, seed=seed, augment=augment)
        return first_batches(ds, 3)

    plain, plain_again = batches(None), batches(None)
    augmented, again = batches(config), batches(config)
    for (images, _), _ in plain:
        assert images.shape == (4, 24, 48, 3)
    for p, a, b, q in zip(plain, augmented, again, plain_again, strict=True):
        np.testing.assert_array_equal(p[0][0], q[0][0])  # no augmentation: the decoded pixels
        np.testing.assert_array_equal(a[0][0], b[0][0])  # same seed: same augmentation
        assert np.abs(a[0][0] - p[0][0]).mean() > 0.01  # every image is changed
        assert a[0][0].min() >= -1.0 and a[0][0].max() <= 1.0
        np.testing.assert_array_equal(a[0][1], p[0][1])  # targets untouched
        np.testing.assert_array_equal(a[1], p[1])
    other_seed = batches(config, seed=4)
    assert not np.array_equal(other_seed[0][0][0], augmented[0][0][0])
    # a switched-off config is no augmentation at all
    off = batches(ImageAugmentConfig.from_names("none"))
    np.testing.assert_array_equal(off[0][0][0], plain[0][0][0])


def test_image_augmentation_draws_anew_each_epoch(image_pairs, target_text):
    pre = ImagePreprocessor(target_text, ImageFrontEnd(24, 48), 8)
    config = ImageAugmentConfig.from_names("noise", probability=1.0)
    ds = make_image_dataset(image_pairs, pre, 12, shuffle=False, augment=config)
    first = next(iter(ds))[0][0].numpy()
    second = next(iter(ds))[0][0].numpy()
    assert not np.array_equal(first, second)


def test_audio_augmentation_changes_training_features_only_and_is_seeded(wav_pairs, target_text):
    front = AudioFrontEnd(num_mel_bins=16)
    pre = AudioPreprocessor(target_text, front, 8)
    config = AudioAugmentConfig.from_names(
        "speed,noise,gain,reverb", noise_probability=1.0, reverb_probability=1.0
    )

    def batches(augment, seed=5):
        ds = make_audio_dataset(wav_pairs, pre, 4, shuffle=True, seed=seed, augment=augment)
        return first_batches(ds, 3)

    plain, plain_again = batches(None), batches(None)
    augmented, again = batches(config), batches(config)
    for p, q, a, b in zip(plain, plain_again, augmented, again, strict=True):
        for x, y in zip(p[0], q[0], strict=True):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(a[0], b[0], strict=True):
            np.testing.assert_array_equal(x, y)  # same seed: same waves, masks, targets
        np.testing.assert_array_equal(a[1], p[1])  # same order of transcripts: shuffle intact
        features = a[0][0]
        assert features.shape != p[0][0].shape or not np.allclose(features, p[0][0])
    assert not np.array_equal(batches(config, seed=6)[0][0][0], augmented[0][0][0])


def test_audio_speed_changes_frame_counts(wav_pairs, target_text):
    pre = AudioPreprocessor(target_text, AudioFrontEnd(num_mel_bins=16), 8)
    slow = AudioAugmentConfig.from_names("speed", speed_factors=(0.5,))
    plain = first_batches(make_audio_dataset(wav_pairs, pre, 12, shuffle=False), 1)[0]
    slowed = first_batches(make_audio_dataset(wav_pairs, pre, 12, shuffle=False, augment=slow))[0]
    frames, frames_slow = plain[0][1].sum(axis=1), slowed[0][1].sum(axis=1)
    # half speed doubles the samples: about twice the 10 ms frames (25 ms window)
    np.testing.assert_allclose(frames_slow, 2 * frames + 2, atol=2)


def test_audio_augmentation_rate_must_match_the_front_end(wav_pairs, target_text):
    pre = AudioPreprocessor(target_text, AudioFrontEnd(num_mel_bins=16), 8)
    wrong = AudioAugmentConfig.from_names("gain", sample_rate=8000)
    with pytest.raises(ValueError, match="8000 Hz.*16000 Hz"):
        make_audio_dataset(wav_pairs, pre, 4, augment=wrong)


def test_spec_augment_runs_in_the_pipeline_and_is_seeded(wav_pairs, target_text):
    pre = AudioPreprocessor(target_text, AudioFrontEnd(num_mel_bins=16), 8)

    def features(spec, seed=0):
        ds = make_audio_dataset(wav_pairs, pre, 12, shuffle=False, seed=seed, spec_augment=spec)
        return first_batches(ds, 1)[0][0][0]

    plain, masked = features(False), features(True)
    assert (masked == 0).sum() > (plain == 0).sum()  # masked cells are zeroed
    np.testing.assert_array_equal(features(True), masked)


def parse(task, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    task.add_arguments(parser)
    return parser.parse_args(argv)


def test_augment_flags_defaults_and_errors(capsys):
    caption = get_task("captioning", {"image_augment": "jitter,affine"})
    assert parse(caption, []).image_augment == "affine,jitter"  # canonical order
    assert caption.augmentation(parse(caption, [])).enabled == ("affine", "jitter")
    assert caption.augmentation(parse(caption, ["--image-augment", "none"])) is None
    assert get_task("captioning").augmentation(parse(get_task("captioning"), [])) is None
    with pytest.raises(SystemExit):
        parse(caption, ["--image-augment", "affine,rotate"])
    assert "unknown image augmentation ['rotate']" in capsys.readouterr().err

    speech = get_task("speech", {"audio_augment": "noise, speed"})
    args = parse(speech, [])
    assert args.audio_augment == "speed,noise"
    config = speech.augmentation(args, 22050)
    assert config.enabled == ("speed", "noise") and config.sample_rate == 22050
    assert speech.augmentation(parse(speech, ["--audio-augment", "none"]), 16000) is None
    with pytest.raises(SystemExit):
        parse(speech, ["--audio-augment", "echo"])
    assert "unknown augmentation(s) ['echo']" in capsys.readouterr().err


def test_augment_settings_reach_the_config():
    speech = get_task("speech", {"audio_augment": "noise", "audio_augment_settings": {
        "snr_db": (10.0, 20.0)}})  # fmt: skip
    assert speech.augmentation(parse(speech, []), 16000).snr_db == (10.0, 20.0)
    caption = get_task("captioning", {"image_augment": "blur", "image_augment_settings": {
        "probability": 0.25, "blur_sigma": (0.5, 1.0)}})  # fmt: skip
    config = caption.augmentation(parse(caption, []))
    assert (config.blur_prob, config.blur_sigma, config.affine_prob) == (0.25, (0.5, 1.0), 0.0)


def test_augment_settings_flags_override_the_recipe_and_are_checked(capsys):
    speech = get_task("speech", {"audio_augment": "noise", "audio_augment_settings": {
        "snr_db": (10.0, 20.0), "noise_probability": 0.2}})  # fmt: skip
    args = parse(speech, ["--audio-augment-settings", '{"snr_db": [0, 5]}'])
    config = speech.augmentation(args, 16000)
    assert (config.snr_db, config.noise_probability) == ((0.0, 5.0), 0.2)  # flag over recipe
    caption = get_task("captioning", {"image_augment": "jpeg"})
    flag = ["--image-augment-settings", '{"probability": 1, "jpeg_quality": [40.0, 60]}']
    config = caption.augmentation(parse(caption, flag))
    assert (config.jpeg_prob, config.jpeg_quality) == (1.0, (40, 60))  # ints for an int range
    assert all(type(q) is int for q in config.jpeg_quality)
    audio, image = "--audio-augment-settings", "--image-augment-settings"
    for task, flag, value, message in [
        (speech, audio, '{"snr": [0, 5]}', "unknown setting 'snr'"),
        (speech, audio, '{"snr_db": [9, 3]}', "snr_db"),
        (speech, audio, '{"snr_db": 5}', "snr_db: a list of numbers"),
        (speech, audio, '{"noise_probability": "high"}', "noise_probability: a number"),
        (speech, audio, '{"sample_rate": 8000}', "sample_rate: the front end's rate"),
        (speech, audio, '{"noise": true}', "noise: choose it in --audio-augment"),
        (speech, audio, '{"noise_waveforms": [[0.1]]}', "pass recordings with --noise-files"),
        (speech, audio, '{"noise_kinds": ["brown"]}', "noise_kinds"),
        (speech, audio, "[1, 2]", "a JSON object"),
        (caption, image, '{"max_rotation": 5', "not JSON"),
        (caption, image, '{"rotation": 5}', "unknown setting 'rotation'"),
        (caption, image, '{"blur_prob": 0.3}', 'set their "probability"'),
        (caption, image, '{"jpeg_quality": [30.5, 90]}', "jpeg_quality: whole numbers"),
    ]:
        with pytest.raises(SystemExit):
            parse(task, [flag, value])
        assert message in capsys.readouterr().err, (flag, value)


def test_noise_files_are_mixed_in_as_noise_waveforms(tmp_path, wav_pairs, capsys):
    from s2s_zoo.data.wav_files import load_wav, wav_bytes
    from s2s_zoo.tasks.speech import task as speech_task

    folder = tmp_path / "noise"
    folder.mkdir()
    hum = 0.1 * np.sin(2 * np.pi * 50 * np.arange(8000) / 8000)
    (folder / "hum.WAV").write_bytes(wav_bytes(hum, 8000))  # resampled to the task's rate
    (folder / "notes.txt").write_text("not audio")
    speech = get_task("speech", {"audio_augment": "noise"})
    args = parse(speech, ["--noise-files", str(folder), wav_pairs[0][0]])
    config = speech.augmentation(args, 16000)
    assert config.noise_kinds == ("white", "pink", "waveforms")
    assert [len(clip) for clip in config.noise_waveforms] == [
        16000, len(load_wav(wav_pairs[0][0], 16000))]  # fmt: skip
    # recordings only
    only = [
        "--noise-files",
        str(folder),
        "--audio-augment-settings",
        '{"noise_kinds": ["waveforms"]}',
    ]
    assert speech.augmentation(parse(speech, only), 16000).noise_kinds == ("waveforms",)
    with pytest.raises(SystemExit, match="pass --noise-files"):
        speech.augmentation(parse(speech, only[2:]), 16000)
    # long recordings are cut (and said), too much noise in all is refused
    long = tmp_path / "long.wav"
    long.write_bytes(wav_bytes(np.zeros(16000 * 40), 16000))
    args = parse(speech, ["--noise-files", str(long)])
    assert [len(c) for c in speech.augmentation(args, 16000).noise_waveforms] == [16000 * 30]
    assert "1 of 1 recordings cut to their first 30 s" in capsys.readouterr().out
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(speech_task, "MAX_NOISE_TOTAL_MINUTES", 0.1)
        with pytest.raises(SystemExit, match="minutes of noise after cutting"):
            speech.augmentation(args, 16000)
    with pytest.raises(SystemExit, match="needs noise in --audio-augment"):
        flags = ["--audio-augment", "gain", "--noise-files", str(folder)]
        speech.augmentation(parse(speech, flags), 16000)
    with pytest.raises(SystemExit):  # read with the command line, before any work
        parse(speech, ["--noise-files", str(tmp_path / "nope.wav")])
    assert "nope.wav does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no .wav file in the folder"):
        speech.augmentation(parse(speech, ["--noise-files", str(tmp_path / "empty")]), 16000)


# -- per-source scoring --------------------------------------------------------------------------


def test_group_members_lists_every_group_and_refuses_unlisted_sources():
    groups = {"a": ["fonts", "Go"], "b": ["handwriting"], "c": ["fonts", "Lato"]}
    assert group_members(["b", "a", "c"], groups) == {
        "Go": [1], "Lato": [2], "fonts": [1, 2], "handwriting": [0]}  # fmt: skip
    with pytest.raises(ValueError, match="1 of 2 evaluation sources have no group.*, e.g. d"):
        group_members(["a", "d"], groups)


def test_caption_source_groups_from_the_sources_file(tmp_path, image_pairs):
    split = tmp_path / "test.tsv"
    split.write_text("")  # only its name matters
    images = [Path(p) for p, _ in image_pairs[:3]]
    rows = ["image_path\tsource", f"{images[0]}\thandwriting", f"{images[1]}\tGo",
            f"{images[2]}\tNoto Serif"]  # fmt: skip
    task = get_task("captioning")
    assert task.source_groups(split) is None
    (tmp_path / "test.sources.tsv").write_text("\n".join(rows) + "\n")
    assert task.source_groups(split) == {
        str(images[0].resolve()): ["handwriting"],
        str(images[1].resolve()): ["fonts", "Go"],
        str(images[2].resolve()): ["fonts", "Noto Serif"],
    }


def test_speech_source_groups_from_the_sources_file(tmp_path, wav_pairs):
    from s2s_zoo.data.asr_manifests import write_manifest
    from s2s_zoo.tasks.speech.sources import write_sources

    manifest = tmp_path / "test.tsv"
    write_manifest(manifest, wav_pairs[:2])
    task = get_task("speech")
    assert task.source_groups(manifest) is None
    rows = [(wav_pairs[0][0], "festival", "kal_diphone"), (wav_pairs[1][0], "espeak-ng", "f4")]
    write_sources(tmp_path / "test.sources.tsv", rows)
    groups = task.source_groups(manifest)
    read = {path: text for path, text in task.read(str(manifest), parse(task, []))}
    assert set(groups) == set(read)  # the manifest's paths, as the reader spells them
    assert sorted(groups.values()) == [["espeak-ng"], ["festival"]]
    (tmp_path / "test.sources.tsv").write_text("path\tengine\nx.wav\tfestival\n")
    with pytest.raises(DataFormatError, match="test.sources.tsv:1"):
        task.source_groups(manifest)


def test_caption_score_has_exact_match_error_rates_and_bleu():
    task = get_task("captioning")
    scores = task.score(["one two", "three"], [["one two"], ["three four", "three"]])
    assert scores["exact_match"] == 1.0
    # WER against the first reference: 0 + 1 deletion over 2 + 2 words
    assert scores["wer"] == pytest.approx(0.25)
    assert set(scores) == {"exact_match", "wer", "cer", "bleu4"}


# -- the CPU-time budget (comparable runs on a shared machine) ---------------------------------


def test_cpu_budget_counts_process_time_over_the_cores(monkeypatch):
    import types

    from s2s_zoo.training import callbacks as fit_module

    clock = {"cpu": 100.0, "wall": 5.0}
    monkeypatch.setattr(fit_module.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(fit_module.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(fit_module.os, "cpu_count", lambda: 2)
    budgets = {name: fit_module.TimeBudget(1.0, name) for name in ("cpu", "wall")}
    models = {name: types.SimpleNamespace(stop_training=False) for name in budgets}
    for name, budget in budgets.items():
        budget.set_model(models[name])
        budget.on_train_begin()
    clock["cpu"] += 119.0  # 59.5 s per core: within one minute
    for budget in budgets.values():
        budget.on_train_batch_end(0)
    assert not models["cpu"].stop_training
    clock["cpu"] += 2.0  # 60.5 s per core
    for budget in budgets.values():
        budget.on_train_batch_end(1)
    assert models["cpu"].stop_training and not models["wall"].stop_training
    clock["wall"] += 61.0
    budgets["wall"].on_train_batch_end(2)
    assert models["wall"].stop_training
    with pytest.raises(ValueError, match="budget clock must be one of"):
        fit_module.TimeBudget(1.0, "gpu")


def test_budget_clock_flag_reaches_the_train_config():
    from s2s_zoo.training.runner import argument_parser, recipe_for, train_config_from

    recipe = recipe_for("speech", "speech_las")
    parser = argument_parser(recipe, get_task("speech"))
    assert train_config_from(parser.parse_args([])).budget_clock == "wall"
    config = train_config_from(parser.parse_args(["--budget-clock", "cpu", "--max-minutes", "2"]))
    assert (config.budget_clock, config.max_minutes) == ("cpu", 2.0)
