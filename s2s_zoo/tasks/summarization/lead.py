"""Lead baselines: the summary is the start of the document.

Any summarizer has to beat "copy the first sentence" and "copy the first N words", which are
strong on headline data because writers put the gist first. The sentence splitter is a small
rule set (a full stop, "!" or "?" followed by a space and an upper-case letter, digit, quote
or bracket, except after common abbreviations and initials); it only serves this baseline,
and no sentence-splitting library with offline models is a dependency of the project.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    "e.g. i.e. etc. vs. cf. approx. incl. no. nr. mr. mrs. ms. dr. prof. st. jr. sr. "
    "fig. vol. ver. al. resp. esp. ca.".split()
)
_BOUNDARY = re.compile(r"([.!?][\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")
_INITIALS = re.compile(r"(?:^|\s)(?:[A-Za-z]\.)+$")


def first_sentence(text: str) -> str:
    """The text up to the first sentence boundary (all of it when there is none)."""
    text = text.strip()
    for match in _BOUNDARY.finditer(text):
        head = text[: match.start() + 1]  # up to and including the punctuation mark
        last_word = head.rsplit(None, 1)[-1].lower()
        if last_word.lstrip("(\"'") in _ABBREVIATIONS or _INITIALS.search(head):
            continue
        return text[: match.end(1)]
    return text


def first_words(text: str, count: int) -> str:
    """The first `count` whitespace-separated words."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return " ".join(text.split()[:count])
