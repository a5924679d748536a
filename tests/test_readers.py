"""Tests for s2s_zoo.data.readers: round trips and precise error locations."""

from __future__ import annotations

import json
import pickle

import pytest

from s2s_zoo.data.readers import DataFormatError, ReadReport, read_pairs, write_pairs

PAIRS = [
    ("hello", "bonjour"),
    ("good night", "bonne nuit"),
    ("seventy-one", "soixante et onze"),
]

NON_ASCII = [
    ("café crème", "Kaffee mit Sahne"),
    ("naïve façade", "наивный фасад"),
    ("日本語", "japonais ✓ 🙂"),
    ("line\u2028separator inside", "form\x0cfeed inside"),
]


def _error(path, match_line: int | None = None) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_pairs(path)
    err = info.value
    assert path.name in str(err)
    if match_line is not None:
        assert err.line_number == match_line
        assert f"{path.name}:{match_line}:" in str(err)
    return err


# --- round trips -----------------------------------------------------------


@pytest.mark.parametrize("name", ["data.tsv", "data.txt", "data.jsonl", "data.json", "d.ndjson"])
def test_round_trip_by_extension(tmp_path, name):
    path = tmp_path / name
    write_pairs(path, PAIRS)
    report = read_pairs(path)
    assert isinstance(report, ReadReport)
    assert report.pairs == PAIRS
    assert report.skipped_blank == 0
    assert report.path == str(path)


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_round_trip_explicit_format_overrides_extension(tmp_path, fmt):
    path = tmp_path / "data.dat"
    write_pairs(path, PAIRS, file_format=fmt)
    assert read_pairs(path, file_format=fmt).pairs == PAIRS


@pytest.mark.parametrize("name", ["data.tsv", "data.jsonl"])
def test_non_ascii_round_trip(tmp_path, name):
    path = tmp_path / name
    write_pairs(path, NON_ASCII)
    assert read_pairs(path).pairs == NON_ASCII


def test_jsonl_writes_readable_unicode_one_object_per_line(tmp_path):
    path = tmp_path / "data.jsonl"
    write_pairs(path, NON_ASCII[:1])
    text = path.read_text(encoding="utf-8")
    assert text == '{"source": "café crème", "target": "Kaffee mit Sahne"}\n'


def test_tsv_file_layout(tmp_path):
    path = tmp_path / "data.tsv"
    write_pairs(path, PAIRS[:2])
    assert path.read_bytes() == b"hello\tbonjour\ngood night\tbonne nuit\n"


def test_jsonl_may_contain_newlines_and_tabs(tmp_path):
    pairs = [("a\tb", "c\nd"), ("x\r\ny", "z")]
    path = tmp_path / "data.jsonl"
    write_pairs(path, pairs)
    assert read_pairs(path).pairs == pairs


def test_custom_field_names(tmp_path):
    path = tmp_path / "data.jsonl"
    write_pairs(path, PAIRS, source_field="en", target_field="fr")
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"en": "hello", "fr": "bonjour"}
    report = read_pairs(path, source_field="en", target_field="fr")
    assert report.pairs == PAIRS
    # With the default names the same file is rejected, naming the missing key.
    err = _error(path, match_line=1)
    assert "'source'" in str(err)
    assert "'en'" in str(err) and "'fr'" in str(err)


def test_jsonl_extra_keys_are_ignored(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"id": 7, "source": "one", "target": "un"}\n', encoding="utf-8")
    assert read_pairs(path).pairs == [("one", "un")]


def test_crlf_line_endings(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"hello\tbonjour\r\ncat\tchat\r\n")
    assert read_pairs(path).pairs == [("hello", "bonjour"), ("cat", "chat")]


def test_missing_final_newline_and_bom(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes("\ufeffhello\tbonjour\ncat\tchat".encode())
    assert read_pairs(path).pairs == [("hello", "bonjour"), ("cat", "chat")]


def test_other_encoding(tmp_path):
    path = tmp_path / "data.tsv"
    write_pairs(path, [("ça", "that")], encoding="latin-1")
    assert path.read_bytes() == b"\xe7a\tthat\n"
    assert read_pairs(path, encoding="latin-1").pairs == [("ça", "that")]


# --- blank lines -----------------------------------------------------------


def test_blank_lines_are_skipped_and_counted_tsv(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("\nhello\tbonjour\n   \n\t\r\n\ncat\tchat\n\n", encoding="utf-8")
    report = read_pairs(path)
    assert report.pairs == [("hello", "bonjour"), ("cat", "chat")]
    assert report.skipped_blank == 5
    assert report.summary() == f"{path}: 2 pairs, 5 blank lines skipped"


def test_blank_lines_are_skipped_and_counted_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('\n{"source": "a", "target": "b"}\n \n', encoding="utf-8")
    report = read_pairs(path)
    assert report.pairs == [("a", "b")]
    assert report.skipped_blank == 2
    assert report.summary() == f"{path}: 1 pair, 2 blank lines skipped"


def test_summary_wording():
    report = ReadReport(path="train.tsv", pairs=[("a", "b")] * 1200, skipped_blank=3)
    assert report.summary() == "train.tsv: 1200 pairs, 3 blank lines skipped"
    assert ReadReport("x.tsv", [("a", "b")], 1).summary() == "x.tsv: 1 pair, 1 blank line skipped"


def test_blank_lines_do_not_shift_error_line_numbers(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("\n\nhello\tbonjour\n\nbroken line\n", encoding="utf-8")
    _error(path, match_line=5)


# --- malformed input -------------------------------------------------------


def test_tsv_three_fields(tmp_path):
    path = tmp_path / "train.tsv"
    lines = [f"s{i}\tt{i}" for i in range(16)] + ["a\tb\tc"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = _error(path, match_line=17)
    assert str(err) == (f"{path}:17: expected 2 tab-separated fields (source<TAB>target), found 3")
    assert err.path == str(path)
    assert "found 3" in err.reason


def test_tsv_one_field(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("hello\tbonjour\nhello  bonjour\n", encoding="utf-8")
    err = _error(path, match_line=2)
    assert "found 1" in str(err)


@pytest.mark.parametrize(
    ("content", "field_name"),
    [("hello\t\n", "target"), ("hello\t   \n", "target"), (" \tbonjour\n", "source")],
)
def test_tsv_empty_field(tmp_path, content, field_name):
    path = tmp_path / "train.tsv"
    path.write_text("a\tb\n" + content, encoding="utf-8")
    err = _error(path, match_line=2)
    assert f"{field_name} field" in err.reason
    assert "empty" in err.reason


def test_jsonl_bad_json(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"source": "a", "target": "b"}\n{"source": "a", "target": }\n')
    err = _error(path, match_line=2)
    assert "invalid JSON" in err.reason
    assert "Expecting value" in err.reason


def test_jsonl_not_an_object(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[{"source": "a", "target": "b"}]\n', encoding="utf-8")
    err = _error(path, match_line=1)
    assert "expected a JSON object, found list" in err.reason


def test_jsonl_missing_field(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"source": "a", "target": "b"}\n\n{"source": "a", "tgt": "b"}\n', encoding="utf-8"
    )
    err = _error(path, match_line=3)
    assert "missing field 'target'" in err.reason
    assert "'source'" in err.reason and "'tgt'" in err.reason


@pytest.mark.parametrize("value", ["3", "null", '["x"]', "true"])
def test_jsonl_non_string_field(tmp_path, value):
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"source": "a", "target": "b"}\n' + f'{{"source": {value}, "target": "b"}}\n',
        encoding="utf-8",
    )
    err = _error(path, match_line=2)
    assert "'source'" in err.reason
    assert "must be a string" in err.reason


def test_jsonl_empty_string_field(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"source": "a", "target": "  "}\n', encoding="utf-8")
    err = _error(path, match_line=1)
    assert "'target'" in err.reason and "empty" in err.reason


@pytest.mark.parametrize("name", ["train.tsv", "train.jsonl"])
def test_invalid_utf8(tmp_path, name):
    path = tmp_path / name
    good = b"hello\tbonjour\n" if name.endswith(".tsv") else b'{"source": "a", "target": "b"}\n'
    path.write_bytes(good + b"\n" + good + b"caf\xe9\tcoffee\n" + good)
    err = _error(path, match_line=4)
    assert "utf-8" in err.reason
    assert isinstance(err.__cause__, UnicodeDecodeError)


def test_unknown_extension(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="accepted extensions") as info:
        read_pairs(path)
    assert not isinstance(info.value, DataFormatError)
    message = str(info.value)
    assert "train.csv" in message
    for ext in (".tsv", ".txt", ".jsonl", ".json", ".ndjson"):
        assert ext in message


def test_no_extension(tmp_path):
    path = tmp_path / "train"
    path.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no extension"):
        read_pairs(path)
    assert read_pairs(path, file_format="tsv").pairs == [("a", "b")]


def test_unknown_file_format_argument(tmp_path):
    with pytest.raises(ValueError, match="unknown file_format 'csv'"):
        read_pairs(tmp_path / "train.tsv", file_format="csv")


@pytest.mark.parametrize("name", ["empty.tsv", "empty.jsonl"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    err = _error(path)
    assert err.line_number == 0
    assert "no pairs" in str(err) and "empty" in str(err)


def test_only_blank_lines(tmp_path):
    path = tmp_path / "blank.tsv"
    path.write_text("\n  \n\n", encoding="utf-8")
    err = _error(path)
    assert err.line_number == 0
    assert "all 3 lines are blank" in str(err)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "nope.tsv")


def test_error_is_picklable():
    err = DataFormatError("train.tsv", 17, "bad")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.path, clone.line_number, clone.reason) == ("train.tsv", 17, "bad")
    assert str(clone) == "train.tsv:17: bad"


# --- writer validation -----------------------------------------------------


@pytest.mark.parametrize("bad", [("a\tb", "c"), ("a", "b\nc"), ("a", "b\r")])
def test_write_tsv_rejects_tab_and_newline(tmp_path, bad):
    path = tmp_path / "out.tsv"
    with pytest.raises(ValueError, match="pair 1") as info:
        write_pairs(path, [("ok", "ok"), bad])
    assert "TSV" in str(info.value)
    assert not path.exists()  # validated before opening: no half-written file


@pytest.mark.parametrize("bad", [("", "x"), ("x", "   "), ("x", 3), ("x",), "xy"])
def test_write_rejects_what_reader_would_reject(tmp_path, bad):
    with pytest.raises(ValueError, match="pair 0"):
        write_pairs(tmp_path / "out.jsonl", [bad])


def test_write_accepts_generators_and_lists(tmp_path):
    path = tmp_path / "out.tsv"
    write_pairs(path, ([s, t] for s, t in PAIRS))
    assert read_pairs(path).pairs == PAIRS


def test_write_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="out.csv"):
        write_pairs(tmp_path / "out.csv", PAIRS)
