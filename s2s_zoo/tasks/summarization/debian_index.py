"""Read Debian's apt package indexes (Translation-en, Packages) as they lie on disk.

`apt-get update` stores the indexes under /var/lib/apt/lists, compressed the way apt chose
(lz4 on current Debian images, sometimes gzip, xz, bzip2 or plain text). The compression is
sniffed from the file's magic bytes rather than trusted from its name, and lz4 is read with
the `lz4` PyPI package (the "corpus" extra) so no external command is needed.

The indexes are deb822 stanzas ("Field: value", continuation lines start with a space, a
blank line ends a stanza). The stanza reader is written here rather than taken from
python-debian because python-debian's parser is lenient (it skips malformed lines silently)
and does not know line numbers, and a corpus builder must name the file and line of a bad
record.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from s2s_zoo.data.readers import DataFormatError

DEFAULT_LISTS_DIR = Path("/var/lib/apt/lists")
# Debian images often set Acquire::Languages "none", so the translations must be asked for.
FETCH_COMMAND = "apt-get update -o Acquire::Languages=en"

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_MAGIC = b"BZh"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class IndexMissingError(FileNotFoundError):
    """No index of the wanted kind in the lists directory; says which command fetches it."""


def read_index_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of one index file, whatever compression apt stored it with."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(_LZ4_MAGIC):
        try:
            import lz4.frame
        except ImportError as error:
            raise ImportError(
                f"{path} is lz4-compressed; install the 'lz4' package "
                "(pip install 'lz4>=4,<5' or the s2s-zoo[corpus] extra)"
            ) from error
        decompress = lz4.frame.decompress
    elif raw.startswith(_GZIP_MAGIC):
        decompress = gzip.decompress
    elif raw.startswith(_XZ_MAGIC):
        decompress = lzma.decompress
    elif raw.startswith(_BZIP2_MAGIC):
        decompress = bz2.decompress
    elif raw.startswith(_ZSTD_MAGIC):
        raise DataFormatError(
            str(path), 0, "zstd-compressed indexes are not supported; decompress it with unzstd"
        )
    else:
        return raw
    try:
        return decompress(raw)
    except (OSError, EOFError, RuntimeError, lzma.LZMAError, ValueError) as error:
        raise DataFormatError(str(path), 0, f"cannot decompress ({error})") from error


def read_index_lines(path: str | Path) -> list[str]:
    """The index's text lines (UTF-8); an invalid byte is reported with its line number."""
    data = read_index_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataFormatError(str(path), line, f"not valid UTF-8: {error.reason}") from error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass
class Stanza:
    """One deb822 paragraph: field name -> lines (first line's value, then raw continuations)."""

    path: str
    line: int  # 1-based line of the stanza's first field
    fields: dict[str, list[str]]

    def value(self, name: str) -> str:
        """The first-line value of a field (e.g. `Package`), '' when absent."""
        lines = self.fields.get(name)
        return lines[0] if lines else ""


def iter_stanzas(path: str | Path) -> Iterator[Stanza]:
    """The stanzas of an index file; a malformed line raises DataFormatError(file, line)."""
    path_str = str(path)
    current: Stanza | None = None
    field_name = ""
    for number, raw in enumerate(read_index_lines(path), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if current is not None:
                yield current
            current = None
            continue
        if line[0] in " \t":
            if current is None:
                raise DataFormatError(
                    path_str, number, "continuation line (starts with a space) outside a field"
                )
            current.fields[field_name].append(line)
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name:
            raise DataFormatError(path_str, number, f"expected 'Field: value', got {line[:60]!r}")
        if current is None:
            current = Stanza(path_str, number, {})
        if name in current.fields:
            raise DataFormatError(path_str, number, f"field {name!r} repeated in one stanza")
        field_name = name
        current.fields[name] = [value.strip()]
    if current is not None:
        yield current


@dataclass(frozen=True)
class Translation:
    """One package's English description: synopsis and the raw long-description lines."""

    package: str
    md5: str
    synopsis: str
    body: tuple[str, ...]  # continuation lines as written, each with its leading space
    path: str
    line: int


def read_translations(path: str | Path, language: str = "en") -> Iterator[Translation]:
    """The records of one i18n Translation-<language> index, in file order."""
    field = f"Description-{language}"
    for stanza in iter_stanzas(path):
        for required in ("Package", field):
            if required not in stanza.fields:
                present = ", ".join(stanza.fields)
                raise DataFormatError(
                    stanza.path, stanza.line, f"record without {required!r} (fields: {present})"
                )
        package = stanza.value("Package")
        if not package:
            raise DataFormatError(stanza.path, stanza.line, "empty 'Package' field")
        lines = stanza.fields[field]
        yield Translation(
            package=package,
            md5=stanza.value("Description-md5"),
            synopsis=lines[0],
            body=tuple(lines[1:]),
            path=stanza.path,
            line=stanza.line,
        )


def read_source_names(path: str | Path) -> dict[str, str]:
    """binary package -> source package from a Packages index (Source: defaults to the name)."""
    names: dict[str, str] = {}
    for stanza in iter_stanzas(path):
        package = stanza.value("Package")
        if not package:
            raise DataFormatError(stanza.path, stanza.line, "record without a 'Package' field")
        # "Source: foo (1.2-3)" names a source whose version differs from the binary's
        source = stanza.value("Source").split(" ")[0] or package
        names[package] = source
    return names


def _index_files(lists_dir: Path, pattern: str) -> list[Path]:
    # pdiff directories (*.diff/) and apt's partial downloads are not indexes
    return sorted(p for p in lists_dir.glob(pattern) if p.is_file())


def translation_files(
    lists_dir: str | Path = DEFAULT_LISTS_DIR, language: str = "en"
) -> list[Path]:
    """The Translation-<language> indexes apt keeps; raises IndexMissingError naming the fix."""
    lists_dir = Path(lists_dir)
    files = _index_files(lists_dir, f"*_i18n_Translation-{language}*")
    if not files:
        raise IndexMissingError(
            f"no *_i18n_Translation-{language}* index in {lists_dir}; fetch it with "
            f"`{FETCH_COMMAND.replace('=en', '=' + language)}` (as root)"
        )
    return files


def packages_files(lists_dir: str | Path = DEFAULT_LISTS_DIR) -> list[Path]:
    """The binary Packages indexes in the lists directory (possibly none)."""
    return _index_files(Path(lists_dir), "*_Packages*")
