"""Speech data in the formats users have: CSV/TSV manifests with a header, or JSONL.

Each row names a WAV file (relative to the manifest's folder, or absolute) and
its transcript. Like `readers.read_pairs`, reading is strict: a missing column,
an empty transcript or a missing audio file raises a `DataFormatError` naming the
manifest and line, so a bad row is fixed at the source instead of silently
shrinking the training set.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

from s2s_zoo.data.readers import DataFormatError, Pairs, detect_format, resolve_data_file

__all__ = ["read_manifest", "write_manifest"]

PathLike = str | os.PathLike[str]
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}


def _jsonl_rows(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(str(path), number, f"invalid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            found = type(row).__name__
            raise DataFormatError(str(path), number, f"expected a JSON object, found {found}")
        yield number, row


def _table_rows(
    path: Path, lines: Iterator[str], delimiter: str, fields: tuple[str, str]
) -> Iterator[tuple[int, dict]]:
    """Rows of a headed CSV/TSV; TSV fields are taken literally (quotes are text)."""
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.DictReader(lines, delimiter=delimiter, quoting=quoting)
    header = reader.fieldnames or []
    for field in fields:
        if field not in header:
            shown = ", ".join(repr(name) for name in header) or "nothing"
            raise DataFormatError(
                str(path), 1, f"missing column {field!r} in the header (found {shown})"
            )
    for row in reader:
        if None in row or None in row.values():
            raise DataFormatError(
                str(path), reader.line_num, f"expected {len(header)} fields like the header"
            )
        yield reader.line_num, row


def _pair(path: Path, number: int, row: dict, fields: tuple[str, str]) -> tuple[str, str]:
    """(absolute audio path, whitespace-normalised transcript) of one row, checked."""
    values = []
    for field in fields:
        if field not in row:
            keys = ", ".join(repr(k) for k in row) or "none"
            raise DataFormatError(str(path), number, f"missing field {field!r}; keys: {keys}")
        if not isinstance(row[field], str):
            kind = type(row[field]).__name__
            raise DataFormatError(
                str(path), number, f"field {field!r} must be a string, not {kind}"
            )
        values.append(row[field])
    audio_field, transcript = values[0].strip(), " ".join(values[1].split())
    if not transcript:
        raise DataFormatError(str(path), number, f"empty transcript (field {fields[1]!r})")
    if not audio_field:
        raise DataFormatError(str(path), number, f"empty audio path (field {fields[0]!r})")
    return resolve_data_file(path, number, audio_field, "audio"), transcript


def read_manifest(
    path: PathLike,
    path_field: str = "path",
    transcript_field: str = "transcript",
    file_format: str | None = None,
) -> Pairs:
    """(absolute audio path, transcript) pairs from a CSV, TSV or JSONL manifest.

    CSV/TSV need a header row naming the columns (other columns are ignored);
    JSONL has one object per line. The format comes from the extension unless
    `file_format` is given. Transcripts have their whitespace collapsed.
    """
    path = Path(path)
    fmt = detect_format(path, file_format, _EXTENSIONS)
    fields = (path_field, transcript_field)
    if path_field == transcript_field:
        raise ValueError(f"path_field and transcript_field must differ, both are {path_field!r}")
    pairs: Pairs = []
    # utf-8-sig: spreadsheet exports often start with a byte-order mark
    with open(path, encoding="utf-8-sig", newline="") as handle:
        if fmt == "jsonl":
            rows = _jsonl_rows(path, handle)
        else:
            rows = _table_rows(path, handle, "," if fmt == "csv" else "\t", fields)
        for number, row in rows:
            pairs.append(_pair(path, number, row, fields))
    if not pairs:
        raise DataFormatError(str(path), 0, "no (audio, transcript) rows")
    return pairs


def write_manifest(path: PathLike, pairs: Pairs) -> None:
    """TSV manifest with a `path<TAB>transcript` header, the inverse of `read_manifest`.

    Audio paths under the manifest's folder are written relative to it (so the
    folder can be moved), others absolute.
    """
    path = Path(path)
    base = path.resolve().parent
    lines = ["path\ttranscript\n"]
    for index, (audio, transcript) in enumerate(pairs):
        for value in (str(audio), transcript):
            if any(char in value for char in "\t\r\n") or not value.strip():
                raise ValueError(f"pair {index}: empty or contains a tab/newline: {value!r}")
        resolved = Path(audio).resolve()
        shown = resolved.relative_to(base) if resolved.is_relative_to(base) else resolved
        lines.append(f"{shown.as_posix()}\t{transcript}\n")
    path.write_text("".join(lines), encoding="utf-8")
