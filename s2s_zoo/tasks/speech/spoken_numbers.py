"""The embedded speech task: English numbers spoken by several synthesizers, voices held out.

Made offline, so speech recognition works out of the box with no download. A model
trained on espeak-ng alone learned espeak-ng (0.7% WER on held-out espeak voices,
54.6% on another engine), so the task mixes engines that make speech differently
(see `engines`): espeak-ng's formant voices (accents x variants, speed, pitch) and
festival's diphone and HTS voices (duration, pitch or speaking rate). Every file is
resampled to the model's rate and written as 16-bit PCM mono, with `train.tsv`,
`valid.tsv` and `test.tsv` manifests (`path<TAB>transcript`, paths relative to the task
folder) and beside each a `<split>.sources.tsv` (`path<TAB>engine<TAB>voice`).

What each split measures:

* each engine keeps some voices for test only (espeak-ng: the variants m5, m7, f4 with
  every accent; festival: ked_diphone), so the test voices are all unheard;
* the numbers 0..100 (every word of the vocabulary) are always in train; of the rest,
  one pool of numbers is kept for valid and another for test, so neither held-out
  split repeats a train transcript.

Engines share each split by `ENGINE_SHARES`. A missing engine is left out with a
printed note (the engines used are always printed and recorded in `task.json`); an
explicitly requested engine that is missing, or no engine at all, is an error.

Transcripts are num2words' English in lower case with hyphens and commas turned into
spaces ("forty-two" -> "forty two"): only letters and spaces. Every engine speaks
exactly that text.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from num2words import num2words

from s2s_zoo.data.asr_manifests import write_manifest
from s2s_zoo.tasks.generated import is_made, mark_made, split_files
from s2s_zoo.tasks.speech.engines import Engine, RenderJob, available_engines
from s2s_zoo.tasks.speech.sources import sources_path, write_sources

__all__ = ["ENGINE_SHARES", "make_spoken_number_task", "number_words", "plan_utterances"]

# Expected share of each split per engine (renormalised over the engines in use).
# festival gets a large share for its few voices: they are the other ways of speaking.
ENGINE_SHARES = {"espeak-ng": 0.6, "festival": 0.4}
_BUILDING_BLOCKS = 100  # 0..100 hold every word; they always go to train
_WORKERS = 2  # synthesizer processes at once (the machine may have 2 cores)
_CHUNK = {"espeak-ng": 50, "festival": 40}  # utterances per job (festival: per process)
_VERSION = 3  # bump when the rendering changes, so old task folders and files are remade


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


def plan_utterances(
    out_dir: Path,
    engines: Sequence[Engine],
    counts: dict[str, int],
    max_number: int,
    seed: int,
    sample_rate: int = 16000,
) -> dict[str, list[RenderJob]]:
    """Every utterance to render, decided up front from the seed and the engines alone.

    Test utterances use only the engines' test voices, train and valid only their
    other voices. An engine without a test voice is left out of test.
    """
    pools = _number_pools(max_number, np.random.default_rng(seed))
    voices = {engine.name: engine.voices() for engine in engines}
    plan: dict[str, list[RenderJob]] = {}
    for stream, (split, count) in enumerate(counts.items(), start=1):
        # a stream per split: resizing one split leaves the others' utterances (and files)
        rng = np.random.default_rng([seed, stream])
        side = 1 if split == "test" else 0
        usable = [e for e in engines if voices[e.name][side]]
        if not usable:
            raise ValueError(f"no engine has a {split} voice: {sorted(voices)}")
        shares = np.array([ENGINE_SHARES[e.name] for e in usable])
        jobs = []
        for i, number in enumerate(_cycle(pools[split], count, rng)):
            engine = usable[int(rng.choice(len(usable), p=shares / shares.sum()))]
            names = voices[engine.name][side]
            voice = names[int(rng.integers(len(names)))]
            job = RenderJob(
                text=number_words(number),
                engine=engine.name,
                voice=voice,
                settings=engine.draw_settings(voice, rng),
                path=Path(),
            )
            name = f"{split}_{i:05d}_{job.key(sample_rate, _VERSION)}.wav"
            jobs.append(replace(job, path=out_dir / "wav" / name))
        plan[split] = jobs
    return plan


def _render_all(
    engines: Sequence[Engine], jobs: list[RenderJob], sample_rate: int
) -> dict[str, tuple[int, float]]:
    """Render the jobs not cached yet, 2 processes at once; {engine: (count, busy seconds)}."""
    by_name = {engine.name: engine for engine in engines}
    todo: dict[str, list[RenderJob]] = defaultdict(list)
    for job in jobs:
        if not job.path.is_file():
            todo[job.engine].append(job)
    chunks = [
        (name, pending[start : start + _CHUNK[name]])
        for name, pending in todo.items()
        for start in range(0, len(pending), _CHUNK[name])
    ]
    chunks.sort(key=lambda chunk: chunk[0] != "festival")  # slowest first balances the pool

    def run(chunk: tuple[str, list[RenderJob]]) -> tuple[str, int, float]:
        name, part = chunk
        start = time.perf_counter()
        by_name[name].render(part, sample_rate)
        return name, len(part), time.perf_counter() - start

    stats: dict[str, tuple[int, float]] = {}
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for name, count, seconds in pool.map(run, chunks):
            done, busy = stats.get(name, (0, 0.0))
            stats[name] = (done + count, busy + seconds)
    return stats


def _describe(engines: Sequence[Engine]) -> str:
    parts = []
    for engine in engines:
        train, test = engine.voices()
        parts.append(f"{engine.name} ({len(train)} train/valid voices, {len(test)} test-only)")
    return ", ".join(parts)


def make_spoken_number_task(
    out_dir: str | Path,
    *,
    sample_rate: int = 16000,
    seed: int = 0,
    num_train: int = 3000,
    num_valid: int = 200,
    num_test: int = 300,
    max_number: int = 999,
    engines: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Render the task into `out_dir`; return the train/valid/test manifest paths.

    `engines` names the synthesizers to use (default: every installed one of
    espeak-ng and festival). Deterministic for a seed and a set of installed engines
    and voices. A folder already holding the task made with the same parameters (its
    `task.json`) is reused as is; otherwise files already rendered for the same
    utterance are kept (names carry a digest of text, voice and prosody) and the rest
    rendered. `task.json` also lists each split's voices by engine.
    """
    counts = {"train": num_train, "valid": num_valid, "test": num_test}
    if min(counts.values()) < 1 or max_number < 10 or sample_rate < 1:
        raise ValueError("need at least 1 utterance per split, max_number >= 10, sample_rate > 0")
    usable, notes = available_engines(engines)
    if engines is not None and len(usable) < len(engines):
        missing = "; ".join(notes)
        raise FileNotFoundError(f"speech engines requested but not usable: {missing}")
    if not usable:
        raise FileNotFoundError(
            "no speech engine to make the spoken-number task: " + "; ".join(notes)
        )
    print(f"Spoken-number task engines: {_describe(usable)}")
    for note in notes:
        print(f"  note: {note}")
    out_dir = Path(out_dir)
    params: dict[str, Any] = {
        **{f"num_{split}": count for split, count in counts.items()},
        "max_number": max_number,
        "sample_rate": sample_rate,
        "seed": seed,
        "version": _VERSION,
        "engines": {e.name: [list(v) for v in e.voices()] for e in usable},
    }
    files = split_files(out_dir)
    if is_made(out_dir, params):
        return files
    (out_dir / "task.json").unlink(missing_ok=True)  # an interrupted run is not "made"
    wav_dir = out_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_utterances(out_dir, usable, counts, max_number, seed, sample_rate)
    jobs = [job for split in plan.values() for job in split]
    start = time.perf_counter()
    stats = _render_all(usable, jobs, sample_rate)
    seconds = time.perf_counter() - start
    rendered = sum(count for count, _ in stats.values())
    if rendered:
        busy = ", ".join(
            f"{name} {count} in {busy:.1f} s of a worker ({count / max(busy, 1e-9):.1f}/s)"
            for name, (count, busy) in sorted(stats.items())
        )
        rate = rendered / max(seconds, 1e-9)
        print(
            f"Rendered {rendered} utterances in {seconds:.1f} s ({rate:.1f}/s with "
            f"{_WORKERS} workers): {busy}"
        )
    keep = {job.path.name for job in jobs}
    for stale in wav_dir.iterdir():  # files of earlier parameters or interrupted writes
        if stale.name not in keep:
            stale.unlink()
    for split, split_jobs in plan.items():
        write_manifest(files[split], [(str(job.path), job.text) for job in split_jobs])
        write_sources(
            sources_path(files[split]), [(str(j.path), j.engine, j.voice) for j in split_jobs]
        )
    voices = {
        split: {
            name: sorted({j.voice for j in split_jobs if j.engine == name})
            for name in sorted({j.engine for j in split_jobs})
        }
        for split, split_jobs in plan.items()
    }
    utterances = {split: dict(Counter(j.engine for j in js)) for split, js in plan.items()}
    mark_made(out_dir, params, voices=voices, utterances=utterances)
    return files
