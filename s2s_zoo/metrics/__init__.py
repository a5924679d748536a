"""Corpus metrics through well-kept libraries: BLEU (sacrebleu), WER/CER (jiwer), ROUGE
(rouge-score), plus copy and repetition rates of summaries."""

from __future__ import annotations

from collections.abc import Sequence

from s2s_zoo.metrics.rouge import UnicodeTokenizer, rouge
from s2s_zoo.metrics.summary_stats import copy_rate, repeated_trigram_rate

__all__ = [
    "UnicodeTokenizer",
    "copy_rate",
    "corpus_bleu",
    "error_rates",
    "repeated_trigram_rate",
    "rouge",
]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """BLEU-4 of `hypotheses` against one or more references each (sacrebleu).

    sacrebleu takes reference *streams* of equal length; items with fewer references
    repeat their first one, which changes neither clipped counts nor the closest
    reference length.
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} reference sets")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    width = max(len(refs) for refs in references)
    streams = [[refs[i] if i < len(refs) else refs[0] for refs in references] for i in range(width)]
    return sacrebleu.corpus_bleu(list(hypotheses), streams).score


def error_rates(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus word and character error rates (jiwer), as fractions."""
    import jiwer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    empty = [i for i, r in enumerate(references) if not r.strip()]
    if empty:  # an error rate over an empty reference is undefined
        raise ValueError(f"empty references at positions {empty[:10]}")
    refs, hyps = list(references), list(hypotheses)
    return {"wer": jiwer.wer(refs, hyps), "cer": jiwer.cer(refs, hyps)}
