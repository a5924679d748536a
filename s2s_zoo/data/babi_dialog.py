"""Readers and writers for goal-oriented dialogue data (bAbI-dialog files and JSONL).

Dialogue models in the zoo answer one bot turn at a time from the conversation so far
and the knowledge-base (KB) facts the bot has seen, so every file is turned into
:class:`DialogExample` objects ``(context turns, kb facts, response)``, the same
structure the exported model takes (``context`` and ``kb`` string tensors).

Two formats are read, told apart by content rather than by extension (bAbI files are
``.txt`` like everything else):

* **bAbI-dialog** (Bordes, Boureau and Weston 2017, "Learning End-to-End Goal-Oriented
  Dialog"): dialogs separated by blank lines (or by the line number restarting at 1);
  each line is numbered from 1 within its dialog; ``N user<TAB>bot`` is one exchange,
  with ``<SILENCE>`` standing for an empty user turn; a numbered line without a tab
  (``N resto_x R_cuisine italian`` or ``N api_call no result``) is a KB fact, usually
  following an ``api_call`` bot turn (tasks 3 and 4 list them at the dialog's start).
* **JSONL** for users' own data: one example per line,
  ``{"context": ["user", "bot", ..., "user"], "kb": ["fact", ...], "response": "bot"}``.

Like :mod:`s2s_zoo.data.readers`, reading is strict: a malformed line raises
:class:`~s2s_zoo.data.readers.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2s_zoo.data.readers import DataFormatError, _decode_lines

__all__ = [
    "SILENCE",
    "Dialog",
    "DialogExample",
    "Fact",
    "Turn",
    "detect_dialog_format",
    "dialog_examples",
    "examples_to_arrays",
    "read_babi_dialogs",
    "read_dialog_examples",
    "write_babi_dialogs",
    "write_dialog_examples",
]

SILENCE = "<SILENCE>"
PathLike = str | os.PathLike[str]

_NUMBERED = re.compile(r"(\d+) (.*)\Z", re.DOTALL)
_BABI_START = re.compile(r"\d+ ")


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user said (``<SILENCE>`` if nothing) and the bot's reply."""

    user: str
    bot: str


@dataclass(frozen=True)
class Fact:
    """One knowledge-base line, e.g. ``resto_rome_cheap_thai_2stars R_rating 2``."""

    text: str


@dataclass(frozen=True)
class Dialog:
    """A dialog's lines in file order; facts keep their place between turns."""

    entries: tuple[Turn | Fact, ...]

    @property
    def turns(self) -> list[Turn]:
        return [e for e in self.entries if isinstance(e, Turn)]

    @property
    def facts(self) -> list[str]:
        return [e.text for e in self.entries if isinstance(e, Fact)]


@dataclass(frozen=True)
class DialogExample:
    """One bot turn to predict.

    ``context`` alternates user/bot turns, oldest first, starting with a user turn and
    ending with the current user turn (so its length is odd); ``kb`` holds the facts
    seen before this bot turn, in order; ``response`` is the bot turn.
    """

    context: tuple[str, ...]
    kb: tuple[str, ...]
    response: str


# --- format detection ----------------------------------------------------------------


def detect_dialog_format(path: PathLike, lines: Sequence[str] | None = None) -> str:
    """``"babi"`` if the first non-blank line starts with digits and a space, ``"jsonl"``
    if it starts with ``{``; anything else is an error naming that line."""
    path_str = os.fspath(path)
    if lines is None:
        lines = _decode_lines(Path(path).read_bytes(), path_str, "utf-8")
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if _BABI_START.match(line):
            return "babi"
        if line.lstrip().startswith("{"):
            return "jsonl"
        raise DataFormatError(
            path_str,
            number,
            "cannot tell the format: a bAbI-dialog line starts with its number and a space "
            f"('1 hi<TAB>hello'), a JSONL line with '{{'; found {line[:40]!r}",
        )
    raise DataFormatError(path_str, 0, "no dialogs found: the file is empty or blank")


# --- bAbI-dialog ---------------------------------------------------------------------


def _parse_babi_line(line: str, path: str, number: int) -> tuple[int, Turn | Fact]:
    match = _NUMBERED.match(line)
    if match is None:
        raise DataFormatError(
            path,
            number,
            f"expected a numbered line ('N user<TAB>bot' or 'N kb fact'), found {line[:40]!r}",
        )
    index, body = int(match.group(1)), match.group(2)
    if "\t" not in body:
        if not body.strip():
            raise DataFormatError(path, number, f"line {index} has a number but no text")
        return index, Fact(body)
    fields = body.split("\t")
    if len(fields) != 2:
        raise DataFormatError(
            path, number, f"expected one tab (user<TAB>bot), found {len(fields) - 1}"
        )
    user, bot = fields
    if not user.strip():
        raise DataFormatError(
            path, number, f"empty user turn; bAbI-dialog writes {SILENCE} when the user is silent"
        )
    if not bot.strip():
        raise DataFormatError(path, number, "empty bot turn after the tab")
    return index, Turn(user, bot)


def read_babi_dialogs(path: PathLike, *, encoding: str = "utf-8") -> list[Dialog]:
    """Read a bAbI-dialog file (tasks 1-6 of Bordes et al. 2017) into dialogs."""
    path_str = os.fspath(path)
    lines = _decode_lines(Path(path).read_bytes(), path_str, encoding)
    if detect_dialog_format(path_str, lines) != "babi":
        raise DataFormatError(path_str, 0, "this is JSONL, not a bAbI-dialog file")
    dialogs: list[Dialog] = []
    entries: list[Turn | Fact] = []
    start = 0  # file line where the current dialog began

    def close() -> None:
        if entries and not any(isinstance(e, Turn) for e in entries):
            raise DataFormatError(
                path_str, start, "dialog has knowledge-base lines but no user<TAB>bot turn"
            )
        if entries:
            dialogs.append(Dialog(tuple(entries)))
        entries.clear()

    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            close()
            continue
        index, entry = _parse_babi_line(line, path_str, number)
        if index == 1 and entries:
            close()  # bAbI convention: a restart at 1 begins a new dialog
        expected = len(entries) + 1
        if index != expected:
            where = "a dialog starts at 1" if expected == 1 else f"expected {expected}"
            raise DataFormatError(path_str, number, f"line number {index}: {where}")
        if not entries:
            start = number
        entries.append(entry)
    close()
    if not dialogs:
        raise DataFormatError(path_str, 0, "no dialogs found")
    return dialogs


def dialog_examples(dialogs: Iterable[Dialog]) -> list[DialogExample]:
    """Every bot turn of every dialog as one example (see :class:`DialogExample`)."""
    examples = []
    for dialog in dialogs:
        context: list[str] = []
        kb: list[str] = []
        for entry in dialog.entries:
            if isinstance(entry, Fact):
                kb.append(entry.text)
                continue
            context.append(entry.user)
            examples.append(DialogExample(tuple(context), tuple(kb), entry.bot))
            context.append(entry.bot)
    return examples


def _check_text(where: str, value: object, allow_tab: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{where}: is empty")
    for char, label in (("\n", "a newline"), ("\r", "a carriage return"), ("\t", "a tab")):
        if char in value and not (allow_tab and char == "\t"):
            raise ValueError(f"{where}: contains {label}, which bAbI-dialog cannot represent")
    return value


def write_babi_dialogs(path: PathLike, dialogs: Iterable[Dialog]) -> None:
    """Write dialogs in bAbI-dialog format, the exact inverse of :func:`read_babi_dialogs`.

    Everything is validated before the file is opened, so a bad dialog never leaves a
    half-written file.
    """
    blocks = []
    for d, dialog in enumerate(dialogs):
        if not any(isinstance(e, Turn) for e in dialog.entries):
            raise ValueError(f"dialog {d}: has no turns")
        lines = []
        for i, entry in enumerate(dialog.entries, start=1):
            where = f"dialog {d} line {i}"
            if isinstance(entry, Turn):
                user = _check_text(f"{where} user", entry.user)
                bot = _check_text(f"{where} bot", entry.bot)
                lines.append(f"{i} {user}\t{bot}\n")
            elif isinstance(entry, Fact):
                lines.append(f"{i} {_check_text(f'{where} fact', entry.text)}\n")
            else:
                raise ValueError(f"{where}: expected a Turn or Fact, got {type(entry).__name__}")
        blocks.append("".join(lines))
    if not blocks:
        raise ValueError("no dialogs to write")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\n".join(blocks))


# --- JSONL ---------------------------------------------------------------------------


def _string_list(obj: dict, name: str, path: str, number: int) -> tuple[str, ...]:
    value = obj[name]
    if not isinstance(value, list):
        raise DataFormatError(
            path, number, f"field {name!r} must be a list of strings, found {type(value).__name__}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise DataFormatError(
                path,
                number,
                f"field {name!r} item {i} must be a string, found {type(item).__name__}",
            )
        if not item.strip():
            hint = f" (write {SILENCE} for a silent user turn)" if name != "kb" else ""
            raise DataFormatError(path, number, f"field {name!r} item {i} is empty{hint}")
    return tuple(value)


def _parse_jsonl_example(
    line: str, path: str, number: int, context_field: str, kb_field: str | None, response_field: str
) -> DialogExample:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        reason = f"invalid JSON: {err.msg} (column {err.colno})"
        raise DataFormatError(path, number, reason) from err
    if not isinstance(obj, dict):
        raise DataFormatError(path, number, f"expected a JSON object, found {type(obj).__name__}")
    required = [context_field, response_field] + ([kb_field] if kb_field else [])
    for name in required:
        if name not in obj:
            keys = ", ".join(repr(k) for k in obj) or "none"
            raise DataFormatError(path, number, f"missing field {name!r}; keys present: {keys}")
    context = _string_list(obj, context_field, path, number)
    if len(context) % 2 != 1:
        raise DataFormatError(
            path,
            number,
            f"field {context_field!r} must alternate user/bot turns starting and ending with a "
            f"user turn (an odd number of turns), found {len(context)}",
        )
    kb = _string_list(obj, kb_field, path, number) if kb_field else ()
    response = obj[response_field]
    if not isinstance(response, str) or not response.strip():
        raise DataFormatError(path, number, f"field {response_field!r} must be a non-empty string")
    return DialogExample(context, kb, response)


def read_dialog_examples(
    path: PathLike,
    *,
    context_field: str = "context",
    kb_field: str | None = "kb",
    response_field: str = "response",
    encoding: str = "utf-8",
) -> list[DialogExample]:
    """Examples from a bAbI-dialog or JSONL file, the format told by the content.

    The ``*_field`` names apply to JSONL; ``kb_field=None`` reads data without a
    knowledge base (otherwise a line without the field is an error, so a misspelt
    field name never silently drops every fact).
    """
    path_str = os.fspath(path)
    lines = _decode_lines(Path(path).read_bytes(), path_str, encoding)
    if detect_dialog_format(path_str, lines) == "babi":
        return dialog_examples(read_babi_dialogs(path, encoding=encoding))
    names = [context_field, response_field] + ([kb_field] if kb_field else [])
    if len(set(names)) != len(names):
        raise ValueError(f"field names must differ, got {names}")
    fields = (context_field, kb_field, response_field)
    examples = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if line.strip():
            examples.append(_parse_jsonl_example(line, path_str, number, *fields))
    return examples


def write_dialog_examples(
    path: PathLike,
    examples: Iterable[DialogExample],
    *,
    context_field: str = "context",
    kb_field: str = "kb",
    response_field: str = "response",
) -> None:
    """Write examples as JSONL, the inverse of :func:`read_dialog_examples`."""
    lines = []
    for i, example in enumerate(examples):
        if len(example.context) % 2 != 1:
            raise ValueError(f"example {i}: context must have an odd number of turns")
        for j, turn in enumerate(example.context):
            _check_text(f"example {i} context turn {j}", turn, allow_tab=True)
        for j, fact in enumerate(example.kb):
            _check_text(f"example {i} kb fact {j}", fact, allow_tab=True)
        _check_text(f"example {i} response", example.response, allow_tab=True)
        obj = {
            context_field: list(example.context),
            kb_field: list(example.kb),
            response_field: example.response,
        }
        lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)


# --- batching ------------------------------------------------------------------------


def examples_to_arrays(
    examples: Sequence[DialogExample],
    max_turns: int | None = None,
    max_facts: int | None = None,
) -> dict[str, np.ndarray]:
    """Pad examples into the serving inputs: ``context`` [batch, turns] and ``kb``
    [batch, facts] string arrays (empty strings pad at the end) and ``response`` [batch].

    ``max_turns`` keeps the most recent turns (an odd count, so the context still starts
    with a user turn); ``max_facts`` keeps the most recent facts.
    """
    if max_turns is not None and (max_turns < 1 or max_turns % 2 != 1):
        raise ValueError(f"max_turns must be a positive odd number, got {max_turns}")
    if max_facts is not None and max_facts < 0:
        raise ValueError(f"max_facts must be >= 0, got {max_facts}")
    contexts = [e.context[-max_turns:] if max_turns else e.context for e in examples]
    facts = [(e.kb[len(e.kb) - max_facts :] if max_facts is not None else e.kb) for e in examples]

    def pad(rows: list[tuple[str, ...]]) -> np.ndarray:
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), "", dtype=object)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    return {
        "context": pad(contexts),
        "kb": pad(facts),
        "response": np.array([e.response for e in examples], dtype=object),
    }
