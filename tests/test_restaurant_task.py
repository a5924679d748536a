"""Tests for the generated restaurant-booking task (s2s_zoo.tasks.dialogue.restaurants).

The checks re-derive what the bot should have done from the user's words alone (an
independent slot tracker over the vocabulary lists) and from the KB facts in the file.
"""

from __future__ import annotations

import re

import pytest

from s2s_zoo.data.babi_dialog import Fact, Turn, dialog_examples, read_babi_dialogs
from s2s_zoo.tasks.dialogue.restaurant_kb import (
    CUISINES,
    LOCATIONS,
    OOV_CUISINES,
    OOV_LOCATIONS,
    PARTY_SIZES,
    PRICES,
)
from s2s_zoo.tasks.dialogue.restaurants import SPLITS, make_restaurant_task

SMALL = {"num_train": 60, "num_dev": 10, "num_test": 40}
SLOT_OF = {
    **{v: "cuisine" for v in CUISINES + OOV_CUISINES},
    **{v: "location" for v in LOCATIONS + OOV_LOCATIONS},
    **{v: "size" for v in PARTY_SIZES},
    **{v: "price" for v in PRICES},
}
ASKS = {
    "any preference on a type of cuisine": "cuisine",
    "where should it be": "location",
    "how many people would be in your party": "size",
    "which price range are you looking for": "price",
}
PROPOSE = "what do you think of this option: "


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_restaurant_task(tmp_path_factory.mktemp("dialog"), seed=3, **SMALL)


@pytest.fixture(scope="module")
def dialogs(files):
    return {key: read_babi_dialogs(path) for key, path in files.items() if key.startswith("task")}


def _kb_table(dialog):
    """name -> {attribute: value} from the dialog's KB lines."""
    table: dict[str, dict[str, str]] = {}
    for fact in dialog.facts:
        name, attribute, value = fact.split(" ")
        table.setdefault(name, {})[attribute] = value
    return table


def _words(dialogs) -> set[str]:
    words = set()
    for dialog in dialogs:
        for entry in dialog.entries:
            text = entry.text if isinstance(entry, Fact) else f"{entry.user} {entry.bot}"
            words.update(text.split())
    return words


def test_every_file_is_written_and_reads_back(files, dialogs):
    assert set(files) == {"kb", "kb-OOV"} | {f"task{t}-{s}" for t in range(1, 6) for s in SPLITS}
    for key, found in dialogs.items():
        expected = {"trn": 60, "dev": 10, "tst": 40, "tst-OOV": 40}[key.split("-", 1)[1]]
        assert len(found) == expected, key
        tab_lines = files[key].read_text().count("\t")
        assert len(dialog_examples(found)) == tab_lines


def test_same_seed_same_bytes_and_subsets_agree(files, tmp_path):
    again = make_restaurant_task(tmp_path / "again", seed=3, **SMALL)
    for key, path in files.items():
        assert again[key].read_bytes() == path.read_bytes(), key
    only3 = make_restaurant_task(tmp_path / "only3", seed=3, tasks=(3,), **SMALL)
    assert set(only3) == {"kb", "kb-OOV"} | {f"task3-{s}" for s in SPLITS}
    assert only3["task3-tst"].read_bytes() == files["task3-tst"].read_bytes()
    other = make_restaurant_task(tmp_path / "other", seed=4, **SMALL)
    assert other["task5-trn"].read_bytes() != files["task5-trn"].read_bytes()


def test_made_task_is_reused_and_a_new_setting_regenerates(tmp_path):
    first = make_restaurant_task(tmp_path, seed=1, tasks=(1,), num_train=5, num_dev=2, num_test=2)
    stamp = first["task1-trn"].stat().st_mtime_ns
    first["task1-trn"].write_text("1 tampered\tfile\n")
    make_restaurant_task(tmp_path, seed=1, tasks=(1,), num_train=5, num_dev=2, num_test=2)
    assert first["task1-trn"].read_text() == "1 tampered\tfile\n"  # reused, not rewritten
    make_restaurant_task(tmp_path, seed=1, tasks=(1,), num_train=6, num_dev=2, num_test=2)
    assert len(read_babi_dialogs(first["task1-trn"])) == 6
    assert first["task1-trn"].stat().st_mtime_ns >= stamp


def test_oov_test_set_shares_no_entity_with_training(files, dialogs):
    train = set().union(*(_words(d) for k, d in dialogs.items() if k.endswith("-trn")))
    oov = set().union(*(_words(d) for k, d in dialogs.items() if k.endswith("-tst-OOV")))
    test = set().union(*(_words(d) for k, d in dialogs.items() if k.endswith("-tst")))
    entity = re.compile(r"resto_\w+")
    for words in (oov, train):
        assert any(entity.fullmatch(w) for w in words)
    oov_entities = {w for w in oov if entity.fullmatch(w)} | (oov & set(SLOT_OF))
    train_entities = {w for w in train if entity.fullmatch(w)} | (train & set(SLOT_OF))
    assert oov & set(LOCATIONS + CUISINES) == set()
    assert train & set(OOV_LOCATIONS + OOV_CUISINES) == set()
    assert oov_entities & train_entities <= set(PRICES + PARTY_SIZES)
    assert {w for w in oov_entities if w.startswith("resto_")}.isdisjoint(train)
    # the ordinary test set speaks of cuisines and locations seen in training
    test_slots = test & set(LOCATIONS + CUISINES + OOV_LOCATIONS + OOV_CUISINES)
    assert test_slots and test_slots <= train
    kb = set(files["kb"].read_text().splitlines())
    kb_oov = set(files["kb-OOV"].read_text().splitlines())
    for key, found in dialogs.items():
        facts = {f for d in found for f in d.facts}
        assert facts <= (kb_oov if key.endswith("OOV") else kb), key


def _track(dialog):
    """Walk the dialog: yield (turn, slots the user has stated so far) per turn."""
    state: dict[str, str] = {}
    for entry in dialog.entries:
        if isinstance(entry, Turn):
            for word in entry.user.split():
                if word in SLOT_OF:
                    state[SLOT_OF[word]] = word
            yield entry, dict(state)


@pytest.mark.parametrize("task", [1, 2, 5])
def test_api_calls_follow_the_users_goal(dialogs, task):
    calls = 0
    for split in SPLITS:
        for dialog in dialogs[f"task{task}-{split}"]:
            for turn, state in _track(dialog):
                if turn.bot.startswith("api_call"):
                    calls += 1
                    wanted = [state.get(s) for s in ("cuisine", "location", "size", "price")]
                    assert turn.bot.split()[1:] == wanted, (dialog, turn)
                if turn.bot in ASKS:  # the bot only asks for what it does not know yet
                    assert ASKS[turn.bot] not in state, (dialog, turn)
    assert calls >= sum(len(dialogs[f"task{task}-{s}"]) for s in SPLITS)


@pytest.mark.parametrize("task", [2, 5])
def test_updates_lead_to_a_new_call(dialogs, task):
    refined = 0
    for dialog in dialogs[f"task{task}-trn"]:
        calls = [t.bot for t in dialog.turns if t.bot.startswith("api_call")]
        refined += len(calls) > 1
        assert len(set(calls)) == len(calls)  # each update changes the call
    assert refined >= (60 if task == 2 else 10)


@pytest.mark.parametrize("task", [3, 5])
def test_options_are_offered_best_rated_first(dialogs, task):
    offered_several = 0
    for split in SPLITS:
        for dialog in dialogs[f"task{task}-{split}"]:
            table = _kb_table(dialog)
            assert table, "options come from KB facts"
            *_, (_, goal) = _track(dialog)
            for name, attrs in table.items():  # every listed restaurant answers the query
                assert [attrs[a] for a in ("R_cuisine", "R_location", "R_number", "R_price")] == [
                    goal["cuisine"],
                    goal["location"],
                    goal["size"],
                    goal["price"],
                ]
                assert name == (
                    f"resto_{goal['location']}_{goal['price']}_{goal['cuisine']}_"
                    f"{attrs['R_rating']}stars"
                )
            offered = [t.bot[len(PROPOSE) :] for t in dialog.turns if t.bot.startswith(PROPOSE)]
            best_first = sorted(table, key=lambda n: -int(table[n]["R_rating"]))
            assert offered == best_first[: len(offered)]
            ratings = [int(table[n]["R_rating"]) for n in offered]
            assert ratings == sorted(ratings, reverse=True) and len(set(ratings)) == len(ratings)
            offered_several += len(offered) > 1
    assert offered_several > 10


@pytest.mark.parametrize("task", [4, 5])
def test_phone_and_address_come_from_the_kb(dialogs, task):
    answers = 0
    for split in SPLITS:
        for dialog in dialogs[f"task{task}-{split}"]:
            table = _kb_table(dialog)
            booked = None
            for turn in dialog.turns:
                named = [w for w in turn.user.split() if w in table]
                if named:
                    booked = named[0]
                if turn.bot.startswith(PROPOSE):
                    booked = turn.bot[len(PROPOSE) :]
                if turn.bot.startswith("here it is "):
                    value = turn.bot[len("here it is ") :]
                    asked = "R_phone" if value.endswith("_phone") else "R_address"
                    assert value == table[booked][asked]
                    answers += 1
    assert answers >= sum(len(dialogs[f"task{task}-{s}"]) for s in SPLITS) // 2


def test_users_word_things_in_many_ways(dialogs):
    openers = {d.turns[1].user.split(" with ")[0].split(" in ")[0] for d in dialogs["task1-trn"]}
    answers = {t.user for d in dialogs["task1-trn"] for t in d.turns[2:] if t.user != "<SILENCE>"}
    assert len(openers) >= 10
    assert len(answers) >= 40


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tasks"):
        make_restaurant_task(tmp_path, tasks=(6,))
    with pytest.raises(ValueError, match="at least one dialog"):
        make_restaurant_task(tmp_path, num_test=0)
