"""Speech recognition on an unheard synthesizer: leave one engine out, with and without
waveform augmentation.

The spoken-number task mixes espeak-ng and festival. For each engine, the default
speech recipe (recipes/speech/las.py) trains on every *other* engine's utterances
(all splits pooled; 10% of them for validation) and is tested on the held-out
engine's utterances whose numbers it never heard (`leave_one_engine_out` with
`unseen_transcripts_only`), once without and once with `--audio-augment`. When flite
is installed, every model is also scored on numbers spoken by flite, which no
training set contains (`s2s_zoo.tasks.speech.unheard`).

    python benchmarks/speech_cross_engine.py --minutes 8 --work-dir /tmp/sxe
    python benchmarks/speech_cross_engine.py --evaluate exported/speech_las/1   # flite only

Each run goes through the recipe runner (`--train/--valid/--test` files written here),
so the numbers are those of the exported model. `--minutes` counts CPU time over the
cores by default (`--clock cpu`: the wall time on a machine to itself), so runs made
while other processes share the machine stay comparable; `--clock wall` for wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
from run_budget import add_budget_arguments, budget_argv

from s2s_zoo.data.asr_manifests import read_manifest, write_manifest
from s2s_zoo.tasks.base import get_task
from s2s_zoo.tasks.speech.sources import (
    SourcedUtterance,
    leave_one_engine_out,
    read_sourced_split,
    read_sources,
    sources_path,
    write_sources,
)
from s2s_zoo.tasks.speech.spoken_numbers import make_spoken_number_task
from s2s_zoo.training.runner import evaluate_export, run

REPO = Path(__file__).resolve().parents[1]
AUGMENT_ALL = "speed,noise,gain,reverb"


def load_recipe(relative: str = "recipes/speech/las.py"):
    spec = importlib.util.spec_from_file_location("speech_recipe", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


def write_split(path: Path, utterances: list[SourcedUtterance]) -> Path:
    """A manifest and its `<split>.sources.tsv`, so the runner scores per engine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(path, [(u.path, u.transcript) for u in utterances])
    write_sources(sources_path(path), [(u.path, u.engine, u.voice) for u in utterances])
    return path


def voice_groups(manifest: Path) -> dict[str, list[str]]:
    """{path: [engine, engine:voice]} from a manifest's sources file."""
    rows = read_sources(sources_path(manifest))
    return {r.path: [r.engine, f"{r.engine}:{r.voice}"] for r in rows}


def flite_test(work: Path, args: argparse.Namespace) -> Path | None:
    from s2s_zoo.tasks.speech.unheard import make_unheard_engine_test

    try:
        return make_unheard_engine_test(
            work / "flite", num_test=args.flite_size, seed=args.seed, max_number=999
        )
    except FileNotFoundError as error:
        print(f"note: no unheard-engine test ({error})")
        return None


def score_on(export: Path, manifest: Path) -> dict[str, float]:
    task = get_task("speech")
    print(f"--- {export} on {manifest}")
    return evaluate_export(export, task, read_manifest(manifest), groups=voice_groups(manifest))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_budget_arguments(p)
    p.add_argument("--work-dir", default="/tmp/s2s_speech_cross_engine")
    p.add_argument("--data-dir", help="the spoken-number task (default: WORK/data)")
    p.add_argument("--hold-out", default="", help="comma list of engines (default: all)")
    p.add_argument("--augment", default="off,on", help="off, on, or off,on")
    p.add_argument("--audio-augment", default=AUGMENT_ALL, help="what 'on' enables")
    p.add_argument("--test-size", type=int, default=300, help="held-out utterances scored")
    p.add_argument("--flite-size", type=int, default=300, help="flite utterances (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluate", help="only score this export on the flite test set")
    args = p.parse_args()
    work = Path(args.work_dir)
    flite = flite_test(work, args) if args.flite_size else None
    if args.evaluate:
        if flite is None:
            raise SystemExit("--evaluate needs flite (apt-get install flite)")
        metrics = score_on(Path(args.evaluate), flite)
        print(json.dumps({k: round(v, 4) for k, v in metrics.items() if "beam" in k}, indent=1))
        return

    files = make_spoken_number_task(args.data_dir or work / "data", seed=args.seed)
    pooled = [u for split in ("train", "valid", "test") for u in read_sourced_split(files[split])]
    engines = sorted({u.engine for u in pooled})
    held_out = args.hold_out.split(",") if args.hold_out else engines
    if len(engines) < 2:
        raise SystemExit(f"leave-one-engine-out needs two engines; the task has {engines}")
    recipe = load_recipe()
    rows = []
    for engine in held_out:
        split = leave_one_engine_out(pooled, engine, seed=args.seed, unseen_transcripts_only=True)
        test = split["test"]
        if len(test) > args.test_size:
            keep = np.random.default_rng(args.seed).choice(len(test), args.test_size, False)
            test = [test[i] for i in sorted(keep)]
        folder = work / f"without_{engine}"
        paths = {name: write_split(folder / f"{name}.tsv", split[name]) for name in
                 ("train", "valid")}  # fmt: skip
        paths["test"] = write_split(folder / "test.tsv", test)
        print(f"\n=== held out {engine}: train {len(split['train'])} "
              f"({', '.join(e for e in engines if e != engine)}), valid {len(split['valid'])}, "
              f"test {len(test)} (unheard numbers) ===", flush=True)  # fmt: skip
        for setting in args.augment.split(","):
            augment = args.audio_augment if setting == "on" else "none"
            name = f"without_{engine.replace('-', '_')}_{setting}"
            start, cpu = time.perf_counter(), time.process_time()
            result = run(recipe, [
                "--train", str(paths["train"]), "--valid", str(paths["valid"]),
                "--test", str(paths["test"]), "--audio-augment", augment,
                *budget_argv(args),
                "--export-dir", str(work / "exported"), "--name", name,
                "--checkpoint-dir", str(work / "checkpoints" / name),
                "--data-dir", str(work / "unused"), "--seed", str(args.seed),
                "--no-serving-check", "--valid-decode", "0",
            ])  # fmt: skip
            m = result["metrics"]
            row = {
                "held_out": engine, "augment": augment, "patience": args.patience,
                "epochs": len(result["history"]["loss"]),
                "minutes": (time.perf_counter() - start) / 60,
                "cpu_minutes": (time.process_time() - cpu) / 60 / (os.cpu_count() or 1),
                "n": len(test),
                "wer": m["beam_wer"], "cer": m["beam_cer"], "exact": m["beam_exact_match"],
                "greedy_wer": m["greedy_wer"],
            }  # fmt: skip
            if flite is not None:
                fm = score_on(result["export_path"], flite)
                row.update(flite_wer=fm["beam_wer"], flite_cer=fm["beam_cer"],
                           flite_exact=fm["beam_exact_match"])  # fmt: skip
            rows.append(row)
            (work / "results.json").write_text(json.dumps(rows, indent=1))
            print_table(rows)


def print_table(rows: list[dict]) -> None:
    print("\n| held-out engine | augmentation | epochs | "
          "run minutes (wall / CPU over cores) | test n | WER | CER | "
          "exact | greedy WER | flite WER | flite exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        flite = (f"{r['flite_wer']:.2%} | {r['flite_exact']:.2%}" if "flite_wer" in r
                 else "- | -")  # fmt: skip
        print(f"| {r['held_out']} | {r['augment']} | {r['epochs']} | "
              f"{r['minutes']:.1f} / {r['cpu_minutes']:.1f} | "
              f"{r['n']} | {r['wer']:.2%} | {r['cer']:.2%} | {r['exact']:.2%} | "
              f"{r['greedy_wer']:.2%} | {flite} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
