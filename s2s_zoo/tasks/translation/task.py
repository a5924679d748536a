"""Translation: text pairs in, text out; default data is English -> French number words."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.metrics import corpus_bleu
from s2s_zoo.tasks.base import Example, Splits, TextPairTask, exact_match, register_task
from s2s_zoo.tasks.translation.numbers import make_number_splits


@register_task("translation")
class TranslationTask(TextPairTask):
    """Source text -> target text; reads TSV (`source<TAB>target`) or JSONL pairs."""

    default_model = "gru_bahdanau"
    supports_batch_tokens = True
    default_options = {
        "vocab_size": 8000,
        "max_source_length": 128,
        "max_target_length": 128,
        "default_train_size": 20_000,
    }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--train-size",
            type=int,
            default=self.options["default_train_size"],
            help="pairs of the embedded number task (ignored with --train)",
        )

    def default_splits(self, args: argparse.Namespace) -> Splits:
        print(
            f"No --train given: using the embedded task, English -> French number words "
            f"(num2words), {args.train_size} training pairs, held-out numbers for test."
        )
        return make_number_splits(args.train_size, 500, 1000, seed=args.seed)

    def make_preprocessor(self, train: list[Example], args: argparse.Namespace):
        return TextPreprocessor(
            train_sentencepiece([s for s, _ in train], args.vocab_size),
            train_sentencepiece([t for _, t in train], args.vocab_size),
            self.options["max_source_length"],
            self.options["max_target_length"],
        )

    def make_joint_preprocessor(self, train: list[Example], args: argparse.Namespace):
        """One SentencePiece model on sources + targets, the same proto for both sides."""
        joint = train_sentencepiece([text for pair in train for text in pair], args.vocab_size)
        return TextPreprocessor(
            joint, joint, self.options["max_source_length"], self.options["max_target_length"]
        )

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        return {
            "exact_match": exact_match(hypotheses, references),
            "bleu": corpus_bleu(hypotheses, references),
        }
