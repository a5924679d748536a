"""The flite test set (an engine no training split uses) and the cross-source benchmarks'
split writers, which must give the runner files it reads and scores per source."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.data.asr_manifests import read_manifest
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.speech.sources import SourcedUtterance, read_sourced_split
from s2s_zoo.tasks.speech.spoken_numbers import _number_pools, number_words

REPO = Path(__file__).resolve().parents[1]
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def load_benchmark(name: str):
    """Import a benchmark script as `python benchmarks/NAME.py` runs it: with its own
    directory on sys.path, so the helpers beside it (run_budget.py) import."""
    directory = str(REPO / "benchmarks")
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    return module


@needs_flite
def test_flite_test_set_speaks_held_out_numbers_and_is_reused(tmp_path):
    from s2s_zoo.data.wav_files import load_wav
    from s2s_zoo.tasks.speech.unheard import FliteEngine, make_unheard_engine_test

    voices = FliteEngine().voices()
    assert voices[0] == () and set(voices[1]) <= {"awb", "rms", "slt"} and voices[1]
    manifest = make_unheard_engine_test(tmp_path, num_test=4, seed=3, max_number=200)
    rows = read_sourced_split(manifest)
    assert len(rows) == 4 and {r.engine for r in rows} == {"flite"}
    assert [r.voice for r in rows] == [voices[1][i % len(voices[1])] for i in range(4)]
    pools = _number_pools(200, np.random.default_rng(3))
    test_words = {number_words(int(n)) for n in pools["test"]}
    train_words = {number_words(int(n)) for n in pools["train"]}
    assert all(r.transcript in test_words and r.transcript not in train_words for r in rows)
    for row in rows:
        wave = load_wav(row.path, 16000)
        assert 0.2 * 16000 < wave.size < 5 * 16000 and np.abs(wave).max() > 0.01
    stamps = [Path(r.path).stat().st_mtime_ns for r in rows]
    assert make_unheard_engine_test(tmp_path, num_test=4, seed=3, max_number=200) == manifest
    assert [Path(r.path).stat().st_mtime_ns for r in rows] == stamps  # reused, not re-rendered


def test_speech_benchmark_splits_are_read_and_grouped_by_the_task(tmp_path):
    bench = load_benchmark("speech_cross_engine")
    audio = []
    for i in range(3):
        path = tmp_path / "wav" / f"{i}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")  # only the paths matter here
        audio.append(str(path.resolve()))
    utterances = [
        SourcedUtterance(audio[0], "one", "festival", "kal_diphone"),
        SourcedUtterance(audio[1], "two", "espeak-ng", "en-us+f4"),
        SourcedUtterance(audio[2], "three", "festival", "ked_diphone"),
    ]
    manifest = bench.write_split(tmp_path / "out" / "test.tsv", utterances)
    assert read_sourced_split(manifest) == utterances
    assert read_manifest(manifest) == [(u.path, u.transcript) for u in utterances]
    assert get_task("speech").source_groups(manifest) == {
        audio[0]: ["festival"], audio[1]: ["espeak-ng"], audio[2]: ["festival"]}  # fmt: skip
    assert bench.voice_groups(manifest)[audio[2]] == ["festival", "festival:ked_diphone"]


def test_caption_benchmark_splits_are_read_and_grouped_by_the_task(tmp_path):
    from s2s_zoo.features.image import encode_png

    bench = load_benchmark("captioning_cross_source")
    images = []
    for i in range(2):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode_png(np.zeros((4, 4, 3), np.uint8)))
        images.append(str(path.resolve()))
    rows = [(images[0], "one two", "handwriting"), (images[1], "three", "Go Mono")]
    split = bench.write_split(tmp_path / "out" / "test.tsv", rows)
    assert bench.sourced(split) == rows
    assert get_task("captioning").source_groups(split) == {
        images[0]: ["handwriting"], images[1]: ["fonts", "Go Mono"]}  # fmt: skip
    assert [bench.is_from(s, "fonts") for _, _, s in rows] == [False, True]
    assert [bench.is_from(s, "handwriting") for _, _, s in rows] == [True, False]


def test_benchmark_tables_show_every_run(capsys):
    speech = load_benchmark("speech_cross_engine")
    row = {"held_out": "festival", "augment": "none", "epochs": 7, "minutes": 9.04,
           "cpu_minutes": 8.0, "n": 120, "wer": 0.1234, "cer": 0.05, "exact": 0.8,
           "greedy_wer": 0.13}  # fmt: skip
    speech.print_table([row, {**row, "augment": "speed", "flite_wer": 0.2, "flite_exact": 0.5}])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == "| festival | none | 7 | 9.0 / 8.0 | 120 | 12.34% | 5.00% | 80.00% | " \
        "13.00% | - | - |"  # fmt: skip
    assert lines[-1].endswith("| 20.00% | 50.00% |") and len(lines) == 4
    caption = load_benchmark("captioning_cross_source")
    row = {"held_out": "fonts", "augment": "none", "epochs": 3, "minutes": 8.0,
           "cpu_minutes": 8.0, "n": 240, "exact": 0.5, "wer": 0.25, "bleu4": 40.04,
           "greedy_exact": 0.49, "per_source": {"fonts": 0.5, "Go": 0.25}}  # fmt: skip
    caption.print_table([row])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2] == "| fonts | none | 3 | 8.0 / 8.0 | 240 | 50.00% | 25.00% | 40.0 | 49.00% |"
    assert lines[3] == "  fonts / none: exact per source: Go 25%, fonts 50%"
