"""The gettext corpus builder, on catalogs the test compiles itself with polib."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest

from s2s_zoo.tasks.translation.gettext_corpus import (
    CatalogError,
    build_corpus,
    read_catalog,
    split_of,
)


def write_mo(path: Path, entries: list[polib.MOEntry]) -> Path:
    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    for entry in entries:
        catalog.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save_as_mofile(str(path))
    return path


def entry(msgid: str, msgstr: str) -> polib.POEntry:
    return polib.POEntry(msgid=msgid, msgstr=msgstr)


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    messages = tmp_path / "fr" / "LC_MESSAGES"
    write_mo(
        messages / "a.mo",
        [
            entry("Open file", "Ouvrir le fichier"),
            entry("Save\n  all", "Tout\tenregistrer"),
            entry("Untranslated", ""),  # like msgfmt, polib leaves it out of the .mo
            entry("Quit", "Quitter"),
        ],
    )
    write_mo(
        messages / "b.mo",
        [
            entry("Quit", "Fermer"),  # duplicate source, different translation
            entry("Open file", "Ouvrir le fichier"),  # exact duplicate
            entry("one two three four five six", "un deux trois quatre cinq six"),
            polib.POEntry(
                msgid="%d file",
                msgid_plural="%d files",
                msgstr_plural={0: "%d fichier", 1: "%d fichiers"},
            ),
        ],
    )
    return tmp_path


def test_read_catalog_normalises_whitespace_and_takes_singular_plural(locale_dir: Path) -> None:
    pairs = read_catalog(locale_dir / "fr" / "LC_MESSAGES" / "a.mo")
    assert ("Save all", "Tout enregistrer") in pairs
    assert all(source != "Untranslated" for source, _ in pairs)
    plural = read_catalog(locale_dir / "fr" / "LC_MESSAGES" / "b.mo")
    assert ("%d file", "%d fichier") in plural


def test_build_corpus_deduplicates_and_counts_everything_left_out(locale_dir: Path) -> None:
    splits, report = build_corpus("fr", locale_dir, max_words=5, dev_percent=30, test_percent=30)
    pairs = [pair for split in splits.values() for pair in split]
    assert sorted(pairs) == sorted(
        [
            ("Open file", "Ouvrir le fichier"),
            ("Save all", "Tout enregistrer"),
            ("Quit", "Quitter"),  # first in file order wins
            ("%d file", "%d fichier"),
        ]
    )
    assert report.catalogs == 2 and report.messages == 7
    assert report.untranslated == 0 and report.too_long == 1
    assert report.duplicates == 2 and report.conflicting_duplicates == 1
    assert sum(report.split_sizes.values()) == len(pairs)
    assert "left out 0 untranslated, 1 over the length limit, 2 duplicate" in report.summary()


def test_split_depends_only_on_the_source_text(locale_dir: Path) -> None:
    splits, _ = build_corpus("fr", locale_dir, dev_percent=30, test_percent=30)
    for name, pairs in splits.items():
        for source, _target in pairs:
            assert split_of(source, 30, 30) == name
    # roughly the requested proportions over many sources
    names = [split_of(f"message number {i}", 10, 5) for i in range(4000)]
    assert 0.03 < names.count("test") / 4000 < 0.07
    assert 0.08 < names.count("dev") / 4000 < 0.12


def test_missing_language_and_broken_catalog_are_named(locale_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="de/LC_MESSAGES"):
        build_corpus("de", locale_dir)
    broken = locale_dir / "fr" / "LC_MESSAGES" / "broken.mo"
    broken.write_bytes(b"this is not a catalog")
    with pytest.raises(CatalogError, match="broken.mo"):
        build_corpus("fr", locale_dir)
