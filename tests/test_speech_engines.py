"""Speech engines of the spoken-number task: voice hold-out and engine mix in the plan,
missing engines, festival rendering, the sources side files and leave-one-engine-out."""

from __future__ import annotations

import re
import shutil
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from s2s_zoo.data.asr_manifests import write_manifest
from s2s_zoo.data.readers import DataFormatError
from s2s_zoo.data.wav_files import load_wav, wav_bytes
from s2s_zoo.tasks.speech.engines import (
    EspeakEngine,
    FestivalEngine,
    RenderJob,
    available_engines,
)
from s2s_zoo.tasks.speech.sources import (
    SourcedUtterance,
    leave_one_engine_out,
    read_sourced_split,
    read_sources,
    sources_path,
    write_sources,
)
from s2s_zoo.tasks.speech.spoken_numbers import (
    ENGINE_SHARES,
    make_spoken_number_task,
    number_words,
    plan_utterances,
)

ALL_FESTIVAL = ("cmu_us_slt_arctic_hts", "ked_diphone", "kal_diphone")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")
needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="no festival")


@pytest.fixture
def festival_voices(monkeypatch):
    """Pretend festival lists these voices (no festival process is started)."""

    def pretend(voices: tuple[str, ...]) -> FestivalEngine:
        monkeypatch.setattr(FestivalEngine, "_voice_cache", voices)
        return FestivalEngine()

    return pretend


@pytest.fixture
def only_espeak_on_path(tmp_path, monkeypatch):
    """PATH holds espeak-ng alone (a link to the real one), so festival is 'not installed'."""
    real = shutil.which("espeak-ng")
    if real is None:
        pytest.skip("no espeak-ng")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "espeak-ng").symlink_to(real)
    monkeypatch.setenv("PATH", str(bin_dir))


# -- the plan (no synthesizer runs) ----------------------------------------------------------


def test_plan_holds_out_test_voices_and_mixes_engines(tmp_path, festival_voices):
    engines = [EspeakEngine(), festival_voices(ALL_FESTIVAL)]
    counts = {"train": 3000, "valid": 200, "test": 300}
    plan = plan_utterances(tmp_path, engines, counts, 999, seed=4)
    assert {split: len(jobs) for split, jobs in plan.items()} == counts
    espeak_train, espeak_test = EspeakEngine().voices()
    assert len(espeak_train) == 80 and len(espeak_test) == 24
    for split, jobs in plan.items():
        heard = {(j.engine, j.voice) for j in jobs}
        held_out = {("espeak-ng", v) for v in espeak_test} | {("festival", "ked_diphone")}
        assert (heard <= held_out) if split == "test" else not heard & held_out
        engine_share = Counter(j.engine for j in jobs)["festival"] / len(jobs)
        assert abs(engine_share - ENGINE_SHARES["festival"]) < (0.04 if split == "train" else 0.1)
    festival_train = {j.voice for j in plan["train"] if j.engine == "festival"}
    assert festival_train == {"kal_diphone", "cmu_us_slt_arctic_hts"}
    texts = {split: {j.text for j in jobs} for split, jobs in plan.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["valid"]
    assert {number_words(n) for n in range(101)} <= texts["train"]


def test_plan_draws_prosody_inside_each_engines_ranges(tmp_path, festival_voices):
    engines = [EspeakEngine(), festival_voices(ALL_FESTIVAL)]
    jobs = plan_utterances(tmp_path, engines, {"train": 400, "valid": 1, "test": 1}, 999, 0)
    jobs = jobs["train"]
    for job in jobs:
        s = dict(job.settings)
        if job.engine == "espeak-ng":
            assert 120 <= s["speed"] <= 200 and 35 <= s["pitch"] <= 65
        elif job.voice.endswith("_hts"):
            assert set(s) == {"rate"} and 0.8 <= s["rate"] <= 1.25
        else:
            assert 0.85 <= s["stretch"] <= 1.35 and 80 <= s["f0_mean"] <= 140
            assert 8 <= s["f0_std"] <= 25
    rates = [dict(j.settings)["rate"] for j in jobs if j.voice.endswith("_hts")]
    assert len(rates) > 20 and np.std(rates) > 0.08  # actually varied


def test_plan_is_a_function_of_the_seed_and_names_files_by_content(tmp_path, festival_voices):
    engines = [EspeakEngine(), festival_voices(ALL_FESTIVAL)]
    counts = {"train": 50, "valid": 5, "test": 5}
    first = plan_utterances(tmp_path, engines, counts, 999, seed=1)
    assert plan_utterances(tmp_path, engines, counts, 999, seed=1) == first
    assert plan_utterances(tmp_path, engines, counts, 999, seed=2) != first
    job = first["train"][7]
    assert job.path == tmp_path / "wav" / f"train_00007_{job.key(16000, 3)}.wav"
    other_rate = plan_utterances(tmp_path, engines, counts, 999, seed=1, sample_rate=8000)
    assert other_rate["train"][7].path != job.path  # a cached file is never the wrong rate


def test_an_engine_without_its_test_voice_is_trained_on_but_not_tested(
    tmp_path, festival_voices, monkeypatch
):
    festival = festival_voices(("kal_diphone",))
    assert festival.voices() == (("kal_diphone",), ())
    monkeypatch.setattr(FestivalEngine, "installed", lambda self: True)
    usable, notes = available_engines(["festival"])
    assert [e.name for e in usable] == ["festival"]
    assert notes == ["festival: no held-out test voice installed; used for train/valid only"]
    festival_voices(("ked_diphone",))  # only the test voice: festival cannot train
    usable, notes = available_engines(["festival"])
    assert usable == [] and notes[0].startswith("festival: no training voice installed")
    festival = festival_voices(("kal_diphone",))
    plan = plan_utterances(
        tmp_path, [EspeakEngine(), festival], {"train": 200, "valid": 20, "test": 30}, 999, 0
    )
    assert {j.engine for j in plan["test"]} == {"espeak-ng"}
    assert {j.voice for j in plan["train"] if j.engine == "festival"} == {"kal_diphone"}


# -- missing engines -------------------------------------------------------------------------


def test_missing_engines_are_named_with_their_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    usable, notes = available_engines()
    assert usable == []
    assert notes == [
        "espeak-ng: not installed (apt-get install espeak-ng)",
        "festival: not installed (apt-get install festival festvox-kallpc16k "
        "festvox-kdlpc16k festvox-us-slt-hts)",
    ]
    with pytest.raises(FileNotFoundError, match="no speech engine.*espeak-ng.*festival"):
        make_spoken_number_task(tmp_path / "task", num_train=2, num_valid=1, num_test=1)
    with pytest.raises(ValueError, match="unknown speech engine 'flite'"):
        available_engines(["flite"])


def test_requested_engine_missing_is_an_error(tmp_path, only_espeak_on_path):
    with pytest.raises(FileNotFoundError, match="requested but not usable: festival: not inst"):
        make_spoken_number_task(
            tmp_path / "t", num_train=2, num_valid=1, num_test=1, engines=["espeak-ng", "festival"]
        )
    assert not (tmp_path / "t").exists()


def test_without_festival_the_task_uses_espeak_and_says_so(tmp_path, only_espeak_on_path, capsys):
    files = make_spoken_number_task(tmp_path / "t", num_train=4, num_valid=1, num_test=2, seed=2)
    printed = capsys.readouterr().out
    assert "engines: espeak-ng (80 train/valid voices, 24 test-only)" in printed
    assert "note: festival: not installed (apt-get install festival" in printed
    assert re.search(r"Rendered 7 utterances in [\d.]+ s \([\d.]+/s", printed)
    for path in files.values():
        rows = read_sourced_split(path)
        assert {u.engine for u in rows} == {"espeak-ng"}
        assert all(Path(u.path).is_file() for u in rows)
    assert (tmp_path / "t" / "task.json").read_text().count("festival") == 0


# -- festival --------------------------------------------------------------------------------


@needs_festival
def test_festival_renders_16k_mono_speech_of_plausible_length(tmp_path):
    festival = FestivalEngine()
    train, test = festival.voices()
    assert set(train) | set(test) == set(ALL_FESTIVAL), "install the three festvox voices"
    text = "three hundred and forty two"
    settings = {
        "kal_diphone": [(("stretch", 0.85), ("f0_mean", 90.0), ("f0_std", 10.0))] * 2,
        "ked_diphone": [(("stretch", 0.85), ("f0_mean", 130.0), ("f0_std", 20.0))],
        "cmu_us_slt_arctic_hts": [(("rate", 1.25),), (("rate", 0.8),)],
    }
    settings["kal_diphone"][1] = (("stretch", 1.35), ("f0_mean", 90.0), ("f0_std", 10.0))
    jobs = [
        RenderJob(text, "festival", voice, s, tmp_path / f"{voice}_{i}.wav")
        for voice, options in settings.items()
        for i, s in enumerate(options)
    ]
    festival.render(jobs, 16000)
    seconds = {}
    for job in jobs:
        with wave.open(str(job.path), "rb") as reader:
            assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (
                16000,
                1,
                2,
            )
        samples = load_wav(job.path, 16000)
        seconds[job.path.stem] = len(samples) / 16000
        assert 0.8 < seconds[job.path.stem] < 4.0 and np.abs(samples).max() > 0.1
    # the prosody knobs work: longer stretch / slower rate -> longer audio
    assert seconds["kal_diphone_1"] > 1.3 * seconds["kal_diphone_0"]
    assert seconds["cmu_us_slt_arctic_hts_1"] > 1.3 * seconds["cmu_us_slt_arctic_hts_0"]


@needs_festival
def test_festival_failure_names_the_voice(tmp_path):
    settings = (("stretch", 1.0), ("f0_mean", 100.0), ("f0_std", 10.0))
    job = RenderJob("one", "festival", "no_such_voice", settings, tmp_path / "x.wav")
    with pytest.raises(RuntimeError, match="festival failed .* voice 'no_such_voice'"):
        FestivalEngine().render([job], 16000)
    assert not job.path.exists()


# -- sources files ---------------------------------------------------------------------------


def test_sources_round_trip_and_join_with_the_manifest(tmp_path):
    audio = []
    for name in ("a", "b", "c"):
        path = tmp_path / "wav" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(wav_bytes(np.zeros(160), 16000))
        audio.append(str(path))
    manifest = tmp_path / "test.tsv"
    write_manifest(manifest, [(audio[0], "one"), (audio[1], "two"), (audio[2], "three")])
    side = sources_path(manifest)
    assert side == tmp_path / "test.sources.tsv"
    rows = [(audio[0], "espeak-ng", "en-us+m5"), (audio[1], "festival", "ked_diphone")]
    rows.append((audio[2], "festival", "ked_diphone"))
    write_sources(side, rows)
    assert side.read_text().splitlines()[:2] == [
        "path\tengine\tvoice",
        "wav/a.wav\tespeak-ng\ten-us+m5",
    ]
    assert [tuple(r) for r in read_sources(side)] == rows
    joined = read_sourced_split(manifest)
    assert joined[1] == SourcedUtterance(audio[1], "two", "festival", "ked_diphone")
    # rows out of order: the line that disagrees is named
    write_sources(side, [rows[0], rows[2], rows[1]])
    with pytest.raises(DataFormatError, match=r"test\.sources\.tsv:3: path .*c\.wav differs"):
        read_sourced_split(manifest)
    write_sources(side, rows[:2])
    with pytest.raises(DataFormatError, match="2 rows, but the manifest"):
        read_sourced_split(manifest)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("file\tengine\tvoice\na.wav\tx\ty\n", ":1: header"),
        ("path\tengine\tvoice\na.wav\tx\ty\n\nb.wav\tx\n", ":4: expected 3 non-empty"),
        ("path\tengine\tvoice\na.wav\t\ty\n", ":2: expected 3 non-empty"),
        ("path\tengine\tvoice\n", ": no .path, engine, voice. rows"),
    ],
)
def test_bad_sources_files_name_file_and_line(tmp_path, content, where):
    path = tmp_path / "train.sources.tsv"
    path.write_text(content)
    with pytest.raises(DataFormatError, match="train.sources.tsv" + where):
        read_sources(path)


# -- leave one engine out --------------------------------------------------------------------


def _utterances(n: int = 60) -> list[SourcedUtterance]:
    rng = np.random.default_rng(0)
    engines = ["espeak-ng", "festival", "other"]
    return [
        SourcedUtterance(f"/d/{i}.wav", number_words(int(rng.integers(30))), engines[i % 3], "v")
        for i in range(n)
    ]


@pytest.mark.parametrize("engine", ["espeak-ng", "festival", "other"])
def test_leave_one_engine_out_never_puts_an_engine_on_both_sides(engine):
    utterances = _utterances()
    splits = leave_one_engine_out(utterances, engine, valid_fraction=0.25, seed=3)
    assert {u.engine for u in splits["test"]} == {engine}
    assert engine not in {u.engine for u in splits["train"] + splits["valid"]}
    assert len(splits["test"]) == 20 and len(splits["valid"]) == 10 and len(splits["train"]) == 30
    everything = splits["train"] + splits["valid"] + splits["test"]
    assert sorted(everything) == sorted(utterances)  # a partition: nothing lost or repeated
    assert leave_one_engine_out(utterances, engine, valid_fraction=0.25, seed=3) == splits
    assert leave_one_engine_out(utterances, engine, valid_fraction=0.25, seed=4) != splits


def test_leave_one_engine_out_can_keep_only_unheard_transcripts():
    utterances = _utterances()
    splits = leave_one_engine_out(utterances, "festival", unseen_transcripts_only=True)
    heard = {u.transcript for u in splits["train"] + splits["valid"]}
    assert splits["test"] and not heard & {u.transcript for u in splits["test"]}
    everyone = leave_one_engine_out(utterances, "festival")["test"]
    assert set(splits["test"]) == {u for u in everyone if u.transcript not in heard}


def test_leave_one_engine_out_errors():
    utterances = _utterances(9)
    with pytest.raises(ValueError, match="no utterance of engine 'flite'"):
        leave_one_engine_out(utterances, "flite")
    alone = [u for u in utterances if u.engine == "festival"]
    with pytest.raises(ValueError, match="engines other than 'festival'"):
        leave_one_engine_out(alone, "festival")
    with pytest.raises(ValueError, match="valid_fraction"):
        leave_one_engine_out(utterances, "festival", valid_fraction=1.0)
