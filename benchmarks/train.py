"""Training throughput (target tokens/s) per strategy and precision, on the gettext corpus.

    python benchmarks/train.py [--steps 60] [--models default lstm_2x256]
        [--strategies default mirrored multi_worker] [--precisions float32 bfloat16]

Each configuration runs in fresh processes (logical devices and collectives are set
at start-up): `default` is one device; `mirrored` splits each batch over two logical
CPUs (standing in for two GPUs); `multi_worker` is two worker processes on localhost
with TF_CONFIG, each with half of the global batch. The global batch is 64 pairs
everywhere. Throughput counts the non-padding target tokens of the global batches
trained after the first 10 steps (tracing and warm-up excluded). Prints a table;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    # the default translation recipe's model (recipes/translation/gru_bahdanau.py)
    "default": ("gru_bahdanau", {"embedding_dim": 64, "encoder_units": 128,
                                 "decoder_units": 256, "attention_units": 128,
                                 "dropout": 0.1}),
    # OpenNMT-tf's usual small size: 2x256 LSTMs, Luong attention with input feeding
    "lstm_2x256": ("lstm_luong", {"embedding_dim": 256, "encoder_units": 256,
                                  "decoder_units": 256, "encoder_layers": 2,
                                  "decoder_layers": 2, "bidirectional": False}),
}  # fmt: skip
GLOBAL_BATCH = 64
WARMUP_STEPS = 10


def corpus_file(workdir: Path, pairs: int) -> Path:
    """The gettext en->fr training split (first `pairs` pairs), written once."""
    path = workdir / f"gettext_{pairs}.tsv"
    if not path.is_file():
        from s2s_zoo.data.readers import write_pairs
        from s2s_zoo.tasks.translation.gettext_corpus import build_corpus

        splits, report = build_corpus("fr", max_words=30)
        print(f"gettext corpus: {report.summary()}", file=sys.stderr)
        write_pairs(path, splits["train"][:pairs])
    return path


def one_run(args: argparse.Namespace) -> None:
    """A worker: train `args.steps` steps and print a JSON line with tokens/s (chief)."""
    import tensorflow as tf

    if args.strategy == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    from s2s_zoo.training.distribute import is_chief, make_strategy

    devices = ["/cpu:0", "/cpu:1"] if args.strategy == "mirrored" else None
    strategy = make_strategy(args.strategy, devices)

    import keras

    from s2s_zoo.data.pipeline import make_dataset
    from s2s_zoo.data.preprocessor import TextPreprocessor
    from s2s_zoo.data.readers import read_pairs
    from s2s_zoo.data.tokenizer import train_sentencepiece
    from s2s_zoo.models.registry import build_from_catalog
    from s2s_zoo.training.fit import TrainConfig, compile_model, fit, set_precision

    keras.utils.set_random_seed(0)
    set_precision(None if args.precision == "float32" else args.precision)
    pairs = read_pairs(args.data).pairs
    pre = TextPreprocessor(
        train_sentencepiece([s for s, _ in pairs], args.vocab_size),
        train_sentencepiece([t for _, t in pairs], args.vocab_size),
        64,
        64,
    )
    name, overrides = MODELS[args.model]
    config = TrainConfig(batch_size=GLOBAL_BATCH, learning_rate=1e-3)
    with strategy.scope():
        model = build_from_catalog(name, pre.source_vocab_size, pre.target_vocab_size, **overrides)
        compile_model(model.training_model, config)
    dataset = make_dataset(pairs, pre, GLOBAL_BATCH, seed=0, drop_remainder=True)
    data = dataset.take(args.steps).cache()
    # every step trains one global batch, whatever the strategy: count its target tokens
    tokens = [int(tf.reduce_sum(tf.cast(out != 0, tf.int32))) for _, out in data]
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None) -> None:
            times.append(time.perf_counter())

    fit(model.training_model, data, None, config, verbose=0, callbacks=[Clock()])
    if is_chief(strategy):
        steps = min(len(times), len(tokens))
        seconds = times[steps - 1] - times[WARMUP_STEPS - 1]
        per_step = sum(tokens) / len(tokens)
        print(json.dumps({"tokens_per_second": (steps - WARMUP_STEPS) * per_step / seconds,
                          "steps": steps, "seconds": seconds}))  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace, model: str, strategy: str, precision: str) -> dict:
    base = [sys.executable, __file__, "--one", "--model-name", model, "--strategy", strategy,
            "--precision", precision, "--steps", str(args.steps), "--data", str(args.data),
            "--vocab-size", str(args.vocab_size)]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if strategy != "multi_worker":
        out = subprocess.run(base, env=env, capture_output=True, text=True, check=False)
        procs_out = [out]
    else:
        ports = [free_port(), free_port()]
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        procs = [
            subprocess.Popen(
                base,
                env={
                    **env,
                    "TF_CONFIG": json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": i}}
                    ),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(2)
        ]
        procs_out = [subprocess.CompletedProcess(p.args, p.wait(), *p.communicate()) for p in procs]
    for proc in procs_out:
        if proc.returncode:
            raise SystemExit(f"{model}/{strategy}/{precision} failed:\n{proc.stderr[-3000:]}")
    for line in procs_out[0].stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{model}/{strategy}/{precision}: no result\n{procs_out[0].stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--strategies", nargs="+", default=["default", "mirrored", "multi_worker"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--workdir", help="corpus cache (default: a temp dir)")
    # one configuration, in a child process
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-name", dest="model", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(args)
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="s2s_train_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    args.data = corpus_file(workdir, args.pairs)
    print(f"{'model':<12} {'strategy':<13} {'precision':<9} {'tokens/s':>9} {'steps':>6}")
    for model in args.models:
        for strategy in args.strategies:
            for precision in args.precisions:
                result = launch(args, model, strategy, precision)
                print(
                    f"{model:<12} {strategy:<13} {precision:<9} "
                    f"{result['tokens_per_second']:>9,.0f} {result['steps']:>6}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
