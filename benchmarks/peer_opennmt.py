"""Our recurrent model against OpenNMT-tf 2.32 at the same size: BLEU, training and decoding.

    python benchmarks/peer_opennmt.py                    # 10 minutes of training each
    python benchmarks/peer_opennmt.py --minutes 0.5 --test-limit 64      # a smoke run
    python benchmarks/peer_opennmt.py --ours-recipe lstm_luong transformer

One command on a fresh machine: builds the peer's own virtual environment under
--workdir (opennmt-tf 2.32.0, TensorFlow 2.13, tensorflow-addons 0.21; about a minute,
reused when it already imports), builds the gettext en->fr corpus of
benchmarks/quality.py, and trains both systems for the same wall-clock budget:

- the peer: benchmarks/peer_opennmt/model.py (word embeddings 256, unidirectional
  2x256 LSTM encoder, 2x256 LSTM decoder with Luong attention and input feeding), word
  level on regex-tokenized text (`\\w+|[^\\w\\s]`, case kept), 16k word vocabularies,
  batch 64 examples, Adam 1e-3. `onmt-main train` has no time limit: it runs as a
  subprocess, saves a checkpoint every --peer-save-steps steps, and is interrupted at the
  first checkpoint after the budget; that checkpoint is exported twice (beam 1, beam 4).
  Its clock starts when its first step is done (its tracing is not counted; ours is);
- ours: recipes/translation/lstm_luong.py at the same size (SentencePiece 16k, batch 64,
  Adam 1e-3, --valid-decode 0, no early stopping: the last weights are scored, as the
  peer's last checkpoint is), through the runner users run; and, with
  --ours-recipe transformer, the Transformer recipe at its own size.

Then every system's exports decode the test split in its own worker process
(benchmarks/peer_opennmt/decode_worker.py), alternately (peer, ours, peer, ours, ...
for --rounds rounds; the faster round counts), at batch 1, 8 and 32, greedy and beam 4,
timing only the model calls. BLEU is sacrebleu's corpus BLEU with tokenize='none' on
regex-tokenized outputs and references joined by spaces, the same for every system.
Prints one table and the ratios against issue 12's targets; asserts nothing.

Time: 2 x --minutes of training plus about a minute per system for exports and
start-up, plus decoding (1819 test sentences x 6 settings x --rounds per system; the
batch-1 beam settings dominate): about 45 minutes with the defaults on an idle 2-core
CPU, about 1 hour with --ours-recipe lstm_luong transformer (3 x training).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import sacrebleu
from quality import load_recipe  # benchmarks/quality.py, beside this script

from s2s_zoo.data.readers import write_pairs
from s2s_zoo.tasks.translation.gettext_corpus import DEFAULT_LOCALE_DIR, build_corpus

BENCHMARKS = Path(__file__).resolve().parent
COMPANION = BENCHMARKS / "peer_opennmt"
PEER_PACKAGES = [
    "opennmt-tf==2.32.0",
    "tensorflow==2.13.*",
    "tensorflow-addons==0.21.*",
    "numpy<2",  # TensorFlow 2.13 is built against numpy 1.x
]
WORD = re.compile(r"\w+|[^\w\s]")  # the same tokenizer as decode_worker.py
BATCH = 64
# the issue's measurement size; other recipes train at their own size
OURS_CONFIG = {
    "lstm_luong": {
        "embedding_dim": 256,
        "encoder_units": 256,
        "decoder_units": 256,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "bidirectional": False,
    }
}
TARGETS = {"bleu": (1.0, 1.2), "train": (1.5, None), "decode": (3.0, None)}


def words(text: str) -> list[str]:
    return WORD.findall(text)


def run_logged(command: list, log: Path) -> None:
    """Run a command with its output in `log`; on failure, show the log's tail and stop."""
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if code.returncode:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"failed ({code.returncode}): {' '.join(map(str, command))}\n{tail}")


# -- the peer's environment ----------------------------------------------------------------


def opennmt_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = [str(python), "-c", "import opennmt; print(opennmt.__version__)"]
    out = subprocess.run(probe, capture_output=True, text=True, check=False)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout else None


def peer_venv(venv: Path) -> Path:
    """The bin/ of a venv with OpenNMT-tf: reused if it imports, else built (pip)."""
    python = venv / "bin" / "python"
    if opennmt_version(python) == "2.32.0":
        print(f"peer venv: {venv} (reused)", flush=True)
        return venv / "bin"
    print(f"peer venv: building {venv} ({', '.join(PEER_PACKAGES)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    run_logged([python, "-m", "pip", "install", *PEER_PACKAGES], venv.parent / "pip.log")
    version = opennmt_version(python)
    if version != "2.32.0":
        raise SystemExit(f"the peer venv does not import opennmt 2.32.0 (got {version})")
    return venv / "bin"


# -- data ------------------------------------------------------------------------------------


def write_corpus(data: Path, args: argparse.Namespace) -> dict:
    """The TSV splits for ours, and the same pairs regex-tokenized one sentence a line
    (`{split}.en`, `{split}.fr`) for the peer. The test split is cut to --test-limit."""
    splits, report = build_corpus("fr", args.locale_dir, max_words=args.max_words)
    print(f"gettext corpus en->fr: {report.summary()}", flush=True)
    if args.test_limit:
        splits["test"] = splits["test"][: args.test_limit]
    data.mkdir(parents=True, exist_ok=True)
    for name, pairs in splits.items():
        write_pairs(data / f"{name}.tsv", pairs)
        for side, lang in ((0, "en"), (1, "fr")):
            lines = [" ".join(words(pair[side])) for pair in pairs]
            (data / f"{name}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return splits


def build_vocabularies(bin_dir: Path, data: Path, size: int) -> dict:
    """16k word vocabularies of the training split, with `onmt-build-vocab`."""
    vocabs = {}
    for lang in ("en", "fr"):
        vocabs[lang] = data / f"vocab.{lang}"
        command = [bin_dir / "onmt-build-vocab", "--size", str(size)]
        command += ["--save_vocab", vocabs[lang], data / f"train.{lang}"]
        run_logged(command, data / f"vocab.{lang}.log")
    return vocabs


# -- the peer: train, export -----------------------------------------------------------------


def peer_config(
    work: Path, data: Path, vocabs: dict, beam_width: int, save_steps: int, max_output: int
) -> Path:
    """The peer's run configuration (JSON is YAML) for one beam width."""
    config = {
        "model_dir": str(work / "model"),
        "data": {
            "train_features_file": str(data / "train.en"),
            "train_labels_file": str(data / "train.fr"),
            "eval_features_file": str(data / "dev.en"),
            "eval_labels_file": str(data / "dev.fr"),
            "source_vocabulary": str(vocabs["en"]),
            "target_vocabulary": str(vocabs["fr"]),
        },
        "params": {
            "optimizer": "Adam",
            "learning_rate": 0.001,
            "beam_width": beam_width,
            "length_penalty": 0.6,  # GNMT's, as our recipes' DecodingConfig default
            # a bound like ours (2 x source + 10), not OpenNMT-tf's 250: a looping
            # hypothesis would otherwise hold its whole batch for 250 steps
            "maximum_decoding_length": max_output,
        },
        "train": {
            "batch_size": BATCH,
            "batch_type": "examples",
            "max_step": 100_000_000,  # the wall-clock budget ends training
            "save_checkpoints_steps": save_steps,
            "keep_checkpoint_max": 3,
            "save_summary_steps": 10,
            "maximum_features_length": 100,
            "maximum_labels_length": 100,
        },
    }
    path = work / f"config_beam{beam_width}.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


CHECKPOINT_LINE = re.compile(r"Saved checkpoint .*ckpt-(\d+)")
PARAMS_LINE = re.compile(r"Number of model parameters: (\d+)")
STEP_LINE = re.compile(r"Step = (\d+) ; .*\((\d+) source, (\d+) target\)")


def train_peer(bin_dir: Path, config: Path, work: Path, minutes: float) -> dict:
    """`onmt-main train`, interrupted at the first checkpoint after `minutes` counted from
    the checkpoint of step 1. Returns its steps, seconds, parameters and mean logged
    target words/s."""
    shutil.rmtree(work / "model", ignore_errors=True)
    command = [bin_dir / "onmt-main", "--model", COMPANION / "model.py", "--config", config]
    command += ["train"]
    log_path = work / "train.log"
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    start = end = None
    first_step = last_step = params = 0
    target_rates: list[int] = []
    with log_path.open("w", buffering=1) as log:  # line-buffered: readable while it runs
        for line in proc.stdout:
            log.write(line)
            now = time.monotonic()
            if match := PARAMS_LINE.search(line):
                params = int(match.group(1))
            if match := STEP_LINE.search(line):
                target_rates.append(int(match.group(3)))
            if match := CHECKPOINT_LINE.search(line):
                step = int(match.group(1))
                if start is None:
                    start, first_step = now, step
                elif now - start >= minutes * 60:
                    end, last_step = now, step
                    proc.send_signal(signal.SIGINT)
                    break
        try:  # read on, so that a long traceback cannot block its exit on a full pipe
            log.write(proc.communicate(timeout=5)[0] or "")
        except subprocess.TimeoutExpired:
            # it trains on after SIGINT, and checkpoint rotation (keep_checkpoint_max)
            # would delete the one we stopped at; that one is complete (logged as saved)
            proc.kill()
            proc.wait()
    if end is None:
        raise SystemExit(f"the peer's training ended before its budget; see {log_path}")
    print(f"peer: {last_step} steps, checkpoint ckpt-{last_step}; log {log_path}", flush=True)
    return {
        "steps": last_step,
        "rate_steps": last_step - first_step,  # the steps `seconds` spans
        "seconds": end - start,
        "params": params,
        "native_rate": sum(target_rates) / max(len(target_rates), 1),
        "checkpoint": work / "model" / f"ckpt-{last_step}",
    }


def export_peer(bin_dir: Path, config: Path, checkpoint: Path, out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    command = [bin_dir / "onmt-main", "--model", COMPANION / "model.py", "--config", config]
    command += ["--checkpoint_path", checkpoint, "export", "--output_dir", out]
    run_logged(command + ["--format", "saved_model"], out.with_suffix(".log"))
    return out


# -- ours: train (the runner users run), count ----------------------------------------------


def train_ours(name: str, data: Path, work: Path, args: argparse.Namespace) -> dict:
    """Train recipe `name` for --minutes (wall clock) and export it; returns its steps,
    seconds, parameters, export and mean target pieces (EOS included) per example."""
    from s2s_zoo.bundle import load_bundle
    from s2s_zoo.training.runner import run

    shutil.rmtree(work / "checkpoints" / name, ignore_errors=True)  # no stale backup
    argv = ["--train", str(data / "train.tsv"), "--valid", str(data / "dev.tsv"),
            "--test", str(data / "test.tsv"), "--max-minutes", str(args.minutes),
            "--valid-decode", "0", "--epochs", "1000", "--patience", "0",
            "--batch-size", str(BATCH), "--vocab-size", str(args.vocab_size),
            "--export-dir", str(work / "exported"),
            "--checkpoint-dir", str(work / "checkpoints" / name),
            "--name", f"peer_{name}"]  # fmt: skip
    if name in OURS_CONFIG:  # the peer's size and optimizer settings
        argv += ["--model-config", json.dumps(OURS_CONFIG[name]), "--learning-rate", "1e-3"]
    print(f"\n=== ours: {name}, {args.minutes:g} minutes ===", flush=True)
    result = run(load_recipe(name), argv)
    bundle = load_bundle(result["checkpoint_dir"])
    targets = [line.split("\t")[1] for line in (data / "train.tsv").read_text().splitlines()]
    _, target_out = bundle.preprocessor.target_in_out_ragged(targets)
    return {
        "steps": result["train_steps"],
        "rate_steps": result["train_steps"],
        "seconds": args.minutes * 60,
        "params": bundle.model.count_params(),
        "pieces_per_example": float(target_out.row_lengths().numpy().mean()),
        "export": result["export_path"],
    }


# -- decoding, alternately -------------------------------------------------------------------


def start_worker(python: Path | str, kind: str, exports: list, sources: Path, log: Path):
    command = [str(python), str(COMPANION / "decode_worker.py"), "--kind", kind]
    command += [str(a) for a in exports] + ["--sources", str(sources)]
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"), text=True
    )


def read_line(worker, prefix: str, name: str) -> str:
    for line in worker.stdout:
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise SystemExit(f"decode worker {name} exited ({worker.wait()}); see its log")


def decode_alternately(workers: dict, rounds: int) -> dict:
    """{system: {"greedy/32": {"seconds", "outputs"}}}: each round asks every worker in
    turn; the fastest round of each setting is kept (outputs do not change)."""
    for name, worker in workers.items():
        read_line(worker, "READY", name)
    best: dict = {}
    for round_ in range(rounds):
        for name, worker in workers.items():
            print(f"decoding: round {round_ + 1}/{rounds}, {name}", flush=True)
            worker.stdin.write("go\n")
            worker.stdin.flush()
            report = json.loads(read_line(worker, "RESULT ", name))
            kept = best.setdefault(name, report)
            for key, value in report.items():
                kept[key]["seconds"] = min(kept[key]["seconds"], value["seconds"])
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    return best


# -- the table -------------------------------------------------------------------------------


def bleu(outputs: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_bleu(outputs, [references], tokenize="none").score


def mean_words(outputs: list[str]) -> float:
    return sum(len(o.split()) for o in outputs) / max(len(outputs), 1)


def system_rows(train: dict, decoded: dict, refs: list[str], words_per_example: float) -> dict:
    """One column of the table: training numbers, BLEU, decoding rates."""
    examples_per_second = train["rate_steps"] * BATCH / train["seconds"]
    rows = {
        "parameters": f"{train['params']:,}",
        "training steps": f"{train['steps']:,}",
        "train examples/s": f"{examples_per_second:.1f}",
        "train tokens/s, native": train["native"],
        "train target words/s": f"{examples_per_second * words_per_example:,.0f}",
        "BLEU greedy": f"{bleu(decoded['greedy/1']['outputs'], refs):.1f}",
        "BLEU beam 4": f"{bleu(decoded['beam/1']['outputs'], refs):.1f}",
        "mean output words, beam 4": f"{mean_words(decoded['beam/1']['outputs']):.1f}",
    }
    for key, value in decoded.items():
        outputs = value["outputs"]
        sentences = len(outputs) / value["seconds"]
        tokens = sum(len(o.split()) for o in outputs) / value["seconds"]
        rows[f"{key} sent/s"] = f"{sentences:.1f}"
        rows[f"{key} words/s"] = f"{tokens:,.0f}"
    return rows


def verdict(ratio: float, target: tuple) -> str:
    minimum, goal = target
    if math.isnan(ratio):
        return "n/a (the peer scores 0)"
    text = f"{ratio:.2f}x (target >= {minimum:g}x"
    text += f", goal {goal:g}x)" if goal else ")"
    met = "met" if ratio >= minimum else "NOT met"
    if goal:
        met += ", goal met" if ratio >= goal else ", goal not met"
    return f"{text}: {met}"


def print_table(columns: dict, ratios: list[tuple[str, float, tuple]], note: str) -> None:
    names = list(columns)
    metrics = list(next(iter(columns.values())))
    width = max(len(m) for m in metrics) + 2
    print("\n" + note)
    print(f"{'':<{width}}" + "".join(f"{n:>22}" for n in names))
    for metric in metrics:
        print(f"{metric:<{width}}" + "".join(f"{columns[n][metric]:>22}" for n in names))
    print("\nours / peer")
    for label, ratio, target in ratios:
        print(f"  {label:<34} {verdict(ratio, target)}")
    sys.stdout.flush()


def issue_ratios(peer: dict, ours: dict, decoded: dict, refs: list[str]) -> list[tuple]:
    """(label, ours/peer, target) for issue 12's three targets."""
    peer_out, lstm_out = decoded["OpenNMT-tf"], decoded["ours lstm_luong"]

    def bleu_ratio(key: str) -> float:
        peer_bleu = bleu(peer_out[key]["outputs"], refs)
        return bleu(lstm_out[key]["outputs"], refs) / peer_bleu if peer_bleu else math.nan

    def sentences_per_second(out: dict) -> float:
        return len(out["beam/32"]["outputs"]) / out["beam/32"]["seconds"]

    def training_rate(train: dict) -> float:  # examples/s: same words per example for both
        return train["rate_steps"] / train["seconds"]

    ratios = [
        ("BLEU beam 4", bleu_ratio("beam/1"), TARGETS["bleu"]),
        ("BLEU greedy", bleu_ratio("greedy/1"), TARGETS["bleu"]),
        ("training target words/s", training_rate(ours["lstm_luong"]) / training_rate(peer),
         TARGETS["train"]),
    ]  # fmt: skip
    for name in ours:
        ratio = sentences_per_second(decoded[f"ours {name}"]) / sentences_per_second(peer_out)
        ratios.append((f"{name} beam-4 batch-32 sent/s", ratio, TARGETS["decode"]))
    return ratios


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget each")
    parser.add_argument(
        "--ours-recipe",
        nargs="+",
        default=["lstm_luong"],
        help="our recipes to compare (lstm_luong first: the training/BLEU ratios use it)",
    )
    parser.add_argument("--workdir", default=str(BENCHMARKS / ".peer_work"))
    parser.add_argument("--test-limit", type=int, help="decode only the first N test pairs")
    parser.add_argument("--rounds", type=int, default=2, help="alternating decode rounds")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--peer-save-steps", type=int, default=100)
    parser.add_argument("--max-words", type=int, default=30)
    parser.add_argument("--locale-dir", default=str(DEFAULT_LOCALE_DIR))
    args = parser.parse_args()
    if args.ours_recipe[0] != "lstm_luong":
        raise SystemExit("--ours-recipe: lstm_luong comes first (it is the peer's size)")

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bin_dir = peer_venv(work / "venv")
    data = work / "data"
    splits = write_corpus(data, args)
    train_words = sum(len(words(t)) for _, t in splits["train"]) / len(splits["train"])
    vocabs = build_vocabularies(bin_dir, data, args.vocab_size)

    peer_work = work / "peer"
    peer_work.mkdir(exist_ok=True)
    max_output = 2 * args.max_words + 10
    configs = {
        b: peer_config(peer_work, data, vocabs, b, args.peer_save_steps, max_output) for b in (1, 4)
    }
    print(f"\n=== peer: OpenNMT-tf, {args.minutes:g} minutes ===", flush=True)
    peer = train_peer(bin_dir, configs[1], peer_work, args.minutes)
    peer["native"] = f"{peer['native_rate']:,.0f} words"
    exports = {
        b: export_peer(bin_dir, configs[b], peer["checkpoint"], peer_work / f"export_beam{b}")
        for b in (1, 4)
    }

    ours = {name: train_ours(name, data, work, args) for name in args.ours_recipe}
    for result in ours.values():
        rate = result["rate_steps"] * BATCH * result["pieces_per_example"] / result["seconds"]
        result["native"] = f"{rate:,.0f} pieces"

    sources = data / "test_sources.txt"
    sources.write_text("\n".join(s for s, _ in splits["test"]) + "\n", encoding="utf-8")
    logs = work / "decode_logs"
    logs.mkdir(exist_ok=True)
    workers = {"OpenNMT-tf": start_worker(
        bin_dir / "python", "peer", ["--greedy", exports[1], "--beam", exports[4]], sources,
        logs / "peer.log")}  # fmt: skip
    for name, result in ours.items():
        workers[f"ours {name}"] = start_worker(
            sys.executable, "ours", ["--export", result["export"]], sources, logs / f"{name}.log"
        )
    decoded = decode_alternately(workers, args.rounds)

    refs = [" ".join(words(t)) for _, t in splits["test"]]
    columns = {"OpenNMT-tf": system_rows(peer, decoded["OpenNMT-tf"], refs, train_words)}
    for name, result in ours.items():
        columns[f"ours {name}"] = system_rows(result, decoded[f"ours {name}"], refs, train_words)
    ratios = issue_ratios(peer, ours, decoded, refs)
    note = (
        f"Test split: {len(refs)} pairs, en->fr gettext. BLEU: sacrebleu corpus BLEU, "
        "tokenize='none', on outputs and references regex-tokenized (\\w+|[^\\w\\s], case "
        "kept) and joined by spaces, the same for every system. Training: steps x "
        f"{BATCH} examples over the budget; target words are regex words "
        f"({train_words:.2f} per training example); native = the peer's logged target "
        "words/s (checkpoint saves excluded), our target SentencePiece pieces + EOS. "
        f"Decoding: model calls only, fastest of {args.rounds} alternating rounds; "
        "words/s = regex words of the outputs."
    )
    print_table(columns, ratios, note)


if __name__ == "__main__":
    main()
