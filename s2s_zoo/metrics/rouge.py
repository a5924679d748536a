"""ROUGE through Google's `rouge-score` package, with a tokenizer that keeps non-ASCII words.

rouge-score's default tokenizer lowercases the text and replaces every character outside
[a-z0-9] with a space, so accented letters split words ("café" -> "caf") and whole words in
other scripts vanish (a Cyrillic or Chinese summary scores 0 against anything). The scoring
itself (n-gram overlap, LCS) is rouge-score's; only the tokenizer is ours:
`UnicodeTokenizer` gives exactly the default tokens on ASCII text and keeps letters, marks
and digits of every script otherwise.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

# One token per Han/Kana character (those scripts do not separate words with spaces), else a
# run of letters, combining marks and digits of any script. "_" is not a letter, as in the
# default tokenizer.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"


@functools.cache
def _token_pattern() -> Any:
    # the `regex` package (a dependency of rouge-score's nltk) knows Unicode classes; `re`
    # has no \p{M}, and without marks words in Devanagari and other scripts would split
    import regex

    return regex.compile(rf"[{_CJK}]|[\p{{L}}\p{{M}}\p{{N}}--{_CJK}]+", flags=regex.V1)


class Tokenizer(Protocol):
    """What rouge-score accepts as a tokenizer."""

    def tokenize(self, text: str) -> list[str]: ...


class UnicodeTokenizer:
    """Lowercased words of any script, optionally Porter-stemmed like rouge-score's default.

    On ASCII text the tokens equal rouge-score's `DefaultTokenizer(use_stemmer)` tokens. The
    Porter stemmer is English-only, so it is applied to ASCII tokens longer than three
    characters (rouge-score's rule) and other tokens are compared as written.
    """

    def __init__(self, use_stemmer: bool = True) -> None:
        self.use_stemmer = use_stemmer
        self._stemmer = None
        if use_stemmer:
            from nltk.stem import porter

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        tokens = _token_pattern().findall(unicodedata.normalize("NFC", text).lower())
        if self._stemmer is None:
            return tokens
        return [
            self._stemmer.stem(token) if len(token) > 3 and token.isascii() else token
            for token in tokens
        ]


def rouge(
    hypotheses: Sequence[str],
    references: Sequence[str],
    tokenizer: Tokenizer | None = None,
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (x100) over hypothesis/reference pairs, Porter stemming on.

    `tokenizer=None` uses rouge-score's default tokenizer, which DROPS every non-ASCII
    letter (fine for English, wrong for accented or non-Latin text); pass
    `UnicodeTokenizer()` (or any object with `tokenize(text) -> list[str]`) for other text.
    A custom tokenizer does its own stemming: rouge-score then ignores `use_stemmer`.
    """
    from rouge_score import rouge_scorer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not hypotheses:
        raise ValueError("ROUGE of an empty corpus is undefined")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, tokenizer=tokenizer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        scores = scorer.score(reference, hypothesis)  # rouge-score's order: (target, prediction)
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(hypotheses) for name, total in totals.items()}
