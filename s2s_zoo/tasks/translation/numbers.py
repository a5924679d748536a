"""The built-in default task: English number words -> French number words.

The data is generated offline with ``num2words`` rather than downloaded, so the
zoo works without network access and every run with the same seed sees exactly
the same splits. The task is small but genuinely compositional (for example
"seventy-one" -> "soixante et onze"), which makes it a useful smoke test for a
seq2seq model: held-out numbers can only be translated by generalising.
"""

from __future__ import annotations

import random

from num2words import num2words

__all__ = ["make_number_splits", "number_pair"]

# 0..100 contain every irregular word form (units, teens, tens, "cent"); a
# model cannot be expected to translate numbers built from pieces it never saw.
_BUILDING_BLOCKS_MAX = 100


def number_pair(n: int) -> tuple[str, str]:
    """Return the (English, French) spelled-out forms of ``n``."""
    return num2words(n, lang="en"), num2words(n, lang="fr")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def make_number_splits(
    num_train: int,
    num_valid: int,
    num_test: int,
    seed: int = 0,
    max_number: int = 999_999,
) -> dict[str, list[tuple[str, str]]]:
    """Build disjoint train/valid/test splits of number translation pairs.

    Integers are drawn without replacement from ``[0, max_number]`` using
    ``random.Random(seed)``, so the splits share no number (valid/test measure
    generalisation, not memorisation) and are reproducible for a given seed.
    The building blocks 0..100 are always in train when ``num_train`` is large
    enough to hold them; otherwise train is a seeded sample of them and the
    rest of those small numbers may be held out. Each split is in a seeded
    random order.
    """
    for name, value in (
        ("num_train", num_train),
        ("num_valid", num_valid),
        ("num_test", num_test),
        ("max_number", max_number),
    ):
        _check_count(name, value)
    range_size = max_number + 1
    total = num_train + num_valid + num_test
    if total > range_size:
        raise ValueError(
            f"requested {total} distinct numbers ({num_train} train + {num_valid} "
            f"valid + {num_test} test) but [0, {max_number}] only holds "
            f"{range_size}"
        )

    rng = random.Random(seed)
    num_small = min(_BUILDING_BLOCKS_MAX, max_number) + 1
    num_held_out = num_valid + num_test
    if num_train >= num_small:
        # All building blocks go to train; everything else is sampled above them.
        extra = rng.sample(range(num_small, range_size), num_train - num_small + num_held_out)
        train = list(range(num_small)) + extra[: num_train - num_small]
        held_out = extra[num_train - num_small :]
        rng.shuffle(train)
    else:
        train = rng.sample(range(num_small), num_train)
        in_train = set(train)
        leftover_small = [n for n in range(num_small) if n not in in_train]
        # Sample indices into "leftover small numbers followed by the large
        # ones" without materialising a list of up to a million integers.
        picks = rng.sample(range(len(leftover_small) + range_size - num_small), num_held_out)
        held_out = [
            leftover_small[i] if i < len(leftover_small) else i - len(leftover_small) + num_small
            for i in picks
        ]

    valid = held_out[:num_valid]
    test = held_out[num_valid:]
    return {
        "train": [number_pair(n) for n in train],
        "valid": [number_pair(n) for n in valid],
        "test": [number_pair(n) for n in test],
    }
