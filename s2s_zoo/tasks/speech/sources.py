"""Which synthesizer spoke each utterance: the `<split>.sources.tsv` side files, and splits
that keep a whole engine out of training.

The spoken-number task mixes engines (espeak-ng, festival). Its manifests stay plain
`path<TAB>transcript` so every reader and recipe takes them unchanged; next to each,
`<split>.sources.tsv` (`path<TAB>engine<TAB>voice`, same rows, same order) says who
spoke what, so an evaluation can report WER per engine and a benchmark can hold an
entire engine out (`leave_one_engine_out`), which measures generalisation to an
unheard synthesizer rather than to an unheard voice of a known one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from s2s_zoo.data.asr_manifests import read_manifest
from s2s_zoo.data.readers import DataFormatError

__all__ = [
    "SourcedUtterance",
    "UtteranceSource",
    "leave_one_engine_out",
    "read_sourced_split",
    "read_sources",
    "sources_path",
    "write_sources",
]

PathLike = str | os.PathLike[str]
_HEADER = ("path", "engine", "voice")


class UtteranceSource(NamedTuple):
    path: str  # absolute
    engine: str
    voice: str


class SourcedUtterance(NamedTuple):
    path: str  # absolute
    transcript: str
    engine: str
    voice: str


def sources_path(manifest: PathLike) -> Path:
    """`<dir>/<split>.sources.tsv` for the manifest `<dir>/<split>.<ext>`."""
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.stem}.sources.tsv")


def write_sources(path: PathLike, rows: Sequence[tuple[str, str, str]]) -> None:
    """Write (audio path, engine, voice) rows; paths under the file's folder become relative."""
    path = Path(path)
    base = path.resolve().parent
    lines = ["\t".join(_HEADER) + "\n"]
    for index, row in enumerate(rows):
        if len(row) != 3 or any(
            not str(v).strip() or any(c in str(v) for c in "\t\r\n") for v in row
        ):
            raise ValueError(f"sources row {index}: need 3 non-empty fields without tabs: {row!r}")
        resolved = Path(row[0]).resolve()
        shown = resolved.relative_to(base) if resolved.is_relative_to(base) else resolved
        lines.append(f"{shown.as_posix()}\t{row[1]}\t{row[2]}\n")
    path.write_text("".join(lines), encoding="utf-8")


def read_sources(path: PathLike) -> list[UtteranceSource]:
    """(absolute audio path, engine, voice) rows of a sources file, checked strictly.

    A wrong header, a row without exactly three non-empty fields, or no rows at all
    raises a `DataFormatError` naming the file and line.
    """
    path = Path(path)
    base = path.resolve().parent
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != _HEADER:
        raise DataFormatError(str(path), 1, f"header must be {'<TAB>'.join(_HEADER)}")
    rows: list[UtteranceSource] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise DataFormatError(
                str(path), number, f"expected 3 non-empty fields (path, engine, voice): {line!r}"
            )
        audio = str((base / fields[0].strip()).resolve())
        rows.append(UtteranceSource(audio, fields[1].strip(), fields[2].strip()))
    if not rows:
        raise DataFormatError(str(path), 0, "no (path, engine, voice) rows")
    return rows


def read_sourced_split(manifest: PathLike) -> list[SourcedUtterance]:
    """A manifest joined with its `<split>.sources.tsv`, row by row (paths must agree)."""
    pairs = read_manifest(manifest)
    side = sources_path(manifest)
    if not side.is_file():
        raise FileNotFoundError(f"{side}: no sources file next to {manifest}")
    sources = read_sources(side)
    if len(sources) != len(pairs):
        raise DataFormatError(
            str(side), 0, f"{len(sources)} rows, but the manifest {manifest} has {len(pairs)}"
        )
    joined = []
    for number, ((audio, text), source) in enumerate(zip(pairs, sources, strict=True), start=2):
        if source.path != audio:
            raise DataFormatError(
                str(side), number, f"path {source.path} differs from the manifest's {audio}"
            )
        joined.append(SourcedUtterance(audio, text, source.engine, source.voice))
    return joined


def leave_one_engine_out(
    utterances: Sequence[SourcedUtterance],
    test_engine: str,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    unseen_transcripts_only: bool = False,
) -> dict[str, list[SourcedUtterance]]:
    """train/valid/test where every utterance of `test_engine` is in test and nowhere else.

    The other engines' utterances are shuffled (seeded) and `valid_fraction` of them
    (at least one) go to valid, the rest to train. With `unseen_transcripts_only`,
    test keeps only transcripts absent from train and valid, so it measures the
    acoustics alone. Raises ValueError when the engine is absent, is the only one, or
    test would be empty.
    """
    engines = sorted({u.engine for u in utterances})
    if test_engine not in engines:
        raise ValueError(f"no utterance of engine {test_engine!r}; engines present: {engines}")
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    others = [u for u in utterances if u.engine != test_engine]
    if len(others) < 2:
        raise ValueError(
            f"need >= 2 utterances of engines other than {test_engine!r} (train+valid)"
        )
    order = np.random.default_rng(seed).permutation(len(others))
    num_valid = min(len(others) - 1, max(1, round(valid_fraction * len(others))))
    valid = [others[i] for i in order[:num_valid]]
    train = [others[i] for i in order[num_valid:]]
    test = [u for u in utterances if u.engine == test_engine]
    if unseen_transcripts_only:
        heard = {u.transcript for u in train + valid}
        test = [u for u in test if u.transcript not in heard]
        if not test:
            raise ValueError(f"every {test_engine!r} transcript also occurs in train/valid")
    return {"train": train, "valid": valid, "test": test}
