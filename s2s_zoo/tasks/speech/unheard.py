"""A test set spoken by a synthesizer the spoken-number task never trains on: flite.

The default task trains on espeak-ng and festival and holds out some of their voices
for test, so its test split still measures known engines. `make_unheard_engine_test`
renders the task's held-out test numbers (the same pool as the task's `test.tsv`, never
in train) with CMU flite, an engine the task generator never uses: a model is scored
on a way of making speech it never heard. Only flite's clustergen voices are used
(awb, rms, slt): its kal voices reuse festival's kal diphones, and awb_time speaks
only clock times. The result is a `test.tsv` manifest with its `test.sources.tsv`
(engine "flite", voice), which the speech task scores per engine like any split.

flite is kept out of `engines.available_engines` on purpose, so it cannot end up in
training data by accident.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from s2s_zoo.data.asr_manifests import write_manifest
from s2s_zoo.data.wav_files import load_wav
from s2s_zoo.tasks.speech.engines import RenderJob, _write_wav
from s2s_zoo.tasks.speech.sources import sources_path, write_sources
from s2s_zoo.tasks.speech.spoken_numbers import _number_pools, number_words

__all__ = ["FliteEngine", "make_unheard_engine_test"]

_VERSION = 1  # bump when the rendering changes


class FliteEngine:
    """CMU flite 2.x: clustergen voices, a duration stretch drawn per utterance."""

    name = "flite"
    package = "flite"
    VOICES = ("awb", "rms", "slt")
    STRETCH = (0.85, 1.25)  # duration_stretch: > 1 is slower

    def installed(self) -> bool:
        return shutil.which("flite") is not None

    def installed_voices(self) -> tuple[str, ...]:
        """What `flite -lv` lists (an unknown -voice silently falls back to kal)."""
        done = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"flite could not list its voices: {done.stderr.strip()}")
        return tuple(done.stdout.split(":", 1)[-1].split())

    def voices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(train/valid voices, test voices): flite is for testing only."""
        have = set(self.installed_voices())
        return (), tuple(v for v in self.VOICES if v in have)

    def draw_settings(self, voice: str, rng: np.random.Generator) -> tuple[tuple[str, float], ...]:
        return (("stretch", round(float(rng.uniform(*self.STRETCH)), 3)),)

    def render(self, jobs: Sequence[RenderJob], sample_rate: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "flite.wav"
            for job in jobs:
                stretch = dict(job.settings)["stretch"]
                command = ["flite", "-voice", job.voice, "--setf", f"duration_stretch={stretch}"]
                command += ["-t", job.text, "-o", str(raw)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0 or not raw.is_file():
                    raise RuntimeError(f"flite failed for voice {job.voice!r}: {done.stderr}")
                _write_wav(job.path, load_wav(raw, sample_rate), sample_rate)
                raw.unlink()


def make_unheard_engine_test(
    out_dir: str | Path,
    *,
    num_test: int = 300,
    seed: int = 0,
    max_number: int = 999,
    sample_rate: int = 16000,
) -> Path:
    """Render `num_test` numbers of the task's test pool with flite; return `test.tsv`.

    `seed` and `max_number` must be the spoken-number task's (they fix its number
    pools), so the numbers are ones the task's train split never contains. Voices
    cycle evenly; a folder made with the same parameters is reused.
    """
    if num_test < 1:
        raise ValueError(f"num_test must be >= 1, got {num_test}")
    engine = FliteEngine()
    if not engine.installed():
        raise FileNotFoundError(f"flite is not installed (apt-get install {engine.package})")
    voices = engine.voices()[1]
    if not voices:
        raise FileNotFoundError(f"flite has none of the voices {FliteEngine.VOICES}")
    out_dir = Path(out_dir)
    manifest = out_dir / "test.tsv"
    params = {"num_test": num_test, "seed": seed, "max_number": max_number,
              "sample_rate": sample_rate, "voices": list(voices), "version": _VERSION}  # fmt: skip
    marker = out_dir / "task.json"
    if marker.is_file() and json.loads(marker.read_text()).get("params") == params:
        return manifest
    marker.unlink(missing_ok=True)
    pool = _number_pools(max_number, np.random.default_rng(seed))["test"]
    rng = np.random.default_rng([seed, 99])
    numbers = rng.choice(pool, size=num_test, replace=num_test > len(pool))
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, number in enumerate(numbers):
        voice = voices[i % len(voices)]
        jobs.append(
            RenderJob(
                text=number_words(int(number)),
                engine=engine.name,
                voice=voice,
                settings=engine.draw_settings(voice, rng),
                path=out_dir / "wav" / f"test_{i:05d}_{voice}.wav",
            )
        )
    engine.render(jobs, sample_rate)
    write_manifest(manifest, [(str(job.path), job.text) for job in jobs])
    write_sources(sources_path(manifest), [(str(j.path), j.engine, j.voice) for j in jobs])
    marker.write_text(json.dumps({"params": params}))
    return manifest
