"""Summarization benchmark: the three summarization catalog entries, each trained for the
same training budget (CPU time over the cores by default, `--clock`) on the Debian
headline corpus, against the lead baselines.

    python benchmarks/summarization.py                     # 10 minutes of training each
    python benchmarks/summarization.py --minutes 5 --eval-size 300

Prints one table on the test split: ROUGE-1/2/L F1 of greedy and beam-4 search, the copy
rate (share of summary words found in the document) and the repeated-trigram rate of the
beam summaries, for seq2seq_attention_summ (no copying), pointer_generator and
pointer_generator_coverage, next to lead-1-sentence and lead-8-words. All three models
share one tokenizer (trained once) and see the same batches; decoding runs the functions
that become the exported signatures, in process. The numbers depend on how much CPU the
machine gives during the budget, so the machine's load and the steps each model trained
are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from s2s_zoo.data.readers import read_pairs
from s2s_zoo.inference import DecodingConfig, Seq2SeqInference
from s2s_zoo.metrics import copy_rate, repeated_trigram_rate
from s2s_zoo.models.registry import build_from_catalog, entry
from s2s_zoo.tasks.summarization.debian_corpus import SPLITS, build_corpus
from s2s_zoo.tasks.summarization.debian_index import DEFAULT_LISTS_DIR
from s2s_zoo.tasks.summarization.task import SummarizationTask, rouge_scores
from s2s_zoo.training.fit import TimeBudget, TrainConfig, compile_model

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ("seq2seq_attention_summ", "pointer_generator", "pointer_generator_coverage")


class StepCounter(keras.callbacks.Callback):
    """Counts the training steps a model got within its budget."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.steps += 1


def decode(function, texts: list[str], batch_size: int = 32) -> list[str]:
    outputs: list[str] = []
    for i in range(0, len(texts), batch_size):
        result = function(tf.constant(texts[i : i + batch_size]))
        outputs += [o.decode("utf-8") for o in result["outputs"].numpy()]
    return outputs


def row(name: str, scores: dict, sources: list[str], beam: list[str], extra: str = "") -> str:
    cells = [
        f"{scores.get(k, float('nan')):6.1f}"
        for k in ("greedy_rouge1", "greedy_rouge2", "greedy_rougeL", "rouge1", "rouge2", "rougeL")
    ]
    return (
        f"{name:<28} {' '.join(cells)} {copy_rate(sources, beam):6.3f} "
        f"{repeated_trigram_rate(beam):6.3f}  {extra}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    parser.add_argument(
        "--clock",
        choices=TimeBudget.CLOCKS,
        default="cpu",
        help="what --minutes counts: cpu (this process's CPU time over the cores: the wall "
        "time on a machine to itself, comparable on a shared machine) or wall",
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated entries")
    parser.add_argument("--corpus-dir", default=str(REPO_ROOT / "data" / "debian_headlines"))
    parser.add_argument("--lists-dir", default=str(DEFAULT_LISTS_DIR))
    parser.add_argument("--eval-size", type=int, default=0, help="test pairs scored (0: all)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-source-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, help="default: the catalog entry's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model-config", default="{}", help="JSON config overrides for every model (sizes)"
    )
    args = parser.parse_args(argv)

    corpus = Path(args.corpus_dir)
    if not all((corpus / f"{s}.tsv").is_file() for s in SPLITS):
        build_corpus(corpus, args.lists_dir)
    splits = {s: read_pairs(corpus / f"{s}.tsv").pairs for s in SPLITS}
    test = splits["test"][: args.eval_size or None]
    sources, references = [d for d, _ in test], [[s] for _, s in test]
    print(
        f"corpus {corpus}: "
        + ", ".join(f"{s} {len(p)}" for s, p in splits.items())
        + f"; scoring {len(test)} test pairs"
    )
    load_before = os.getloadavg()

    task = SummarizationTask({"vocab_size": args.vocab_size})
    task_args = argparse.Namespace(
        vocab_size=args.vocab_size,
        max_source_tokens=args.max_source_tokens,
        max_target_tokens=task.options["max_target_tokens"],
        batch_size=args.batch_size,
        seed=args.seed,
    )
    start = time.perf_counter()
    pre = task.make_preprocessor(splits["train"], task_args)
    print(
        f"joint SentencePiece vocabulary {pre.target_vocab_size} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    train_ds = task.dataset(splits["train"], pre, task_args, training=True)
    valid_ds = task.dataset(splits["valid"][:500], pre, task_args, training=False)

    lines = []
    for name in args.models.split(","):
        keras.utils.set_random_seed(args.seed)
        e = entry(name)
        model = build_from_catalog(
            name, pre.source_vocab_size, pre.target_vocab_size, **json.loads(args.model_config)
        )
        train = TrainConfig(**{**e.train, "epochs": 1000, "batch_size": args.batch_size})
        if args.learning_rate:
            train.learning_rate = args.learning_rate
        compile_model(model.training_model, train)
        counter = StepCounter()
        started = time.perf_counter()
        with warnings.catch_warnings():  # tf.data of unknown length: Keras warns each epoch
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.training_model.fit(
                train_ds,
                validation_data=valid_ds,
                epochs=train.epochs,
                verbose=2,
                callbacks=[TimeBudget(args.minutes, args.clock), counter],
            )
        trained = time.perf_counter() - started
        inference = Seq2SeqInference(pre, model, DecodingConfig(**e.decoding))
        started = time.perf_counter()
        greedy = decode(inference.greedy, sources)
        beam = decode(inference.beam, sources)
        decoded = time.perf_counter() - started
        scores = rouge_scores(beam, references)
        scores.update({f"greedy_{k}": v for k, v in rouge_scores(greedy, references).items()})
        info = (
            f"{counter.steps} steps x {args.batch_size} in {trained / 60:.1f} min, "
            f"decoding {decoded:.0f} s"
        )
        lines.append(row(name, scores, sources, beam, info))
        print(lines[-1], flush=True)
        for source, summary, refs in list(zip(sources, beam, references, strict=True))[:3]:
            print(f"  {source[:70]!r}... -> {summary!r} (reference {refs[0]!r})")

    for name, hypotheses in task.baselines(sources).items():
        scores = rouge_scores(hypotheses, references)
        lines.append(
            row(
                name,
                {**scores, **{f"greedy_{k}": float("nan") for k in scores}},
                sources,
                hypotheses,
            )
        )
    words = statistics.median(len(r[0].split()) for r in references)
    print(
        f"\nSummarization on the Debian headline corpus, test split ({len(test)} pairs, "
        f"median reference {words:g} words), {args.minutes:g} min ({args.clock} clock) "
        "of training each"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; python {sys.version.split()[0]}, TF {tf.__version__}"
    )
    print(
        f"{'model':<28} {'greedy R-1/R-2/R-L':>20} {'beam-4 R-1/R-2/R-L':>20} {'copy':>6} "
        f"{'rep3':>6}  (copy, rep3: beam outputs)"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
