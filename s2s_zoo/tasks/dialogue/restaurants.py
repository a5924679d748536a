"""An offline, seeded restaurant-booking task in the bAbI-dialog format.

Bordes, Boureau and Weston (2017, "Learning End-to-End Goal-Oriented Dialog", CC BY 3.0)
split restaurant booking into five sub-tasks; their simulator is not distributed, so
this module re-creates equivalent dialogues from scripts (see :mod:`.phrases` for the
surface forms and :mod:`.restaurant_kb` for the knowledge base):

1. API calls: the bot asks for whatever the user has not said yet (cuisine, location,
   party size, price) and issues ``api_call <cuisine> <location> <size> <price>``.
2. Updating API calls: after the call the user changes some slots; the bot asks if
   anything else should change, then issues the updated call.
3. Displaying options: the call's results are listed as KB facts; the bot proposes the
   matching restaurants best rated first until the user accepts one.
4. Providing extra information: the user books a named restaurant and asks for its
   phone number and/or address, which the bot copies from the KB.
5. Full dialogs: 1-4 in one conversation (results follow the final api_call).

Files are named like the original release,
``dialog-babi-task<N>-<name>-{trn,dev,tst,tst-OOV}.txt``; the ``tst`` set uses the
training knowledge base, ``tst-OOV`` one whose restaurants, cuisines and locations
never occur in training. ``dialog-babi-kb.txt`` / ``dialog-babi-kb-OOV.txt`` hold
every fact (one per line, unnumbered). Everything is a function of ``seed``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from s2s_zoo.data.babi_dialog import Dialog, Fact, Turn, write_babi_dialogs
from s2s_zoo.tasks.dialogue import phrases as P
from s2s_zoo.tasks.dialogue.restaurant_kb import (
    CUISINES,
    LOCATIONS,
    OOV_CUISINES,
    OOV_LOCATIONS,
    SLOTS,
    Restaurant,
    RestaurantKB,
    build_kb,
)
from s2s_zoo.tasks.generated import mark_made

TASK_NAMES = {
    1: "API-calls",
    2: "API-refine",
    3: "options",
    4: "phone-address",
    5: "full-dialogs",
}
SPLITS = ("trn", "dev", "tst", "tst-OOV")
VERSION = 1


def task_file_name(task: int, split: str) -> str:
    return f"dialog-babi-task{task}-{TASK_NAMES[task]}-{split}.txt"


def api_call(goal: dict[str, str]) -> str:
    return "api_call " + " ".join(goal[s] for s in SLOTS)


class _Script:
    """Builds one dialog: user turns are sampled, bot turns follow from the state."""

    def __init__(self, rng: random.Random, kb: RestaurantKB) -> None:
        self.rng = rng
        self.kb = kb
        self.entries: list[Turn | Fact] = []

    def say(self, user: str, bot: str) -> None:
        self.entries.append(Turn(user, bot))

    def facts(self, restaurants: list[Restaurant]) -> None:
        for r in restaurants:
            self.entries.extend(Fact(f) for f in r.facts())

    def pick(self, templates: tuple[str, ...], value: str = "") -> str:
        return self.rng.choice(templates).format(v=value)

    def dialog(self) -> Dialog:
        return Dialog(tuple(self.entries))

    # -- pieces shared by the sub-tasks ---------------------------------------------

    def collect_goal(self, goal: dict[str, str], call: bool = True) -> None:
        """Greeting, a request stating some slots, questions for the rest, api_call."""
        self.say(self.pick(P.GREETINGS), P.BOT_GREET)
        stated = [s for s in SLOTS if self.rng.random() < 0.5]
        self.rng.shuffle(stated)
        request = [self.pick(P.REQUEST_OPENERS)]
        request += [self.pick(P.REQUEST_SLOT[s], goal[s]) for s in stated]
        if self.rng.random() < 0.3:
            request.append("please")
        self.say(" ".join(request), P.BOT_ON_IT)
        missing = [s for s in SLOTS if s not in stated]
        user = P.SILENCE
        for slot in missing:
            self.say(user, P.BOT_ASK[slot])
            user = self.pick(P.ANSWER_SLOT[slot], goal[slot])
        self.say(user, P.BOT_SEARCHING)
        if call:
            self.say(P.SILENCE, api_call(goal))

    def update_goal(self, goal: dict[str, str], target: dict[str, str]) -> None:
        """The user changes every slot where `goal` differs from `target`, then the new call."""
        changed = [s for s in SLOTS if goal[s] != target[s]]
        self.rng.shuffle(changed)
        for slot in changed:
            self.say(self.pick(P.UPDATE_SLOT[slot], target[slot]), P.BOT_MORE_UPDATES)
        self.say(self.pick(P.NO_MORE_UPDATES), P.BOT_SEARCHING)
        self.say(P.SILENCE, api_call(target))

    def perturb(self, goal: dict[str, str], max_changes: int = 3) -> dict[str, str]:
        """A copy of `goal` with 1..max_changes slots set to other values."""
        count = self.rng.randint(1, max_changes)
        changed = dict(goal)
        for slot in self.rng.sample(SLOTS, count):
            changed[slot] = self.rng.choice([v for v in self.kb.values(slot) if v != goal[slot]])
        return changed

    def propose(self, options: list[Restaurant]) -> Restaurant:
        """Offer `options` best first until the user accepts; returns the accepted one."""
        accept_at = self.rng.randrange(len(options))
        user = P.SILENCE
        for i, option in enumerate(options[: accept_at + 1]):
            if i > 0:
                self.say(user, P.BOT_ANOTHER)
                user = P.SILENCE
            self.say(user, P.BOT_PROPOSE.format(v=option.name))
            user = self.pick(P.REJECT)
        self.say(self.pick(P.ACCEPT), P.BOT_RESERVE)
        return options[accept_at]

    def ask_info(self, restaurant: Restaurant, min_count: int) -> None:
        fields = ["phone", "address"]
        self.rng.shuffle(fields)
        for field in fields[: self.rng.randint(min_count, 2)]:
            value = restaurant.phone if field == "phone" else restaurant.address
            self.say(self.pick(P.ASK_INFO[field]), P.BOT_HERE_IT_IS.format(v=value))

    def random_goal(self) -> dict[str, str]:
        return {s: self.rng.choice(self.kb.values(s)) for s in SLOTS}

    def kb_goal(self, min_matches: int = 1) -> dict[str, str]:
        """The goal of a random restaurant, among queries with >= `min_matches` results."""
        pool = self.kb.with_matches(min_matches)
        if not pool:
            raise ValueError(f"no query in the knowledge base has {min_matches} results")
        return self.rng.choice(pool).slots()

    def shuffled(self, restaurants: list[Restaurant]) -> list[Restaurant]:
        out = list(restaurants)
        self.rng.shuffle(out)
        return out


# --- the five sub-tasks --------------------------------------------------------------


def _task1(s: _Script) -> None:
    s.collect_goal(s.random_goal())


def _task2(s: _Script) -> None:
    goal = s.random_goal()
    s.collect_goal(goal)
    for _ in range(s.rng.randint(1, 2)):
        target = s.perturb(goal)
        s.update_goal(goal, target)
        goal = target


def _task3(s: _Script) -> None:
    goal = s.kb_goal(min_matches=2)
    options = s.kb.matches(goal)
    s.facts(s.shuffled(options))
    s.collect_goal(goal, call=False)
    s.propose(options)


def _task4(s: _Script) -> None:
    restaurant = s.rng.choice(s.kb.restaurants)
    s.facts([restaurant])
    s.say(s.pick(P.GREETINGS), P.BOT_GREET)
    s.say(s.pick(P.BOOK_NAMED, restaurant.name), P.BOT_RESERVE)
    s.ask_info(restaurant, min_count=1)


def _task5(s: _Script) -> None:
    final = s.kb_goal()
    goal = s.perturb(final) if s.rng.random() < 0.5 else final
    s.collect_goal(goal)
    if goal != final:
        s.update_goal(goal, final)
    options = s.kb.matches(final)
    s.facts(s.shuffled(options))
    chosen = s.propose(options)
    s.ask_info(chosen, min_count=0)
    s.say(s.pick(P.THANKS), P.BOT_ANYTHING_ELSE)
    s.say(s.pick(P.GOODBYE), P.BOT_WELCOME)


_SCRIPTS = {1: _task1, 2: _task2, 3: _task3, 4: _task4, 5: _task5}


def generate_dialogs(task: int, count: int, kb: RestaurantKB, rng: random.Random) -> list[Dialog]:
    """`count` dialogs of sub-task `task` (1-5) drawn from `kb`."""
    if task not in _SCRIPTS:
        raise ValueError(f"task must be one of {sorted(_SCRIPTS)}, got {task}")
    dialogs = []
    for _ in range(count):
        script = _Script(rng, kb)
        _SCRIPTS[task](script)
        dialogs.append(script.dialog())
    return dialogs


def restaurant_kbs(seed: int = 0) -> dict[str, RestaurantKB]:
    """The in-vocabulary (``"kb"``) and out-of-vocabulary (``"kb-OOV"``) knowledge bases."""
    return {
        "kb": build_kb(random.Random(f"{seed}/kb"), LOCATIONS, CUISINES),
        "kb-OOV": build_kb(random.Random(f"{seed}/kb-OOV"), OOV_LOCATIONS, OOV_CUISINES),
    }


def _is_made(out_dir: Path, params: dict, files: dict[str, Path]) -> bool:
    marker = out_dir / "task.json"
    if not marker.is_file() or json.loads(marker.read_text()).get("params") != params:
        return False
    return all(path.is_file() for path in files.values())


def make_restaurant_task(
    out_dir: str | Path,
    seed: int = 0,
    tasks: tuple[int, ...] = (1, 2, 3, 4, 5),
    num_train: int = 1000,
    num_dev: int = 200,
    num_test: int = 200,
) -> dict[str, Path]:
    """Write the dialogue files into `out_dir` (reused if already made with these settings).

    Returns paths keyed ``"task<N>-<split>"`` (split one of trn, dev, tst, tst-OOV) plus
    ``"kb"`` and ``"kb-OOV"``. Each file depends only on (seed, task, split), so asking for
    fewer tasks or the same seed again gives byte-identical files.
    """
    out_dir = Path(out_dir)
    tasks = tuple(sorted(set(tasks)))
    for task in tasks:
        if task not in _SCRIPTS:
            raise ValueError(f"tasks must be among {sorted(_SCRIPTS)}, got {task}")
    counts = {"trn": num_train, "dev": num_dev, "tst": num_test, "tst-OOV": num_test}
    if min(counts.values()) < 1:
        raise ValueError(f"every split needs at least one dialog, got {counts}")
    params = {"seed": seed, "tasks": list(tasks), "counts": counts, "version": VERSION}
    files = {"kb": out_dir / "dialog-babi-kb.txt", "kb-OOV": out_dir / "dialog-babi-kb-OOV.txt"}
    for task in tasks:
        for split in SPLITS:
            files[f"task{task}-{split}"] = out_dir / task_file_name(task, split)
    if _is_made(out_dir, params, files):
        return files
    out_dir.mkdir(parents=True, exist_ok=True)
    kbs = restaurant_kbs(seed)
    for name, kb in kbs.items():
        lines = [fact + "\n" for r in kb.restaurants for fact in r.facts()]
        with open(files[name], "w", encoding="utf-8", newline="") as handle:
            handle.writelines(lines)
    for task in tasks:
        for split in SPLITS:
            kb = kbs["kb-OOV" if split == "tst-OOV" else "kb"]
            rng = random.Random(f"{seed}/task{task}/{split}")
            dialogs = generate_dialogs(task, counts[split], kb, rng)
            write_babi_dialogs(files[f"task{task}-{split}"], dialogs)
    mark_made(
        out_dir,
        params,
        vocab={"locations": list(LOCATIONS), "cuisines": list(CUISINES)},
        oov_vocab={"locations": list(OOV_LOCATIONS), "cuisines": list(OOV_CUISINES)},
    )
    return files
