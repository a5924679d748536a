"""Training-time entity substitution: teach a copying decoder to copy values it never saw.

The tokenizer is trained on the conversations, so a training KB's cities and cuisines
are single pieces ("rome", "italian") while unseen ones split into several ("l is b o n").
A copying decoder trained on the original data only ever copies one-piece values and
fails on every unseen one: `mem2seq_dialog` got 0 of 86 OOV entity responses right
(benchmarks/dialogue.py, 2026-12-06). Substitution rewrites a share of the training
examples with each KB value word replaced by an invented word, the same everywhere in the
example (turns, facts, response, and inside compound names such as
``resto_rome_cheap_italian_3stars``). The invented words tokenize into several pieces, as
unseen values do, and can only be produced by copying them. They are drawn letter by letter
from a bigram model of the data's own words, so they look like words ("lima", "oslo") and
split as real unseen values do, into single letters and the data's common pieces ("s y d
ne y"), rather than into single letters only.

Which words are KB values: the value of a fact ``subject R_relation value`` that is a
plain word and also one of the ``_``-separated parts of a subject (cuisine, location and
price in bAbI task 5; phone numbers and ratings are not plain words). Training batches
only; the served graph never sees this.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[a-z]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

Triple = tuple[Sequence[str], Sequence[str], str]


def value_words(facts: Iterable[str]) -> set[str]:
    """KB value words that also name parts of subjects (see the module docstring).

    >>> sorted(value_words(["resto_rome_cheap_thai_2stars R_cuisine thai",
    ...                     "resto_rome_cheap_thai_2stars R_location rome",
    ...                     "resto_rome_cheap_thai_2stars R_rating 2",
    ...                     "resto_rome_cheap_thai_2stars R_number four"]))
    ['rome', 'thai']
    """
    parts: set[str] = set()
    values: set[str] = set()
    for fact in facts:
        tokens = fact.split()
        if len(tokens) == 4 and tokens[0].isdigit():
            tokens = tokens[1:]
        if len(tokens) == 3 and tokens[1].startswith("R_"):
            parts.update(tokens[0].split("_"))
            if _WORD.fullmatch(tokens[2]):
                values.add(tokens[2])
    return values & parts


class WordShapes:
    """Letter bigrams of a set of words ("^" starts, "$" ends a word): invents new words
    that look like them.

    With probability `any_letter` a letter is drawn from the whole alphabet instead: an
    unseen value can hold a letter no training text has ("z" of "brazilian"), which the
    tokenizer escapes into several pieces, and a copying model must have copied such
    escapes in training to copy them at test time.

    >>> shapes = WordShapes(["lima", "oslo", "cairo", "rome"])
    >>> word = shapes.invent(random.Random(0), taken={"lima"})
    >>> word.isalpha() and word.islower() and 3 <= len(word) <= 10
    True
    """

    def __init__(self, words: Iterable[str], any_letter: float = 0.1) -> None:
        if not 0.0 <= any_letter <= 1.0:
            raise ValueError(f"any_letter must be in [0, 1], got {any_letter}")
        self.any_letter = any_letter
        self.next: dict[str, list[str]] = {}
        for word in words:
            padded = f"^{word}$"
            for a, b in zip(padded, padded[1:], strict=False):
                self.next.setdefault(a, []).append(b)
        self.inner = sorted(k for k in self.next if k != "^")  # letters words continue from

    def invent(
        self,
        rng: random.Random,
        taken: set[str],
        min_length: int = 3,
        max_length: int = 10,
        attempts: int = 1000,
    ) -> str:
        """A word of `min_length`..`max_length` letters not in `taken` (added to it).

        Uniform random letters when there are no words to learn from, or when `attempts`
        walks gave no new word of that length (data of short words, or few letter pairs).
        """
        if not 1 <= min_length <= max_length:
            raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
        attempt = 0
        while True:
            if self.next and attempt < attempts:
                word = self._draw(rng, max_length)
            else:
                length = rng.randint(min_length, max_length)
                word = "".join(rng.choice(_LETTERS) for _ in range(length))
            if len(word) >= min_length and word not in taken:
                taken.add(word)
                return word
            attempt += 1

    def _draw(self, rng: random.Random, max_length: int) -> str:
        """One walk from "^" to "$"; "" (drawn again) if it runs past `max_length`."""
        word, letter = "", "^"
        while len(word) <= max_length:
            if letter != "^" and rng.random() < self.any_letter:
                letter = rng.choice(_LETTERS)  # a letter anywhere but first
            else:
                # after a letter no word has, go on as after a random one that words have,
                # so unseen letters sit inside words too ("brazilian"), not only at the end
                choices = self.next.get(letter) or (
                    self.next[rng.choice(self.inner)] if self.inner else ["$"]
                )
                letter = rng.choice(choices)
            if letter == "$":
                return word
            word += letter
        return ""


def _rewrite(text: str, mapping: dict[str, str]) -> str:
    """Every maximal run of lowercase letters that is a value word, replaced: the same runs
    `_runs` finds, so "rome," and "resto_rome_cheap" change and "R_cuisine" does not."""
    return _WORD.sub(lambda m: mapping.get(m.group(), m.group()), text)


def _runs(text: str) -> set[str]:
    return set(_WORD.findall(text))


def substitute_entities(
    examples: Sequence[Triple], values: set[str], rate: float, seed: int = 0
) -> list[Triple]:
    """`examples` with a `rate` share rewritten: every value word they contain gets an
    invented replacement, one per word and example, applied to turns, facts and response.

    Deterministic for a seed. Examples without a value word are kept as they are.

    >>> out = substitute_entities([(["book in rome"], [], "api_call rome")], {"rome"}, 1.0)
    >>> context, kb, response = out[0]
    >>> new = response.split()[1]
    >>> context == [f"book in {new}"] and new != "rome" and kb == []
    True
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"entity substitution rate must be in [0, 1], got {rate}")
    rng = random.Random(seed)
    # never invent a word the data already has ("two", "for", a value): it would be ambiguous
    taken = set(values).union(*(_runs(t) for c, k, r in examples for t in (*c, *k, r)))
    shapes = WordShapes(sorted(taken))
    out: list[Triple] = []
    for context, kb, response in examples:
        if rng.random() >= rate:
            out.append((context, kb, response))
            continue
        texts = [*context, *kb, response]
        found = sorted(set().union(*map(_runs, texts)) & values)
        if not found:
            out.append((context, kb, response))
            continue
        mapping = {word: shapes.invent(rng, taken) for word in found}
        out.append(
            (
                [_rewrite(t, mapping) for t in context],
                [_rewrite(f, mapping) for f in kb],
                _rewrite(response, mapping),
            )
        )
    return out
