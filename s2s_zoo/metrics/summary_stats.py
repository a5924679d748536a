"""How extractive and how repetitive generated summaries are.

ROUGE alone does not show the two failure modes the pointer-generator/coverage model is
about: copying too much (or too little) of the source, and repeating itself. `copy_rate`
and `repeated_trigram_rate` measure them on lowercased words of any script.
"""

from __future__ import annotations

from collections.abc import Sequence

from s2s_zoo.metrics.rouge import Tokenizer, UnicodeTokenizer


def copy_rate(
    sources: Sequence[str], summaries: Sequence[str], tokenizer: Tokenizer | None = None
) -> float:
    """Fraction of all summary tokens that occur anywhere in their own source.

    Pooled over the corpus (each token counts once, so long summaries weigh more); tokens
    are lowercased, unstemmed words (`UnicodeTokenizer(use_stemmer=False)` by default).
    0.0 when the summaries hold no token at all.
    """
    if len(sources) != len(summaries):
        raise ValueError(f"{len(sources)} sources for {len(summaries)} summaries")
    tokenizer = tokenizer or UnicodeTokenizer(use_stemmer=False)
    copied = total = 0
    for source, summary in zip(sources, summaries, strict=True):
        vocabulary = set(tokenizer.tokenize(source))
        tokens = tokenizer.tokenize(summary)
        copied += sum(token in vocabulary for token in tokens)
        total += len(tokens)
    return copied / total if total else 0.0


def repeated_trigram_rate(summaries: Sequence[str], tokenizer: Tokenizer | None = None) -> float:
    """Fraction of all summary trigrams that repeat an earlier trigram of the same summary.

    Pooled over the corpus; "a b c a b c" has 4 trigrams of which 1 ("a b c") repeats.
    Summaries under three tokens have no trigram; 0.0 when no summary has one.
    """
    tokenizer = tokenizer or UnicodeTokenizer(use_stemmer=False)
    repeated = total = 0
    for summary in summaries:
        tokens = tokenizer.tokenize(summary)
        seen: set[tuple[str, ...]] = set()
        for i in range(len(tokens) - 2):
            trigram = tuple(tokens[i : i + 3])
            repeated += trigram in seen
            seen.add(trigram)
            total += 1
    return repeated / total if total else 0.0
