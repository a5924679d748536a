"""Speech data in the formats users have: CSV/TSV manifests with a header, or JSONL.

Each row names a 16-bit PCM WAV file (relative to the manifest) and its
transcript. `load_wav` reads a file for the training pipeline and resamples it
(scipy's polyphase filter) when its rate differs from the model's; the exported
model itself only accepts the model's rate and says so.
"""

from __future__ import annotations

import csv
import json
import math
import wave
from pathlib import Path

import numpy as np

from s2s_zoo.data.readers import DataFormatError

Pairs = list[tuple[str, str]]
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


def _rows(path: Path, file_format: str):
    """(line number, dict row) for CSV/TSV (header row) or JSONL."""
    with open(path, encoding="utf-8", newline="") as f:
        if file_format == "jsonl":
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataFormatError(str(path), number, f"invalid JSON: {error.msg}") from None
                if not isinstance(row, dict):
                    raise DataFormatError(str(path), number, "expected a JSON object")
                yield number, row
            return
        reader = csv.DictReader(f, delimiter="," if file_format == "csv" else "\t")
        for row in reader:
            yield reader.line_num, row


def read_manifest(
    path: str | Path,
    path_field: str = "path",
    transcript_field: str = "transcript",
    file_format: str | None = None,
) -> Pairs:
    """(absolute audio path, transcript) pairs; errors name the manifest and line."""
    path = Path(path)
    file_format = file_format or FORMATS.get(path.suffix.lower())
    if file_format not in ("csv", "tsv", "jsonl"):
        raise DataFormatError(
            str(path), 0, "unknown manifest format: use .csv, .tsv or .jsonl (or file_format=)"
        )
    base = path.resolve().parent
    pairs: Pairs = []
    for number, row in _rows(path, file_format):
        for field in (path_field, transcript_field):
            if row.get(field) is None:
                raise DataFormatError(str(path), number, f"missing field {field!r}")
        transcript = " ".join(str(row[transcript_field]).split())
        if not transcript:
            raise DataFormatError(str(path), number, "empty transcript")
        audio = (base / str(row[path_field]).strip()).resolve()
        if not audio.is_file():
            raise DataFormatError(str(path), number, f"audio file not found: {audio}")
        pairs.append((str(audio), transcript))
    if not pairs:
        raise DataFormatError(str(path), 0, "no (audio, transcript) rows")
    return pairs


def write_manifest(path: str | Path, pairs: Pairs) -> None:
    """TSV manifest with a `path<TAB>transcript` header; paths relative to its folder."""
    path = Path(path)
    base = path.resolve().parent
    lines = ["path\ttranscript\n"]
    for audio, transcript in pairs:
        lines.append(f"{Path(audio).resolve().relative_to(base)}\t{transcript}\n")
    path.write_text("".join(lines), encoding="utf-8")


def load_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """float32 mono samples in [-1, 1] at `sample_rate`; 16-bit PCM WAV files only."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path}: not a PCM WAV file ({error})") from None
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is supported")
    samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        gcd = math.gcd(rate, sample_rate)
        samples = resample_poly(samples, sample_rate // gcd, rate // gcd).astype(np.float32)
    return samples
