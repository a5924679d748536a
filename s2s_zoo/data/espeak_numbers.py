"""The embedded speech task: English numbers spoken by espeak-ng, with held-out voices.

espeak-ng (Debian package) renders "three hundred and forty two" with several
accents, voice variants and speeds. Test utterances use voice variants never
heard in training and numbers never seen in training, so the test measures
recognition of new speakers and new word sequences. Files are resampled from
espeak's 22,050 Hz to the model's rate and written as 16-bit PCM WAVs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from num2words import num2words

from s2s_zoo.data.generated_task import is_made, mark_made, split_files
from s2s_zoo.data.speech import load_wav, write_manifest
from s2s_zoo.features.audio import wav_bytes

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3")
TEST_VARIANTS = ("m5", "f4")  # held out: never used for train or valid


def transcript(number: int) -> str:
    """num2words' English, lower case, hyphens and commas as spaces."""
    words = num2words(number, lang="en").replace("-", " ").replace(",", " ")
    return " ".join(words.split())


def _speak(text: str, voice: str, speed: int, sample_rate: int, path: Path) -> None:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", tmp.name, text],
            check=True,
            capture_output=True,
        )
        samples = load_wav(tmp.name, sample_rate)
    path.write_bytes(wav_bytes(samples, sample_rate))


def make_spoken_number_task(
    out_dir: str | Path,
    num_train: int = 3000,
    num_valid: int = 200,
    num_test: int = 300,
    max_number: int = 999,
    sample_rate: int = 16000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write WAVs and train/valid/test TSV manifests into `out_dir` (reused if made)."""
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
    out_dir = Path(out_dir)
    params = {
        "num_train": num_train,
        "num_valid": num_valid,
        "num_test": num_test,
        "max_number": max_number,
        "sample_rate": sample_rate,
        "seed": seed,
        "version": 1,
    }
    files = split_files(out_dir)
    if is_made(out_dir, params):
        return files
    rng = np.random.default_rng(seed)
    numbers = rng.permutation(max_number + 1)
    held_out = numbers[: max(1, len(numbers) // 10)]
    seen = numbers[len(held_out) :]
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    jobs, manifests, voices = [], {}, {}
    for split, count in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        variants = TEST_VARIANTS if split == "test" else TRAIN_VARIANTS
        pool = held_out if split == "test" else seen
        rows = []
        for i in range(count):
            voice = f"{rng.choice(ACCENTS)}+{rng.choice(variants)}"
            speed = int(rng.integers(130, 191))
            text = transcript(int(rng.choice(pool)))
            path = out_dir / "wav" / f"{split}_{i:05d}.wav"
            jobs.append((text, voice, speed, sample_rate, path))
            rows.append((str(path), text))
            voices.setdefault(split, set()).add(voice)
        manifests[split] = rows
    with ThreadPoolExecutor(max_workers=2) as pool_:
        list(pool_.map(lambda job: _speak(*job), jobs))
    for split, rows in manifests.items():
        write_manifest(files[split], rows)
    mark_made(out_dir, params, voices={k: sorted(v) for k, v in voices.items()})
    return files
