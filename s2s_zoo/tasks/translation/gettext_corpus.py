"""A real translation corpus built offline from installed gettext catalogs.

Every Debian machine carries compiled message catalogs (`.mo`) under
`/usr/share/locale/<lang>/LC_MESSAGES/`: real English UI strings (msgid) with
their human translations (msgstr). This module turns them into deduplicated
source/target pairs split into train/dev/test by a hash of the source, so the
split is stable across machines, file orders and catalog versions, and a source
sentence never appears in two splits.

Parsing uses polib (a maintained pure-Python gettext library) rather than the
private catalog of `gettext.GNUTranslations`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from s2s_zoo.data.readers import Pairs

DEFAULT_LOCALE_DIR = Path("/usr/share/locale")
_WHITESPACE = re.compile(r"\s+")


class CatalogError(ValueError):
    """A catalog that cannot be read; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class CorpusReport:
    """What went in and what was left out, so nothing is dropped silently."""

    catalogs: int = 0
    messages: int = 0
    untranslated: int = 0
    too_long: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{name} {size}" for name, size in self.split_sizes.items())
        return (
            f"{self.catalogs} catalogs, {self.messages} messages: kept {sizes}; left out "
            f"{self.untranslated} untranslated, {self.too_long} over the length limit, "
            f"{self.duplicates} duplicate sources ({self.conflicting_duplicates} of them "
            f"with a different translation; the first in file order is kept)"
        )


def normalise(text: str) -> str:
    """One line of text: runs of whitespace (newlines, tabs) become one space."""
    return _WHITESPACE.sub(" ", text).strip()


def read_catalog(path: str | Path) -> Pairs:
    """(msgid, msgstr) pairs of one `.mo` file; plural entries give their singular form.

    The header entry (empty msgid) is skipped; untranslated entries are returned
    with an empty target so the caller can count them.
    """
    import polib

    path = Path(path)
    try:
        catalog = polib.mofile(str(path))
    except (OSError, ValueError) as error:
        raise CatalogError(path, f"not a readable gettext .mo catalog ({error})") from error
    pairs: Pairs = []
    for entry in catalog:
        if not entry.msgid:
            continue
        target = entry.msgstr_plural.get(0, "") if entry.msgid_plural else entry.msgstr
        pairs.append((normalise(entry.msgid), normalise(target)))
    return pairs


def split_of(source: str, dev_percent: int, test_percent: int) -> str:
    """'test', 'dev' or 'train', from a hash of the source text alone."""
    bucket = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + dev_percent:
        return "dev"
    return "train"


def build_corpus(
    language: str = "fr",
    locale_dir: str | Path = DEFAULT_LOCALE_DIR,
    max_words: int = 30,
    dev_percent: int = 3,
    test_percent: int = 3,
) -> tuple[dict[str, Pairs], CorpusReport]:
    """English -> `language` pairs from every catalog of that language, split by hash.

    Raises `FileNotFoundError` when the language has no catalogs, and
    `CatalogError` for a file that is not a catalog.
    """
    directory = Path(locale_dir) / language / "LC_MESSAGES"
    paths = sorted(directory.glob("*.mo"))
    if not paths:
        raise FileNotFoundError(f"no gettext catalogs (*.mo) in {directory}")
    report = CorpusReport(catalogs=len(paths))
    kept: dict[str, str] = {}
    for path in paths:
        for source, target in read_catalog(path):
            report.messages += 1
            if not source or not target:
                report.untranslated += 1
            elif max(len(source.split()), len(target.split())) > max_words:
                report.too_long += 1
            elif source in kept:
                report.duplicates += 1
                report.conflicting_duplicates += kept[source] != target
            else:
                kept[source] = target
    splits: dict[str, Pairs] = {"train": [], "dev": [], "test": []}
    for source, target in kept.items():
        splits[split_of(source, dev_percent, test_percent)].append((source, target))
    report.split_sizes = {name: len(pairs) for name, pairs in splits.items()}
    return splits, report
