"""Readers and writers for user-supplied parallel (source, target) data.

Two line-oriented formats are supported:

* ``tsv``   -- one pair per line, ``source<TAB>target``.
* ``jsonl`` -- one JSON object per line, e.g. ``{"source": "...", "target": "..."}``.

The reader is deliberately strict: any malformed line raises a
:class:`DataFormatError` that names the file and the 1-based line number, so a
bad row is fixed at the source instead of silently shrinking or corrupting the
training set. The only lines that are tolerated are blank ones, and those are
counted in the returned :class:`ReadReport` rather than dropped unnoticed.
Field values are returned exactly as written (minus the line terminator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DataFormatError",
    "Pair",
    "Pairs",
    "ReadReport",
    "detect_format",
    "read_pairs",
    "resolve_data_file",
    "write_pairs",
]

_EXTENSIONS = {
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}

# Characters a TSV field cannot hold without breaking the line/field structure.
_TSV_FORBIDDEN = (("\t", "a tab"), ("\n", "a newline"), ("\r", "a carriage return"))

Pair = tuple[str, str]
Pairs = list[Pair]  # what every reader returns: (source, target) in file order
PathLike = str | os.PathLike[str]


class DataFormatError(ValueError):
    """A data file does not match its declared format.

    Carries the location so callers (and users) can jump straight to the bad
    line. ``line_number`` is 1-based; ``0`` means the problem concerns the
    file as a whole (for example, it contains no pairs at all).
    """

    def __init__(self, path: str, line_number: int, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.reason = reason
        if line_number > 0:
            message = f"{path}:{line_number}: {reason}"
        else:
            message = f"{path}: {reason}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[DataFormatError], tuple[str, int, str]]:
        # Keep the exception picklable (e.g. across multiprocessing workers).
        return (type(self), (self.path, self.line_number, self.reason))


@dataclass
class ReadReport:
    """The pairs read from one file plus what was skipped, so nothing is silent."""

    path: str
    pairs: list[Pair] = field(default_factory=list)
    skipped_blank: int = 0
    # 1-based line of each pair, so callers that check pairs further (e.g. that a
    # caption's image exists) can still name the line
    line_numbers: list[int] = field(default_factory=list)

    def summary(self) -> str:
        """One-line human-readable account of what was read, for logs."""
        n = len(self.pairs)
        pairs_word = "pair" if n == 1 else "pairs"
        lines_word = "line" if self.skipped_blank == 1 else "lines"
        return f"{self.path}: {n} {pairs_word}, {self.skipped_blank} blank {lines_word} skipped"


def detect_format(
    path: PathLike, file_format: str | None, extensions: dict[str, str] = _EXTENSIONS
) -> str:
    """The explicit `file_format`, else the one `path`'s extension names in `extensions`
    (extension -> format); an unknown one is an error, never a guess."""
    formats = sorted(set(extensions.values()))
    if file_format is not None:
        fmt = file_format.lower().lstrip(".")
        if fmt not in formats:
            raise ValueError(
                f"{os.fspath(path)}: unknown file_format {file_format!r}; "
                f"expected one of {', '.join(repr(f) for f in formats)}"
            )
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in extensions:
        accepted = ", ".join(f"{ext} ({fmt})" for ext, fmt in extensions.items())
        shown = repr(suffix) if suffix else "no extension"
        options = " or ".join(f"file_format={f!r}" for f in formats)
        raise ValueError(
            f"{os.fspath(path)}: cannot infer the data format from {shown}; "
            f"accepted extensions: {accepted}; or pass {options}"
        )
    return extensions[suffix]


def resolve_data_file(listing: PathLike, line_number: int, value: str, what: str) -> str:
    """Absolute path of a media file a data listing names (relative to the listing's
    folder, or absolute); a missing file is a `DataFormatError` at that line."""
    resolved = (Path(listing).resolve().parent / value.strip()).resolve()
    if not resolved.is_file():
        raise DataFormatError(os.fspath(listing), line_number, f"{what} file not found: {resolved}")
    return str(resolved)


def _decode_lines(data: bytes, path: str, encoding: str) -> list[str]:
    """Decode the whole file, reporting the line of the first invalid byte."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        prefix = data[: err.start].decode(encoding, errors="replace")
        line_number = prefix.count("\n") + 1
        bad = data[err.start : err.end].hex(" ")
        raise DataFormatError(
            path,
            line_number,
            f"not valid {encoding}: {err.reason} (bytes {bad} at file offset {err.start})",
        ) from err
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    # A UTF-8 byte-order mark (common in files saved by Windows tools) would
    # otherwise end up glued to the first source sentence.
    if text.startswith("\ufeff"):
        text = text[1:]
    # Split on "\n" only: str.splitlines() would also break on characters such
    # as U+2028 or form feed, which may legitimately occur inside a sentence.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline does not start another line
    return lines


def _parse_tsv_line(line: str, path: str, line_number: int, names: tuple[str, str]) -> Pair:
    fields = line.split("\t")
    if len(fields) != 2:
        reason = f"expected 2 tab-separated fields ({names[0]}<TAB>{names[1]}), found {len(fields)}"
        if len(fields) == 1:
            reason += " (is the separator a tab rather than spaces?)"
        raise DataFormatError(path, line_number, reason)
    source, target = fields
    for column, (name, value) in enumerate(zip(names, (source, target), strict=True), 1):
        if not value.strip():
            raise DataFormatError(path, line_number, f"{name} field (column {column}) is empty")
    return source, target


def _parse_jsonl_line(
    line: str, path: str, line_number: int, source_field: str, target_field: str
) -> Pair:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataFormatError(
            path,
            line_number,
            f"invalid JSON: {err.msg} (column {err.colno})",
        ) from err
    if not isinstance(obj, dict):
        hint = ""
        if isinstance(obj, list):
            hint = " (JSON input must be JSON Lines: one object per line)"
        raise DataFormatError(
            path,
            line_number,
            f"expected a JSON object, found {type(obj).__name__}{hint}",
        )
    values: list[str] = []
    for name in (source_field, target_field):
        if name not in obj:
            keys = ", ".join(repr(k) for k in obj) or "none"
            raise DataFormatError(
                path,
                line_number,
                f"missing field {name!r}; keys present: {keys}",
            )
        value = obj[name]
        if not isinstance(value, str):
            raise DataFormatError(
                path,
                line_number,
                f"field {name!r} must be a string, found "
                f"{type(value).__name__} {json.dumps(value)[:40]}",
            )
        if not value.strip():
            raise DataFormatError(path, line_number, f"field {name!r} is empty")
        values.append(value)
    return values[0], values[1]


def read_pairs(
    path: PathLike,
    *,
    file_format: str | None = None,
    source_field: str = "source",
    target_field: str = "target",
    encoding: str = "utf-8",
    tsv_columns: tuple[str, str] = ("source", "target"),
) -> ReadReport:
    """Read (source, target) pairs, failing loudly on the first malformed line.

    ``file_format`` is ``"tsv"`` or ``"jsonl"``; when omitted it is inferred
    from the extension (.tsv/.txt -> tsv, .jsonl/.json/.ndjson -> jsonl).
    ``source_field``/``target_field`` name the JSON keys (ignored for TSV);
    ``tsv_columns`` names the TSV columns in error messages.
    Blank lines are skipped and counted in the report; a file without a
    single pair is an error, since training on nothing is never intended.
    """
    fmt = detect_format(path, file_format)
    if fmt == "jsonl" and source_field == target_field:
        raise ValueError(f"source_field and target_field must differ, both are {source_field!r}")
    path_str = os.fspath(path)
    data = Path(path).read_bytes()
    lines = _decode_lines(data, path_str, encoding)

    report = ReadReport(path=path_str)
    for line_number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            report.skipped_blank += 1
            continue
        if fmt == "tsv":
            pair = _parse_tsv_line(line, path_str, line_number, tsv_columns)
        else:
            pair = _parse_jsonl_line(line, path_str, line_number, source_field, target_field)
        report.pairs.append(pair)
        report.line_numbers.append(line_number)

    if not report.pairs:
        if not lines:
            reason = "no pairs found: the file is empty"
        else:
            reason = f"no pairs found: all {len(lines)} lines are blank"
        raise DataFormatError(path_str, 0, reason)
    return report


def _check_pair(index: int, pair: object, fmt: str) -> Pair:
    """Refuse anything the reader would reject, so written files read back."""
    if not (isinstance(pair, tuple | list) and len(pair) == 2):
        raise ValueError(f"pair {index}: expected a (source, target) pair, got {pair!r}")
    source, target = pair
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            raise ValueError(f"pair {index}: {name} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"pair {index}: {name} is empty")
        if fmt == "tsv":
            for char, label in _TSV_FORBIDDEN:
                if char in value:
                    raise ValueError(
                        f"pair {index}: {name} contains {label}, which TSV cannot "
                        f"represent; use JSONL instead"
                    )
    return source, target


def write_pairs(
    path: PathLike,
    pairs: Iterable[Pair],
    file_format: str | None = None,
    *,
    source_field: str = "source",
    target_field: str = "target",
    encoding: str = "utf-8",
) -> None:
    """Write pairs as TSV or JSONL, the exact inverse of :func:`read_pairs`.

    Every pair is validated before the file is opened, so an invalid pair
    never leaves a half-written file behind.
    """
    fmt = detect_format(path, file_format)
    if fmt == "jsonl" and source_field == target_field:
        raise ValueError(f"source_field and target_field must differ, both are {source_field!r}")
    checked = [_check_pair(i, pair, fmt) for i, pair in enumerate(pairs)]
    if fmt == "tsv":
        lines = [f"{source}\t{target}\n" for source, target in checked]
    else:
        lines = [
            json.dumps({source_field: source, target_field: target}, ensure_ascii=False) + "\n"
            for source, target in checked
        ]
    # newline="" stops Windows from turning "\n" into "\r\n".
    with open(path, "w", encoding=encoding, newline="") as handle:
        handle.writelines(lines)
