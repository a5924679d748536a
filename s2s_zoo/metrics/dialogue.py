"""Goal-oriented dialogue metrics: per-response and per-dialog accuracy, entity F1.

As in Bordes et al. (2017) and Madotto et al. (2018): a response is right only if it
equals the reference exactly (after collapsing whitespace); a dialog is right only if
every one of its responses is. Entity F1 scores the knowledge-base values (restaurant
names, phones, addresses, cuisines, locations, ...) a response contains: entities are the
tokens that occur as the subject or the value of a KB fact (``subject R_relation value``).
It is micro-averaged: true positives, false positives and false negatives (as multisets
per response) are summed over all responses before F1 is taken; with no entity in any
reference or hypothesis it is 1 (nothing to find, nothing invented).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence


def fact_entities(fact: str) -> set[str]:
    """The entity tokens of one KB fact: subject and value of ``subject R_relation value``.

    A leading line number (bAbI KB files number their lines) is skipped; lines of another
    shape (e.g. ``api_call no result``) hold no entities.

    >>> sorted(fact_entities("1 resto_a R_phone resto_a_phone"))
    ['resto_a', 'resto_a_phone']
    >>> fact_entities("api_call no result")
    set()
    """
    tokens = fact.split()
    if tokens and tokens[0].isdigit() and len(tokens) == 4:
        tokens = tokens[1:]
    if len(tokens) == 3 and tokens[1].startswith("R_"):
        return {tokens[0], tokens[2]}
    return set()


def kb_entities(facts: Iterable[str]) -> set[str]:
    """Every entity of `facts` (see `fact_entities`)."""
    entities: set[str] = set()
    for fact in facts:
        entities |= fact_entities(fact)
    return entities


def _same(hypothesis: str, reference: str) -> bool:
    return hypothesis.split() == reference.split()


def per_response_accuracy(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of responses equal to their reference (whitespace-insensitive)."""
    if not hypotheses:
        return 0.0
    pairs = zip(hypotheses, references, strict=True)
    return sum(_same(h, r) for h, r in pairs) / len(hypotheses)


def per_dialog_accuracy(
    hypotheses: Sequence[str], references: Sequence[str], dialogs: Sequence[Hashable]
) -> float:
    """Fraction of dialogs (grouped by `dialogs` ids) whose every response is right."""
    right: dict[Hashable, bool] = {}
    for h, r, d in zip(hypotheses, references, dialogs, strict=True):
        right[d] = right.get(d, True) and _same(h, r)
    return sum(right.values()) / len(right) if right else 0.0


def entity_f1(hypotheses: Sequence[str], references: Sequence[str], entities: set[str]) -> float:
    """Micro-averaged F1 of the entity tokens of hypotheses against references."""
    tp = fp = fn = 0
    for h, r in zip(hypotheses, references, strict=True):
        predicted = Counter(t for t in h.split() if t in entities)
        gold = Counter(t for t in r.split() if t in entities)
        hits = sum((predicted & gold).values())
        tp += hits
        fp += sum(predicted.values()) - hits
        fn += sum(gold.values()) - hits
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


def dialogue_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    dialogs: Sequence[Hashable],
    entities: set[str],
) -> dict[str, float]:
    """The three metrics, named as the runner prints them."""
    return {
        "per_response_accuracy": per_response_accuracy(hypotheses, references),
        "per_dialog_accuracy": per_dialog_accuracy(hypotheses, references, dialogs),
        "entity_f1": entity_f1(hypotheses, references, entities),
    }
