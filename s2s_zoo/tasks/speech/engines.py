"""Speech synthesizers that render the spoken-number task: espeak-ng and festival.

A model trained on one synthesizer learns that synthesizer, not speech (the espeak-only
task gave 0.7% WER on held-out espeak voices and 54.6% on another engine), so the task
mixes engines that make speech in different ways: espeak-ng's formant synthesis and
festival's diphone concatenation (kal, ked) and HMM/HTS vocoding (slt). Each engine
names its voices and which of them are kept for the test split only, draws per-utterance
prosody, and renders batches of utterances to 16-bit mono WAVs at the task's rate.

Only these two Debian engines are used for training on purpose: flite, pico, mbrola
and others stay out so that evaluating on them still measures an unheard synthesizer.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from s2s_zoo.data.wav_files import load_wav, wav_bytes

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EspeakEngine",
    "FestivalEngine",
    "RenderJob",
    "available_engines",
    "engine_by_name",
]


@dataclass(frozen=True)
class RenderJob:
    """One utterance to synthesize: `settings` are the engine's prosody knobs."""

    text: str
    engine: str
    voice: str
    settings: tuple[tuple[str, float], ...]
    path: Path

    def key(self, sample_rate: int, version: int) -> str:
        """A short digest of everything that decides the audio (names the cached file)."""
        spec = repr((self.text, self.engine, self.voice, self.settings, sample_rate, version))
        return hashlib.sha1(spec.encode("utf-8")).hexdigest()[:12]


class Engine(Protocol):
    """What the task generator needs from a synthesizer."""

    name: str
    package: str  # the Debian packages that provide it, for error messages

    def installed(self) -> bool: ...

    def voices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(train/valid voices, test-only voices) that are installed."""
        ...

    def draw_settings(
        self, voice: str, rng: np.random.Generator
    ) -> tuple[tuple[str, float], ...]: ...

    def render(self, jobs: Sequence[RenderJob], sample_rate: int) -> None:
        """Write every job's WAV (16-bit mono at `sample_rate`); raise naming the failure."""
        ...


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write atomically, so an interrupted run never leaves a cut-off file in the cache."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(wav_bytes(samples, sample_rate))
    os.replace(partial, path)


# -- espeak-ng -----------------------------------------------------------------------------


class EspeakEngine:
    """espeak-ng (formant synthesis): English accents x voice variants, speed and pitch."""

    name = "espeak-ng"
    package = "espeak-ng"
    # `espeak-ng --voices=en` (1.51, Debian): the eSpeak English accents (the mbrola
    # voices it also lists need separate mbrola packages, so they are not used).
    ACCENTS = (
        "en-gb",
        "en-us",
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-029",
        "en-us-nyc",
    )
    # Variants change pitch, formants and voice quality ("" = the accent's default).
    TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m6", "f1", "f2", "f3", "f5")
    TEST_VARIANTS = ("m5", "m7", "f4")  # never used for train or valid
    SPEEDS = (120, 200)  # words per minute, inclusive
    PITCHES = (35, 65)  # espeak's 0..99 pitch adjustment, inclusive

    def installed(self) -> bool:
        return shutil.which("espeak-ng") is not None

    def voices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        def combine(variants: Iterable[str]) -> tuple[str, ...]:
            return tuple(f"{a}+{v}" if v else a for a in self.ACCENTS for v in variants)

        return combine(self.TRAIN_VARIANTS), combine(self.TEST_VARIANTS)

    def draw_settings(self, voice: str, rng: np.random.Generator) -> tuple[tuple[str, float], ...]:
        speed = int(rng.integers(self.SPEEDS[0], self.SPEEDS[1] + 1))
        pitch = int(rng.integers(self.PITCHES[0], self.PITCHES[1] + 1))
        return (("speed", speed), ("pitch", pitch))

    def render(self, jobs: Sequence[RenderJob], sample_rate: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "espeak.wav"
            for job in jobs:
                settings = dict(job.settings)
                command = ["espeak-ng", "-v", job.voice, "-s", str(int(settings["speed"]))]
                command += ["-p", str(int(settings["pitch"])), "-w", str(raw), job.text]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0 or not raw.is_file():
                    raise RuntimeError(f"espeak-ng failed for voice {job.voice!r}: {done.stderr}")
                _write_wav(job.path, load_wav(raw, sample_rate), sample_rate)
                raw.unlink()


# -- festival ------------------------------------------------------------------------------


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalEngine:
    """festival with the Debian festvox English voices.

    Two synthesis methods: kal and ked are residual-LPC diphone voices (16 kHz), slt is
    an HTS (HMM) voice (32 kHz, resampled). Prosody per utterance: diphone voices take
    a duration stretch and a target pitch mean and range (their intonation model's
    `int_lr_params`); festival's HTS wrapper honours only the speaking rate `-r` (it
    ignores Duration_Stretch, and `-fm` / `-a` changed nothing in festival 2.5), so slt
    varies in tempo only. With just three English voices, ked is held out for the test
    split; train/valid hear kal and slt, so both synthesis methods are trained on.
    """

    name = "festival"
    package = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
    TRAIN_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
    TEST_VOICES = ("ked_diphone",)  # never used for train or valid
    DIPHONE_STRETCH = (0.85, 1.35)  # Duration_Stretch (the voices' own default is 1.1)
    DIPHONE_F0_MEAN = (80.0, 140.0)  # Hz (default 105)
    DIPHONE_F0_STD = (8.0, 25.0)  # Hz (default 14-15)
    HTS_RATE = (0.8, 1.25)  # hts_engine speaking rate, > 1 is faster
    _voice_cache: tuple[str, ...] | None = None

    def installed(self) -> bool:
        return shutil.which("festival") is not None

    def installed_voices(self) -> tuple[str, ...]:
        """The voices festival itself lists (`voice.list`), asked once per process."""
        if FestivalEngine._voice_cache is None:
            done = subprocess.run(
                ["festival", "--batch", "(print (voice.list))"], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"festival could not list its voices: {done.stderr.strip()}")
            FestivalEngine._voice_cache = tuple(done.stdout.strip().strip("()").split())
        return FestivalEngine._voice_cache

    def voices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        have = set(self.installed_voices())
        return (
            tuple(v for v in self.TRAIN_VOICES if v in have),
            tuple(v for v in self.TEST_VOICES if v in have),
        )

    def draw_settings(self, voice: str, rng: np.random.Generator) -> tuple[tuple[str, float], ...]:
        def uniform(bounds: tuple[float, float]) -> float:
            return round(float(rng.uniform(*bounds)), 3)

        if voice.endswith("_hts"):
            return (("rate", uniform(self.HTS_RATE)),)
        return (
            ("stretch", uniform(self.DIPHONE_STRETCH)),
            ("f0_mean", uniform(self.DIPHONE_F0_MEAN)),
            ("f0_std", uniform(self.DIPHONE_F0_STD)),
        )

    @staticmethod
    def _script(job: RenderJob, raw: Path, new_voice: bool) -> list[str]:
        """Scheme that renders one job into `raw`, every prosody knob set explicitly."""
        settings = dict(job.settings)
        lines = [f"(voice_{job.voice})"] if new_voice else []
        if job.voice.endswith("_hts"):
            # synthesis reads the global `hts_engine_params`; the voice's own list is the base
            base = f"{job.voice}::hts_engine_params"
            rate = settings["rate"]
            lines.append(f'(set! hts_engine_params (append {base} (list (list "-r" {rate}))))')
        else:
            lines += [
                f"(Parameter.set 'Duration_Stretch {settings['stretch']})",
                "(set! int_lr_params (list (list 'target_f0_mean "
                f"{settings['f0_mean']}) (list 'target_f0_std {settings['f0_std']}) "
                "(list 'model_f0_mean 170) (list 'model_f0_std 34)))",
            ]
        text, target = _scheme_string(job.text), _scheme_string(str(raw))
        return lines + [f"(utt.save.wave (SynthText {text}) {target} 'riff)"]

    def render(self, jobs: Sequence[RenderJob], sample_rate: int) -> None:
        """One festival process renders all `jobs` (its start-up costs more than a number)."""
        if not jobs:
            return
        with tempfile.TemporaryDirectory() as tmp:
            raws = [Path(tmp) / f"{i}.wav" for i in range(len(jobs))]
            script = Path(tmp) / "render.scm"
            lines: list[str] = []
            voice = None
            for job, raw in sorted(zip(jobs, raws, strict=True), key=lambda pair: pair[0].voice):
                lines += self._script(job, raw, new_voice=job.voice != voice)
                voice = job.voice
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            done = subprocess.run(
                ["festival", "--batch", str(script)], capture_output=True, text=True
            )
            missing = [job for job, raw in zip(jobs, raws, strict=True) if not raw.is_file()]
            if done.returncode != 0 or missing:
                first = missing[0] if missing else jobs[0]
                raise RuntimeError(
                    f"festival failed (exit {done.returncode}) rendering {first.text!r} with "
                    f"voice {first.voice!r}: {(done.stderr or done.stdout).strip()[-500:]}"
                )
            for job, raw in zip(jobs, raws, strict=True):
                _write_wav(job.path, load_wav(raw, sample_rate), sample_rate)


# -- lookup --------------------------------------------------------------------------------

_ENGINES: dict[str, type] = {"espeak-ng": EspeakEngine, "festival": FestivalEngine}
ENGINE_NAMES = tuple(_ENGINES)


def engine_by_name(name: str) -> Engine:
    if name not in _ENGINES:
        raise ValueError(f"unknown speech engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return _ENGINES[name]()


def available_engines(names: Sequence[str] | None = None) -> tuple[list[Engine], list[str]]:
    """(usable engines, notes on what is missing) among `names` (default: all known).

    An engine is usable when its program is installed and it has at least one voice for
    train/valid; a missing test voice is reported but does not drop the engine.
    """
    usable: list[Engine] = []
    notes: list[str] = []
    for name in names if names is not None else ENGINE_NAMES:
        engine = engine_by_name(name)
        if not engine.installed():
            notes.append(f"{name}: not installed (apt-get install {engine.package})")
            continue
        train, test = engine.voices()
        if not train:
            notes.append(f"{name}: no training voice installed (apt-get install {engine.package})")
            continue
        if not test:
            notes.append(f"{name}: no held-out test voice installed; used for train/valid only")
        usable.append(engine)
    return usable, notes
