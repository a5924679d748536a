"""Tests for s2s_zoo.tasks.translation.numbers: the built-in English -> French number task."""

from __future__ import annotations

import pytest

from s2s_zoo.tasks.translation.numbers import make_number_splits, number_pair


def test_number_pair_examples():
    assert number_pair(342) == ("three hundred and forty-two", "trois cent quarante-deux")
    assert number_pair(342)[1] == "trois cent quarante-deux"
    assert number_pair(0) == ("zero", "zéro")
    assert number_pair(71)[1] == "soixante et onze"
    assert number_pair(1000)[1] == "mille"


def _numbers_by_english(splits):
    """Map each split back to its set of English strings (one per integer)."""
    return {name: {en for en, _ in pairs} for name, pairs in splits.items()}


def test_split_sizes_and_keys():
    splits = make_number_splits(500, 50, 60, seed=1)
    assert set(splits) == {"train", "valid", "test"}
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [500, 50, 60]
    for pairs in splits.values():
        for en, fr in pairs:
            assert isinstance(en, str) and en
            assert isinstance(fr, str) and fr


def test_splits_are_disjoint_and_without_duplicates():
    splits = make_number_splits(2000, 300, 300, seed=3)
    sets = _numbers_by_english(splits)
    for name, pairs in splits.items():
        assert len(sets[name]) == len(pairs), f"duplicates in {name}"
    assert not sets["train"] & sets["valid"]
    assert not sets["train"] & sets["test"]
    assert not sets["valid"] & sets["test"]


def test_deterministic_for_same_seed():
    assert make_number_splits(300, 40, 40, seed=7) == make_number_splits(300, 40, 40, seed=7)


def test_different_seeds_differ():
    a = make_number_splits(300, 40, 40, seed=0)
    b = make_number_splits(300, 40, 40, seed=1)
    assert a["valid"] != b["valid"]
    assert a["test"] != b["test"]
    assert set(a["train"]) != set(b["train"])


def test_small_numbers_always_in_train():
    small = {number_pair(n) for n in range(101)}
    for seed in range(3):
        splits = make_number_splits(150, 20, 20, seed=seed)
        assert small <= set(splits["train"])
        assert not small & set(splits["valid"] + splits["test"])


def test_exactly_the_small_numbers():
    splits = make_number_splits(101, 5, 5, seed=0)
    assert set(splits["train"]) == {number_pair(n) for n in range(101)}


def test_num_train_too_small_for_all_building_blocks():
    splits = make_number_splits(10, 5, 5, seed=0)
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [10, 5, 5]
    assert set(splits["train"]) <= {number_pair(n) for n in range(101)}
    sets = _numbers_by_english(splits)
    assert not sets["train"] & (sets["valid"] | sets["test"])
    assert not sets["valid"] & sets["test"]


def test_numbers_stay_within_max_number():
    splits = make_number_splits(150, 25, 25, seed=0, max_number=199)
    allowed = {number_pair(n) for n in range(200)}
    everything = splits["train"] + splits["valid"] + splits["test"]
    assert set(everything) == allowed  # uses the whole range exactly once


def test_small_max_number():
    splits = make_number_splits(5, 3, 2, seed=0, max_number=9)
    everything = splits["train"] + splits["valid"] + splits["test"]
    assert sorted(everything) == sorted(number_pair(n) for n in range(10))
    assert set(splits["train"]) <= {number_pair(n) for n in range(10)}


def test_request_exceeding_range_raises():
    with pytest.raises(ValueError, match="only holds 100"):
        make_number_splits(90, 10, 1, max_number=99)
    make_number_splits(90, 5, 5, max_number=99)  # exactly the range size is fine


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_train": -1, "num_valid": 0, "num_test": 0},
        {"num_train": 5, "num_valid": -2, "num_test": 0},
        {"num_train": 5, "num_valid": 0, "num_test": 0, "max_number": -1},
    ],
)
def test_negative_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="must be >= 0"):
        make_number_splits(**kwargs)


def test_empty_held_out_splits():
    splits = make_number_splits(120, 0, 0)
    assert splits["valid"] == [] and splits["test"] == []
    assert len(splits["train"]) == 120
