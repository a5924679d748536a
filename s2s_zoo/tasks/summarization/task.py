"""Summarization: a document in, a short summary out; default data is Debian's package
descriptions (long description -> synopsis), built offline from apt's index.

One SentencePiece model is trained on documents and summaries together and used on both
sides, so a source token id is an output token id: that is what lets a pointer-generator
copy a source token (tf-text's in-graph tokenizer has no byte fallback, so an extended
vocabulary of source OOVs cannot be built in the serving graph; one joint vocabulary is
the alternative). Documents longer than `--max-source-tokens` are truncated to their
start, and the task prints how many were, per split, so it is never silent.

Scores are ROUGE-1/2/L F1 (rouge-score, Porter stemming); the runner also prints the lead
baselines (first sentence, first 8 words) on the same split, and how much of the model's
output is copied from its source and how often it repeats a trigram.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from s2s_zoo.data.preprocessor import TextPreprocessor
from s2s_zoo.data.readers import read_pairs
from s2s_zoo.data.tokenizer import train_sentencepiece
from s2s_zoo.metrics import copy_rate, repeated_trigram_rate, rouge
from s2s_zoo.metrics.rouge import ROUGE_TYPES
from s2s_zoo.tasks.base import Example, Splits, TextPairTask, register_task
from s2s_zoo.tasks.summarization.debian_corpus import SPLITS, build_corpus
from s2s_zoo.tasks.summarization.debian_index import DEFAULT_LISTS_DIR, IndexMissingError
from s2s_zoo.tasks.summarization.lead import first_sentence, first_words

LEAD_WORDS = 8


@dataclass
class Truncation:
    """How many examples of a split were longer than the preprocessor keeps."""

    examples: int
    documents: int  # documents longer than max_source_tokens
    summaries: int  # summaries longer than max_target_tokens
    max_source_tokens: int
    max_target_tokens: int

    def summary(self, split: str) -> str:
        def share(n: int) -> str:
            return f"{n} of {self.examples} ({n / max(self.examples, 1):.1%})"

        return (
            f"{split}: {share(self.documents)} documents longer than {self.max_source_tokens} "
            f"tokens, truncated to their first {self.max_source_tokens} (--max-source-tokens); "
            f"{share(self.summaries)} summaries longer than {self.max_target_tokens} tokens, "
            "truncated (--max-target-tokens)"
        )


def count_truncated(
    examples: Sequence[Example], preprocessor: TextPreprocessor, batch_size: int = 4096
) -> Truncation:
    """Tokenize every document and summary and count those the preprocessor cuts short.

    The limits are the preprocessor's own (documents: the cut its exports report as
    `source_truncated_tokens`; summaries: the max target length less the BOS/EOS
    position), so the count is right for a fine-tuned model too, whatever the command
    line says.
    """
    max_source = preprocessor.max_source_length - 1  # one position is EOS
    max_target = preprocessor.max_target_length - 1  # one position is BOS / EOS
    documents = summaries = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        texts = preprocessor.source_texts(tf.constant([d for d, _ in chunk]))
        _, cut = preprocessor.source_ragged_reporting(texts)
        documents += int(tf.reduce_sum(tf.cast(cut > 0, tf.int32)))
        targets = tf.strings.strip(tf.constant([s for _, s in chunk]))
        lengths = preprocessor.target_tokenizer.tokenize(targets).row_lengths()
        summaries += int(tf.reduce_sum(tf.cast(lengths > max_target, tf.int32)))
    return Truncation(len(examples), documents, summaries, max_source, max_target)


def rouge_scores(hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
    """Mean ROUGE-1/2/L F1 x100; with several references, each type's best one counts."""
    if all(len(refs) == 1 for refs in references):
        return rouge(hypotheses, [refs[0] for refs in references])
    from rouge_score import rouge_scorer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} reference sets")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, refs in zip(hypotheses, references, strict=True):
        scores = scorer.score_multi(refs, hypothesis)
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(hypotheses) for name, total in totals.items()}


@register_task("summarization")
class SummarizationTask(TextPairTask):
    """Document -> summary; reads TSV (`document<TAB>summary`) or JSONL."""

    source_field = "document"
    target_field = "summary"
    default_model = "pointer_generator"
    default_options = {
        "vocab_size": 8000,
        "max_source_tokens": 128,
        "max_target_tokens": 40,
        # documents + summaries the tokenizer is trained on at most (a sample: SentencePiece
        # on all 110k texts of the Debian corpus takes minutes)
        "tokenizer_sentences": 40_000,
    }

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.truncation: dict[str, Truncation] = {}  # per split, filled by dataset()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--max-source-tokens",
            type=int,
            default=self.options["max_source_tokens"],
            help="documents are truncated to this many subword tokens (the count is printed)",
        )
        parser.add_argument(
            "--max-target-tokens",
            type=int,
            default=self.options["max_target_tokens"],
            help="summaries are truncated to this many subword tokens in training",
        )
        parser.add_argument(
            "--lists-dir",
            default=str(DEFAULT_LISTS_DIR),
            help="apt lists directory the default (Debian) corpus is built from",
        )

    def default_splits(self, args: argparse.Namespace) -> Splits:
        directory = Path(args.data_dir)
        if not all((directory / f"{split}.tsv").is_file() for split in SPLITS):
            print(f"Building the Debian headline corpus from {args.lists_dir} into {directory}")
            try:
                build_corpus(directory, args.lists_dir)
            except IndexMissingError as error:
                raise SystemExit(
                    "error: no --train given and the default corpus (Debian package "
                    f"descriptions -> synopses) cannot be built: {error}; or pass your own "
                    "data with --train/--valid (document<TAB>summary TSV, or JSONL)"
                ) from None
        print(
            f"No --train given: Debian package descriptions -> synopses from {directory} "
            "(train/valid/test split by package family)"
        )
        return {split: read_pairs(directory / f"{split}.tsv").pairs for split in SPLITS}

    def make_preprocessor(self, train: list[Example], args: argparse.Namespace):
        for flag in ("max_source_tokens", "max_target_tokens"):
            if getattr(args, flag) < 1:
                raise SystemExit(f"--{flag.replace('_', '-')} must be at least 1")
        texts = [d for d, _ in train] + [s for _, s in train]
        proto = train_sentencepiece(
            texts, args.vocab_size, max_sentences=self.options["tokenizer_sentences"]
        )
        # one model on both sides: a source id is an output id (copying needs that)
        return TextPreprocessor(
            proto, proto, args.max_source_tokens + 1, args.max_target_tokens + 1
        )

    def make_joint_preprocessor(self, train: list[Example], args: argparse.Namespace):
        """Summaries always get one joint vocabulary (`make_preprocessor`)."""
        return self.make_preprocessor(train, args)

    def dataset(self, examples, preprocessor, args, training):
        split = "train" if training else "valid"
        self.truncation[split] = count_truncated(examples, preprocessor)
        print(self.truncation[split].summary(split))
        return super().dataset(examples, preprocessor, args, training)

    # -- serving and evaluation -------------------------------------------------------------

    def show(self, source: str) -> str:
        return repr(source if len(source) <= 100 else source[:97] + "...")

    def score(self, hypotheses: Sequence[str], references: Sequence[list[str]]) -> dict:
        return rouge_scores(hypotheses, references)

    def baselines(self, sources: Sequence[str]) -> dict[str, list[str]]:
        return {
            "lead-1 sentence": [first_sentence(s) for s in sources],
            f"lead-{LEAD_WORDS} words": [first_words(s, LEAD_WORDS) for s in sources],
        }

    def output_stats(self, sources: Sequence[str], hypotheses: Sequence[str]) -> dict:
        return {
            "copy_rate": copy_rate(sources, hypotheses),
            "repeated_trigrams": repeated_trigram_rate(hypotheses),
        }
