"""The Debian headline corpus, on small Translation-en / Packages indexes written by the test."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import lz4.frame
import pytest

from s2s_zoo.data.readers import DataFormatError, read_pairs
from s2s_zoo.tasks.summarization.debian_corpus import (
    SPLITS,
    build_corpus,
    build_splits,
    group_names,
    package_stem,
    split_of,
)
from s2s_zoo.tasks.summarization.debian_index import (
    DEFAULT_LISTS_DIR,
    IndexMissingError,
    read_index_lines,
    read_source_names,
    read_translations,
)
from s2s_zoo.tasks.summarization.description_text import (
    clean_long_description,
    first_paragraph,
)
from s2s_zoo.tasks.summarization.lead import first_sentence, first_words

TRANSLATION = "deb.example.org_debian_dists_stable_main_i18n_Translation-en"
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron".split()


def record(package: str, synopsis: str, *body: str) -> str:
    lines = [f"Package: {package}", "Description-md5: 0123", f"Description-en: {synopsis}"]
    return "\n".join(lines + [f" {line}" if line != "." else " ." for line in body]) + "\n\n"


def prose(topic: str, n: int = 16) -> str:
    """A distinct n-word sentence about `topic`."""
    return f"{topic} " + " ".join(WORDS[: n - 1])


def write_index(lists_dir: Path, text: str, name: str = TRANSLATION + ".lz4") -> Path:
    lists_dir.mkdir(parents=True, exist_ok=True)
    path = lists_dir / name
    data = text.encode("utf-8")
    if name.endswith(".lz4"):
        data = lz4.frame.compress(data)
    elif name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# --- the index reader -------------------------------------------------------------------


def test_compression_is_sniffed_from_the_bytes(tmp_path: Path) -> None:
    text = record("foo", "the foo tool", "Foo does things.")
    expected = text.split("\n")[:-1]  # the file's final newline starts no line
    for name in ("a.lz4", "b.gz", "c"):
        assert read_index_lines(write_index(tmp_path, text, name)) == expected
    # a misleading extension does not matter: plain text named .lz4 is read as text
    (tmp_path / "d.lz4").write_text(text)
    assert read_index_lines(tmp_path / "d.lz4") == expected


def test_read_translations_keeps_synopsis_and_raw_body(tmp_path: Path) -> None:
    text = record("foo", "the foo tool", "Foo does things.", ".", " * one") + record(
        "bar", "  bar  "
    )
    path = write_index(tmp_path, text)
    foo, bar = read_translations(path)
    assert (foo.package, foo.synopsis, foo.body) == (
        "foo",
        "the foo tool",
        (" Foo does things.", " .", "  * one"),
    )
    assert (foo.path, foo.line, bar.line) == (str(path), 1, 8)
    assert (bar.synopsis, bar.body) == ("bar", ())


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("Package: a\nDescription-en: x\n continued\n\n broken\n", 5, "outside a field"),
        ("Package: a\nDescription-en: x\nno colon here\n", 3, "expected 'Field: value'"),
        ("Package: a\nDescription-md5: 1\n\nPackage: b\nDescription-md5: 2\n", 1, "without"),
        ("Package: a\nPackage: b\nDescription-en: x\n", 2, "repeated"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, line: int, reason: str):
    path = write_index(tmp_path, text)
    with pytest.raises(DataFormatError) as caught:
        list(read_translations(path))
    assert caught.value.path == str(path)
    assert caught.value.line_number == line
    assert reason in caught.value.reason


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_bytes(b"Package: a\nDescription-en: caf\xe9\n")
    with pytest.raises(DataFormatError, match=r":2: not valid UTF-8"):
        read_index_lines(path)


def test_missing_index_says_which_command_fetches_it(tmp_path: Path) -> None:
    (tmp_path / "deb.example.org_dists_stable_main_binary-amd64_Packages.lz4").write_bytes(b"")
    with pytest.raises(IndexMissingError, match=r"apt-get update -o Acquire::Languages=en"):
        build_corpus(tmp_path / "out", tmp_path)


def test_source_names_default_to_the_package(tmp_path: Path) -> None:
    path = write_index(
        tmp_path,
        "Package: a\nSource: src-a (1.0-1)\nVersion: 1\n\nPackage: b\nVersion: 2\n",
        "x_Packages",
    )
    assert read_source_names(path) == {"a": "src-a", "b": "b"}


# --- text cleaning ----------------------------------------------------------------------


def test_clean_long_description_joins_paragraphs_and_strips_bullets() -> None:
    body = [
        " Foo is a tool that",
        " does things.",
        " .",
        " Features:",
        "  * fast",
        "    and small",
        "  - portable;",
        "  o tested",
        "  1. documented",
        "     well",
        " .NET is supported too.",
        " .",
        "   verbatim   code line",
    ]
    assert clean_long_description(body) == (
        "Foo is a tool that does things. Features: fast and small. portable; tested. "
        "documented well. .NET is supported too. verbatim code line"
    )
    assert first_paragraph(body) == "Foo is a tool that does things."


def test_a_wrapped_word_o_or_number_at_line_start_is_not_a_bullet() -> None:
    # one leading space = prose: "o" and "2." here are text that wrapped to a new line
    assert clean_long_description([" see section", " 2. Then o", " o what"]) == (
        "see section 2. Then o o what"
    )


def test_package_stem_joins_a_source_family() -> None:
    family = ["foo", "foo-data", "foo-doc", "libfoo1", "libfoo-dev", "python3-foo", "foo-1.2"]
    assert {package_stem(name) for name in family} == {"foo"}
    assert package_stem("libgtk2.0-0") == package_stem("libgtk-3-dev") == "gtk"
    assert package_stem("python3-h11") == "h11"  # digits glued to a non-library name stay
    assert package_stem("python3-dev") == "python3"  # the prefix is not the whole name
    assert package_stem("libc6-dev") == "libc6"  # "c" would be too short a stem


# --- grouping and splitting -------------------------------------------------------------


def test_group_names_union_over_shared_keys() -> None:
    groups = group_names(
        [
            ("foo", ["stem:foo", "synopsis:x"]),
            ("zed", ["stem:zed", "synopsis:y", "paragraph:p"]),
            ("bar", ["stem:bar", "synopsis:x"]),  # shares a synopsis with foo
            ("qux", ["stem:qux", "paragraph:p"]),  # shares a paragraph with zed
            ("alone", ["stem:alone", "synopsis:z"]),
            ("foo", ["stem:foo", "synopsis:w"]),  # a second record of foo
            ("wee", ["synopsis:w"]),  # joins foo through foo's second record
        ]
    )
    assert groups == {
        "foo": "bar",
        "bar": "bar",
        "wee": "bar",
        "zed": "qux",
        "qux": "qux",
        "alone": "alone",
    }


def test_split_of_is_a_stable_hash_with_the_requested_fractions() -> None:
    names = [f"package{i}" for i in range(20000)]
    splits = [split_of(name, 0.1, 0.05) for name in names]
    assert splits == [split_of(name, 0.1, 0.05) for name in names]
    assert abs(splits.count("test") / len(names) - 0.05) < 0.01
    assert abs(splits.count("valid") / len(names) - 0.1) < 0.01
    assert {split_of(name, 0.0, 0.0) for name in names[:100]} == {"train"}


def fake_index() -> str:
    shared = prose("Libfoo is a library for foo")
    records = [
        record("foo", "foo tool", prose("Foo is a program"), ".", "This is the binary."),
        record("libfoo1", "foo library", shared),
        record("libfoo-dev", "foo library (development files)", shared, ".", "Headers."),
        record("empty", "", prose("Nothing here")),
        record("short", "a short one", "Too short to keep."),
        record("nolong", "no long description"),
        record(
            "copycat", "another synopsis", prose("Foo is a program"), ".", "This is the binary."
        ),
    ]
    # 40 unrelated packages so that each split gets some groups
    records += [
        record(f"pkg{i}", f"synopsis number {i}", prose(f"Package {i} does")) for i in range(40)
    ]
    return "".join(records)


def test_build_corpus_writes_readable_splits_and_a_report(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    write_index(lists, fake_index())
    paths = build_corpus(tmp_path / "out", lists, valid_fraction=0.2, test_fraction=0.2)
    assert set(paths) == set(SPLITS)
    pairs = {name: read_pairs(path).pairs for name, path in paths.items()}
    everything = [pair for name in SPLITS for pair in pairs[name]]
    assert len(everything) == 43  # 47 records, 4 dropped
    # of two records with one description the smallest package name is kept, whatever the
    # file order: "copycat" (after "foo" in the file) wins
    foo_document = "Foo is a program " + " ".join(WORDS[:15]) + " This is the binary."
    assert (foo_document, "another synopsis") in everything
    assert "foo tool" not in {s for _, s in everything}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["records"] == 47
    assert report["kept"] == 43
    assert report["dropped"] == {
        "empty synopsis": 1,
        "description under 15 words": 1,
        "no long description": 1,
        "duplicate description": 1,
    }
    assert report["split_sizes"] == {name: len(pairs[name]) for name in SPLITS}
    # foo, libfoo1 and libfoo-dev are one group (stem), which copycat joins (description)
    assert report["groups"] == 41
    assert report["largest_group"] == 3
    assert report["median_summary_words"]["train"] > 0
    # the family sits in one split, the one its smallest name hashes to
    family_split = split_of("copycat", 0.2, 0.2)
    family = {s for _, s in pairs[family_split]}
    assert {"another synopsis", "foo library", "foo library (development files)"} <= family
    for i in range(40):
        assert (prose(f"Package {i} does"), f"synopsis number {i}") in pairs[
            split_of(f"pkg{i}", 0.2, 0.2)
        ]


def test_packages_index_source_joins_unrelated_names(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    write_index(
        lists,
        record("alpha", "first", prose("Alpha does")) + record("omega", "last", prose("Om does")),
    )
    write_index(lists, "Package: alpha\n\nPackage: omega\nSource: alpha\n", "x_Packages")
    _, report = build_splits(lists, valid_fraction=0.0, test_fraction=0.0)
    assert (report.groups, report.packages_indexes) == (1, 1)
    (lists / "x_Packages").unlink()
    _, report = build_splits(lists, valid_fraction=0.0, test_fraction=0.0)
    assert (report.groups, report.packages_indexes) == (2, 0)


def test_splits_do_not_depend_on_record_order(tmp_path: Path) -> None:
    records = fake_index().split("\n\n")[:-1]
    write_index(tmp_path / "a", "\n\n".join(records) + "\n\n")
    write_index(tmp_path / "b", "\n\n".join(reversed(records)) + "\n\n")
    a, _ = build_splits(tmp_path / "a", valid_fraction=0.2, test_fraction=0.2)
    b, _ = build_splits(tmp_path / "b", valid_fraction=0.2, test_fraction=0.2)
    # the two copies of one description keep different synopses; all else is identical
    for name in SPLITS:
        assert {d for d, _ in a[name]} == {d for d, _ in b[name]}
        assert len(a[name]) == len(b[name])


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    write_index(tmp_path, record("foo", "foo tool", prose("Foo is a program")))
    with pytest.raises(ValueError, match="came out empty"):
        build_corpus(tmp_path / "out", tmp_path)


# --- lead baselines ---------------------------------------------------------------------


def test_first_sentence_skips_abbreviations_and_initials() -> None:
    assert first_sentence("Foo is fast. It is small.") == "Foo is fast."
    assert first_sentence("Use e.g. Bar or J. R. Baz. Then stop.") == "Use e.g. Bar or J. R. Baz."
    assert first_sentence('He said "stop." Then left.') == 'He said "stop."'
    assert first_sentence("Version 2.0 is out! 3 more") == "Version 2.0 is out!"
    assert first_sentence("no boundary. at all") == "no boundary. at all"
    assert first_words("a b  c d", 3) == "a b c"


@pytest.mark.slow
def test_real_index_builds_a_corpus(tmp_path: Path) -> None:
    if not list(DEFAULT_LISTS_DIR.glob("*_i18n_Translation-en*")):
        pytest.skip("no Translation-en index; run apt-get update -o Acquire::Languages=en")
    paths = build_corpus(tmp_path, DEFAULT_LISTS_DIR)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kept"] > 20000
    assert 0.01 < report["split_sizes"]["test"] / report["kept"] < 0.04
    test_pairs = read_pairs(paths["test"]).pairs
    assert len(test_pairs) == report["split_sizes"]["test"]
    assert 3 <= report["median_summary_words"]["test"] <= 10
