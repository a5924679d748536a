"""Captioning digits from a source never trained on: handwriting held out, or fonts held
out, with and without image augmentation.

The digit-strip task mixes scanned handwriting (scikit-learn's digits) and digits
typeset in Debian fonts. For each held-out source the default captioning recipe
(recipes/captioning/show_attend_tell.py) trains on the task's train strips of the
other source (its valid strips for early stopping) and is tested on the task's test
strips of the held-out source (held-out scans; held-out font designs), once without
and once with `--image-augment`.

    python benchmarks/captioning_cross_source.py --minutes 8 --work-dir /tmp/ccs

Each run goes through the recipe runner (`--train/--valid/--test` files written here),
so the numbers are those of the exported model. `--minutes` counts CPU time over the
cores by default (`--clock cpu`: the wall time on a machine to itself), so runs made
while other processes share the machine stay comparable (`--clock wall`: wall time).
Fonts are also scored per family.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

from run_budget import add_budget_arguments, budget_argv

from s2s_zoo.data.captions import read_caption_tsv, write_caption_tsv
from s2s_zoo.tasks.captioning.digit_strips import (
    HANDWRITING,
    make_digit_caption_task,
    read_sources,
    sources_file,
)
from s2s_zoo.training.runner import run

REPO = Path(__file__).resolve().parents[1]
AUGMENT_ALL = "affine,blur,noise,jitter,jpeg"


def load_recipe(relative: str = "recipes/captioning/show_attend_tell.py"):
    spec = importlib.util.spec_from_file_location("caption_recipe", REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


def sourced(split_path: Path) -> list[tuple[str, str, str]]:
    """(image path, caption, source) rows of a generated split."""
    sources = read_sources(split_path)
    return [(image, caption, sources[image]) for image, caption in read_caption_tsv(split_path)]


def is_from(source: str, kind: str) -> bool:
    return (source == HANDWRITING) == (kind == HANDWRITING)


def write_split(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A caption TSV and its `<split>.sources.tsv`, so the runner scores per source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_caption_tsv(path, [(image, caption) for image, caption, _ in rows])
    lines = "".join(f"{image}\t{source}\n" for image, _, source in rows)
    sources_file(path).write_text("image_path\tsource\n" + lines, encoding="utf-8")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_budget_arguments(p)
    p.add_argument("--work-dir", default="/tmp/s2s_captioning_cross_source")
    p.add_argument("--data-dir", help="the digit-strip task (default: WORK/data)")
    p.add_argument("--hold-out", default="handwriting,fonts", help="comma list")
    p.add_argument("--augment", default="off,on", help="off, on, or off,on")
    p.add_argument("--image-augment", default=AUGMENT_ALL, help="what 'on' enables")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    work = Path(args.work_dir)
    recipe = load_recipe()
    files = make_digit_caption_task(
        args.data_dir or work / "data", seed=args.seed, **recipe.options["default_task"]
    )
    splits = {name: sourced(path) for name, path in files.items()}
    rows = []
    for held_out in args.hold_out.split(","):
        if held_out not in (HANDWRITING, "fonts"):
            raise SystemExit(f"--hold-out: handwriting or fonts, got {held_out!r}")
        trained_on = "fonts" if held_out == HANDWRITING else HANDWRITING
        chosen = {
            "train": [r for r in splits["train"] if is_from(r[2], trained_on)],
            "valid": [r for r in splits["valid"] if is_from(r[2], trained_on)],
            "test": [r for r in splits["test"] if is_from(r[2], held_out)],
        }
        folder = work / f"without_{held_out}"
        paths = {name: write_split(folder / f"{name}.tsv", rs) for name, rs in chosen.items()}
        print(f"\n=== held out {held_out}: train {len(chosen['train'])} / valid "
              f"{len(chosen['valid'])} {trained_on} strips, test {len(chosen['test'])} ===",
              flush=True)  # fmt: skip
        for setting in args.augment.split(","):
            augment = args.image_augment if setting == "on" else "none"
            name = f"without_{held_out}_{setting}"
            start, cpu = time.perf_counter(), time.process_time()
            result = run(recipe, [
                "--train", str(paths["train"]), "--valid", str(paths["valid"]),
                "--test", str(paths["test"]), "--image-augment", augment,
                *budget_argv(args),
                "--export-dir", str(work / "exported"), "--name", name,
                "--checkpoint-dir", str(work / "checkpoints" / name),
                "--data-dir", str(work / "unused"), "--seed", str(args.seed),
                "--no-serving-check", "--valid-decode", "0",
            ])  # fmt: skip
            m = result["metrics"]
            rows.append({
                "held_out": held_out, "augment": augment, "patience": args.patience,
                "epochs": len(result["history"]["loss"]),
                "minutes": (time.perf_counter() - start) / 60,
                "cpu_minutes": (time.process_time() - cpu) / 60 / (os.cpu_count() or 1),
                "n": len(chosen["test"]),
                "exact": m["beam_exact_match"], "wer": m["beam_wer"], "bleu4": m["beam_bleu4"],
                "greedy_exact": m["greedy_exact_match"],
                "per_source": {k[len("beam_exact_match["):-1]: v for k, v in m.items()
                               if k.startswith("beam_exact_match[")},
            })  # fmt: skip
            (work / "results.json").write_text(json.dumps(rows, indent=1))
            print_table(rows)


def print_table(rows: list[dict]) -> None:
    print("\n| held-out source | augmentation | epochs | "
          "run minutes (wall / CPU over cores) | test n | exact | WER | "
          "BLEU-4 | greedy exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['held_out']} | {r['augment']} | {r['epochs']} | "
              f"{r['minutes']:.1f} / {r['cpu_minutes']:.1f} | "
              f"{r['n']} | {r['exact']:.2%} | {r['wer']:.2%} | {r['bleu4']:.1f} | "
              f"{r['greedy_exact']:.2%} |", flush=True)  # fmt: skip
    for r in rows:
        if len(r["per_source"]) > 1:
            shown = ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["per_source"].items()))
            print(f"  {r['held_out']} / {r['augment']}: exact per source: {shown}")


if __name__ == "__main__":
    main()
