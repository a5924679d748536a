"""Tests for s2s_zoo.data.babi_dialog: parsing, examples, round trips, error locations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s2s_zoo.data.babi_dialog import (
    Dialog,
    DialogExample,
    Fact,
    Turn,
    detect_dialog_format,
    dialog_examples,
    examples_to_arrays,
    read_babi_dialogs,
    read_dialog_examples,
    write_babi_dialogs,
    write_dialog_examples,
)
from s2s_zoo.data.readers import DataFormatError

R = "resto_rome_cheap_thai_2stars"
SAMPLE = (
    "1 hi\thello what can i help you with today\n"
    "2 a table in rome\ti'm on it\n"
    "3 <SILENCE>\tapi_call thai rome two cheap\n"
    f"4 {R} R_phone {R}_phone\n"
    f"5 {R} R_rating 2\n"
    f"6 <SILENCE>\twhat do you think of this option: {R}\n"
    "7 yes\tgreat let me do the reservation\n"
    "\n"
    f"1 {R} R_cuisine thai\n"
    "2 hello\thello what can i help you with today\n"
    f"3 its cuisine\there it is thai\n"
)
DIALOGS = [
    Dialog(
        (
            Turn("hi", "hello what can i help you with today"),
            Turn("a table in rome", "i'm on it"),
            Turn("<SILENCE>", "api_call thai rome two cheap"),
            Fact(f"{R} R_phone {R}_phone"),
            Fact(f"{R} R_rating 2"),
            Turn("<SILENCE>", f"what do you think of this option: {R}"),
            Turn("yes", "great let me do the reservation"),
        )
    ),
    Dialog(
        (
            Fact(f"{R} R_cuisine thai"),
            Turn("hello", "hello what can i help you with today"),
            Turn("its cuisine", "here it is thai"),
        )
    ),
]


def _write(tmp_path, text: str, name: str = "d.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _error(path, line: int, reader=read_babi_dialogs, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        reader(path, **kwargs)
    err = info.value
    assert err.line_number == line, str(err)
    assert (f"{path.name}:{line}:" if line else f"{path.name}:") in str(err)
    return err


# --- parsing -------------------------------------------------------------------------


def test_reads_turns_and_facts_in_file_order(tmp_path):
    dialogs = read_babi_dialogs(_write(tmp_path, SAMPLE))
    assert dialogs == DIALOGS
    assert dialogs[0].facts == [f"{R} R_phone {R}_phone", f"{R} R_rating 2"]
    assert [t.user for t in dialogs[1].turns] == ["hello", "its cuisine"]


def test_examples_hold_the_dialog_so_far_and_facts_seen_so_far(tmp_path):
    examples = dialog_examples(read_babi_dialogs(_write(tmp_path, SAMPLE)))
    greet = "hello what can i help you with today"
    assert len(examples) == 5 + 2  # one per bot turn
    assert examples[0] == DialogExample(("hi",), (), greet)
    assert examples[2] == DialogExample(
        ("hi", greet, "a table in rome", "i'm on it", "<SILENCE>"),
        (),
        "api_call thai rome two cheap",
    )
    assert examples[3].kb == (f"{R} R_phone {R}_phone", f"{R} R_rating 2")
    assert examples[3].context[-2:] == ("api_call thai rome two cheap", "<SILENCE>")
    assert examples[4] == DialogExample(
        examples[3].context + (f"what do you think of this option: {R}", "yes"),
        examples[3].kb,
        "great let me do the reservation",
    )
    # the second dialog starts afresh, with the fact listed before its first turn
    assert examples[5] == DialogExample(("hello",), (f"{R} R_cuisine thai",), greet)
    assert examples[6].context == ("hello", greet, "its cuisine")
    for example in examples:
        assert len(example.context) % 2 == 1


def test_restart_at_one_starts_a_new_dialog_without_a_blank_line(tmp_path):
    text = SAMPLE.replace("\n\n", "\n")
    assert read_babi_dialogs(_write(tmp_path, text)) == DIALOGS


def test_crlf_bom_and_extra_blank_lines_are_tolerated(tmp_path):
    text = "\ufeff\n\n" + SAMPLE.replace("\n", "\r\n").replace("\r\n\r\n", "\r\n\r\n\r\n") + "\n"
    assert read_babi_dialogs(_write(tmp_path, text)) == DIALOGS


def test_dstc2_style_no_result_line_is_a_fact(tmp_path):
    text = "1 <SILENCE>\twelcome\n2 thai\tapi_call thai R_location R_price\n3 api_call no result\n"
    (dialog,) = read_babi_dialogs(_write(tmp_path, text))
    assert dialog.facts == ["api_call no result"]
    assert dialog.turns[0] == Turn("<SILENCE>", "welcome")


# --- round trips ---------------------------------------------------------------------


def test_write_then_read_round_trips_and_reproduces_the_bytes(tmp_path):
    path = tmp_path / "out.txt"
    write_babi_dialogs(path, DIALOGS)
    assert path.read_bytes() == SAMPLE.encode("utf-8")
    assert read_babi_dialogs(path) == DIALOGS


def test_writer_refuses_what_the_reader_would_reject(tmp_path):
    path = tmp_path / "bad.txt"
    bad = [
        Dialog((Turn("a\tb", "c"),)),
        Dialog((Turn("a", ""),)),
        Dialog((Turn("a", "b\nc"),)),
        Dialog((Fact("only a fact"),)),
        Dialog((Turn("", "bot"),)),
    ]
    for dialog in bad:
        with pytest.raises(ValueError, match="dialog 0"):
            write_babi_dialogs(path, [dialog])
    assert not path.exists()


def test_jsonl_round_trip_with_custom_field_names(tmp_path):
    examples = dialog_examples(DIALOGS)
    path = tmp_path / "mine.data"
    names = {"context_field": "history", "kb_field": "facts", "response_field": "answer"}
    write_dialog_examples(path, examples, **names)
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"history": ["hi"], "facts": [], "answer": examples[0].response}
    assert read_dialog_examples(path, **names) == examples


def test_jsonl_without_kb(tmp_path):
    path = _write(tmp_path, '{"context": ["hi"], "response": "hello"}\n\n', "x.jsonl")
    assert read_dialog_examples(path, kb_field=None) == [DialogExample(("hi",), (), "hello")]
    err = _error(path, 1, read_dialog_examples)
    assert "missing field 'kb'" in err.reason


def test_format_comes_from_the_content_not_the_extension(tmp_path):
    babi = _write(tmp_path, SAMPLE, "babi.jsonl")
    jsonl = _write(tmp_path, '\n  {"context": ["hi"], "kb": [], "response": "yo"}\n', "j.txt")
    assert detect_dialog_format(babi) == "babi"
    assert detect_dialog_format(jsonl) == "jsonl"
    assert read_dialog_examples(babi) == dialog_examples(DIALOGS)
    assert read_dialog_examples(jsonl) == [DialogExample(("hi",), (), "yo")]
    assert "JSONL" in _error(jsonl, 0).reason  # the bAbI reader refuses JSONL
    unknown = _write(tmp_path, "\nhi\thello\n")
    assert "cannot tell the format" in _error(unknown, 2, read_dialog_examples).reason


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("1 a\tb\n\n2 c\td\n", 3, "a dialog starts at 1"),
        ("1 a\tb\n2 c\td\n4 e\tf\n", 3, "expected 3"),
        ("1 a\tb\n2 c\t\n", 2, "empty bot turn"),
        ("1 a\tb\n2 c\t  \n", 2, "empty bot turn"),
        ("1 a\tb\n2 \tb\n", 2, "<SILENCE>"),
        ("1 a\tb\tc\n", 1, "found 2"),
        ("1 a\tb\nhello\tthere\n", 2, "expected a numbered line"),
        ("1 a\tb\n2\n", 2, "expected a numbered line"),
        ("1 a\tb\n2  \n", 2, "no text"),
        ("1 a\tb\n\n1 fact one\n2 fact two\n", 3, "no user<TAB>bot turn"),
        ("", 0, "empty or blank"),
        ("\n \n", 0, "empty or blank"),
    ],
)
def test_babi_errors_name_file_and_line(tmp_path, text, line, words):
    err = _error(_write(tmp_path, text), line)
    assert words in err.reason


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes(b"1 a\tb\n2 caf\xe9\tc\n")
    _error(path, 2)


@pytest.mark.parametrize(
    ("line2", "words"),
    [
        ('{"context": ["hi"], "kb": [], "response": }', "invalid JSON"),
        ('["hi", "hello"]', "expected a JSON object"),
        ('{"kb": [], "response": "r"}', "missing field 'context'"),
        ('{"context": ["hi"], "kb": []}', "missing field 'response'"),
        ('{"context": "hi", "kb": [], "response": "r"}', "must be a list"),
        ('{"context": ["hi", 3, "x"], "kb": [], "response": "r"}', "item 1 must be a string"),
        ('{"context": ["hi", "yo"], "kb": [], "response": "r"}', "odd number"),
        ('{"context": ["hi", "", "x"], "kb": [], "response": "r"}', "<SILENCE>"),
        ('{"context": ["hi"], "kb": [""], "response": "r"}', "'kb' item 0 is empty"),
        ('{"context": ["hi"], "kb": [], "response": " "}', "non-empty string"),
        ('{"context": ["hi"], "kb": [], "response": 7}', "non-empty string"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, line2, words):
    good = '{"context": ["hi"], "kb": [], "response": "hello"}'
    path = _write(tmp_path, f"{good}\n{line2}\n", "u.jsonl")
    err = _error(path, 2, read_dialog_examples)
    assert words in err.reason


# --- batching ------------------------------------------------------------------------


def test_examples_to_arrays_pads_with_empty_strings_and_keeps_recent_turns():
    examples = dialog_examples(DIALOGS)
    arrays = examples_to_arrays([examples[4], examples[0]])
    assert arrays["context"].shape == (2, 9)
    assert list(arrays["context"][1]) == ["hi"] + [""] * 8
    assert list(arrays["kb"][1]) == ["", ""]
    assert list(arrays["response"]) == [examples[4].response, examples[0].response]
    cut = examples_to_arrays([examples[4], examples[0]], max_turns=3, max_facts=1)
    assert list(cut["context"][0]) == list(examples[4].context[-3:])
    assert cut["context"][0][0] == "<SILENCE>"  # still starts with a user turn
    assert list(cut["kb"][0]) == [f"{R} R_rating 2"]
    assert cut["kb"].shape == (2, 1)
    assert examples_to_arrays([examples[4]], max_facts=0)["kb"].shape == (1, 0)
    with pytest.raises(ValueError, match="odd"):
        examples_to_arrays(examples, max_turns=2)
    assert isinstance(arrays["context"], np.ndarray)
