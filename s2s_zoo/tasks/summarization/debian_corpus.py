"""A headline-generation corpus built offline from Debian's package descriptions.

Every Debian package has an English description: a one-line synopsis and a long description
(apt's i18n Translation-en index). The pairs (long description -> synopsis) are real,
human-written document/headline pairs, tens of thousands of them, on any Debian machine
after `apt-get update -o Acquire::Languages=en`.

Near-duplicates abound (foo, foo-data, foo-doc, libfoo1 and libfoo-dev share most of their
text), so the split is not by pair: pairs are joined into groups by union-find over shared
keys (the source package when a Packages index names it, a stem of the package name, the
normalised synopsis, the first paragraph of the description), and each group goes to one
split by a stable hash of its smallest package name. A test headline therefore never has a
sibling package's copy in train.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s2s_zoo.data.readers import write_pairs
from s2s_zoo.tasks.summarization.debian_index import (
    DEFAULT_LISTS_DIR,
    Translation,
    packages_files,
    read_source_names,
    read_translations,
    translation_files,
)
from s2s_zoo.tasks.summarization.description_text import (
    clean_long_description,
    first_paragraph,
    normalise_space,
)

SPLITS = ("train", "valid", "test")
REPORT_NAME = "report.json"

# Language-ecosystem prefixes and packaging suffixes that do not change what a package is.
_PREFIXES = (
    "python3-", "python-", "pypy-", "ruby-", "node-", "golang-", "r-cran-", "r-bioc-",
    "r-other-", "php-", "elpa-", "fonts-", "gir1.2-", "lua-", "libghc-", "librust-",
    "libjs-", "libocaml-", "libjava-",
)  # fmt: skip
_SUFFIXES = (
    "-dev", "-doc", "-docs", "-data", "-common", "-dbg", "-utils", "-util", "-tools", "-bin",
    "-examples", "-perl", "-java", "-ocaml", "-cil", "-tcl", "-prof", "-plugins", "-plugin",
    "-runtime", "-core", "-server", "-client", "-headers", "-static", "-l10n", "-i18n",
    "-locales", "-gtk", "-qt", "-nox", "-x11", "-all", "-extra", "-tests", "-test",
)  # fmt: skip
# a separated trailing version: clang-14, libgtk-3, foo-1.2, libfoo2.0-0 (the "-0" part)
_VERSION_TAIL = re.compile(r"[-.]\d[\d.+~]*[a-z]?$")
# a library's soname glued to its name: libssl3, libgtk2.0
_SONAME_DIGITS = re.compile(r"\d[\d.+~]*$")
_MIN_STEM = 3


@dataclass
class CorpusReport:
    """Counts, reasons for leaving pairs out, group statistics and median lengths."""

    index_files: list[str] = field(default_factory=list)
    packages_indexes: int = 0
    records: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    largest_group: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    split_groups: dict[str, int] = field(default_factory=dict)
    median_document_words: dict[str, float] = field(default_factory=dict)
    median_summary_words: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(
            f"{s} {self.split_sizes.get(s, 0)} ({self.split_groups.get(s, 0)} groups)"
            for s in SPLITS
        )
        dropped = ", ".join(f"{n} {reason}" for reason, n in self.dropped.items()) or "none"
        medians = ", ".join(
            f"{s} {self.median_document_words.get(s, 0):g}/{self.median_summary_words.get(s, 0):g}"
            for s in SPLITS
        )
        return (
            f"{self.records} records from {len(self.index_files)} Translation-en indexes: "
            f"kept {self.kept} pairs in {self.groups} groups (largest {self.largest_group}): "
            f"{sizes}; dropped {dropped}; median words document/summary: {medians}"
        )


@dataclass
class _Pair:
    package: str
    document: str
    summary: str
    keys: tuple[str, ...]
    also: list[_Pair] = field(default_factory=list)  # dropped records with this description


def _strip_packaging(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = True
        tail = _VERSION_TAIL.search(name)
        if tail and tail.start() > 0:
            name = name[: tail.start()]
            changed = True
    return name


def package_stem(package: str) -> str:
    """The name without ecosystem prefixes, packaging suffixes and version numbers.

    foo, foo-data, foo-doc, libfoo1, libfoo-dev and python3-foo all give "foo"; a version
    is stripped when a "-" or "." separates it ("clang-14", "gtk-3"), or when it is glued
    to a library name ("libssl3"), but not from other names ("python3-h11" gives "h11").
    A stem shorter than three characters ("libc6" -> "c") would join unrelated packages, so
    the name with only its packaging suffixes removed is returned instead ("libc6-dev" ->
    "libc6").
    """
    plain = name = _strip_packaging(package.lower())
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = _strip_packaging(name[len(prefix) :])
            break
    else:
        if name.startswith("lib") and len(name) > 3:
            name = _SONAME_DIGITS.sub("", name[3:])
    return name if len(name) >= _MIN_STEM else plain


def _text_key(text: str) -> str:
    return normalise_space(text).lower().rstrip(" .")


def split_of(group_name: str, valid_fraction: float, test_fraction: float) -> str:
    """'test', 'valid' or 'train' from a SHA-256 of the group's name alone."""
    digest = hashlib.sha256(group_name.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    if position < test_fraction:
        return "test"
    if position < test_fraction + valid_fraction:
        return "valid"
    return "train"


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, items: Sequence[str]) -> None:
        roots = [self.find(item) for item in items]
        for other in roots[1:]:
            self.parent[self.find(other)] = self.find(roots[0])


def group_names(package_keys: Iterable[tuple[str, Iterable[str]]]) -> dict[str, str]:
    """package -> name of its group, by union-find over packages that share any key.

    A package may come with several key sets (one per record); all of them join its group.
    The group's name is its smallest package name, which depends neither on input order nor
    on union-find internals, so the hash split is stable.
    """
    forest = _UnionFind()
    packages: list[str] = []
    for package, keys in package_keys:
        packages.append(package)
        forest.union([f"package:{package}", *keys])
    smallest: dict[str, str] = {}
    for package in packages:
        root = forest.find(f"package:{package}")
        smallest[root] = min(smallest.get(root, package), package)
    return {package: smallest[forest.find(f"package:{package}")] for package in packages}


def _collect_pairs(
    translations: Iterable[Translation],
    sources: dict[str, str],
    min_words: int,
    report: CorpusReport,
) -> tuple[list[_Pair], list[tuple[str, tuple[str, ...]]]]:
    """The kept pairs, and (package, keys) of every usable record for grouping.

    Of records with one description, the one with the smallest (package, synopsis) is kept,
    whatever the file order; the others still join its group (key "description:").
    """
    dropped: Counter[str] = Counter()
    best: dict[str, _Pair] = {}  # insertion order = first appearance of each description
    for record in translations:
        report.records += 1
        summary = normalise_space(record.synopsis)
        document = clean_long_description(record.body)
        if not summary:
            dropped["empty synopsis"] += 1
            continue
        if not document:
            dropped["no long description"] += 1
            continue
        if len(document.split()) < min_words:
            dropped[f"description under {min_words} words"] += 1
            continue
        keys = [
            f"stem:{package_stem(record.package)}",
            f"synopsis:{_text_key(summary)}",
            f"description:{document}",
        ]
        paragraph = _text_key(first_paragraph(record.body))
        if paragraph:
            keys.append(f"paragraph:{paragraph}")
        if record.package in sources:
            keys.append(f"source:{sources[record.package]}")
        pair = _Pair(record.package, document, summary, tuple(keys))
        if document in best:
            dropped["duplicate description"] += 1
            other = best[document]
            if (pair.package, pair.summary) >= (other.package, other.summary):
                other.also.append(pair)
                continue
            pair.also = [other, *other.also]
        best[document] = pair
    report.dropped = dict(dropped.most_common())
    pairs = list(best.values())
    package_keys = [(p.package, p.keys) for pair in pairs for p in (pair, *pair.also)]
    return pairs, package_keys


def build_splits(
    lists_dir: str | Path = DEFAULT_LISTS_DIR,
    *,
    min_words: int = 15,
    valid_fraction: float = 0.02,
    test_fraction: float = 0.02,
) -> tuple[dict[str, list[tuple[str, str]]], CorpusReport]:
    """(document, summary) pairs per split from the indexes in `lists_dir`, and a report.

    Raises IndexMissingError (naming the apt command that fetches the index) when there is
    no Translation-en index, and DataFormatError(file, line) for a malformed record.
    """
    if min_words < 1:
        raise ValueError(f"min_words must be at least 1, got {min_words}")
    if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
        raise ValueError(
            f"valid_fraction {valid_fraction} and test_fraction {test_fraction} must be "
            "non-negative and sum to less than 1"
        )
    files = translation_files(lists_dir)
    report = CorpusReport(index_files=[str(p) for p in files])
    sources: dict[str, str] = {}
    for path in packages_files(lists_dir):
        sources.update(read_source_names(path))
        report.packages_indexes += 1

    def translations() -> Iterable[Translation]:
        for path in files:
            yield from read_translations(path)

    pairs, package_keys = _collect_pairs(translations(), sources, min_words, report)
    group_of = group_names(package_keys)
    splits: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLITS}
    split_of_group = {
        group: split_of(group, valid_fraction, test_fraction) for group in set(group_of.values())
    }
    for pair in pairs:  # file order within each split
        splits[split_of_group[group_of[pair.package]]].append((pair.document, pair.summary))

    group_sizes = Counter(group_of[pair.package] for pair in pairs)  # kept pairs per group
    group_counts = Counter(split_of_group.values())
    report.kept = len(pairs)
    report.groups = len(group_sizes)
    report.largest_group = max(group_sizes.values(), default=0)
    report.split_groups = {name: group_counts[name] for name in SPLITS}
    report.split_sizes = {name: len(splits[name]) for name in SPLITS}
    for name in SPLITS:
        docs = [len(d.split()) for d, _ in splits[name]] or [0]
        sums = [len(s.split()) for _, s in splits[name]] or [0]
        report.median_document_words[name] = statistics.median(docs)
        report.median_summary_words[name] = statistics.median(sums)
    return splits, report


def build_corpus(
    out_dir: str | Path,
    lists_dir: str | Path = DEFAULT_LISTS_DIR,
    *,
    min_words: int = 15,
    valid_fraction: float = 0.02,
    test_fraction: float = 0.02,
) -> dict[str, Path]:
    """Write train/valid/test TSV files (document<TAB>summary) and report.json to `out_dir`.

    The TSV files read back with `s2s_zoo.data.readers.read_pairs`. Returns split -> path;
    the report (counts, drops by reason, groups, median lengths) is `out_dir/report.json`.
    """
    splits, report = build_splits(
        lists_dir, min_words=min_words, valid_fraction=valid_fraction, test_fraction=test_fraction
    )
    empty = [name for name in SPLITS if not splits[name]]
    if empty:
        raise ValueError(
            f"split(s) {', '.join(empty)} came out empty ({report.kept} pairs in "
            f"{report.groups} groups); use a larger index or larger fractions"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in SPLITS:
        paths[name] = out_dir / f"{name}.tsv"
        write_pairs(paths[name], splits[name], "tsv")
    (out_dir / REPORT_NAME).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m s2s_zoo.tasks.summarization.debian_corpus OUT_DIR [LISTS_DIR]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    paths = build_corpus(args[0], *args[1:])
    report = json.loads((Path(args[0]) / REPORT_NAME).read_text())
    print(CorpusReport(**report).summary())
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
