"""Turn a Debian long description into one line of plain prose.

Debian policy (5.6.13) formats the long description as continuation lines: a line that
starts with one space is word-wrapped prose, a line of just " ." is a paragraph break, and a
line with two or more leading spaces is shown verbatim (lists, code, tables). A TSV document
is one line, so paragraphs are joined with a space, list markers ("*", "-", "+", "•",
"o", "1.", "a)") are removed and each list item is closed with a full stop when it has no
final punctuation, so that items read as sentences instead of running into each other. An
item continues on lines indented deeper than its marker; a line back at the marker's column
or left of it (for a marker on an indented line) ends the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A bullet anywhere: *, -, +, bullets; "o", "1." or "a)" only on verbatim (indented) lines,
# where they cannot be a word or a number that wrapped to the start of a prose line.
_SYMBOL_BULLET = re.compile(r"^\s*(?:[*\-+\u2022\u00b7\u2023\u25e6])\s+(?=\S)")
_INDENTED_BULLET = re.compile(r"^\s+(?:o|\d{1,2}[.)]|[a-z][.)])\s+(?=\S)")
_WHITESPACE = re.compile(r"\s+")
_FINAL_PUNCTUATION = ".!?:;,"


def normalise_space(text: str) -> str:
    """Runs of whitespace become one space; no leading or trailing space."""
    return _WHITESPACE.sub(" ", text).strip()


def _strip_bullet(content: str) -> str | None:
    """The item text when `content` (a line minus its first space) starts a list item."""
    for pattern in (_SYMBOL_BULLET, _INDENTED_BULLET):
        match = pattern.match(content)
        if match:
            return content[match.end() :]
    return None


def description_paragraphs(body: Sequence[str]) -> list[str]:
    """Paragraphs and list items of a long description, each one normalised line.

    `body` is the description's continuation lines as written (each with its leading space).
    """
    blocks: list[str] = []
    parts: list[str] = []
    item_indent = -1  # indentation of the current list item's marker, -1 outside a list

    def flush() -> None:
        text = normalise_space(" ".join(parts))
        if text:
            if item_indent >= 0 and text[-1] not in _FINAL_PUNCTUATION:
                text += "."
            blocks.append(text)
        parts.clear()

    for raw in body:
        content = raw[1:] if raw[:1] in (" ", "\t") else raw
        indent = len(content) - len(content.lstrip())
        if raw.strip() == ".":
            flush()
            item_indent = -1
            continue
        item = _strip_bullet(content)
        if item is not None:
            flush()
            item_indent = indent
            parts.append(item)
            continue
        if 0 < item_indent and indent <= item_indent:
            # back at (or left of) an indented marker's column: the list has ended
            flush()
            item_indent = -1
        parts.append(content)  # wrapped prose, or the continuation of the current item
    flush()
    return blocks


def clean_long_description(body: Sequence[str]) -> str:
    """The long description as one line of text (see the module docstring)."""
    return " ".join(description_paragraphs(body))


def first_paragraph(body: Sequence[str]) -> str:
    """The first paragraph up to the first " ." line, normalised ('' when empty)."""
    lines: list[str] = []
    for raw in body:
        if raw.strip() == ".":
            if lines:
                break
            continue
        lines.append(raw)
    return normalise_space(" ".join(lines))
