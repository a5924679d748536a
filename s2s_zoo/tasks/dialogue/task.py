"""Goal-oriented dialogue: (conversation so far, KB facts) -> the next bot turn.

Reads bAbI-dialog files or JSONL (told apart by content, see
:mod:`s2s_zoo.data.babi_dialog`); the default corpus is the generated restaurant task
(:mod:`s2s_zoo.tasks.dialogue.restaurants`, sub-task 5, full dialogs by default) with a
test set over the training knowledge base and an OOV test set whose restaurants,
cuisines and locations never occur in training. Exports take ``context`` [batch, turns]
and ``kb`` [batch, facts] string tensors.

Every example's source is a :class:`DialogueSource`, which keeps the dialog it comes
from (per-dialog accuracy) and the bAbI sub-task (scores per sub-task). Scores:
per-response accuracy, per-dialog accuracy and entity F1 (:mod:`s2s_zoo.metrics.dialogue`).

Memory-network models ("dialogue" source features) get a `DialoguePreprocessor`; text
encoders ("token_ids", e.g. the gru_bahdanau baseline) get the flattened conversation
(`FlatDialoguePreprocessor`). The runner tells the task which the model reads.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from s2s_zoo.data.babi_dialog import (
    DialogExample,
    detect_dialog_format,
    dialog_examples,
    read_babi_dialogs,
    read_dialog_examples,
)
from s2s_zoo.data.dialogue_pipeline import make_dialogue_dataset
from s2s_zoo.data.dialogue_preprocessor import (
    BOT_MARK,
    KB_MARK,
    USER_MARK,
    DialoguePreprocessor,
    FlatDialoguePreprocessor,
)
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.metrics.dialogue import dialogue_scores, entity_f1, kb_entities, per_response_accuracy
from s2s_zoo.tasks.base import Example, Splits, Task, register_task
from s2s_zoo.tasks.dialogue.entity_substitution import substitute_entities, value_words


@dataclass(frozen=True)
class DialogueSource:
    """One bot turn's input: the turns so far (user first, ending with the current user
    turn), the KB facts seen, which dialog it belongs to and its bAbI sub-task (or None)."""

    dialog: str
    turn: int
    task: int | None
    context: tuple[str, ...]
    kb: tuple[str, ...]


def _task_number(path: str | Path) -> int | None:
    match = re.search(r"task(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def _continues(previous: DialogExample, example: DialogExample) -> bool:
    """Whether `example` is the next bot turn of `previous`'s dialog (JSONL grouping)."""
    history = (*previous.context, previous.response)
    return (
        example.context[: len(history)] == history
        and len(example.context) == len(history) + 1
        and example.kb[: len(previous.kb)] == previous.kb
    )


def read_dialogue_examples(path: str | Path, **fields: str | None) -> list[Example]:
    """`(DialogueSource, response)` pairs from a bAbI-dialog or JSONL file.

    bAbI dialogs are numbered in file order (``<file>#<n>``). JSONL lines carry no dialog
    id: consecutive lines form one dialog while each context is the previous line's
    context plus its response plus one user turn (and the facts only grow), which is
    exactly how a dialog's bot turns are written one per line.
    """
    path = Path(path)
    task = _task_number(path)
    if detect_dialog_format(path) == "babi":
        out: list[Example] = []
        for d, dialog in enumerate(read_babi_dialogs(path), start=1):
            for t, ex in enumerate(dialog_examples([dialog])):
                source = DialogueSource(f"{path.name}#{d}", t, task, ex.context, ex.kb)
                out.append((source, ex.response))
        return out
    examples = read_dialog_examples(path, **fields)
    out, dialog, turn = [], 0, 0
    for i, ex in enumerate(examples):
        if i == 0 or not _continues(examples[i - 1], ex):
            dialog, turn = dialog + 1, 0
        out.append(
            (DialogueSource(f"{path.name}#{dialog}", turn, task, ex.context, ex.kb), ex.response)
        )
        turn += 1
    return out


def sibling_kb_entities(path: str | Path) -> set[str]:
    """Entities of the bAbI KB files next to a data file (``dialog-babi-kb*.txt``)."""
    entities: set[str] = set()
    for kb_file in sorted(Path(path).parent.glob("dialog-babi-kb*.txt")):
        entities |= kb_entities(kb_file.read_text(encoding="utf-8").splitlines())
    return entities


@register_task("dialogue")
class DialogueTask(Task):
    """See the module docstring."""

    default_model = "mem2seq_dialog"
    default_options = {
        "vocab_size": 1000,
        "max_turns": 63,  # most recent turns kept (odd: the context starts with a user turn)
        "max_facts": 64,  # most recent KB facts kept
        "max_turn_length": 48,  # pieces per turn or fact (memory networks)
        "max_source_length": 320,  # pieces of the flattened conversation (text encoders)
        "max_target_length": 64,
        "tasks": (5,),  # sub-tasks of the generated default corpus
        "num_train": 1000,  # dialogs per sub-task and split of the generated corpus
        "num_dev": 200,
        "num_test": 200,
        # share of training examples whose KB value words are replaced by invented ones
        # (entity_substitution.py): how a copying decoder learns to copy unseen values
        "entity_substitution": 0.0,
    }

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.entities: set[str] = set()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--context-field", default="context", help="JSONL turns field")
        parser.add_argument("--kb-field", default="kb", help="JSONL facts field")
        parser.add_argument("--response-field", default="response", help="JSONL response field")
        parser.add_argument(
            "--tasks",
            default=",".join(str(t) for t in self.options["tasks"]),
            help="sub-tasks (1-5) of the generated restaurant corpus, e.g. 1,2,3,4,5 "
            "(ignored with --train)",
        )
        parser.add_argument(
            "--num-dialogs",
            type=int,
            default=self.options["num_train"],
            help="training dialogs per sub-task of the generated corpus (ignored with --train)",
        )

        parser.add_argument(
            "--entity-substitution",
            type=float,
            default=self.options["entity_substitution"],
            metavar="RATE",
            help="share of training examples whose KB value words (cuisines, cities, ...) "
            "are replaced by invented words, so a copying model learns to copy values it "
            "never saw (default: %(default)s)",
        )

    def read(self, path: str, args: argparse.Namespace) -> list[Example]:
        fields = {
            "context_field": getattr(args, "context_field", "context"),
            "kb_field": getattr(args, "kb_field", "kb"),
            "response_field": getattr(args, "response_field", "response"),
        }
        examples = read_dialogue_examples(path, **fields)
        self.entities |= sibling_kb_entities(path)
        self.entities |= kb_entities({f for s, _ in examples for f in s.kb})
        dialogs = len({s.dialog for s, _ in examples})
        print(f"{path}: {len(examples)} bot turns in {dialogs} dialogs")
        return examples

    def default_splits(self, args: argparse.Namespace) -> Splits:
        from s2s_zoo.tasks.dialogue.restaurants import make_restaurant_task

        tasks = tuple(int(t) for t in str(args.tasks).split(",") if t.strip())
        o = self.options
        print(
            f"No --train given: the generated restaurant-booking task (bAbI-dialog style), "
            f"sub-tasks {tasks}, {args.num_dialogs} training dialogs each; test sets over the "
            f"training KB (test) and an unseen one (test-OOV)."
        )
        files = make_restaurant_task(
            args.data_dir,
            seed=args.seed,
            tasks=tasks,
            num_train=args.num_dialogs,
            num_dev=o["num_dev"],
            num_test=o["num_test"],
        )
        names = {"train": "trn", "valid": "dev", "test": "tst", "test-OOV": "tst-OOV"}
        return {
            split: [ex for t in tasks for ex in self.read(str(files[f"task{t}-{name}"]), args)]
            for split, name in names.items()
        }

    # -- model inputs ---------------------------------------------------------------------

    def make_preprocessor(self, train: list[Example], args: argparse.Namespace):
        texts = sorted({t for s, r in train for t in (*s.context, *s.kb, r)})
        features = getattr(args, "source_features", "dialogue")
        o = self.options
        if features == "dialogue":
            proto = train_sentencepiece(texts, args.vocab_size)
            return DialoguePreprocessor(
                proto,
                o["max_turns"],
                o["max_facts"],
                o["max_turn_length"],
                o["max_target_length"],
            )
        if features == "token_ids":
            proto = train_sentencepiece(
                [*texts, f"{USER_MARK} {BOT_MARK} {KB_MARK}"], args.vocab_size
            )
            return FlatDialoguePreprocessor(
                proto,
                o["max_source_length"],
                o["max_target_length"],
                o["max_turns"],
                o["max_facts"],
            )
        raise SystemExit(
            f"the dialogue task serves memory-network models ('dialogue' features) and text "
            f"encoders ('token_ids', on the flattened conversation), not {features!r} models"
        )

    def dataset(self, examples, preprocessor, args, training):
        triples = [(s.context, s.kb, r) for s, r in examples]
        rate = getattr(args, "entity_substitution", 0.0)
        if training and rate:
            values = value_words({f for s, _ in examples for f in s.kb})
            triples = substitute_entities(triples, values, rate, seed=args.seed)
        return make_dialogue_dataset(
            triples, preprocessor, args.batch_size, shuffle=training, seed=args.seed
        )

    # -- serving and evaluation -------------------------------------------------------------

    def serving_input(self, source: DialogueSource) -> dict[str, list[str]]:
        return {"context": list(source.context), "kb": list(source.kb)}

    def unusual_inputs(self) -> list[dict[str, list[str]]]:
        """An empty conversation (all padding) and one without KB facts."""
        return [{"context": [], "kb": []}, {"context": ["hello"], "kb": []}]

    def show(self, source: DialogueSource) -> str:
        return f"[{source.dialog} turn {source.turn + 1}] {source.context[-1]!r}"

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        refs = [r[0] for r in references]
        return {
            "per_response_accuracy": per_response_accuracy(hypotheses, refs),
            "entity_f1": entity_f1(hypotheses, refs, self.entities),
        }

    def example_group(self, source: DialogueSource) -> str:
        return source.dialog  # per-dialog accuracy needs every turn of a dialog

    def score_sources(self, sources, hypotheses, references) -> dict:
        refs = [r[0] for r in references]
        entities = self.entities | kb_entities({f for s in sources for f in s.kb})
        dialogs = [s.dialog for s in sources]
        scores = dialogue_scores(hypotheses, refs, dialogs, entities)
        tasks = sorted({s.task for s in sources if s.task is not None})
        if len(tasks) > 1:
            for task in tasks:
                keep = [i for i, s in enumerate(sources) if s.task == task]
                part = dialogue_scores(
                    [hypotheses[i] for i in keep],
                    [refs[i] for i in keep],
                    [dialogs[i] for i in keep],
                    entities,
                )
                scores.update({f"task{task}_{k}": v for k, v in part.items()})
        return scores
