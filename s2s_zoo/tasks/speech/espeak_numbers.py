"""The embedded speech task: English numbers spoken by espeak-ng, with held-out voices.

Made offline, so speech recognition works out of the box with no download: the
Debian package `espeak-ng` renders "three hundred and forty two" with several
English accents, voice variants, speeds and pitches. Files are resampled from
espeak's 22,050 Hz to the model's rate (as `load_wav` does) and written as 16-bit
PCM WAVs, with `train.tsv`, `valid.tsv` and `test.tsv` manifests
(`path<TAB>transcript`, paths relative to the task folder).

What each split measures:

* voices are an accent plus a variant (`en-gb-scotland+m3`); the test split uses
  variants never heard in train or valid, so its voices are all new;
* the numbers 0..100 (every word of the vocabulary) are always in train; of the
  rest, one pool of numbers is kept for valid and another for test, so neither
  held-out split repeats a train transcript.

Transcripts are num2words' English in lower case with hyphens and commas turned
into spaces ("forty-two" -> "forty two"): only letters and spaces, which suits a
character or subword decoder. espeak speaks exactly that text.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from num2words import num2words

from s2s_zoo.data.asr_manifests import write_manifest
from s2s_zoo.data.wav_files import load_wav, wav_bytes
from s2s_zoo.tasks.generated import is_made, mark_made, split_files

__all__ = [
    "ACCENTS",
    "TEST_VARIANTS",
    "TRAIN_VARIANTS",
    "make_spoken_number_task",
    "number_words",
]

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
_BUILDING_BLOCKS = 100  # 0..100 hold every word; they always go to train
_WORKERS = 2  # espeak processes at once (the machine may have 2 cores)
_VERSION = 2  # bump when the rendering changes, so old task folders are remade


@dataclass(frozen=True)
class _Utterance:
    text: str
    voice: str
    speed: int
    pitch: int
    path: Path


def number_words(number: int) -> str:
    """English words for `number`: lower case, hyphens and commas as single spaces."""
    words = num2words(number, lang="en").lower().replace("-", " ").replace(",", " ")
    return " ".join(words.split())


def _number_pools(max_number: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Disjoint train/valid/test number pools; 0..100 always in train."""
    blocks = min(_BUILDING_BLOCKS, max_number // 2)
    rest = rng.permutation(np.arange(blocks + 1, max_number + 1))
    num_test = max(1, len(rest) // 10)
    num_valid = max(1, len(rest) // 20)
    return {
        "test": rest[:num_test],
        "valid": rest[num_test : num_test + num_valid],
        "train": np.concatenate([np.arange(blocks + 1), rest[num_test + num_valid :]]),
    }


def _cycle(pool: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """`count` numbers from `pool`, each used about equally often, in random order."""
    rounds = -(-count // len(pool))
    return [int(n) for n in np.concatenate([rng.permutation(pool) for _ in range(rounds)])][:count]


def _plan(
    out_dir: Path, counts: dict[str, int], max_number: int, seed: int
) -> dict[str, list[_Utterance]]:
    """Every utterance to render, decided up front from the seed alone."""
    rng = np.random.default_rng(seed)
    pools = _number_pools(max_number, rng)
    plan: dict[str, list[_Utterance]] = {}
    for split, count in counts.items():
        variants = TEST_VARIANTS if split == "test" else TRAIN_VARIANTS
        utterances = []
        for i, number in enumerate(_cycle(pools[split], count, rng)):
            accent = ACCENTS[rng.integers(len(ACCENTS))]
            variant = variants[rng.integers(len(variants))]
            utterances.append(
                _Utterance(
                    text=number_words(number),
                    voice=f"{accent}+{variant}" if variant else accent,
                    speed=int(rng.integers(SPEEDS[0], SPEEDS[1] + 1)),
                    pitch=int(rng.integers(PITCHES[0], PITCHES[1] + 1)),
                    path=out_dir / "wav" / f"{split}_{i:05d}.wav",
                )
            )
        plan[split] = utterances
    return plan


def _render(utterance: _Utterance, sample_rate: int) -> None:
    """espeak-ng -> temporary WAV -> resampled 16-bit PCM WAV at `sample_rate`."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        command = ["espeak-ng", "-v", utterance.voice, "-s", str(utterance.speed)]
        command += ["-p", str(utterance.pitch), "-w", str(raw), utterance.text]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"espeak-ng failed for voice {utterance.voice!r}: {done.stderr}")
        samples = load_wav(raw, sample_rate)
    utterance.path.write_bytes(wav_bytes(samples, sample_rate))


def make_spoken_number_task(
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    seed: int = 0,
    num_train: int = 3000,
    num_valid: int = 200,
    num_test: int = 300,
    max_number: int = 999,
) -> dict[str, Path]:
    """Render the task into `out_dir`; return the train/valid/test manifest paths.

    Deterministic for a seed. A folder already holding the task made with the
    same parameters (its `task.json`) is reused as is. `task.json` also lists the
    voices of each split. The defaults take well under a minute on 2 cores.
    """
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError(
            "espeak-ng is needed to make the spoken-number task: apt-get install espeak-ng"
        )
    counts = {"train": num_train, "valid": num_valid, "test": num_test}
    if min(counts.values()) < 1 or max_number < 10 or sample_rate < 1:
        raise ValueError("need at least 1 utterance per split, max_number >= 10, sample_rate > 0")
    out_dir = Path(out_dir)
    params: dict[str, Any] = {
        **{f"num_{split}": count for split, count in counts.items()},
        "max_number": max_number,
        "sample_rate": sample_rate,
        "seed": seed,
        "version": _VERSION,
    }
    files = split_files(out_dir)
    if is_made(out_dir, params):
        return files
    (out_dir / "task.json").unlink(missing_ok=True)  # an interrupted run is not "made"
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    plan = _plan(out_dir, counts, max_number, seed)
    jobs = [u for split in plan.values() for u in split]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        list(pool.map(lambda u: _render(u, sample_rate), jobs))
    for split, utterances in plan.items():
        write_manifest(files[split], [(str(u.path), u.text) for u in utterances])
    voices = {split: sorted({u.voice for u in us}) for split, us in plan.items()}
    mark_made(out_dir, params, voices=voices)
    return files
